"""Annotations: add (batched, threaded, with a progress bar and per-annotation errors), sources and labels,
deletions, clean-up and annotations_to_objects (FACTS 6)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from scenebase.clients.encoding import encode_json
from scenebase.clients.http import error_class
from scenebase.clients.upload import UploadMixin
from scenebase.domain.ids import standardize_id
from scenebase.errors import AssetError, InvalidAnnotationError, InvalidArgumentsError, JobError, SceneBaseError
from scenebase.models.annotation import Annotation

log = logging.getLogger("scenebase.client")

#: annotations per request, and requests in flight
ANNOTATION_CHUNK = 500
PARALLEL_REQUESTS = 4


def _entry(annotation: Annotation | dict[str, Any], raw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request entry of one annotation and its files (part name -> (file name, bytes or path))."""
    if isinstance(annotation, Annotation):
        entry = annotation.to_dic()
        inline = annotation.raw_bytes()
        ref = annotation.raw_reference()
        masks = dict(annotation.mask_files)
    elif isinstance(annotation, dict):
        entry, inline, ref, masks = dict(annotation), None, None, {}
    else:
        raise InvalidArgumentsError(f"annotations must be Annotation objects or dicts, got {type(annotation).__name__}")
    if inline is not None:
        entry["raw_annotation_text"] = inline[0].decode()
    if ref is not None:
        entry["raw_annotation_url" if "url" in ref else "raw_annotation_uri"] = next(iter(ref.values()))
    files: dict[str, Any] = {}
    if raw is not None:
        if isinstance(raw, bytes | bytearray):
            files["raw"] = (f"{entry.get('id', 'raw')}.bin", bytes(raw))
        elif isinstance(raw, os.PathLike) or (isinstance(raw, str) and Path(raw).is_file()):
            files["raw"] = (Path(raw).name, Path(raw))
        elif isinstance(raw, str):
            entry["raw_annotation_text"] = raw
        else:
            raise InvalidArgumentsError(f"a raw annotation is a file path, bytes or the text itself, not {raw!r}")
    for mask_id, path in masks.items():
        files[f"mask:{mask_id}"] = (Path(path).name, Path(path))
    return entry, files


class AnnotationsMixin(UploadMixin):
    # ------------------------------------------------------------------ add

    def _post_annotations(self, batch: list[tuple[dict[str, Any], dict[str, Any]]], options: dict[str, Any]) -> Any:
        """One request: JSON, or multipart when an entry has files. Returns the answer (ids, errors, job_ids)."""
        entries = []
        parts: list[tuple[str, tuple[str | None, Any, str]]] = []
        with contextlib.ExitStack() as stack:
            for n, (entry, files) in enumerate(batch):
                entry = dict(entry)
                for name, (filename, source) in files.items():
                    part = f"f{n}_{len(parts)}"
                    data = stack.enter_context(source.open("rb")) if isinstance(source, Path) else io.BytesIO(source)
                    parts.append((part, (filename, data, "application/octet-stream")))
                    if name == "raw":
                        entry["raw_file"] = part
                    else:
                        entry.setdefault("mask_files", {})[name.split(":", 1)[1]] = part
                entries.append(entry)
            body = {"annotations": entries, **options}
            try:
                if parts:
                    manifest = [("manifest", (None, encode_json(body), "application/json")), *parts]
                    return self._request("POST", "/v1/annotations/add/", files=manifest, error=AssetError)
                return self._request("POST", "/v1/annotations/add/", json=body, error=AssetError)
            except SceneBaseError as e:
                if e.status_code and 400 <= e.status_code < 500 and isinstance(e.details, list):
                    return {"ids": [None] * len(batch), "errors": e.details, "job_ids": []}
                raise

    def _add_annotation_batches(
        self,
        annotations: Sequence[Annotation | dict[str, Any]],
        raw_annotations: Sequence[Any] | None,
        options: dict[str, Any],
        threading: bool = True,
        disable_tqdm: bool = False,
        overrides: Sequence[dict[str, Any]] | None = None,
    ) -> tuple[list[str | None], list[dict[str, Any]], list[str]]:
        """Send ``annotations`` in batches; ``overrides``: per annotation, fields to set in its document (the
        parent an image ingestion gives it)."""
        if raw_annotations is not None and len(raw_annotations) != len(annotations):
            raise InvalidArgumentsError("raw_annotations must have one entry (or None) per annotation")
        media_types = {a.media_type if isinstance(a, Annotation) else a.get("media_type", "images")
                       for a in annotations if isinstance(a, Annotation | dict)}  # fmt: skip
        if len(media_types) > 1:
            raise InvalidArgumentsError(f"annotations of one call share one media type, got {sorted(media_types)}")
        prepared = [_entry(a, raw_annotations[i] if raw_annotations else None) for i, a in enumerate(annotations)]
        for (entry, _files), override in zip(prepared, overrides or [], strict=False):
            entry.update(override)
        return self._send_annotations(prepared, options, threading, disable_tqdm)

    def _send_annotations(
        self,
        prepared: list[tuple[dict[str, Any], dict[str, Any]]],
        options: dict[str, Any],
        threading: bool = True,
        disable_tqdm: bool = False,
    ) -> tuple[list[str | None], list[dict[str, Any]], list[str]]:
        """Send prepared entries ``(document, files)`` in batches; files map ``"raw"`` or ``"mask:<id>"`` to
        ``(file name, path or bytes)``."""
        chunks = [list(range(s, min(len(prepared), s + ANNOTATION_CHUNK)))
                  for s in range(0, len(prepared), ANNOTATION_CHUNK)]  # fmt: skip
        ids: list[str | None] = [None] * len(prepared)
        errors: list[dict[str, Any]] = []
        jobs: list[str] = []
        workers = max(1, min(PARALLEL_REQUESTS, self.num_threads, len(chunks))) if threading else 1
        bar = tqdm(total=len(prepared), desc="adding annotations", unit="annotation", disable=disable_tqdm or None)

        def run(k: int) -> tuple[int, Any]:
            return k, self._post_annotations([prepared[i] for i in chunks[k]], options)

        try:
            with ThreadPoolExecutor(workers) as pool:
                for k, answer in pool.map(run, range(len(chunks))):
                    positions = chunks[k]
                    for j, item_id in enumerate(answer.get("ids") or []):
                        ids[positions[j]] = item_id
                    for err in answer.get("errors") or []:
                        errors.append({**err, "index": positions[int(err.get("index", 0))]})
                    jobs.extend(answer.get("job_ids") or [])
                    bar.update(len(positions))
        finally:
            bar.close()
        errors.sort(key=lambda e: e["index"])
        return ids, errors, jobs

    def _annotate_media(
        self,
        assets: Sequence[Any],
        ids: list[str | None],
        add_provider_to_labels: bool = True,
        progress: bool | None = None,
        time_of: Callable[[str, Any], str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Add the annotations the assets came with, linked to the ingested assets (FACTS 6.4): each inherits its
        asset's id, timestamp (or ``time_of(asset id, annotation)``: a video frame's time), sensor and session.
        Errors name the asset (by input index) and the annotation."""
        anns: list[Any] = []
        overrides: list[dict[str, Any]] = []
        owners: list[int] = []
        for index, (asset, asset_id) in enumerate(zip(assets, ids, strict=True)):
            if asset_id is None or not getattr(asset, "annotations", None):
                continue
            meta = asset.metadata()
            for ann in asset.annotations or []:
                at = time_of(asset_id, ann) if time_of is not None else None
                inherited = {"asset_id": asset_id, "timestamp": at or meta["timestamp"]}
                for key in ("sensor", "session_uid"):
                    given = ann.to_dic().get(key) if hasattr(ann, "to_dic") else ann.get(key)
                    if given is None and meta.get(key) is not None:
                        inherited[key] = meta[key]
                anns.append(ann)
                overrides.append(inherited)
                owners.append(index)
        if not anns:
            return []
        options = {"update_asset": True, "add_provider_to_labels": add_provider_to_labels}
        _ids, errors, _jobs = self._add_annotation_batches(
            anns, None, options, disable_tqdm=progress is False, overrides=overrides
        )
        return [{**e, "index": owners[e["index"]], "error": f"annotation {e.get('name')}: {e.get('error')}"}
                for e in errors]  # fmt: skip

    def add_annotation(
        self,
        annotation: Annotation,
        raw_annotation: Any = None,
        update_asset: bool = True,
        buffered_write: bool = False,
        replace_sets: bool = False,
        add_to_cache: bool = False,
        annotation_to_objects: bool = False,
        remove_asset_repeated_annotations: bool = False,
    ) -> str:
        """Add one annotation (a ``scenebase.models.annotation`` object); returns its id. ``raw_annotation``: the
        annotator's own file (a path, bytes or the text), stored with it. Raises InvalidAnnotationError (bad
        annotation) or AssetError (e.g. its asset does not exist)."""
        options = {"update_asset": update_asset, "replace_sets": replace_sets,
                   "annotations_to_objects": annotation_to_objects,
                   "remove_asset_repeated_annotations": remove_asset_repeated_annotations}  # fmt: skip
        ids, errors, _jobs = self._add_annotation_batches(
            [annotation], [raw_annotation] if raw_annotation is not None else None, options, disable_tqdm=True
        )
        if errors:
            err = errors[0]
            cls = error_class(int(err.get("status") or 400), err.get("code"), "annotations", AssetError)
            raise cls(f"{err.get('name')}: {err.get('error')}", err.get("status"), err.get("code"), errors)
        return str(ids[0])

    def add_annotations(
        self,
        annotations: Sequence[Annotation | dict[str, Any]],
        buffered_write: bool = True,
        update_asset: bool = True,
        raw_annotations: Sequence[Any] | None = None,
        threading: bool = True,
        disable_tqdm: bool = False,
        replace_sets: bool = False,
        cleanup_annotation_masks: bool = False,
        remove_asset_repeated_annotations: bool = False,
        session_uid: str | None = None,
        annotations_to_objects: bool = False,
        add_to_cache: bool = False,
        wait_for_annotations_to_objects_completion: bool = False,
    ) -> list[str]:
        """Add annotations in batches of 500 (4 requests in flight with ``threading``), with a progress bar.
        Returns the ids added, in input order; annotations the server refused are skipped, logged at WARNING and
        listed in ``client.last_errors``. Masks belong to their annotation and go with it, so
        ``cleanup_annotation_masks`` has nothing to do; ``buffered_write`` and ``add_to_cache`` need nothing."""
        if not annotations:
            self.last_errors = []
            return []
        options = {"update_asset": update_asset, "replace_sets": replace_sets,
                   "remove_asset_repeated_annotations": remove_asset_repeated_annotations,
                   "annotations_to_objects": annotations_to_objects, "session_uid": session_uid}  # fmt: skip
        ids, errors, jobs = self._add_annotation_batches(annotations, raw_annotations, options, threading, disable_tqdm)
        self._report(errors, "annotation")
        if wait_for_annotations_to_objects_completion:
            for job_id in jobs:
                self._job(job_id).wait(show_progress=not disable_tqdm)
        return [i for i in ids if i is not None]

    # ------------------------------------------------------------------ reads

    def get_annotation_sources(self, search: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Distinct ``{provider, version, annotation_group, annotation_type}`` of the annotations of the images that
        match ``search`` (all images when None)."""
        return list(self._request("POST", "/v1/annotations/annotation_sources/", json={"search": search},
                                  error=AssetError))  # fmt: skip

    def get_annotation_labels(self, search: dict[str, Any] | None = None) -> list[str]:
        """Distinct labels of the annotation entities of the images that match ``search``."""
        return list(self._request("POST", "/v1/annotations/annotation_labels/", json={"search": search},
                                  error=AssetError))  # fmt: skip

    def get_annotation_mask(self, annotation_id: str, mask_id: str) -> bytes:
        """A segmentation mask (PNG) stored with an annotation (beyond the seed)."""
        self._server_status()
        path = f"/v1/annotations/{standardize_id(annotation_id)}/masks/{standardize_id(mask_id)}"
        return self._http.request("GET", path, error=AssetError).content

    def get_raw_annotation(self, annotation_id: str) -> bytes:
        """The raw annotation file stored with an annotation (beyond the seed)."""
        self._server_status()
        return self._http.request(
            "GET", f"/v1/annotations/{standardize_id(annotation_id)}/file", error=AssetError
        ).content

    # ------------------------------------------------------------------ deletions and derived data

    def delete_annotations(
        self, ids: list[str] | None = None, search: dict[str, Any] | None = None, wait_for_completion: bool = True
    ) -> str:
        """Delete annotations by ids or search (over annotations) in a job that also cleans their assets'
        annotation lists and labels; returns the job id."""
        if ids is None and search is None:
            raise InvalidArgumentsError("give ids or a search")
        body = {"ids": ids, "search": search}
        job_id = str(self._request("POST", "/v1/annotations/delete/", json=body, error=JobError)["job_id"])
        self._wait(job_id, wait_for_completion, show_progress=False)
        return job_id

    def remove_annotation_sources(
        self,
        annotation_sources: list[dict[str, Any]],
        asset_type: str,
        asset_filters: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
    ) -> str:
        """Delete every annotation of these sources (``provider`` and optional ``version``, ``annotation_type``,
        ``annotation_group``) on the ``asset_type`` assets matching ``asset_filters``; returns the job id."""
        body = {"annotation_sources": annotation_sources, "asset_type": asset_type, "asset_filters": asset_filters}
        job_id = str(self._request("POST", "/v1/annotations/remove_sources/", json=body, error=JobError)["job_id"])
        self._wait(job_id, wait_for_completion, show_progress=False)
        return job_id

    def cleanup_assets_annotation_meta(self, asset_ids: list[str], asset_type: str) -> None:
        """Rebuild these assets' annotation lists (and labels) from the annotations that exist."""
        for start in range(0, len(asset_ids), 10_000):
            body = {"asset_ids": list(asset_ids[start : start + 10_000]), "asset_type": asset_type}
            self._request("POST", "/v1/annotations/cleanup_assets_annotation_meta/", json=body, error=AssetError)

    def annotations_to_objects(
        self,
        ids: list[str] | None = None,
        search: dict[str, Any] | None = None,
        create_objects: bool = False,
        margin_ratio: float = 0.1,
        output_set_id: str | None = None,
        margin_pixels: int | None = None,
        source_annotation_type: str | None = None,
        session_uid: str | None = None,
        add_to_session: bool = True,
        wait_for_completion: bool = True,
        progress_callback: Callable[..., Any] | None = None,
    ) -> str:
        """Objects (crops) from annotations given by ids or a search over annotations; without
        ``create_objects`` only the entities' areas are recorded on their images. Returns the job id."""
        if ids is None and search is None:
            raise InvalidArgumentsError("give annotation ids or a search")
        body = {"ids": ids, "search": search, "create_objects": create_objects, "margin_ratio": margin_ratio,
                "output_set_id": output_set_id, "margin_pixels": margin_pixels,
                "source_annotation_type": source_annotation_type, "session_uid": session_uid,
                "add_to_session": add_to_session}  # fmt: skip
        try:
            answer = self._request("POST", "/v1/annotations/annotations_to_objects/", json=body, error=JobError)
        except SceneBaseError as e:
            if e.code == "invalid_argument":
                raise InvalidAnnotationError(e.message, e.status_code, e.code, e.details) from None
            raise
        job_id = str(answer["job_id"])
        if wait_for_completion:
            self._job(job_id).wait(progress_callback=progress_callback, show_progress=False)
        return job_id
