"""``/v1/annotations`` (FACTS 6): add (JSON, or multipart with raw files and masks), masks, sources, labels,
deletions, clean-up and annotations_to_objects. The raw file of an annotation is the generic
``GET /v1/annotations/{id}/file``; object thumbnails are the generic ``GET /v1/objects/{id}/thumbnail/{tag}``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from scenebase import fastjson
from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.annotations import (
    ADD_ANNOTATIONS_BODY,
    AnnotationMetaCleaned,
    AnnotationsAdded,
    AnnotationSource,
    AnnotationsToObjectsBody,
    CocoDatasetBody,
    CocoDatasetStored,
    CocoFile,
    ComparePairBody,
    EvaluateBody,
    Evaluation,
)
from scenebase.api.schemas.common import JobStarted, binary_answer
from scenebase.api.schemas.search import SearchObject
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.annotations import AddOptions, AddResult, IncomingAnnotation
from scenebase.services.errors import InvalidArgument
from scenebase.services.identity import Principal
from scenebase.services.kinds import StreamMedia

router = SlashAgnosticRouter(prefix="/v1/annotations", tags=["annotations"])
#: annotations per add request
MAX_BATCH = 1000
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
#: keys of an entry that describe its raw file and masks rather than the annotation
ENTRY_KEYS = ("raw_annotation_text", "raw_annotation_url", "raw_annotation_uri", "raw_file", "mask_files")
OPTION_KEYS = {f: bool for f in ("update_asset", "replace_sets", "remove_asset_repeated_annotations",
                                 "add_provider_to_labels", "annotations_to_objects")}  # fmt: skip


def _options(body: dict[str, Any]) -> AddOptions:
    opts = AddOptions()
    for key in OPTION_KEYS:
        if key in body:
            if not isinstance(body[key], bool):
                raise InvalidArgument(f"{key} must be true or false")
            setattr(opts, key, body[key])
    session = body.get("session_uid")
    if session is not None and not isinstance(session, str):
        raise InvalidArgument("session_uid must be a string")
    opts.session_uid = session
    return opts


def _entries(body: dict[str, Any], form: FormData | None) -> list[IncomingAnnotation]:
    raw = body.get("annotations")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        raise InvalidArgument(f"'annotations' must be a list of 1 to {MAX_BATCH} annotation documents")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            out.append(IncomingAnnotation(i, entry))  # reported for this item by the service
            continue
        doc = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        item = IncomingAnnotation(i, doc, raw_text=entry.get("raw_annotation_text"))
        refs = [entry.get("raw_annotation_url"), entry.get("raw_annotation_uri")]
        if any(refs):
            item.raw_ref = str(next(r for r in refs if r))
        if item.raw_text is not None and not isinstance(item.raw_text, str):
            raise InvalidArgument(f"annotations[{i}].raw_annotation_text must be a string")
        if entry.get("raw_file") is not None or entry.get("mask_files"):
            if form is None:
                raise InvalidArgument(f"annotations[{i}] names file parts: send them as multipart/form-data")
            if entry.get("raw_file") is not None:
                item.raw_file = _part(form, entry["raw_file"], f"annotations[{i}].raw_file")
            masks = entry.get("mask_files") or {}
            if not isinstance(masks, dict):
                raise InvalidArgument(f"annotations[{i}].mask_files must map mask ids to file parts")
            item.mask_files = {str(k): _part(form, v, f"annotations[{i}].mask_files.{k}") for k, v in masks.items()}
        out.append(item)
    return out


def _part(form: FormData, name: Any, where: str) -> StreamMedia:
    part = form.get(str(name))
    if not isinstance(part, UploadFile):
        raise InvalidArgument(f"{where}: no file part named {name!r}")
    return StreamMedia(part.file, part.filename or str(name), part.size)


def _answer(result: AddResult) -> Response:
    body = {"ids": result.ids, "errors": result.errors, "job_ids": result.job_ids}
    if not result.errors:
        status = 200
    elif any(i is not None for i in result.ids):
        status = 207
    else:
        statuses = [e["status"] for e in result.errors]
        status = max(set(statuses), key=statuses.count)
        first = result.errors[0]
        payload = {"error": {"code": first["code"], "message": f"{first['name']}: {first['error']}",
                             "details": result.errors, "resource": "annotations"}}  # fmt: skip
        return Response(json.dumps(payload), status_code=status, media_type="application/json")
    return Response(json.dumps(body), status_code=status, media_type="application/json")


@router.post(
    "/add/",
    response_class=Response,
    responses={
        200: {"model": AnnotationsAdded, "description": "Every annotation was stored."},
        207: {"model": AnnotationsAdded, "description": "Some were not: see `errors` (their `ids` are null)."},
    },
    openapi_extra=ADD_ANNOTATIONS_BODY,
    dependencies=[requires(Permission.INGEST)],
)
async def add_annotations(
    request: Request, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Response:
    """Add up to 1000 annotations: a JSON body ``{"annotations": [doc, ...], "update_asset": true, ...}``, or
    multipart with a ``manifest`` part of that shape plus file parts that entries name in ``raw_file`` and
    ``mask_files`` (``{mask_id: part}``). An entry may also carry ``raw_annotation_text`` (the raw annotation
    itself) or ``raw_annotation_url`` / ``raw_annotation_uri``. Options: ``update_asset``, ``replace_sets``,
    ``remove_asset_repeated_annotations``, ``add_provider_to_labels``, ``annotations_to_objects``,
    ``session_uid``. Answers ``{"ids", "errors", "job_ids"}``: 200, 207 when some failed, else the most common
    item error."""
    form: FormData | None = None
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=4 * MAX_BATCH, max_fields=8 * MAX_BATCH,
                                      max_part_size=MAX_MANIFEST_BYTES)  # fmt: skip
            manifest = form.get("manifest")
            if manifest is None:
                raise InvalidArgument("missing 'manifest' part")
            raw = await manifest.read() if isinstance(manifest, UploadFile) else manifest
            try:
                body = fastjson.loads(raw)
            except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, integers of more than 4,300 digits
                raise InvalidArgument(f"manifest is not valid JSON: {e}") from None
        else:
            try:
                body = fastjson.loads(await request.body())
            except ValueError as e:
                raise InvalidArgument(f"the body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("the body must be an object with an 'annotations' list")
        items = _entries(body, form)
        result = await run_in_threadpool(rt.annotations.add, p.scope, items, _options(body))
    finally:
        if form is not None:
            await form.close()
    return _answer(result)


@router.get(
    "/{annotation_id}/masks/{mask_id}",
    response_class=Response,
    responses=binary_answer("The mask.", ["image/png"]),
    dependencies=[requires(Permission.READ)],
)
def annotation_mask(
    annotation_id: str, mask_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Response:
    """A segmentation mask (PNG) stored with an annotation."""
    data, content_type = rt.annotations.mask(p.scope, annotation_id, mask_id)
    return Response(data, media_type=content_type)


class SearchBody(BaseModel):
    search: SearchObject | None = Field(None, description="A search over images (docs/search.md); none: all.")


@router.post(
    "/annotation_sources/",
    response_model=None,
    # documented, not re-validated: the sources come from the assets' annotations_meta as stored
    responses={200: {"model": list[AnnotationSource], "description": "Distinct sources, sorted."}},
    dependencies=[requires(Permission.READ)],
)
def annotation_sources(
    body: SearchBody | None = None, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> list[dict[str, Any]]:
    """Distinct ``{provider, version, annotation_group, annotation_type}`` of the annotations of the images that
    match ``search``."""
    return rt.annotation_jobs.sources(p.scope, body.search if body else None)


@router.post("/annotation_labels/", response_model=list[str], dependencies=[requires(Permission.READ)])
def annotation_labels(
    body: SearchBody | None = None, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> list[str]:
    """Distinct entity labels of the annotations of the images that match ``search``."""
    return rt.annotation_jobs.labels(p.scope, body.search if body else None)


class DeleteBody(BaseModel):
    ids: list[str] | None = None
    search: SearchObject | None = Field(None, description="A search over annotations.")


@router.post("/delete/", response_model=JobStarted, dependencies=[requires(Permission.DELETE)])
def delete_annotations(
    body: DeleteBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start a job deleting annotations (with their raw files and masks) and cleaning their parents."""
    return {"job_id": rt.annotation_jobs.delete(p.scope, body.ids, body.search)}


class RemoveSourcesBody(BaseModel):
    annotation_sources: list[dict[str, Any]]
    asset_type: str
    asset_filters: SearchObject | None = Field(None, description="A search over the assets; none: all.")


@router.post("/remove_sources/", response_model=JobStarted, dependencies=[requires(Permission.DELETE)])
def remove_annotation_sources(
    body: RemoveSourcesBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start a job deleting every annotation of the given sources (provider, optionally version, type, group) on
    the assets matching ``asset_filters``."""
    job_id = rt.annotation_jobs.remove_sources(p.scope, body.annotation_sources, body.asset_type, body.asset_filters)
    return {"job_id": job_id}


class CleanupBody(BaseModel):
    asset_ids: list[str]
    asset_type: str = "images"


@router.post(
    "/cleanup_assets_annotation_meta/", response_model=AnnotationMetaCleaned, dependencies=[requires(Permission.INGEST)]
)
def cleanup_assets_annotation_meta(
    body: CleanupBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Rebuild the annotation lists and labels of these assets from the annotations that exist."""
    return rt.annotation_jobs.cleanup(p.scope, body.asset_ids, body.asset_type)


@router.post("/annotations_to_objects/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def annotations_to_objects(
    body: AnnotationsToObjectsBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start an annotations_to_objects job: ``{"ids" | "search" (over annotations), "create_objects",
    "margin_ratio", "margin_pixels", "output_set_id", "source_annotation_type", "session_uid",
    "add_to_session"}``."""
    return {"job_id": rt.objects.submit(p.scope, body)}


@router.post("/compare_annotation_pairs/", response_model=JobStarted, dependencies=[requires(Permission.CURATE)])
def compare_annotation_pairs(
    body: ComparePairBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start a ``compare_annotations`` job on one image: ``{"asset_id", "asset_type", "base_annotation_id",
    "other_annotation_id", "base_mapping", "other_mapping", "iou_threshold", "match_labels"}``; results are
    ``annotations_comparisons`` documents with the job's ``comparison_task_id``."""
    return {"job_id": rt.evaluation.compare_pair(p.scope, body)}


@router.post("/evaluate/", response_model=Evaluation, dependencies=[requires(Permission.READ)])
def evaluate_annotations(
    body: EvaluateBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Predictions against ground truth on a set's images (``set_id``) or a search's: ``{"ground_truth":
    {"provider", ...}, "predictions": {...}, "iou_threshold": 0.5, "label_mapping"}``. Answers per-label precision,
    recall, F1 and AP, and COCO mAP@[.5:.95] / AP50 (pycocotools' COCOeval)."""
    return rt.evaluation.evaluate_set(p.scope, body)


class ExportBody(BaseModel):
    set_id: str
    providers: list[str] | None = None
    annotation_group: str | None = None


@router.post(
    "/export_coco/",
    response_model=None,
    responses={200: {"model": CocoFile, "description": "The COCO dictionary."}},
    dependencies=[requires(Permission.READ)],
)
def export_coco(
    body: ExportBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """The COCO JSON (instances, keypoints, captions; masks as RLE) of a set's images and their annotations."""
    return rt.exports.coco(p.scope, body.set_id, body.providers, body.annotation_group)


@router.post("/coco_datasets/", response_model=CocoDatasetStored, dependencies=[requires(Permission.INGEST)])
def put_coco_dataset(
    body: CocoDatasetBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Keep an imported COCO file's info, licenses and categories (a ``configs`` document); returns its id."""
    return {"id": rt.exports.put_dataset(p.scope, body)}
