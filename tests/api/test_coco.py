"""COCO import (the real files of ../shared/data/coco, bad entries), export (round trip, the set zip's coco.json,
YOLO), annotation comparison and set evaluation against pycocotools' COCOeval run directly (issue 9)."""

from __future__ import annotations

import contextlib
import io
import json
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from pycocotools import mask as cocomask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from sample_data import require_shared_data
from scenebase.api.schemas.annotations import CocoFile
from scenebase.clients import SceneEngineClient
from scenebase.media.coco import image_id_of
from scenebase.models.annotation import BoundingBox, BoundingBoxAnnotation, Polygon, PolygonAnnotation
from scenebase.models.assets import Image

# pycocotools' C extension and numpy 2: a deprecation warning on every decode (scenebase silences it in its own calls)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

REAL_FILES = [
    "datumaro/coco_instances/annotations/instances_train.json",
    "datumaro/coco_instances/annotations/instances_val.json",
    "datumaro/coco_person_keypoints/annotations/person_keypoints_train.json",
    "datumaro/coco_person_keypoints/annotations/person_keypoints_val.json",
    "datumaro/coco_captions/annotations/captions_val.json",
    "datumaro/coco_panoptic/annotations/panoptic_val.json",
    "datumaro/coco_roboflow/val/_annotations.coco.json",
    "datumaro/relaxed_coco/annotations.json",
    "panopticapi/panoptic_coco_detection_format.json",
    "panopticapi/panoptic_examples.json",
]


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB").save(buf, "JPEG")
    return buf.getvalue()


def add_images_for(client: SceneEngineClient, coco: dict[str, Any], set_name: str) -> str:
    set_id = client.create_set(set_name, "images")
    images = [Image(id=image_id_of(i["file_name"]), bytes=jpeg(i["width"], i["height"], k))
              for k, i in enumerate(coco["images"])]  # fmt: skip
    assert len(client.add_images(images, set_id)) == len(images)
    return set_id


def stored_entries(client: SceneEngineClient, provider: str) -> dict[Any, dict[str, Any]]:
    """(image id, coco id) -> what the stored entities of that COCO entry hold (label, box, polygons, mask,
    keypoints). Panoptic segment ids repeat across images."""
    out: dict[Any, dict[str, Any]] = {}
    for kind in ("bbox", "polygon", "segmentation", "pose", "caption"):
        for doc in client.search_meta("annotations", {"provider": [f"{provider}_{kind}"]}, size=1000):
            for e in doc["annotation_entities"]:
                entry = out.setdefault((doc["asset_id"], e["attributes"]["coco_id"]), {"label": e["label"]})
                if kind == "bbox":
                    xs, ys = [p["x"] for p in e["coordinates"]], [p["y"] for p in e["coordinates"]]
                    entry["bbox"] = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                elif kind == "polygon":
                    entry.setdefault("polygons", []).append([v for p in e["coordinates"] for v in (p["x"], p["y"])])
                elif kind == "segmentation":
                    png = client.get_annotation_mask(doc["id"], e["mask_id"])
                    with PILImage.open(io.BytesIO(png)) as im:
                        entry["mask"] = (np.asarray(im.convert("L")) > 0).astype(np.uint8)
                elif kind == "pose":
                    entry["keypoints"] = [(k["left"], k["top"], k["attributes"]["visibility"]) for k in e["keypoints"]]
    return out


@pytest.mark.parametrize("relative", REAL_FILES)
def test_real_coco_files_import_without_loss(admin: SceneEngineClient, relative: str) -> None:
    path = require_shared_data(f"coco/{relative}")
    coco = json.loads(path.read_text())
    set_id = add_images_for(admin, coco, "coco_images")
    summary = admin.add_coco_annotations_from_folder(str(path), "src", set_id, use_image_id_as_annotation_id=True)
    assert summary["errors"] == [] and admin.last_errors == []
    assert summary["annotations"] == len(coco["annotations"]) and summary["categories"] == len(coco["categories"])
    annotated = {a["image_id"] for a in coco["annotations"]}
    assert summary["images"] == len(annotated)
    stored = stored_entries(admin, "src")
    files = {i["id"]: image_id_of(i["file_name"]) for i in coco["images"]}
    entries = [(files[a["image_id"]], s) for a in coco["annotations"] for s in a.get("segments_info", [a])]
    assert {(image, a["id"]) for image, a in entries} == set(stored)
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    for image, a in entries:
        got = stored[(image, a["id"])]
        assert got["label"] == (a["caption"] if "caption" in a else cats[a["category_id"]])
        if "bbox" in a:
            assert got["bbox"] == pytest.approx(a["bbox"])
        seg = a.get("segmentation")
        if isinstance(seg, list) and seg:
            assert got["polygons"] == [pytest.approx(p) for p in seg]
        if isinstance(seg, dict):
            size = json.loads(seg["size"]) if isinstance(seg["size"], str) else seg["size"]
            rle = cocomask.frPyObjects(seg, *size) if isinstance(seg["counts"], list) else {**seg, "size": size}
            assert np.array_equal(got["mask"], cocomask.decode(rle))
        if a.get("keypoints"):
            kps = a["keypoints"]
            assert got["keypoints"] == [tuple(kps[i : i + 3]) for i in range(0, len(kps), 3)]
    # the file's categories, info and licenses are kept once
    dataset = admin.get_metadata(summary["dataset_id"], "configs")["config"]
    assert dataset["categories"] == coco["categories"] and dataset["images"] == len(coco["images"])


def test_bad_entries_are_named_and_the_rest_imported(admin: SceneEngineClient, tmp_path: Path) -> None:
    good = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "segmentation": [[1, 1, 5, 1, 5, 5]]}
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 20, "height": 10}, {"id": 2, "width": 20},
                   {"id": 3, "file_name": "c.jpg", "width": "20", "height": 10}],
        "categories": [{"id": 1, "name": "car"}, {"name": "nameless"}],
        "annotations": [
            good,
            {"id": 2, "image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]},
            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1]},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 3]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, -3]},
            {"id": 6, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 2, 2, 3]]},
            {"id": 7, "image_id": 1, "category_id": 1, "segmentation": {"counts": [0, 20], "size": [4, 5]}},
            {"id": 8, "image_id": 1, "category_id": 1, "bbox": "0 0 1 1"},
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},
            "not an entry",
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [2, 2, 3, 3], "iscrowd": 0},
        ],
    }  # fmt: skip
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(coco))
    set_id = admin.create_set("bad_coco", "images")
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg(20, 10))
    summary = admin.add_coco_annotations_from_folder(str(path), "p", set_id, folder_path=str(folder))
    messages = [e["error"] for e in summary["errors"]]
    expected = [
        "bad.json: categories[1]: a category needs an id and a name",
        "bad.json: images[1]: an image needs an id and a file_name",
        "bad.json: images[2] (c.jpg): width must be a positive integer",
        "bad.json: annotations[1] (id 2): image_id 9 is not an image of the file",
        "bad.json: annotations[2] (id 3): category_id 7 is not a category of the file",
        "bad.json: annotations[3] (id 4): bbox has a zero or negative size (0 x 3)",
        "bad.json: annotations[4] (id 5): bbox has a zero or negative size (1 x -3)",
        "bad.json: annotations[5] (id 6): segmentation[0] has an odd number of coordinates (5)",
        "bad.json: annotations[6] (id 7): the mask is 5x4 (width x height) but image a.jpg is 20x10",
        "bad.json: annotations[7] (id 8): bbox must be [x, y, width, height] numbers, got '0 0 1 1'",
        "bad.json: annotations[8]: missing 'id'",
        "bad.json: annotations[9]: must be an object",
    ]
    assert messages == expected
    assert summary["annotations"] == 2 and summary["images"] == 1
    assert sorted(stored_entries(admin, "p")) == [("a.jpg", 1), ("a.jpg", 11)]
    assert admin.last_errors == summary["errors"]
    assert not admin.is_coco_annotation_file_valid(str(tmp_path / "missing.json"))
    (tmp_path / "nolists.json").write_text('{"images": {}, "categories": [], "annotations": []}')
    assert not admin.is_coco_annotation_file_valid(str(tmp_path / "nolists.json"))
    assert admin.is_coco_annotation_file_valid(str(path))


def test_round_trip_export_import_and_yolo(admin: SceneEngineClient, tmp_path: Path) -> None:
    path = require_shared_data("coco/panopticapi/panoptic_coco_detection_format.json")
    source = json.loads(path.read_text())
    set_id = add_images_for(admin, source, "round_trip")
    admin.add_coco_annotations_from_folder(str(path), "first", set_id)
    exported = json.loads(Path(admin.export_coco_dataset(set_id, str(tmp_path / "out.json"))).read_text())
    CocoFile.model_validate(exported)  # the documented answer of /v1/annotations/export_coco/
    assert exported["categories"] == source["categories"]
    assert len(exported["annotations"]) == len(source["annotations"])
    by_id = {a["id"]: a for a in exported["annotations"]}
    for a in source["annotations"]:
        b = by_id[a["id"]]
        assert b["bbox"] == pytest.approx(a["bbox"]) and b["category_id"] == a["category_id"]
        size = a["segmentation"]["size"]
        size = json.loads(size) if isinstance(size, str) else size  # this file writes some sizes as strings
        assert np.array_equal(cocomask.decode(b["segmentation"]), cocomask.decode({**a["segmentation"], "size": size}))
        assert b["area"] == a["area"] and b["iscrowd"] == a["iscrowd"]
    # the export imports again into the same entries
    again = tmp_path / "again.json"
    again.write_text(json.dumps(exported))
    summary = admin.add_coco_annotations_from_folder(str(again), "second", set_id)
    assert summary["errors"] == [] and summary["annotations"] == len(source["annotations"])
    first, second = stored_entries(admin, "first"), stored_entries(admin, "second")
    assert set(first) == set(second)
    for k, v in first.items():
        assert second[k]["label"] == v["label"] and second[k]["bbox"] == pytest.approx(v["bbox"])
        assert np.array_equal(second[k]["mask"], v["mask"])

    # the set's zip holds the same COCO file
    job_id, zip_id = admin.zip_set(set_id)
    admin.get_job(job_id).wait(timeout=60)
    data = admin.download_zipfile(zip_id)
    assert isinstance(data, io.BytesIO)
    with zipfile.ZipFile(data) as zf:
        coco_json = next(n for n in zf.namelist() if n.endswith("annotations/coco.json"))
        zipped = json.loads(zf.read(coco_json))
        masks = [n for n in zf.namelist() if "/annotations/masks/" in n]
    assert len(zipped["annotations"]) == len(source["annotations"])  # first and second share the COCO ids
    assert len(masks) == 2 * len(source["annotations"])

    yolo = Path(admin.export_yolo_dataset(set_id, str(tmp_path / "yolo"), providers=["first_bbox"]))
    lines = (yolo / "labels" / "000000142238.txt").read_text().splitlines()
    img = next(i for i in source["images"] if i["id"] == 142238)
    anns = [a for a in source["annotations"] if a["image_id"] == 142238 and not a["iscrowd"]]
    assert len(lines) == len(anns)
    names = sorted(source["categories"], key=lambda c: c["id"])
    first_line = lines[0].split()
    a = anns[0]
    assert names[int(first_line[0])]["id"] == a["category_id"]
    x, y, w, h = a["bbox"]
    assert [float(v) for v in first_line[1:]] == pytest.approx(
        [(x + w / 2) / img["width"], (y + h / 2) / img["height"], w / img["width"], h / img["height"]], abs=1e-6
    )
    assert (yolo / "images" / "000000142238.jpg").is_file()
    assert "names:" in (yolo / "data.yaml").read_text()


def test_compare_annotation_pairs(admin: SceneEngineClient) -> None:
    set_id = admin.create_set("cmp", "images")
    admin.add_images([Image(id="frame", bytes=jpeg(100, 80))], set_id)
    truth = BoundingBoxAnnotation([
        BoundingBox(label="vehicle.car", x_min=10, x_max=30, y_min=10, y_max=30, uid="t_car"),
        BoundingBox(label="pedestrian", x_min=50, x_max=60, y_min=10, y_max=40, uid="t_ped"),
        BoundingBox(label="background", x_min=0, x_max=99, y_min=0, y_max=79, uid="t_bg"),
        BoundingBox(label="bus", x_min=70, x_max=95, y_min=50, y_max=75, uid="t_bus"),
    ], image_id="frame", id="gt", provider="people")  # fmt: skip
    preds = BoundingBoxAnnotation([
        BoundingBox(label="automobile", x_min=12, x_max=31, y_min=11, y_max=30, confidence=0.9, uid="p_car"),
        BoundingBox(label="person", x_min=50, x_max=61, y_min=12, y_max=40, confidence=0.8, uid="p_ped"),
        BoundingBox(label="truck", x_min=0, x_max=5, y_min=70, y_max=79, confidence=0.3, uid="p_truck"),
    ], image_id="frame", id="pred", provider="model", annotation_group="model_generated")  # fmt: skip
    admin.add_annotations([truth, preds], disable_tqdm=True)
    out = admin.compare_annotation_pairs("frame", "images", "gt", "pred", other_mapping={"automobile": "car"},
                                         iou_threshold=0.5, match_labels=True, wait_for_completion=True)  # fmt: skip
    result = admin.get_job(out["job_id"]).result
    assert (result["true_positive"], result["false_positive"], result["false_negative"]) == (2, 1, 1)
    assert result["metrics"]["car"]["precision"] == 1.0 and result["metrics"]["bus"]["recall"] == 0.0
    assert result["metrics"]["truck"]["recall"] == "N/A"
    docs = admin.search_meta("annotations_comparisons", {"comparison_task_id": [result["comparison_task_id"]]})
    pairs = {(d.get("base_entity"), d.get("other_entity")): d for d in docs}
    assert set(pairs) == {("t_car", "p_car"), ("t_ped", "p_ped"), ("t_bus", None), (None, "p_truck")}
    assert pairs[("t_car", "p_car")]["iou"] == pytest.approx((18 * 19) / (20 * 20 + 19 * 19 - 18 * 19))
    assert pairs[("t_car", "p_car")]["width"] == 100  # copied from the image
    # polygons are matched by polygon IoU
    tri = PolygonAnnotation([Polygon(label="roof", coordinates=[(0, 0), (40, 0), (0, 40)])], image_id="frame",
                            id="poly_gt", provider="people")  # fmt: skip
    tri2 = PolygonAnnotation([Polygon(label="roof", coordinates=[(0, 0), (40, 0), (40, 40)])], image_id="frame",
                             id="poly_pred", provider="model", annotation_group="model_generated")  # fmt: skip
    admin.add_annotations([tri, tri2], disable_tqdm=True)
    out = admin.compare_annotation_pairs("frame", "images", "poly_gt", "poly_pred", wait_for_completion=True)
    (pair,) = admin.search_meta(
        "annotations_comparisons", {"comparison_task_id": [admin.get_job(out["job_id"]).result["comparison_task_id"]]}
    )
    assert pair["iou"] == pytest.approx(1 / 3, abs=0.06)  # the boxes would say 1.0


def _reference(truth: dict[str, list[tuple[Any, ...]]], preds: dict[str, list[tuple[Any, ...]]]) -> list[float]:
    """pycocotools' COCOeval on the boxes as given (not as stored): its stats."""
    labels = sorted({b[0] for boxes in (*truth.values(), *preds.values()) for b in boxes})
    cat = {lab: k + 1 for k, lab in enumerate(labels)}
    img = {name: k + 1 for k, name in enumerate(sorted(truth))}
    gt = {"images": [{"id": i} for i in img.values()], "categories": [{"id": c} for c in cat.values()],
          "annotations": [{"id": n + 1, "image_id": img[name], "category_id": cat[lab], "bbox": [x, y, w, h],
                           "area": w * h, "iscrowd": 0}
                          for n, (name, lab, x, y, w, h) in enumerate((name, *b[:5]) for name, boxes in truth.items()
                                                                       for b in boxes)]}  # fmt: skip
    dets = [{"image_id": img[name], "category_id": cat[b[0]], "bbox": list(b[1:5]), "score": b[5]}
            for name, boxes in preds.items() for b in boxes]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


def test_set_evaluation_equals_cocoeval(admin: SceneEngineClient) -> None:
    rng = random.Random(4)
    labels = ["car", "bus", "person"]
    truth: dict[str, list[tuple[Any, ...]]] = {}
    preds: dict[str, list[tuple[Any, ...]]] = {}
    for i in range(40):
        name = f"ev_{i}"
        truth[name], preds[name] = [], []
        for _ in range(rng.randrange(0, 5)):
            w, h = rng.uniform(5, 40), rng.uniform(5, 40)
            x, y = rng.uniform(0, 150), rng.uniform(0, 100)
            lab = rng.choice(labels)
            truth[name].append((lab, x, y, w, h, None))
            if rng.random() < 0.8:
                dx, dy = rng.gauss(0, 2), rng.gauss(0, 2)
                plab = lab if rng.random() < 0.85 else rng.choice(labels)
                preds[name].append((plab, max(0, x + dx), max(0, y + dy), w * rng.uniform(0.8, 1.2),
                                    h * rng.uniform(0.8, 1.2), round(rng.random(), 3)))  # fmt: skip
        if rng.random() < 0.3:
            preds[name].append((rng.choice(labels), 10.0, 10.0, 20.0, 20.0, 0.2))
    set_id = admin.create_set("eval", "images")
    admin.add_images([Image(id=n, bytes=jpeg(200, 150, k)) for k, n in enumerate(truth)], set_id)

    def anns(per: dict[str, list[tuple[Any, ...]]], provider: str, group: str) -> list[BoundingBoxAnnotation]:
        return [BoundingBoxAnnotation([BoundingBox(label=lab, x_min=x, x_max=x + w, y_min=y, y_max=y + h,
                                                   confidence=c) for lab, x, y, w, h, c in boxes],
                                      image_id=name, provider=provider, annotation_group=group)
                for name, boxes in per.items() if boxes]  # fmt: skip

    admin.add_annotations(anns(truth, "truth", "ground_truth") + anns(preds, "model", "model_generated"),
                          disable_tqdm=True)  # fmt: skip
    result = admin.evaluate_annotations(set_id, ground_truth={"provider": "truth"}, predictions={"provider": "model"})
    stats = _reference(truth, preds)
    assert result["mAP"] == pytest.approx(stats[0], abs=1e-12) and result["AP50"] == pytest.approx(stats[1], abs=1e-12)
    assert result["images"] == 40 and result["ground_truth"] == sum(map(len, truth.values()))
    tp = sum(v["true_positive"] for v in result["per_label"].values())
    assert tp == result["true_positive"] and result["precision"] == pytest.approx(tp / result["predictions"])
    assert set(result["per_label"]) == set(labels)
