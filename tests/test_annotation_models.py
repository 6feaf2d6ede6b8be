"""scenebase.models.annotation: the seed's classes, their documents (FACTS 6.1-6.3) and the validation rules (6.2)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scenebase.constants import AnnotationTypes
from scenebase.domain import annotations as rules
from scenebase.errors import InvalidAnnotationError, InvalidTimeError
from scenebase.models.annotation import (
    Annotation,
    AnnotationEntity,
    BoundingBox,
    BoundingBoxAnnotation,
    ClassificationAnnotation,
    Connection,
    Cuboid2D,
    Cuboid2DAnnotation,
    Cuboid3D,
    Cuboid3DAnnotation,
    Ellipse,
    EllipseAnnotation,
    Label,
    Line,
    LineAnnotation,
    Point,
    PointAnnotation,
    Polygon,
    PolygonAnnotation,
    Pose,
    PoseAnnotation,
    SegmentationAnnotation,
)


def box(label: str = "car", **kw: float) -> BoundingBox:
    coords = {"x_min": 1.0, "x_max": 11.0, "y_min": 2.0, "y_max": 22.0, **kw}
    return BoundingBox(label=label, **coords)  # type: ignore[arg-type]


def test_bounding_box_annotation_document() -> None:
    ts = datetime(2024, 5, 1, 12, tzinfo=UTC)
    ann = BoundingBoxAnnotation(
        [box(confidence=0.9, uid="Car 1", attributes={"track_id": 4}), box("bus", category_id=6)],
        image_id="Frame 1", id="My Ann", provider="labeler", version="v2", set_id="Anns", timestamp=ts,
        annotation_group="model_generated", sensor="cam", aux={"who": "me"},
    )  # fmt: skip
    doc = ann.to_dic()
    assert doc["id"] == "my_ann" and doc["asset_id"] == "frame_1" and doc["media_type"] == "images"
    assert doc["annotation_type"] == "two_d_bounding_box" and doc["provider"] == "labeler"
    assert doc["timestamp"] == "2024-05-01T12:00:00.000000+00:00"
    assert doc["labels"] == ["car", "bus"] and doc["sets"] == ["anns"] and doc["annotation_group"] == "model_generated"
    first, second = doc["annotation_entities"]
    assert first["uid"] == "car_1" and first["confidence"] == 0.9 and first["attributes"] == {"track_id": 4}
    assert first["coordinates"] == [{"x": 1, "y": 2}, {"x": 11, "y": 2}, {"x": 11, "y": 22}, {"x": 1, "y": 22}]
    assert second["category_id"] == 6 and "confidence" not in second and second["uid"]  # a generated uid
    assert doc["aux"] == {"who": "me"} and doc["sensor"] == "cam" and doc["version"] == "v2"


def test_defaults() -> None:
    ann = PointAnnotation([Point(label="p", left=0, top=3)], asset_id="a")
    doc = ann.to_dic()
    assert doc["provider"] == "default_provider" and doc["annotation_group"] == "ground_truth"
    assert doc["id"] and "T" in doc["timestamp"] and doc["timestamp"].endswith("+00:00")
    assert doc["annotation_entities"][0]["coordinates"] == [{"x": 0.0, "y": 3.0}]
    assert "sets" not in doc and "masks" not in doc and "frame" not in doc


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: box(x_min=-1), "x_min must be >= 0"),
        (lambda: box(x_max=0.5), "x_max must be >= x_min"),
        (lambda: box(confidence=1), "integer"),
        (lambda: box(confidence=1.5), r"not in \[0, 1\]"),
        (lambda: box(confidence=math.nan), "finite"),
        (lambda: BoundingBox(label="car", x_min=1, x_max=2, y_min=1), "y_max"),
        (lambda: box(attributes={"track_id": "7"}), "track_id must be an integer"),
        (lambda: Polygon(label="p", coordinates=[]), "coordinates are required"),
        (lambda: Polygon(label="p", coordinates=[(1, 2, 3)]), "must have 2 coordinates"),
        (lambda: Polygon(label="p", coordinates=[(1, -2)]), ">= 0"),
        (lambda: Point(label="p", left=1), "left and top are required"),
        (lambda: Ellipse(label="e", centre_x=1, centre_y=1, radius_x=-1, radius_y=1), "radius_x must be >= 0"),
        (lambda: Connection(-1, 2), "start_index"),
        (lambda: Label(""), "label must be a non-empty string"),
    ],
)
def test_shape_rules(make: object, message: str) -> None:
    with pytest.raises(InvalidAnnotationError, match=message):
        make()  # type: ignore[operator]


def test_limits_and_coordinate_counts() -> None:
    square = [(0, 0), (1, 0), (1, 1)]
    PolygonAnnotation([Polygon(label="ok", coordinates=square * 166)], asset_id="a")  # 498 vertices
    with pytest.raises(InvalidAnnotationError, match="at most 500 vertices, got 501"):
        PolygonAnnotation([Polygon(label="big", coordinates=square * 167)], asset_id="a")
    with pytest.raises(InvalidAnnotationError, match="at most 100 vertices"):
        LineAnnotation([Line(label="l", coordinates=[(i, i) for i in range(101)])], asset_id="a")
    with pytest.raises(InvalidAnnotationError, match="exactly 4 coordinates, got 3"):
        Annotation(asset_id="a", annotation_type="two_d_bounding_box",
                   annotation_entities=[{"label": "x", "coordinates": [{"x": 0, "y": 0}] * 3}])  # fmt: skip
    with pytest.raises(InvalidAnnotationError, match="exactly 1 coordinates"):
        AnnotationEntity("x", "point", coordinates=[{"x": 0, "y": 0}] * 2)
    with pytest.raises(InvalidAnnotationError, match="needs a mask_color"):
        AnnotationEntity("x", "segmentation", mask_id="m")
    with pytest.raises(InvalidAnnotationError, match="hex colour"):
        AnnotationEntity("x", "segmentation", mask_id="m", mask_color="red")
    with pytest.raises(InvalidAnnotationError, match="relationship"):
        AnnotationEntity("x", "classification", related_annotations=[{"uid": "u", "relationship": "cousin"}])
    with pytest.raises(InvalidAnnotationError, match="label is required"):
        Annotation(asset_id="a", annotation_type="point", annotation_entities=[{"coordinates": [{"x": 0, "y": 0}]}])


def test_annotation_rules() -> None:
    with pytest.raises(InvalidAnnotationError, match=r"asset_id .* is required"):
        BoundingBoxAnnotation([box()])
    with pytest.raises(InvalidAnnotationError, match="media_type 'pictures'"):
        BoundingBoxAnnotation([box()], asset_id="a", media_type="pictures")
    with pytest.raises(InvalidAnnotationError, match="annotation_group 'gt'"):
        BoundingBoxAnnotation([box()], asset_id="a", annotation_group="gt")
    with pytest.raises(InvalidAnnotationError, match="annotation_type 'boxes'"):
        Annotation(asset_id="a", annotation_type="boxes")
    with pytest.raises(InvalidAnnotationError, match="frame number"):
        BoundingBoxAnnotation([box()], video_id="v", media_type="videos")
    with pytest.raises(InvalidAnnotationError, match="unknown keyword"):
        BoundingBoxAnnotation([box()], asset_id="a", ground_truth=True)
    with pytest.raises(InvalidAnnotationError, match="at most one raw annotation"):
        BoundingBoxAnnotation([box()], asset_id="a", raw_annotation_str="x", raw_annotation_url="http://h/x")
    with pytest.raises(InvalidAnnotationError, match="takes BoundingBox"):
        BoundingBoxAnnotation([Polygon(label="p", coordinates=[(0, 0)])], asset_id="a")  # type: ignore[list-item]
    with pytest.raises(InvalidAnnotationError, match="name different assets"):
        BoundingBoxAnnotation([box()], asset_id="a", image_id="b")
    with pytest.raises(InvalidTimeError, match="no time zone"):
        BoundingBoxAnnotation([box()], asset_id="a", timestamp=datetime(2024, 1, 1))
    video = BoundingBoxAnnotation([box()], video_id="v", media_type="videos", frame=12)
    assert video.to_dic()["frame"] == 12 and video.to_dic()["media_type"] == "videos"


def test_every_shape_becomes_an_entity() -> None:
    nose, eye = Point(label="nose", left=5, top=5, confidence=0.5), Point(label="eye", left=6, top=4)
    pose = PoseAnnotation([Pose("person", [nose, eye], [Connection(0, 1, confidence=0.8)])], asset_id="a")
    entity = pose.to_dic()["annotation_entities"][0]
    assert entity["annotation_type"] == "two_d_pose"
    assert entity["keypoints"] == [{"label": "nose", "confidence": 0.5, "left": 5, "top": 5},
                                   {"label": "eye", "left": 6, "top": 4}]  # fmt: skip
    assert entity["connections"] == [{"start_index": 0, "end_index": 1, "confidence": 0.8}]
    with pytest.raises(InvalidAnnotationError, match="not the index of one of the 2 keypoints"):
        PoseAnnotation([Pose("person", [nose, eye], [Connection(0, 2)])], asset_id="a")

    corners = [(0, 0), (0, 9), (9, 0), (9, 9), (2, 2), (2, 11), (11, 2), (11, 11)]
    c2 = Cuboid2DAnnotation([Cuboid2D(label="car", **dict(zip(rules_corners(), corners, strict=True)))],
                            asset_id="a").to_dic()  # fmt: skip
    assert c2["annotation_entities"][0]["coordinates"][1] == {"x": 0, "y": 9}
    corners3 = [(-1, -2, -3)] * 8
    c3 = Cuboid3DAnnotation([Cuboid3D(label="car", **dict(zip(rules_corners(), corners3, strict=True)))],
                            asset_id="scan", media_type="images").to_dic()  # fmt: skip
    assert c3["media_type"] == "lidars"
    assert c3["annotation_entities"][0]["coordinates"][0] == {"x": -1, "y": -2, "z": -3}
    with pytest.raises(InvalidAnnotationError, match=">= 0"):
        Cuboid2D(label="car", **dict(zip(rules_corners(), [(-1, 2)] * 8, strict=True)))

    ellipse = EllipseAnnotation(
        [Ellipse(label="e", centre_x=10, centre_y=10, radius_x=4, radius_y=2, rotation=90)], asset_id="a"
    ).to_dic()["annotation_entities"][0]
    pts = [(round(p["x"], 9), round(p["y"], 9)) for p in ellipse["coordinates"]]
    assert pts == [(10, 14), (8, 10), (10, 6), (12, 10)]
    assert ellipse["ellipse"]["rotation"] == 90

    cls = ClassificationAnnotation([Label("sunny", class_name="weather", confidence=0.7)], asset_id="a").to_dic()
    assert cls["annotation_entities"][0]["class_name"] == "weather"
    assert cls["annotation_entities"][0]["coordinates"] == []
    line = LineAnnotation([Line(label="lane", coordinates=[{"x": 1, "y": 2}, (3, 4)], complete=True)], asset_id="a")
    assert line.to_dic()["annotation_entities"][0]["coordinates"] == [{"x": 1, "y": 2}, {"x": 3, "y": 4}]
    assert "complete" not in line.to_dic()["annotation_entities"][0]


def rules_corners() -> tuple[str, ...]:
    return ("tl1", "bl1", "tr1", "br1", "tl2", "bl2", "tr2", "br2")


def test_segmentation(tmp_path: Path) -> None:
    mask = tmp_path / "m.png"
    mask.write_bytes(b"\x89PNG fake")
    ann = SegmentationAnnotation(
        ["road", "sky", "car"], ["#FF0000", "#0f0", "#0000ff"],
        mask_urls=["https://h/road.png", None, None], mask_file_paths=[None, mask, None],
        mask_ids=[None, None, "Given"], confidences=[None, 0.4, None], image_id="img",
    )  # fmt: skip
    doc = ann.to_dic()
    ents = doc["annotation_entities"]
    assert [e["mask_color"] for e in ents] == ["#ff0000", "#0f0", "#0000ff"]
    road_id = ents[0]["mask_id"]
    assert len(road_id) == 32 and doc["masks"][road_id] == {"url": "https://h/road.png"}
    assert ann.mask_files == {ents[1]["mask_id"]: str(mask)}
    assert doc["masks"][ents[1]["mask_id"]] == {"filename": "m.png"}
    assert ents[2]["mask_id"] == "given" and "given" not in doc["masks"]
    with pytest.raises(InvalidAnnotationError, match="one value per label"):
        SegmentationAnnotation(["a", "b"], ["#fff"], mask_ids=["x", "y"], image_id="img")
    with pytest.raises(InvalidAnnotationError, match="give a url, uri, file path or mask id"):
        SegmentationAnnotation(["a"], ["#fff"], image_id="img")
    with pytest.raises(InvalidAnnotationError, match="does not exist"):
        SegmentationAnnotation(["a"], ["#fff"], mask_file_paths=[tmp_path / "nope.png"], image_id="img")


def test_raw_annotations() -> None:
    ann = BoundingBoxAnnotation([box()], asset_id="a", id="r1", raw_annotation_json={"boxes": [1, 2]})
    assert ann.raw_bytes() == (b'{"boxes": [1, 2]}', "r1.json") and ann.raw_reference() is None
    ann = BoundingBoxAnnotation([box()], asset_id="a", raw_annotation_uri="s3://b/k.json")
    assert ann.raw_reference() == {"uri": "s3://b/k.json"} and ann.raw_bytes() is None


def test_entity_round_trip_and_constants() -> None:
    entity = box(uid="u1", confidence=0.25).entity()
    again = AnnotationEntity.from_dict(entity).to_dic()
    assert again == entity
    assert set(AnnotationTypes.VALID_TYPES) == set(rules.ANNOTATION_TYPES)
    assert rules.confident_labels([{"label": "a", "confidence": 0.0}, {"label": "b"}, {"label": "c",
                                   "confidence": 0.1}]) == ["b", "c"]  # fmt: skip
    doc = {"id": "x", "provider": "p", "annotation_type": "polygon", "version": None, "annotation_group": "other"}
    assert rules.meta_entry(doc) == {"provider": "p", "id": "x", "type": "polygon", "annotation_group": "other"}
