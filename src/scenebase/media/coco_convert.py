"""COCO entries of one image as scenebase annotation documents (see :mod:`scenebase.media.coco`), and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scenebase.domain import annotations as rules
from scenebase.domain.ids import standardize_id
from scenebase.media.coco import MASK_COLOR, CocoDataset, CocoImage, mask_png, polygons_to_mask, rle_to_mask

#: annotation kinds of an import: (name suffix, annotation type)
KINDS = {"bbox": rules.TWO_D_BOUNDING_BOX, "polygon": rules.POLYGON, "segmentation": rules.SEGMENTATION,
         "pose": rules.TWO_D_POSE, "caption": rules.CLASSIFICATION}  # fmt: skip


def _attributes(ann: dict[str, Any]) -> dict[str, Any]:
    """What an entity keeps of its COCO entry besides its geometry (booleans as the seed writes them)."""
    out: dict[str, Any] = {"coco_id": ann.get("id")}
    for key in ("iscrowd", "area", "num_keypoints"):
        if key in ann:
            out[key] = ann[key]
    for key, value in (ann.get("attributes") or {}).items():
        out[str(key)] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _corners(x: float, y: float, w: float, h: float) -> list[dict[str, float]]:
    return [{"x": x, "y": y}, {"x": x + w, "y": y}, {"x": x + w, "y": y + h}, {"x": x, "y": y + h}]


def _skeleton(category: dict[str, Any], n: int) -> list[dict[str, int]]:
    """Connections from a category's skeleton: COCO numbers keypoints from 1; files that use 0 are read as such."""
    edges = [e for e in category.get("skeleton") or [] if isinstance(e, list) and len(e) == 2]
    base = 0 if any(0 in e for e in edges) else 1
    return [
        {"start_index": a - base, "end_index": b - base} for a, b in edges if 0 <= a - base < n and 0 <= b - base < n
    ]


def convert_image(
    ds: CocoDataset,
    image: CocoImage,
    provider: str,
    version: str | None = None,
    annotation_group: str = "ground_truth",
    sets: list[str] | None = None,
    use_image_id_as_annotation_id: bool = False,
    session_uid: str | None = None,
    dataset_id: str | None = None,
) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    """The annotation documents of one image (with their mask PNGs by mask id), one per kind present."""
    entities: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    masks: dict[str, bytes] = {}
    size = image.size
    for ann in image.annotations:
        if "segments_info" in ann:
            _panoptic(ds, image, ann, entities, masks)
            continue
        if "caption" in ann:
            entities["caption"].append({"label": ann["caption"], "class_name": "caption",
                                        "attributes": {"coco_id": ann.get("id")}})  # fmt: skip
            continue
        cat = ds.categories[ann["category_id"]]
        common = {"label": cat["name"], "category_id": ann["category_id"], "attributes": _attributes(ann)}
        if "bbox" in ann:
            entities["bbox"].append({**common, "coordinates": _corners(*ann["bbox"])})
        seg = ann.get("segmentation")
        long: list[list[float]] = []
        if isinstance(seg, list):
            for j, poly in enumerate(seg):
                points = [{"x": float(poly[k]), "y": float(poly[k + 1])} for k in range(0, len(poly), 2)]
                if len(points) > rules.MAX_POLYGON_VERTICES:
                    long.append(poly)  # more vertices than a polygon entity takes: kept as a mask
                    continue
                entities["polygon"].append({**common, "coordinates": points,
                                            "attributes": {**common["attributes"], "coco_polygon": j}})  # fmt: skip
        mask = None
        if isinstance(seg, dict):
            mask = rle_to_mask(seg)
        elif long and size is not None:
            mask = polygons_to_mask(long, *size)
        if mask is not None:
            mask_id = standardize_id(f"{image.scenebase_id}_{ann['id']}")
            masks[mask_id] = mask_png(mask)
            entities["segmentation"].append({**common, "mask_id": mask_id, "mask_color": MASK_COLOR,
                                             "mask_type": "SingleColor"})  # fmt: skip
        kps = ann.get("keypoints")
        if kps:
            names = cat.get("keypoints") or []
            keypoints: list[dict[str, Any]] = []
            for i in range(len(kps) // 3):
                label = names[i] if i < len(names) and names[i] else f"keypoint_{i}"
                keypoints.append({"label": label, "left": float(kps[3 * i]), "top": float(kps[3 * i + 1]),
                               "attributes": {"visibility": kps[3 * i + 2]}})  # fmt: skip
            connections = _skeleton(cat, len(keypoints))
            entities["pose"].append({**common, "keypoints": keypoints, "connections": connections})
    out = []
    for kind, ents in entities.items():
        if not ents:
            continue
        doc: dict[str, Any] = {
            "asset_id": image.scenebase_id,
            "media_type": "images",
            "provider": f"{provider}_{kind}",
            "annotation_type": KINDS[kind],
            "annotation_entities": ents,
            "annotation_group": annotation_group,
            "coco": {"image": image.entry, **({"dataset_id": dataset_id} if dataset_id else {})},
        }
        if use_image_id_as_annotation_id:
            doc["id"] = f"{image.scenebase_id}_{kind}.ann"
        for key, value in (("version", version), ("sets", sets), ("session_uid", session_uid)):
            if value:
                doc[key] = value
        if kind == "segmentation":
            used = {e["mask_id"] for e in ents}
            doc["masks"] = {m: {"filename": f"{m}.png"} for m in used}
            out.append((doc, {m: masks[m] for m in used}))
        else:
            out.append((doc, {}))
    return out


def _panoptic(
    ds: CocoDataset, image: CocoImage, ann: dict[str, Any], entities: dict[str, list[Any]], masks: dict[str, bytes]
) -> None:
    """Panoptic records: a box per segment, and its mask when the segment PNG is next to the file."""
    ids: np.ndarray | None = None
    png = ds.panoptic_masks / str(ann.get("file_name")) if ds.panoptic_masks and ann.get("file_name") else None
    if png is not None and png.is_file():
        with Image.open(png) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint32)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
    for seg in ann["segments_info"]:
        cat = ds.categories[seg["category_id"]]
        attrs = {"coco_id": seg.get("id"), "iscrowd": seg.get("iscrowd", 0), "area": seg.get("area"),
                 "panoptic_file": ann.get("file_name")}  # fmt: skip
        common = {"label": cat["name"], "category_id": seg["category_id"], "attributes": attrs}
        entities["bbox"].append({**common, "coordinates": _corners(*seg["bbox"])})
        if ids is not None:
            mask_id = standardize_id(f"{image.scenebase_id}_{seg.get('id')}")
            masks[mask_id] = mask_png((ids == seg.get("id")).astype(np.uint8))
            entities["segmentation"].append({**common, "mask_id": mask_id, "mask_color": MASK_COLOR,
                                             "mask_type": "SingleColor"})  # fmt: skip


def dataset_record(ds: CocoDataset, source: str | Path) -> dict[str, Any]:
    """What a COCO file holds besides its images' entries: kept once, so an export numbers categories as the
    file did (ids, super-categories, keypoint names, skeletons) and unused categories are not lost."""
    return {"name": ds.name, "source": str(Path(source).name) if not isinstance(source, dict) else ds.name,
            "info": ds.info, "licenses": ds.licenses, "categories": list(ds.categories.values()),
            "images": len(ds.images), "annotations": ds.annotation_count}  # fmt: skip
