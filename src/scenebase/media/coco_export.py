"""COCO (instances, keypoints, captions) and YOLO (Ultralytics detection) exports of annotated images.

Entities that came from one COCO entry (same ``coco_id`` in their attributes) become one entry again: box,
polygons, mask (as compressed RLE) and keypoints together, with the entry's id, ``iscrowd``, ``area`` and other
attributes. Other entities become one entry each. Categories are the imported file's when the annotations came
from one (ids, super-categories, keypoint names, skeletons), else numbered from 1 in first-seen order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from scenebase.domain import annotations as rules
from scenebase.media.coco import MASK_COLOR, mask_from_png, mask_to_rle

#: entity attributes that are COCO entry fields, not user attributes
COCO_FIELDS = ("coco_id", "iscrowd", "area", "coco_polygon", "num_keypoints", "panoptic_file")

MaskReader = Callable[[dict[str, Any], str], bytes | None]


def _box_of(points: list[tuple[float, float]]) -> list[float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def _polygon_area(flat: list[float]) -> float:
    pts = list(zip(flat[::2], flat[1::2], strict=True))
    n = len(pts)
    return abs(sum(pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n))) / 2.0


class CocoBuilder:
    """Collects images and their annotation documents, then :meth:`build` the COCO dictionary."""

    def __init__(self, categories: list[dict[str, Any]] | None = None, info: dict[str, Any] | None = None,
                 licenses: list[Any] | None = None) -> None:  # fmt: skip
        self.categories: list[dict[str, Any]] = [dict(c) for c in categories or []]
        self._by_name = {c["name"]: c["id"] for c in self.categories}
        self.info = info or {"description": "scenebase export", "version": "1.0"}
        self.licenses = licenses or []
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self._used_ids: set[Any] = set()
        self._next_image = 1

    def category_id(self, label: str, category_id: Any = None) -> Any:
        if label in self._by_name:
            return self._by_name[label]
        cid = category_id if category_id is not None and category_id not in {c["id"] for c in self.categories} else None
        if cid is None:
            cid = max([int(c["id"]) for c in self.categories if isinstance(c["id"], int)] + [0]) + 1
        self.categories.append({"id": cid, "name": label, "supercategory": ""})
        self._by_name[label] = cid
        return cid

    def add_image(self, image: dict[str, Any], annotations: Iterable[dict[str, Any]], read_mask: MaskReader) -> None:
        """One image document and its annotation documents (masks read on demand)."""
        coco_image = next((a["coco"]["image"] for a in annotations if isinstance(a.get("coco"), dict)
                           and isinstance(a["coco"].get("image"), dict)), None)  # fmt: skip
        annotations = list(annotations)
        if coco_image is None:
            coco_image = {"id": self._next_image, "file_name": str((image.get("object_access") or {}).get("filename")
                                                                    or image["id"])}  # fmt: skip
            self._next_image += 1
        entry = {**coco_image, "width": image.get("width", coco_image.get("width")),
                 "height": image.get("height", coco_image.get("height"))}  # fmt: skip
        entry.setdefault("date_captured", image.get("timestamp"))
        self.images.append(entry)
        grouped: dict[Any, dict[str, Any]] = {}
        loose: list[dict[str, Any]] = []
        for ann in annotations:
            for entity in ann.get("annotation_entities") or []:
                coco_id = (entity.get("attributes") or {}).get("coco_id")
                target = grouped.setdefault(coco_id, {}) if coco_id is not None else {}
                if coco_id is None:
                    loose.append(target)
                self._merge(target, entity, ann, entry, read_mask)
        for coco_id, out in grouped.items():
            out["id"] = coco_id
        for out in [*grouped.values(), *loose]:
            if out.get("_skip"):
                continue
            out["image_id"] = entry["id"]
            self._finish(out)
            self.annotations.append(out)

    def _merge(self, out: dict[str, Any], entity: dict[str, Any], ann: dict[str, Any], image: dict[str, Any],
               read_mask: MaskReader) -> None:  # fmt: skip
        attrs = dict(entity.get("attributes") or {})
        kind = entity.get("annotation_type") or ann.get("annotation_type")
        if kind == rules.CLASSIFICATION and entity.get("class_name") == "caption":
            out["caption"] = entity["label"]
            return
        out.setdefault("category_id", self.category_id(entity["label"], entity.get("category_id")))
        for key in ("iscrowd", "area", "num_keypoints"):
            if key in attrs:
                out[key] = attrs[key]
        user = {k: v for k, v in attrs.items() if k not in COCO_FIELDS and k != "visibility"}
        if user:
            out.setdefault("attributes", {}).update(user)
        if entity.get("confidence") is not None:
            out["score"] = entity["confidence"]
        if kind == rules.TWO_D_BOUNDING_BOX:
            out["bbox"] = _box_of([(p["x"], p["y"]) for p in entity["coordinates"]])
        elif kind == rules.POLYGON:
            flat = [v for p in entity["coordinates"] for v in (p["x"], p["y"])]
            polys = out.setdefault("_polygons", [])
            polys.append((attrs.get("coco_polygon", len(polys)), flat))
        elif kind == rules.SEGMENTATION and entity.get("mask_id"):
            data = read_mask(ann, entity["mask_id"])
            if data is not None:
                single = entity.get("mask_type") == "SingleColor" or entity.get("mask_color") == MASK_COLOR
                mask = mask_from_png(data, entity.get("mask_color") or MASK_COLOR, single)
                out["segmentation"] = mask_to_rle(mask)
                out.setdefault("_mask_area", float(mask.sum()))
        elif kind == rules.TWO_D_POSE:
            kps = []
            for k in entity.get("keypoints") or []:
                v = (k.get("attributes") or {}).get("visibility", 2)
                kps += [k["left"], k["top"], v]
            out["keypoints"] = kps
            out.setdefault("num_keypoints", sum(1 for v in kps[2::3] if v))
        elif kind == rules.ELLIPSE or kind == rules.POINT or kind == rules.LINE:
            points = [(p["x"], p["y"]) for p in entity.get("coordinates") or []]
            if points:
                out.setdefault("bbox", _box_of(points))

    def _finish(self, out: dict[str, Any]) -> None:
        polys = [flat for _, flat in sorted(out.pop("_polygons", []), key=lambda t: t[0])]
        if polys and not isinstance(out.get("segmentation"), dict):
            out["segmentation"] = polys
        out.setdefault("segmentation", [])
        if "bbox" not in out and polys:
            out["bbox"] = _box_of([(x, y) for flat in polys for x, y in zip(flat[::2], flat[1::2], strict=True)])
        mask_area = out.pop("_mask_area", None)
        if "caption" in out:
            return
        if "area" not in out:
            if mask_area is not None:
                out["area"] = mask_area
            elif polys:
                out["area"] = sum(_polygon_area(p) for p in polys)
            elif "bbox" in out:
                out["area"] = out["bbox"][2] * out["bbox"][3]
        out.setdefault("iscrowd", 0)

    def build(self) -> dict[str, Any]:
        used: set[Any] = {a.get("id") for a in self.annotations if a.get("id") is not None}
        next_id = max([int(i) for i in used if isinstance(i, int)] + [0]) + 1
        for a in self.annotations:
            if a.get("id") is None:
                a["id"] = next_id
                next_id += 1
        return {"info": self.info, "licenses": self.licenses, "images": self.images,
                "annotations": self.annotations, "categories": self.categories}  # fmt: skip


def yolo_labels(coco: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """Ultralytics detection labels from a COCO dictionary: class names (index = class), and per image file name
    the lines ``class x_center y_center width height`` (normalized to 0..1). Crowd regions are left out."""
    cats = sorted(coco["categories"], key=lambda c: (str(type(c["id"])), c["id"]))
    index = {c["id"]: i for i, c in enumerate(cats)}
    images = {img["id"]: img for img in coco["images"]}
    lines: dict[str, list[str]] = {img["file_name"]: [] for img in coco["images"]}
    for a in coco["annotations"]:
        img = images[a["image_id"]]
        if "bbox" not in a or a.get("iscrowd") or not img.get("width") or not img.get("height"):
            continue
        x, y, w, h = a["bbox"]
        W, H = img["width"], img["height"]
        lines[img["file_name"]].append(
            f"{index[a['category_id']]} {(x + w / 2) / W:.6f} {(y + h / 2) / H:.6f} {w / W:.6f} {h / H:.6f}"
        )
    return [c["name"] for c in cats], lines
