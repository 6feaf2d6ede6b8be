"""Annotations through the client against an in-process server (issue 9): adding them (batched, per-annotation
errors, raw files, masks), their links to images (annotations, annotations_meta, labels) and searching by them,
add_images with annotations, sources and labels, deletions that keep parents true, annotations_to_objects."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from pydantic import TypeAdapter

from scenebase.api.schemas.annotations import AnnotationSource
from scenebase.clients import SceneEngineClient
from scenebase.domain.timeutil import to_epoch
from scenebase.errors import AssetError, InvalidAnnotationError, InvalidArgumentsError, SceneBaseError
from scenebase.models.annotation import (
    BoundingBox,
    BoundingBoxAnnotation,
    ClassificationAnnotation,
    Label,
    Polygon,
    PolygonAnnotation,
    SegmentationAnnotation,
)
from scenebase.models.assets import Image
from scenebase.storage.asset_repo import PLAN_ATTEMPTS

from .conftest import World, before_each_unlocked_plan


def jpeg(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB").save(buf, "JPEG")
    return buf.getvalue()


def mask_png(width: int, height: int, color: tuple[int, int, int], box: tuple[int, int, int, int]) -> bytes:
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = color
    buf = io.BytesIO()
    PILImage.fromarray(arr, "RGB").save(buf, "PNG")
    return buf.getvalue()


def boxes(image_id: str, provider: str, labels: list[str], **kw: Any) -> BoundingBoxAnnotation:
    shapes = [BoundingBox(label=lab, x_min=2 + 5 * i, x_max=12 + 5 * i, y_min=3, y_max=20, confidence=0.9)
              for i, lab in enumerate(labels)]  # fmt: skip
    return BoundingBoxAnnotation(shapes, image_id=image_id, provider=provider, **kw)


def polygon(image_id: str, provider: str, label: str, **kw: Any) -> PolygonAnnotation:
    shape = Polygon(label=label, coordinates=[(1, 1), (30, 2), (20, 40)])
    return PolygonAnnotation([shape], image_id=image_id, provider=provider, **kw)


@pytest.fixture
def images(admin: SceneEngineClient) -> list[str]:
    set_id = admin.create_set("frames", "images")
    return admin.add_images([Image(id=f"img_{i}", bytes=jpeg(seed=i), sensor="cam") for i in range(4)], set_id)


def search(client: SceneEngineClient, query: dict[str, Any]) -> list[str]:
    return sorted(client.search_assets("images", query, size=100))


def test_add_annotations_links_images_and_searches_bind_one_element(
    admin: SceneEngineClient, images: list[str]
) -> None:
    anns = [
        boxes("img_0", "p1", ["car", "bus", "car"], id="a0", version="v1"),
        polygon("img_0", "p2", "person", id="a1"),
        polygon("img_1", "p1", "car", id="a2", annotation_group="model_generated"),
        boxes("img_2", "p2", ["truck"], id="a3"),
    ]
    ids = admin.add_annotations(anns, disable_tqdm=True)
    assert ids == ["a0", "a1", "a2", "a3"] and admin.last_errors == []
    img = admin.get_metadata("img_0", "images")
    assert img["annotations"] == ["a0", "a1"]
    assert img["annotations_meta"] == [
        {
            "provider": "p1",
            "id": "a0",
            "type": "two_d_bounding_box",
            "version": "v1",
            "annotation_group": "ground_truth",
        },
        {"provider": "p2", "id": "a1", "type": "polygon", "annotation_group": "ground_truth"},
    ]
    assert img["aux"]["labels"] == ["car_p1", "bus_p1", "person_p2"]
    assert img["aux"]["labels_p1"] == ["car", "bus"] and img["aux"]["labels_p2"] == ["person"]
    stored = admin.get_metadata("a0", "annotations")
    assert stored["labels"] == ["car", "bus"] and len(stored["annotation_entities"]) == 3
    assert stored["annotation_entities"][1]["coordinates"][2] == {"x": 17.0, "y": 20.0}

    p1_polygon = {"path": "annotations_meta", "filters": [{"field": "provider", "values": ["p1"]},
                                                          {"field": "type", "values": ["polygon"]}]}  # fmt: skip
    assert search(admin, {"nested_filters": [p1_polygon]}) == ["img_1"]
    flat = {"filters": [{"field": "annotations_meta.provider", "values": ["p1"]},
                        {"field": "annotations_meta.type", "values": ["polygon"]}]}  # fmt: skip
    assert search(admin, flat) == ["img_0", "img_1"]  # provider and type from different annotations
    assert search(admin, {"aux.labels_p2": ["person"]}) == ["img_0"]
    assert search(admin, {"annotations_meta.annotation_group": ["model_generated"]}) == ["img_1"]
    # "a car with confidence above 0.8" on the annotations themselves: one entity with both
    sure_car = {"path": "annotation_entities", "filters": [{"field": "label", "values": ["car"]}],
                "ranges": [{"field": "confidence", "min": 0.8}]}  # fmt: skip
    assert sorted(admin.search_assets("annotations", {"nested_filters": [sure_car]})) == ["a0"]

    # the same id again replaces the annotation and its element, labels follow
    admin.add_annotations([boxes("img_0", "p1", ["tram"], id="a0", version="v2")], disable_tqdm=True)
    img = admin.get_metadata("img_0", "images")
    assert [m["id"] for m in img["annotations_meta"]] == ["a1", "a0"] and img["annotations"] == ["a0", "a1"]
    assert img["annotations_meta"][1]["version"] == "v2"
    assert "tram" in img["aux"]["labels_p1"]


def test_a_parent_changed_while_the_batch_was_planned_loses_nothing(
    admin: SceneEngineClient, images: list[str], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write of a batch is planned from what was read before its transaction; when a parent changes in
    between (here: another request adds metadata and an annotation of its own), the plan is refused and the batch
    is written again from the locked rows, so neither change overwrites the other."""
    rt = world.server.runtime
    links = rt.annotations.links
    planned = links.plans
    calls: list[int] = []

    def plans_then_a_concurrent_write(*args: Any, **kwargs: Any) -> Any:
        out = planned(*args, **kwargs)
        if not calls:
            calls.append(1)
            admin.get_asset_manager("images").update_metadata("img_0", {"aux": {"weather": "rain"}})
            admin.add_annotations([polygon("img_0", "p3", "dog", id="other")], disable_tqdm=True)
        return out

    monkeypatch.setattr(links, "plans", plans_then_a_concurrent_write)
    assert admin.add_annotations([boxes("img_0", "p1", ["car"], id="mine")], disable_tqdm=True) == ["mine"]
    assert calls == [1]
    img = admin.get_metadata("img_0", "images")
    assert img["aux"]["weather"] == "rain"
    assert img["annotations"] == ["other", "mine"]
    assert [m["id"] for m in img["annotations_meta"]] == ["other", "mine"]
    assert img["aux"]["labels"] == ["dog_p3", "car_p1"]
    assert search(admin, {"aux.weather": ["rain"], "annotations_meta.provider": ["p1"]}) == ["img_0"]
    assert search(admin, {"aux.labels": ["dog_p3"]}) == ["img_0"]


def test_an_annotation_moved_while_the_batch_was_planned_leaves_its_old_parent(
    admin: SceneEngineClient, images: list[str], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing annotation x onto img_0 when x is stored on img_1 cleans img_1 (its link and the labels x gave
    it); also when x was created on img_1 by another request after the batch read that x did not exist (the batch
    is decided again)."""

    def annotate_img_1(_n: int) -> None:
        admin.add_annotations([boxes("img_1", "p2", ["bus"], id="x")], disable_tqdm=True)

    links = world.server.runtime.annotations.links
    calls = before_each_unlocked_plan(monkeypatch, links, "plans", 1, annotate_img_1)
    assert admin.add_annotations([boxes("img_0", "p1", ["car"], id="x")], disable_tqdm=True) == ["x"]
    assert calls == [0, 0]
    assert admin.get_metadata("x", "annotations")["asset_id"] == "img_0"
    assert admin.get_metadata("img_0", "images")["annotations"] == ["x"]
    img1 = admin.get_metadata("img_1", "images")
    assert img1["annotations"] == [] and "bus_p2" not in img1["aux"].get("labels", [])
    assert search(admin, {"aux.labels": ["bus_p2"]}) == []


def test_an_annotation_moved_to_another_image_takes_its_labels_along(
    admin: SceneEngineClient, images: list[str]
) -> None:
    """Re-adding annotation x for another image: the old image loses x and the labels only x gave it."""
    admin.add_annotations([boxes("img_1", "p2", ["bus", "car"], id="x"), boxes("img_1", "p2", ["car"], id="y")],
                          disable_tqdm=True)  # fmt: skip
    admin.add_annotations([boxes("img_0", "p1", ["tram"], id="x")], disable_tqdm=True)
    img1 = admin.get_metadata("img_1", "images")
    assert img1["annotations"] == ["y"]
    assert img1["aux"]["labels"] == ["car_p2"] and img1["aux"]["labels_p2"] == ["car"]
    assert search(admin, {"aux.labels": ["bus_p2"]}) == []
    assert search(admin, {"aux.labels": ["tram_p1"]}) == ["img_0"]


def test_an_annotation_whose_parent_went_while_the_batch_was_planned_is_refused(
    admin: SceneEngineClient, images: list[str], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent existed when the batch was read and is deleted before its transaction: that annotation is refused
    as if the parent had never existed, and the rest of the batch is written."""
    links = world.server.runtime.annotations.links
    calls = before_each_unlocked_plan(
        monkeypatch, links, "plans", 1, lambda _n: admin.get_asset_manager("images").delete_assets(["img_0"])
    )
    anns = [boxes("img_0", "p1", ["car"], id="x"), boxes("img_1", "p1", ["bus"], id="y")]
    assert admin.add_annotations(anns, disable_tqdm=True) == ["y"]
    assert calls == [0, 0]
    assert [(e["index"], e["name"]) for e in admin.last_errors] == [(0, "x")]
    assert "img_0" in admin.last_errors[0]["error"] and "not found" in admin.last_errors[0]["error"]
    assert admin.search_assets("annotations", {"asset_id": ["img_0"]}) == []
    assert admin.get_metadata("img_1", "images")["annotations"] == ["y"]


def test_a_batch_whose_parents_keep_changing_is_decided_inside_its_transaction(
    admin: SceneEngineClient, images: list[str], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each snapshot of the parents goes stale before its transaction (another request annotates the image every
    time): after PLAN_ATTEMPTS the batch is decided from the rows read under its transaction's lock, and every
    annotation of every request is linked."""

    def annotate(n: int) -> None:
        admin.add_annotations([boxes("img_0", f"other{n}", ["bus"], id=f"other{n}")], disable_tqdm=True)

    links = world.server.runtime.annotations.links
    calls = before_each_unlocked_plan(monkeypatch, links, "plans", PLAN_ATTEMPTS, annotate)
    assert admin.add_annotations([boxes("img_0", "p1", ["car"], id="mine")], disable_tqdm=True) == ["mine"]
    assert calls == [0] * PLAN_ATTEMPTS + [1]
    img = admin.get_metadata("img_0", "images")
    others = [f"other{n}" for n in range(1, PLAN_ATTEMPTS + 1)]
    assert img["annotations"] == [*others, "mine"]
    assert [m["id"] for m in img["annotations_meta"]] == [*others, "mine"]
    assert search(admin, {"aux.labels": ["car_p1"]}) == ["img_0"]


def test_per_annotation_failures_are_reported_and_the_rest_added(admin: SceneEngineClient, images: list[str]) -> None:
    bad_entity = {"asset_id": "img_0", "annotation_type": "two_d_bounding_box", "provider": "raw", "id": "bad1",
                  "annotation_entities": [{"label": "car", "coordinates": [{"x": 1, "y": 1}]}]}  # fmt: skip
    anns: list[Any] = [boxes("img_0", "p", ["car"], id="ok0"), boxes("no_such_image", "p", ["car"], id="orphan"),
                       bad_entity, boxes("img_1", "p", ["bus"], id="ok1")]  # fmt: skip
    ids = admin.add_annotations(anns, disable_tqdm=True)
    assert ids == ["ok0", "ok1"]
    errors = {e["index"]: e for e in admin.last_errors}
    assert set(errors) == {1, 2}
    assert "no_such_image" in errors[1]["error"] and errors[1]["status"] == 404
    assert "bad1" in errors[2]["error"] and "exactly 4 coordinates, got 1" in errors[2]["error"]
    with pytest.raises(InvalidAnnotationError, match="exactly 4 coordinates"):
        admin.add_annotation(bad_entity)  # type: ignore[arg-type]
    with pytest.raises(AssetError, match="not found"):
        admin.add_annotation(boxes("nowhere", "p", ["car"]))
    with pytest.raises(InvalidArgumentsError, match="one media type"):
        admin.add_annotations([boxes("img_0", "p", ["a"]), boxes("v", "p", ["a"], media_type="videos", frame=1)])


def test_raw_files_and_masks_are_stored_as_blobs(admin: SceneEngineClient, images: list[str], tmp_path: Any) -> None:
    good = tmp_path / "road.png"
    good.write_bytes(mask_png(64, 48, (255, 0, 0), (0, 30, 64, 48)))
    wrong_size = tmp_path / "small.png"
    wrong_size.write_bytes(mask_png(10, 10, (0, 255, 0), (0, 0, 5, 5)))
    seg = SegmentationAnnotation(["road"], ["#ff0000"], mask_file_paths=[good], image_id="img_0", id="seg",
                                 raw_annotation_json={"tool": "labeler", "regions": 1})  # fmt: skip
    bad = SegmentationAnnotation(["grass"], ["#00ff00"], mask_file_paths=[wrong_size], image_id="img_1", id="seg2")
    raw_file = tmp_path / "export.txt"
    raw_file.write_text("label car 1 2 3 4\n")
    plain = boxes("img_2", "p", ["car"], id="with_raw")
    no_raw = boxes("img_3", "p", ["car"], id="no_raw")
    ids = admin.add_annotations([seg, bad, plain, no_raw], raw_annotations=[None, None, str(raw_file), None],
                                disable_tqdm=True)  # fmt: skip
    assert ids == ["seg", "with_raw", "no_raw"]
    (err,) = admin.last_errors
    assert err["index"] == 1 and "10x10" in err["error"] and "64x48" in err["error"] and "small.png" in err["error"]
    doc = admin.get_metadata("seg", "annotations")
    (mask_id,) = doc["masks"]
    assert admin.get_annotation_mask("seg", mask_id) == good.read_bytes()
    assert admin.get_raw_annotation("seg") == b'{"tool": "labeler", "regions": 1}'
    assert doc["object_access"]["content_type"] == "application/json"
    assert admin.get_raw_annotation("with_raw") == b"label car 1 2 3 4\n"
    with pytest.raises(AssetError, match="has no file"):
        admin.get_raw_annotation("no_raw")


def test_add_images_with_annotations(admin: SceneEngineClient) -> None:
    set_id = admin.create_set("annotated", "images")
    anns = [boxes("cam_1", "gt", ["car", "person"]), ClassificationAnnotation([Label("night")], image_id="cam_1")]
    imgs = [Image(id="cam_1", bytes=jpeg(), sensor="front", annotations=anns, timestamp="2024-02-01T10:00:00Z"),
            Image(id="cam_2", bytes=jpeg(seed=3), annotations=[boxes("cam_2", "gt", ["bus"])])]  # fmt: skip
    assert admin.add_images(imgs, set_id) == ["cam_1", "cam_2"]
    img = admin.get_metadata("cam_1", "images")
    assert len(img["annotations"]) == 2 and img["aux"]["labels"] == ["car_gt", "person_gt", "night_default_provider"]
    ann = admin.get_metadata(img["annotations"][0], "annotations")
    assert ann["timestamp"] == img["timestamp"] == "2024-02-01T10:00:00.000000+00:00" and ann["sensor"] == "front"
    admin.add_image(image_bytes=jpeg(seed=5), id="cam_3", set_id=set_id, add_provider_to_labels=False,
                    annotations=[boxes("cam_3", "gt", ["cone"])])  # fmt: skip
    assert admin.get_metadata("cam_3", "images")["aux"]["labels"] == ["cone"]


def test_sources_labels_and_deletions_keep_parents_true(admin: SceneEngineClient, images: list[str]) -> None:
    admin.add_annotations(
        [boxes("img_0", "p1", ["car"], id="a0", version="v1"), polygon("img_0", "p2", "person", id="a1"),
         boxes("img_1", "p1", ["bus"], id="a2", version="v1", annotation_group="model_generated"),
         boxes("img_3", "p3", ["cone"], id="a3")],
        disable_tqdm=True,
    )  # fmt: skip
    sources = admin.get_annotation_sources()
    TypeAdapter(list[AnnotationSource]).validate_python(sources)  # the documented answer
    assert {(s["provider"], s["annotation_type"]) for s in sources} == {
        ("p1", "two_d_bounding_box"), ("p2", "polygon"), ("p3", "two_d_bounding_box")}  # fmt: skip
    assert {s["annotation_group"] for s in sources if s["provider"] == "p1"} == {"ground_truth", "model_generated"}
    assert admin.get_annotation_sources({"id": ["img_3"]}) == [
        {"provider": "p3", "version": None, "annotation_group": "ground_truth", "annotation_type": "two_d_bounding_box"}
    ]
    assert admin.get_annotation_labels() == ["bus", "car", "cone", "person"]
    assert admin.get_annotation_labels({"id": ["img_0"]}) == ["car", "person"]

    job_id = admin.delete_annotations(ids=["a1"])
    assert admin.get_job(job_id).result["deleted"] == 1
    img = admin.get_metadata("img_0", "images")
    assert img["annotations"] == ["a0"] and [m["id"] for m in img["annotations_meta"]] == ["a0"]
    assert img["aux"]["labels"] == ["car_p1"] and "labels_p2" not in img["aux"]
    assert search(admin, {"aux.labels": ["person_p2"]}) == []
    assert search(admin, {"annotations_meta.provider": ["p2"]}) == []

    admin.remove_annotation_sources([{"provider": "p1", "annotation_group": "model_generated"}], "images")
    assert admin.get_metadata("img_1", "images")["annotations"] == []
    assert search(admin, {"annotations": ["a0"]}) == ["img_0"]  # p1 ground truth stays
    admin.remove_annotation_sources([{"provider": "p3"}], "images", asset_filters={"id": ["img_0"]})
    assert search(admin, {"annotations_meta.provider": ["p3"]}) == ["img_3"]  # not on img_0: nothing removed
    admin.delete_annotations(search={"provider": ["p3"]})
    assert search(admin, {"annotations_meta.provider": ["p3"]}) == []

    # an entry whose annotation is gone (written around the service) is dropped by the clean-up
    am = admin.get_asset_manager("images")
    am.update_metadata("img_0", {"annotations": ["a0", "ghost", "a0"]}, replace_sets=True)
    admin.cleanup_assets_annotation_meta(["img_0"], "images")
    assert admin.get_metadata("img_0", "images")["annotations"] == ["a0"]


def test_annotations_to_objects(admin: SceneEngineClient, images: list[str], world: World) -> None:
    out_set = admin.create_set("crops", "objects")
    admin.add_annotations([boxes("img_0", "p1", ["car", "bus"], id="a0"), polygon("img_1", "p1", "person", id="a1")],
                          disable_tqdm=True)  # fmt: skip
    job_id = admin.annotations_to_objects(ids=["a0", "a1"], create_objects=True, output_set_id=out_set,
                                          margin_pixels=2)  # fmt: skip
    assert admin.get_job(job_id).result["objects"] == 3
    objs = admin.search_meta("objects", {"label": ["car"]})
    (car,) = objs
    assert car["asset_id"] == "img_0" and car["bbox"] == [2.0, 3.0, 12.0, 20.0] and car["crop_box"] == [0, 1, 14, 22]
    assert car["sets"] == [out_set] and car["provider"] == "p1"
    thumb = world.server.http().get(f"/v1/objects/{car['id']}/thumbnail/full_size_png",
                                    params={"token": admin.auth_token})  # fmt: skip
    assert thumb.status_code == 200
    with PILImage.open(io.BytesIO(thumb.content)) as im:
        assert im.size == (14, 21)
    assert sorted(admin.search_assets("objects", {"sets": [out_set]})) == sorted(
        o["id"] for o in admin.search_meta("objects", {})
    )
    # without create_objects: areas on the images only
    admin.annotations_to_objects(ids=["a1"], margin_ratio=0.0)
    areas = admin.get_metadata("img_1", "images")["aux"]["object_areas"]
    assert areas[0]["label"] == "person" and areas[0]["area"] == pytest.approx(0.5 * abs(29 * 39 - 1 * 19))
    with pytest.raises(InvalidAnnotationError, match="margin_ratio"):
        admin.annotations_to_objects(ids=["a0"], margin_ratio=-1)


def test_other_organizations_cannot_annotate_or_read(world: World) -> None:
    a = world.client(world.a.tokens["admin"])
    b = world.client(world.b.tokens["admin"])
    set_id = a.create_set("a-frames", "images")
    a.add_images([Image(id="a_img", bytes=jpeg())], set_id)
    a.add_annotations([boxes("a_img", "p", ["car"], id="a_ann")], disable_tqdm=True)
    assert b.add_annotations([boxes("a_img", "p", ["x"], id="b_ann")], disable_tqdm=True) == []
    assert b.last_errors[0]["status"] == 404
    assert b.get_annotation_labels() == [] and b.get_annotation_sources() == []
    job = b.delete_annotations(ids=["a_ann"])
    assert b.get_job(job).result["deleted"] == 0
    assert a.get_metadata("a_img", "images")["annotations"] == ["a_ann"]
    reader = world.client(world.a.tokens["read_only_user"])
    with pytest.raises(AssetError, match="lacks permission 'ingest'"):
        reader.add_annotation(boxes("a_img", "p", ["x"]))


def test_annotations_to_objects_adds_object_events_to_a_session(admin: SceneEngineClient) -> None:
    session_uid = admin.add_session("drive 9")
    t0 = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
    set_id = admin.create_set("session frames", "images")
    admin.add_images([Image(id=f"s_img_{i}", bytes=jpeg(seed=i), sensor="cam", session_uid=session_uid,
                            timestamp=t0 + timedelta(seconds=10 * i)) for i in range(2)], set_id)  # fmt: skip
    admin.add_annotations([boxes("s_img_0", "p1", ["car", "bus"], id="s0"), boxes("s_img_1", "p1", ["car"], id="s1")],
                          disable_tqdm=True)  # fmt: skip
    job_id = admin.annotations_to_objects(ids=["s0", "s1"], create_objects=True, session_uid=session_uid)
    assert admin.get_job(job_id).result == {"objects": 3, "images_with_areas": 2, "skipped_annotations": 0,
                                            "session_uid": session_uid, "session_events": 3}  # fmt: skip
    admin.resolve_session(session_uid, wait_for_completion=True)
    session = admin.get_metadata(session_uid, "sessions")
    assert to_epoch(session["start_time"]) <= t0.timestamp() and to_epoch(session["end_time"]) >= t0.timestamp() + 10
    hits = admin.search_session_intervals({"filters": [{"field": "objects", "values": ["car.cam.p1"]}]})
    (intervals,) = hits.values()
    assert list(hits) == [session_uid] and len(intervals) == 2  # a car at each frame's time, nothing between
    buses = admin.search_session_intervals({"filters": [{"field": "objects", "values": ["bus.cam.p1"]}]})
    assert len(buses[session_uid]) == 1 and buses[session_uid][0][0] <= t0 + timedelta(seconds=1)
    # add_to_session=False leaves the session alone; an unknown session is refused before anything is made
    job_id = admin.annotations_to_objects(ids=["s1"], create_objects=True, session_uid=session_uid,
                                          add_to_session=False)  # fmt: skip
    assert "session_events" not in admin.get_job(job_id).result
    with pytest.raises(SceneBaseError, match="no session with uid 'no_such_session'"):
        admin.annotations_to_objects(ids=["s1"], create_objects=True, session_uid="no_such_session")
    with pytest.raises(SceneBaseError, match="no session with uid 'no_such_session'"):
        admin.add_annotations([boxes("s_img_1", "p2", ["car"], id="s2")], annotations_to_objects=True,
                              session_uid="no_such_session", disable_tqdm=True)  # fmt: skip
    assert admin.get_metadata("s_img_1", "images")["annotations"] == ["s1"]  # nothing written
    # add_annotations(annotations_to_objects=True, session_uid=...) makes the objects and their events
    admin.add_annotations([boxes("s_img_1", "p2", ["truck"], id="s3")], annotations_to_objects=True,
                          session_uid=session_uid, wait_for_annotations_to_objects_completion=True,
                          disable_tqdm=True)  # fmt: skip
    admin.resolve_session(session_uid, wait_for_completion=True)
    trucks = admin.search_session_intervals({"filters": [{"field": "objects", "values": ["truck.cam.p2"]}]})
    assert len(trucks[session_uid]) == 1
