"""Comparing annotations (FACTS 6.9): a pair on one image (``compare_annotation_pairs``, a job whose results are
stored as ``annotations_comparisons`` documents), and a whole set of predictions against ground truth
(per-label precision, recall and F1 at an IoU threshold, and COCO mAP@[.5:.95] / AP50 by pycocotools).

Labels go through the mappings (the defaults of FACTS 6.9 when none is given) and ignored labels are dropped,
before matching boxes and polygons one-to-one, greedily by IoU.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from scenebase.constants import ComparisonConstants
from scenebase.domain import annotations as rules
from scenebase.domain.ids import new_id, standardize_id
from scenebase.media.coco_eval import Shape, coco_map, greedy_match, prf
from scenebase.services.assets import AssetService
from scenebase.services.errors import InvalidArgument, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.storage.scope import Scope

KIND = "annotations"
SOURCE_KEYS = ("provider", "version", "annotation_group", "annotation_type")
#: image fields a comparison document copies (FACTS 6.9)
COPIED = ("aux", "sensor", "format", "width", "height")


def shapes_of(annotations: list[dict[str, Any]], mapping: dict[str, str]) -> list[Shape]:
    """The boxes and polygons of annotations, labels mapped, ignored labels left out."""
    out = []
    for ann in annotations:
        for e in ann.get("annotation_entities") or []:
            label = mapping.get(e.get("label"), e.get("label"))
            if label in ComparisonConstants.IGNORED_LABELS or not label:
                continue
            box = rules.entity_box(e)
            if box is None:
                continue
            kind = e.get("annotation_type") or ann.get("annotation_type")
            poly = tuple(rules.entity_points(e)) if kind == rules.POLYGON else None
            out.append(Shape(str(label), box, poly, e.get("confidence"), (ann["id"], e.get("uid"))))
    return out


def _selects(source: dict[str, Any] | None, where: str) -> dict[str, Any]:
    if not isinstance(source, dict) or not source:
        raise InvalidArgument(f"{where} must name a source: provider, version, annotation_group, annotation_type")
    unknown = set(source) - set(SOURCE_KEYS)
    if unknown:
        raise InvalidArgument(f"{where}: unknown keys {sorted(unknown)}; known: {list(SOURCE_KEYS)}")
    return source


def _matches(ann: dict[str, Any], source: dict[str, Any]) -> bool:
    return all(ann.get(k) == v for k, v in source.items())


class EvaluationService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("compare_annotations",)

    def __init__(self, assets: AssetService, jobs: JobService) -> None:
        self.assets = assets
        self.jobs = jobs

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("compare_annotations", self._compare_job)

    # ------------------------------------------------------------------ a pair on one image

    def compare_pair(self, scope: Scope, request: dict[str, Any]) -> str:
        if request.get("asset_type", "images") != "images":
            raise InvalidArgument("annotation comparison supports images only", resource=KIND)
        image = self.assets.get(scope, "images", str(request.get("asset_id")))
        threshold = request.get("iou_threshold")
        threshold = ComparisonConstants.DEFAULT_IOU_THRESHOLD if threshold is None else threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise InvalidArgument(f"iou_threshold must be a number in [0, 1], got {threshold!r}", resource=KIND)
        ids = [i for i in (request.get("base_annotation_id"), request.get("other_annotation_id")) if i]
        found = self.assets.get_many(scope, KIND, [standardize_id(str(i)) for i in ids])
        for i in ids:
            if standardize_id(str(i)) not in found:
                raise NotFound(f"no annotation {i!r}", resource=KIND)
        params = {"asset_id": image["id"], "base_annotation_id": request.get("base_annotation_id"),
                  "other_annotation_id": request.get("other_annotation_id"),
                  "base_mapping": request.get("base_mapping"), "other_mapping": request.get("other_mapping"),
                  "iou_threshold": float(threshold), "match_labels": request.get("match_labels", True) is not False,
                  "comparison_task_id": new_id()}  # fmt: skip
        row = self.jobs.submit(scope, "compare_annotations", params, description="compare annotations",
                               asset_type="annotations_comparisons", asset_id=image["id"])  # fmt: skip
        return str(row["id"])

    def _pick(self, scope: Scope, image: dict[str, Any], given: str | None, group: str) -> dict[str, Any]:
        anns = self.assets.get_many(scope, KIND, list(image.get("annotations") or []))
        if given:
            doc = anns.get(standardize_id(given))
            if doc is None or doc.get("asset_id") != image["id"]:
                raise NotFound(f"annotation {given!r} is not an annotation of image {image['id']!r}", resource=KIND)
            return doc
        chosen = [a for a in anns.values() if a.get("annotation_group") == group]
        if not chosen:
            raise NotFound(f"image {image['id']!r} has no {group} annotation to compare", resource=KIND)
        return chosen[0]

    def _compare_job(self, ctx: JobContext) -> dict[str, Any]:
        p, scope = ctx.params, ctx.scope
        image = self.assets.get(scope, "images", p["asset_id"])
        base = self._pick(scope, image, p.get("base_annotation_id"), "ground_truth")
        other = self._pick(scope, image, p.get("other_annotation_id"), "model_generated")
        default = ComparisonConstants.DEFAULT_LABEL_MAPPING
        b = shapes_of([base], {**default, **(p.get("base_mapping") or {})})
        o = shapes_of([other], {**default, **(p.get("other_mapping") or {})})
        size = (int(image["width"]), int(image["height"])) if image.get("width") and image.get("height") else None
        pairs, fns, fps = greedy_match(b, o, p["iou_threshold"], p["match_labels"], size)
        task = p["comparison_task_id"]
        common = {"comparison_task_id": task, "asset_id": image["id"], "base_annotation_id": base["id"],
                  "other_annotation_id": other["id"], **{k: image[k] for k in COPIED if k in image}}  # fmt: skip
        docs = []
        for i, j, iou in pairs:
            pair = {"base_label": b[i].label, "other_label": o[j].label, "iou": iou, "base_entity": b[i].ref[1],
                    "other_entity": o[j].ref[1], "result": "true_positive"}  # fmt: skip
            docs.append({**common, **pair})
        for i in fns:
            docs.append({**common, "base_label": b[i].label, "base_entity": b[i].ref[1], "result": "false_negative"})
        for j in fps:
            docs.append({**common, "other_label": o[j].label, "other_entity": o[j].ref[1],
                         "result": "false_positive"})  # fmt: skip
        for k, d in enumerate(docs):
            d["id"] = f"{task}_{k}"
        if docs:
            self.assets.put(scope, "annotations_comparisons", docs)
        counts: dict[str, Counter[str]] = {}
        for d in docs:
            label = d.get("base_label") or d.get("other_label")
            counts.setdefault(str(label), Counter())[d["result"]] += 1
        metrics = {label: prf(c["true_positive"], c["false_positive"], c["false_negative"])
                   for label, c in sorted(counts.items())}  # fmt: skip
        return {"comparison_task_id": task, "comparisons": len(docs), "metrics": metrics,
                **prf(len(pairs), len(fps), len(fns))}  # fmt: skip

    # ------------------------------------------------------------------ a set

    def evaluate_set(self, scope: Scope, request: dict[str, Any]) -> dict[str, Any]:
        """Predictions against ground truth on the images of a set (or matching a search)."""
        truth_src = _selects(request.get("ground_truth"), "ground_truth")
        pred_src = _selects(request.get("predictions"), "predictions")
        threshold = request.get("iou_threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise InvalidArgument(f"iou_threshold must be a number in (0, 1], got {threshold!r}", resource=KIND)
        mapping = {**ComparisonConstants.DEFAULT_LABEL_MAPPING, **(request.get("label_mapping") or {})}
        if request.get("set_id"):
            search: Any = {"filters": [{"field": "sets", "values": [request["set_id"]]}]}
        elif request.get("search") is not None:
            search = request["search"]
        else:
            raise InvalidArgument("give a set_id or a search over images", resource=KIND)
        truth: dict[str, list[Shape]] = {}
        preds: dict[str, list[Shape]] = {}
        per_label: dict[str, Counter[str]] = {}
        for batch in self.assets.scan(scope, "images", search, ids_only=False):
            ids = sorted({a for m in batch for a in m.get("annotations") or [] if isinstance(a, str)})
            anns = self.assets.get_many(scope, KIND, ids) if ids else {}
            for image in batch:
                mine = [anns[a] for a in image.get("annotations") or [] if a in anns]
                t = shapes_of([a for a in mine if _matches(a, truth_src)], mapping)
                q = shapes_of([a for a in mine if _matches(a, pred_src)], mapping)
                truth[image["id"]], preds[image["id"]] = t, q
                pairs, fns, fps = greedy_match(t, q, float(threshold), True)
                for _i, j, _iou in pairs:
                    per_label.setdefault(q[j].label, Counter())["tp"] += 1
                for i in fns:
                    per_label.setdefault(t[i].label, Counter())["fn"] += 1
                for j in fps:
                    per_label.setdefault(q[j].label, Counter())["fp"] += 1
        coco = coco_map(truth, preds)
        labels = {label: {**prf(c["tp"], c["fp"], c["fn"]), "AP": coco["per_label_AP"].get(label, "N/A")}
                  for label, c in sorted(per_label.items())}  # fmt: skip
        total = Counter[str]()
        for c in per_label.values():
            total.update(c)
        return {"images": len(truth), "ground_truth": sum(map(len, truth.values())),
                "predictions": sum(map(len, preds.values())), "iou_threshold": float(threshold),
                "mAP": coco["mAP"], "AP50": coco["AP50"], "per_label": labels,
                **prf(total["tp"], total["fp"], total["fn"])}  # fmt: skip
