"""Matching and evaluation of boxes and polygons (FACTS 6.9): IoU, greedy one-to-one matching, per-label precision,
recall and F1, and COCO mAP@[.5:.95] / AP50 through pycocotools' COCOeval. A plain library."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scenebase.media.coco import quiet_pycocotools


@dataclass(frozen=True)
class Shape:
    """One labelled region: a box ``(x_min, y_min, x_max, y_max)`` and, for polygons, their points."""

    label: str
    box: tuple[float, float, float, float]
    polygon: tuple[tuple[float, float], ...] | None = None
    score: float | None = None
    ref: Any = None  # what the caller needs to name the shape (entity uid, annotation id)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(base: Sequence[Shape], other: Sequence[Shape], size: tuple[int, int] | None = None) -> np.ndarray:
    """IoU of every base shape with every other shape: polygon IoU (rasterized by pycocotools at the image's
    ``size``) when both are polygons, else box IoU."""
    out = np.zeros((len(base), len(other)))
    polys = size is not None and any(s.polygon for s in base) and any(s.polygon for s in other)
    if polys:
        from pycocotools import mask as cocomask

        w, h = size  # type: ignore[misc]

        def rle(s: Shape) -> Any:
            with quiet_pycocotools():
                return cocomask.merge(cocomask.frPyObjects([[v for p in s.polygon or () for v in p]], h, w))

        base_rles = {i: rle(s) for i, s in enumerate(base) if s.polygon}
        other_rles = {j: rle(s) for j, s in enumerate(other) if s.polygon}
    for i, a in enumerate(base):
        for j, b in enumerate(other):
            if polys and i in base_rles and j in other_rles:
                from pycocotools import mask as cocomask

                with quiet_pycocotools():
                    out[i, j] = float(cocomask.iou([base_rles[i]], [other_rles[j]], [0])[0][0])
            else:
                out[i, j] = box_iou(a.box, b.box)
    return out


def greedy_match(
    base: Sequence[Shape],
    other: Sequence[Shape],
    iou_threshold: float = 0.0,
    match_labels: bool = True,
    size: tuple[int, int] | None = None,
) -> tuple[list[tuple[int, int, float]], list[int], list[int]]:
    """One-to-one pairs by descending IoU: ``(base index, other index, iou)``, unmatched base (false negatives)
    and unmatched other (false positives). A pair needs IoU >= ``iou_threshold`` and above 0, and with
    ``match_labels`` equal labels."""
    ious = iou_matrix(base, other, size)
    candidates = [(ious[i, j], i, j) for i in range(len(base)) for j in range(len(other))
                  if ious[i, j] > 0 and ious[i, j] >= iou_threshold
                  and (not match_labels or base[i].label == other[j].label)]  # fmt: skip
    candidates.sort(key=lambda t: (-t[0], t[1], t[2]))
    used_b: set[int] = set()
    used_o: set[int] = set()
    pairs = []
    for iou, i, j in candidates:
        if i in used_b or j in used_o:
            continue
        used_b.add(i)
        used_o.add(j)
        pairs.append((i, j, float(iou)))
    return pairs, [i for i in range(len(base)) if i not in used_b], [j for j in range(len(other)) if j not in used_o]


def prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall and F1; ``"N/A"`` where undefined (FACTS 6.9)."""
    precision: Any = tp / (tp + fp) if tp + fp else "N/A"
    recall: Any = tp / (tp + fn) if tp + fn else "N/A"
    if isinstance(precision, float) and isinstance(recall, float) and precision + recall > 0:
        f1: Any = 2 * precision * recall / (precision + recall)
    else:
        f1 = "N/A" if precision == "N/A" or recall == "N/A" else 0.0
    return {"true_positive": tp, "false_positive": fp, "false_negative": fn, "precision": precision,
            "recall": recall, "f1": f1}  # fmt: skip


def coco_map(truth: dict[str, list[Shape]], predictions: dict[str, list[Shape]]) -> dict[str, Any]:
    """COCO box mAP@[.5:.95], AP50 and AP per label, computed by pycocotools' COCOeval on these boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    labels = sorted({s.label for shapes in (*truth.values(), *predictions.values()) for s in shapes})
    cat = {label: k + 1 for k, label in enumerate(labels)}
    images = {name: k + 1 for k, name in enumerate(sorted(set(truth) | set(predictions)))}
    gt: dict[str, Any] = {"images": [{"id": i} for i in images.values()], "categories": [
        {"id": c, "name": n} for n, c in cat.items()], "annotations": []}  # fmt: skip
    for name, shapes in truth.items():
        for s in shapes:
            x0, y0, x1, y1 = s.box
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": images[name],
                                      "category_id": cat[s.label], "bbox": [x0, y0, x1 - x0, y1 - y0],
                                      "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})  # fmt: skip
    dets = [{"image_id": images[name], "category_id": cat[s.label], "score": 1.0 if s.score is None else s.score,
             "bbox": [s.box[0], s.box[1], s.box[2] - s.box[0], s.box[3] - s.box[1]]}
            for name, shapes in predictions.items() for s in shapes]  # fmt: skip
    if not gt["annotations"] or not dets:
        return {"mAP": 0.0, "AP50": 0.0, "per_label_AP": {}}
    with contextlib.redirect_stdout(io.StringIO()), quiet_pycocotools():
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # [iou, recall, category, area, max dets]
    per_label = {}
    for label, c in cat.items():
        p = precision[:, :, c - 1, 0, -1]
        per_label[label] = float(np.mean(p[p > -1])) if np.any(p > -1) else "N/A"
    return {"mAP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "per_label_AP": per_label}
