"""COCO import and export, YOLO export, and annotation comparison / evaluation (FACTS 6.5, 6.9)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from scenebase.clients.images import ImagesMixin
from scenebase.domain.ids import standardize_id
from scenebase.errors import AssetError, InvalidArgumentsError, JobError
from scenebase.media.coco import CocoFileError, is_valid_coco_file, load_coco
from scenebase.media.coco_convert import convert_image, dataset_record
from scenebase.media.coco_export import yolo_labels
from scenebase.models.assets import Image

log = logging.getLogger("scenebase.client")


class CocoMixin(ImagesMixin):
    @staticmethod
    def is_coco_annotation_file_valid(file_path: str) -> bool:
        """True when ``file_path`` is a JSON object whose ``images``, ``categories`` and ``annotations`` are lists."""
        return is_valid_coco_file(file_path)

    def add_coco_annotations_from_folder(
        self,
        file_path: str,
        provider: str,
        images_set_id: str,
        folder_path: str | None = None,
        version: str | None = None,
        annotation_group: str = "ground_truth",
        session_uid: str | None = None,
        annotations_set_id: str | None = None,
        use_image_id_as_annotation_id: bool = False,
        preprocesses: list[str] | None = None,
        thumbnailize_at_ingest: bool = False,
        annotation_to_objects: bool = False,
        wait_for_completion: bool = False,
    ) -> dict[str, Any]:
        """Import a COCO file: with ``folder_path`` its images are uploaded first (ids: the file names' standardized
        base names) into ``images_set_id``; then per image its boxes (``<provider>_bbox``), polygons
        (``<provider>_polygon``), masks (RLE and long polygons, ``<provider>_segmentation``), keypoints
        (``<provider>_pose``) and captions (``<provider>_caption``). The file's categories, info and licenses are
        kept once on the server. Bad entries are skipped, named (file and entry) in ``client.last_errors`` and
        logged; the rest is imported. Returns counts: images, annotations (COCO entries imported), categories,
        annotation documents written, and the errors. An image's entries count as imported when every annotation
        document made from them was written."""
        try:
            ds = load_coco(file_path)
        except CocoFileError as problem:
            raise InvalidArgumentsError(str(problem)) from None
        errors: list[dict[str, Any]] = [{"index": i, "name": Path(file_path).name, "code": "invalid_argument",
                                         "error": msg, "status": 400} for i, msg in enumerate(ds.errors)]  # fmt: skip
        images = ds.images
        if folder_path is not None:
            images = self._coco_images(ds.images, Path(folder_path), images_set_id, session_uid, preprocesses,
                                       thumbnailize_at_ingest, errors)  # fmt: skip
        record = {**dataset_record(ds, file_path), "provider": provider}
        dataset_id = str(self._request("POST", "/v1/annotations/coco_datasets/", json=record, error=AssetError)["id"])
        prepared: list[tuple[dict[str, Any], dict[str, Any]]] = []
        owners: list[str] = []
        entries: dict[str, int] = {}
        sets = [standardize_id(annotations_set_id)] if annotations_set_id else None
        for image in images:
            for doc, masks in convert_image(ds, image, provider, version, annotation_group, sets,
                                            use_image_id_as_annotation_id, session_uid, dataset_id):  # fmt: skip
                files = {f"mask:{m}": (f"{m}.png", data) for m, data in masks.items()}
                prepared.append((doc, files))
                owners.append(image.entry["file_name"])
            entries[image.entry["file_name"]] = len(image.annotations)
        options = {"update_asset": True, "annotations_to_objects": annotation_to_objects}
        ids, failed, jobs = self._send_annotations(prepared, options, disable_tqdm=True)
        for e in failed:
            errors.append({**e, "index": len(errors), "error": f"{owners[e['index']]}: {e.get('error')}"})
        self._report(errors, "COCO entry")
        if wait_for_completion:
            for job_id in jobs:
                self._job(job_id).wait(show_progress=False)
        written = [d for (d, _f), i in zip(prepared, ids, strict=True) if i is not None]
        complete = set(entries) - {owners[i] for i, item_id in enumerate(ids) if item_id is None}
        return {"images": len({d["asset_id"] for d in written}), "annotations": sum(entries[f] for f in complete),
                "categories": len(ds.categories), "annotation_documents": len(written), "dataset_id": dataset_id,
                "errors": errors}  # fmt: skip

    def _coco_images(
        self,
        images: list[Any],
        folder: Path,
        set_id: str,
        session_uid: str | None,
        preprocesses: list[str] | None,
        thumbnails: bool,
        errors: list[dict[str, Any]],
    ) -> list[Any]:
        """Upload the images of the file found in ``folder``; returns those that are in the catalog now."""
        found, uploads = [], []
        for image in images:
            name = image.entry["file_name"]
            path = next((p for p in (folder / name, folder / Path(name).name) if p.is_file()), None)
            if path is None:
                errors.append({"index": len(errors), "name": name, "code": "not_found", "status": 404,
                               "error": f"image file {name!r} is not in {str(folder)!r}"})  # fmt: skip
                continue
            uploads.append(Image(id=image.scenebase_id, path=path, session_uid=session_uid))
            found.append(image)
        if not uploads:
            return []
        ids = self.add_images(uploads, set_id, preprocesses=preprocesses, thumbnailize_at_ingest=thumbnails)
        for e in self.last_errors:
            errors.append({**e, "index": len(errors)})
        done = set(ids)
        return [i for i in found if i.scenebase_id in done]

    # ------------------------------------------------------------------ exports

    def export_coco(
        self, set_id: str, providers: list[str] | None = None, annotation_group: str | None = None
    ) -> dict[str, Any]:
        """The COCO dictionary of a set's images and annotations (beyond the seed)."""
        body = {"set_id": set_id, "providers": providers, "annotation_group": annotation_group}
        return dict(self._request("POST", "/v1/annotations/export_coco/", json=body, error=AssetError))

    def export_coco_dataset(
        self,
        set_id: str,
        output_path: str | None = None,
        providers: list[str] | None = None,
        annotation_group: str | None = None,
    ) -> str:
        """Write a set's annotations as a COCO JSON file (instances with boxes, polygons and RLE masks; keypoints;
        captions); returns its path (default ``<artifacts_path>/<set_id>_coco.json``)."""
        coco = self.export_coco(set_id, providers, annotation_group)
        path = Path(output_path or Path(self.artifacts_path) / f"{standardize_id(set_id)}_coco.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco))
        return str(path)

    def export_yolo_dataset(
        self,
        set_id: str,
        folder: str,
        providers: list[str] | None = None,
        annotation_group: str | None = None,
        include_images: bool = True,
    ) -> str:
        """Write a set in the YOLO (Ultralytics) detection layout: ``images/``, ``labels/<image>.txt`` (``class
        x_center y_center width height``, normalized) and ``data.yaml`` (path, train, val, names). Returns the
        folder. Crowd regions are left out, as YOLO has no notion of them."""
        coco = self.export_coco(set_id, providers, annotation_group)
        names, labels = yolo_labels(coco)
        root = Path(folder)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        by_name = {img["file_name"]: img for img in coco["images"]}
        for file_name, lines in labels.items():
            stem = Path(file_name).stem
            (root / "labels" / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines))
            if include_images:
                image_id = standardize_id(Path(file_name).name)
                data = self._image_for_export(image_id, by_name[file_name])
                (root / "images" / Path(file_name).name).write_bytes(data)
        yaml = [f"path: {root.resolve()}", "train: images", "val: images", "names:"]
        yaml += [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]
        (root / "data.yaml").write_text("\n".join(yaml) + "\n")
        return str(root)

    def _image_for_export(self, image_id: str, entry: dict[str, Any]) -> bytes:
        try:
            return self.get_image_bytes(image_id)
        except AssetError:
            return self.get_image_bytes(str(entry.get("id")))

    # ------------------------------------------------------------------ comparison and evaluation

    def compare_annotation_pairs(
        self,
        asset_id: str,
        asset_type: str,
        base_annotation_id: str | None = None,
        other_annotation_id: str | None = None,
        base_mapping: dict[str, str] | None = None,
        other_mapping: dict[str, str] | None = None,
        iou_threshold: float | None = None,
        match_labels: bool | None = None,
        wait_for_completion: bool = False,
    ) -> dict[str, Any]:
        """Compare two annotations of one image (boxes and polygons, one-to-one by IoU); returns ``{"job_id"}``.
        Each pair or unmatched entity is stored as an ``annotations_comparisons`` document with the job result's
        ``comparison_task_id``; the job result also holds per-label precision, recall and F1."""
        body = {"asset_id": asset_id, "asset_type": asset_type, "base_annotation_id": base_annotation_id,
                "other_annotation_id": other_annotation_id, "base_mapping": base_mapping,
                "other_mapping": other_mapping, "iou_threshold": iou_threshold,
                "match_labels": match_labels}  # fmt: skip
        out = dict(self._request("POST", "/v1/annotations/compare_annotation_pairs/", json=body, error=JobError))
        if wait_for_completion:
            self._job(out["job_id"]).wait(show_progress=False)
        return out

    def evaluate_annotations(
        self,
        set_id: str | None = None,
        ground_truth: dict[str, Any] | None = None,
        predictions: dict[str, Any] | None = None,
        iou_threshold: float = 0.5,
        label_mapping: dict[str, str] | None = None,
        search: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Predictions against ground truth on a set's images (or a search's): sources name ``provider`` and
        optionally ``version``, ``annotation_group``, ``annotation_type``. Returns per-label precision, recall, F1
        and AP at ``iou_threshold``, and COCO mAP@[.5:.95] and AP50 as pycocotools' COCOeval computes them (beyond
        the seed)."""
        body = {"set_id": set_id, "search": search, "ground_truth": ground_truth, "predictions": predictions,
                "iou_threshold": iou_threshold, "label_mapping": label_mapping}  # fmt: skip
        return dict(self._request("POST", "/v1/annotations/evaluate/", json=body, error=AssetError))
