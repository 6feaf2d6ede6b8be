"""Reading COCO annotation files (FACTS 6.5): validation entry by entry, and conversion into scenebase annotation
documents. A plain library: no catalog, no HTTP.

Each bad entry (missing keys, wrong types, an image or category that does not exist, a box of zero or negative
size, a polygon with an odd number of coordinates, a mask whose size is not its image's) is reported as
``<file>: <entry>: <problem>`` and left out; the valid entries of the same file are kept.

Per image, the valid entries become up to five annotations (ids ``<image>_<kind>.ann`` on request): boxes
(``<provider>_bbox``), polygons (``<provider>_polygon``, every polygon of an entry, not only the first), masks
(``<provider>_segmentation``: RLE and crowd regions, and polygons longer than an entity may be, as PNG masks),
keypoints (``<provider>_pose``) and captions (``<provider>_caption``). Every entity keeps its COCO annotation id,
``iscrowd``, ``area`` and the entry's ``attributes`` in its attributes, so an export rebuilds the entries.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scenebase.domain.ids import standardize_id

KEYS = ("images", "categories", "annotations")
#: the colour of a COCO mask in its PNG (one object per mask: SingleColor)
MASK_COLOR = "#ffffff"


class CocoFileError(ValueError):
    """The file as a whole is unusable (not JSON, or without the three lists)."""


def is_valid_coco_file(path: str | Path) -> bool:
    """The seed's test: a JSON object whose ``images``, ``categories`` and ``annotations`` are lists."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and all(isinstance(data.get(k), list) for k in KEYS)


def image_id_of(file_name: str) -> str:
    """A scenebase image id from a COCO ``file_name``: the standardized base name (FACTS 6.5)."""
    return standardize_id(Path(file_name).name)


@dataclass
class CocoImage:
    entry: dict[str, Any]
    scenebase_id: str
    annotations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int] | None:
        w, h = self.entry.get("width"), self.entry.get("height")
        return (int(w), int(h)) if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0 else None


@dataclass
class CocoDataset:
    name: str
    info: dict[str, Any]
    licenses: list[Any]
    categories: dict[Any, dict[str, Any]]
    images: list[CocoImage]
    errors: list[str]
    #: valid annotation entries (what an import must show)
    annotation_count: int = 0
    panoptic_masks: Path | None = None


def _problem(errors: list[str], name: str, where: str, problem: str) -> None:
    errors.append(f"{name}: {where}: {problem}")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def load_coco(source: str | Path | dict[str, Any], name: str | None = None) -> CocoDataset:
    """Read and check a COCO file (or its parsed JSON). Raises CocoFileError when the file itself is unusable."""
    if isinstance(source, dict):
        data, name = source, name or "coco"
    else:
        path = Path(source)
        name = name or path.name
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as e:
            raise CocoFileError(f"{name}: cannot read: {e}") from None
        except ValueError as e:
            raise CocoFileError(f"{name}: not JSON: {e}") from None
    if not isinstance(data, dict):
        raise CocoFileError(f"{name}: a COCO file is a JSON object, got {type(data).__name__}")
    missing = [k for k in KEYS if not isinstance(data.get(k), list)]
    if missing:
        raise CocoFileError(f"{name}: {missing} must be lists (a COCO file has images, categories and annotations)")
    errors: list[str] = []
    categories: dict[Any, dict[str, Any]] = {}
    for i, cat in enumerate(data["categories"]):
        where = f"categories[{i}]"
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            _problem(errors, name, where, "a category needs an id and a name")
            continue
        categories[cat["id"]] = cat
    images: dict[Any, CocoImage] = {}
    for i, img in enumerate(data["images"]):
        where = f"images[{i}]"
        if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
            _problem(errors, name, where, "an image needs an id and a file_name")
            continue
        for key in ("width", "height"):
            if key in img and (not isinstance(img[key], int) or isinstance(img[key], bool) or img[key] <= 0):
                _problem(errors, name, f"{where} ({img['file_name']})", f"{key} must be a positive integer")
                break
        else:
            if img["id"] in images:
                _problem(errors, name, where, f"image id {img['id']!r} appears twice")
                continue
            images[img["id"]] = CocoImage(img, image_id_of(img["file_name"]))
    count = 0
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]" + (f" (id {ann.get('id')})" if isinstance(ann, dict) and "id" in ann else "")
        problem = _check_annotation(ann, images, categories)
        if problem:
            _problem(errors, name, where, problem)
            continue
        images[ann["image_id"]].annotations.append(ann)
        count += 1
    info: dict[str, Any] = data["info"] if isinstance(data.get("info"), dict) else {}
    licenses: list[Any] = data["licenses"] if isinstance(data.get("licenses"), list) else []
    panoptic = None
    if not isinstance(source, dict):
        folder = Path(source).with_suffix("")
        panoptic = folder if folder.is_dir() else None
    return CocoDataset(name, info, licenses, categories, list(images.values()), errors, count, panoptic)


def _check_annotation(ann: Any, images: dict[Any, CocoImage], categories: dict[Any, Any]) -> str | None:
    if not isinstance(ann, dict):
        return "must be an object"
    if "image_id" not in ann:
        return "missing 'image_id'"
    image = images.get(ann["image_id"])
    if image is None:
        return f"image_id {ann['image_id']!r} is not an image of the file"
    if "segments_info" in ann:  # panoptic: one record per image
        infos = ann["segments_info"]
        if not isinstance(infos, list):
            return "segments_info must be a list"
        for j, seg in enumerate(infos):
            bad = _check_box(seg.get("bbox") if isinstance(seg, dict) else None, f"segments_info[{j}].bbox")
            if bad or not isinstance(seg, dict):
                return bad or f"segments_info[{j}] must be an object"
            if seg.get("category_id") not in categories:
                return f"segments_info[{j}]: category_id {seg.get('category_id')!r} is not a category of the file"
        return None
    if "caption" in ann:
        return None if isinstance(ann["caption"], str) and ann["caption"] else "caption must be a non-empty string"
    if "id" not in ann:
        return "missing 'id'"
    if ann.get("category_id") not in categories:
        return f"category_id {ann.get('category_id')!r} is not a category of the file"
    if "bbox" in ann:
        bad = _check_box(ann["bbox"], "bbox")
        if bad:
            return bad
    seg = ann.get("segmentation")
    if isinstance(seg, list):
        for j, poly in enumerate(seg):
            if not isinstance(poly, list) or not all(_number(v) for v in poly):
                return f"segmentation[{j}] must be a list of numbers"
            if len(poly) % 2:
                return f"segmentation[{j}] has an odd number of coordinates ({len(poly)})"
            if len(poly) < 6:
                return f"segmentation[{j}] has {len(poly) // 2} points; a polygon needs at least 3"
    elif isinstance(seg, dict):
        size = _rle_size(seg)
        if size is None or "counts" not in seg:
            return "an RLE segmentation needs 'counts' and 'size' [height, width]"
        if image.size is not None and (size[1], size[0]) != image.size:
            return (f"the mask is {size[1]}x{size[0]} (width x height) but image {image.entry['file_name']} is "
                    f"{image.size[0]}x{image.size[1]}")  # fmt: skip
    elif seg is not None:
        return f"segmentation must be polygons or RLE, got {type(seg).__name__}"
    if "bbox" not in ann and not seg and "keypoints" not in ann:
        return "has neither bbox, segmentation nor keypoints"
    kps = ann.get("keypoints")
    if kps is not None:
        if not isinstance(kps, list) or len(kps) % 3 or not all(_number(v) for v in kps):
            return "keypoints must be a list of x, y, visibility triples"
        names = categories[ann["category_id"]].get("keypoints") or []
        if names and len(names) != len(kps) // 3:
            return f"{len(kps) // 3} keypoints, but category {ann['category_id']!r} names {len(names)}"
    if "attributes" in ann and not isinstance(ann["attributes"], dict):
        return "attributes must be an object"
    return None


def _check_box(box: Any, what: str) -> str | None:
    if not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box):
        return f"{what} must be [x, y, width, height] numbers, got {box!r}"
    if box[2] <= 0 or box[3] <= 0:
        return f"{what} has a zero or negative size ({box[2]} x {box[3]})"
    if box[0] < 0 or box[1] < 0:
        return f"{what} starts outside the image ({box[0]}, {box[1]})"
    return None


def _rle_size(seg: dict[str, Any]) -> tuple[int, int] | None:
    """``[height, width]`` of an RLE; some exporters write it as the string "[427, 640]"."""
    size = seg.get("size")
    if isinstance(size, str):
        try:
            size = json.loads(size)
        except ValueError:
            return None
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[0]), int(size[1])
    return None


# ---- masks --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_pycocotools() -> Iterator[None]:
    """pycocotools' C extension hands numpy an object without the ``copy`` argument numpy 2 asks for: a
    deprecation warning on every decode, about pycocotools, not about the data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"__array__ implementation doesn't accept a copy", DeprecationWarning)
        yield


def rle_to_mask(seg: dict[str, Any]) -> np.ndarray:
    """A binary mask (height x width, uint8) from an RLE, compressed or not (pycocotools)."""
    from pycocotools import mask as cocomask

    h, w = _rle_size(seg) or (0, 0)
    counts = seg["counts"]
    with quiet_pycocotools():
        if isinstance(counts, list):
            rle = cocomask.frPyObjects({"counts": counts, "size": [h, w]}, h, w)
        else:
            rle = {"counts": counts.encode() if isinstance(counts, str) else counts, "size": [h, w]}
        return np.asarray(cocomask.decode(rle), dtype=np.uint8)


def polygons_to_mask(polygons: list[list[float]], width: int, height: int) -> np.ndarray:
    from pycocotools import mask as cocomask

    with quiet_pycocotools():
        rles = cocomask.frPyObjects(polygons, height, width)
        return np.asarray(cocomask.decode(cocomask.merge(rles)), dtype=np.uint8)


def mask_png(mask: np.ndarray) -> bytes:
    """A binary mask as a black-and-white PNG (255 inside)."""
    buf = io.BytesIO()
    Image.fromarray((mask > 0).astype(np.uint8) * 255, "L").save(buf, "PNG", optimize=False)
    return buf.getvalue()


def mask_from_png(data: bytes, color: str = MASK_COLOR, single_color: bool = True) -> np.ndarray:
    """The binary mask of ``color`` in a mask PNG (SingleColor: every non-zero pixel)."""
    with Image.open(io.BytesIO(data)) as im:
        if single_color:
            return (np.asarray(im.convert("L")) > 0).astype(np.uint8)
        rgb = np.asarray(im.convert("RGB"))
    hexcolor = color.lstrip("#")
    if len(hexcolor) == 3:
        hexcolor = "".join(c * 2 for c in hexcolor)
    target = np.array([int(hexcolor[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.uint8)
    return np.all(rgb == target, axis=-1).astype(np.uint8)


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """A compressed RLE (``counts`` as a string, ``size`` [height, width]) of a binary mask."""
    from pycocotools import mask as cocomask

    with quiet_pycocotools():
        rle = cocomask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode(), "size": [int(v) for v in rle["size"]]}
