"""``/v1/images``: batch upload, original bytes, thumbnails, compression and property jobs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.constants import ImageProperties
from scenebase.domain.roles import Permission
from scenebase.media.images import THUMBNAIL_PRESETS, content_type_for
from scenebase.runtime import Runtime
from scenebase.services.assets import parse
from scenebase.services.errors import InvalidArgument, PayloadTooLarge, ServiceError
from scenebase.services.fetch_policy import display_ref
from scenebase.services.identity import Principal
from scenebase.services.images import IncomingImage
from scenebase.storage.scope import Scope

router = SlashAgnosticRouter(prefix="/v1/images", tags=["images"])
MAX_BATCH = 1000


@router.post("/add/", dependencies=[requires(Permission.INGEST)])
async def add_images(
    request: Request, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Response:
    """Multipart batch: a ``manifest`` JSON part ``{"items": [{"file"|"url"|"uri", "name", "metadata"}], "set_ids",
    "overwrite", "thumbnailize_at_ingest"}`` and one file part per uploaded item. Answers 200 when every item
    was ingested, 207 with per-item ``errors`` when some were not, and the most common item error when none was.
    """
    form = await request.form(max_files=MAX_BATCH + 1, max_fields=MAX_BATCH + 10, max_part_size=16 * 1024 * 1024)
    try:
        raw = form.get("manifest")
        if raw is None:
            raise InvalidArgument("missing 'manifest' part")
        if isinstance(raw, UploadFile):
            raw = (await raw.read()).decode()
        try:
            manifest = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InvalidArgument(f"manifest is not valid JSON: {e}") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("items"), list):
            raise InvalidArgument("manifest must be an object with an 'items' list")
        items_raw = manifest["items"]
        if not 1 <= len(items_raw) <= MAX_BATCH:
            raise InvalidArgument(f"a batch holds 1 to {MAX_BATCH} images, got {len(items_raw)}")
        items: list[IncomingImage] = []
        for i, it in enumerate(items_raw):
            if not isinstance(it, dict):
                raise InvalidArgument(f"items[{i}] must be an object")
            data = None
            if it.get("file") is not None:
                part = form.get(str(it["file"]))
                if not isinstance(part, UploadFile):
                    raise InvalidArgument(f"items[{i}]: no file part named {it['file']!r}")
                data = await part.read()
                if len(data) > rt.settings.max_file_bytes:
                    raise PayloadTooLarge(f"items[{i}] is larger than {rt.settings.max_file_bytes} bytes")
            meta = it.get("metadata") or {}
            if not isinstance(meta, dict):
                raise InvalidArgument(f"items[{i}].metadata must be an object")
            # a reference names its item without credentials or signed query strings: errors echo the name
            ref = it.get("url") or it.get("uri")
            name = str(it.get("name") or (display_ref(str(ref)) if ref else None) or meta.get("id") or f"item {i}")
            items.append(IncomingImage(i, name, meta, data, it.get("url"), it.get("uri")))
    finally:
        await form.close()
    presets = tuple(manifest.get("thumbnail_presets") or ("small",))
    unknown = set(presets) - set(THUMBNAIL_PRESETS)
    if unknown:
        raise InvalidArgument(f"unknown thumbnail presets {sorted(unknown)}; presets: {sorted(THUMBNAIL_PRESETS)}")
    set_ids = manifest.get("set_ids") or []
    if isinstance(set_ids, str):
        set_ids = [set_ids]
    async with contextlib.AsyncExitStack() as downloads:
        await _download_references(rt, p.scope, items, downloads)
        # ingestion is blocking work (probing, blob and catalog writes): keep it off the event loop
        result = await run_in_threadpool(
            rt.images.ingest,
            p.scope,
            items,
            list(set_ids),
            overwrite=bool(manifest.get("overwrite", True)),
            thumbnailize_at_ingest=bool(manifest.get("thumbnailize_at_ingest", False)),
            thumbnail_presets=presets,
        )
    body = {"ids": result.ids, "errors": result.errors, "job_id": result.job_id}
    if not result.errors:
        status = 200
    elif any(i is not None for i in result.ids):
        status = 207
    else:
        statuses = [e["status"] for e in result.errors]
        status = max(set(statuses), key=statuses.count)
        first = result.errors[0]
        payload = {"error": {"code": first["code"], "message": f"{first['name']}: {first['error']}",
                             "details": result.errors}}  # fmt: skip
        return Response(json.dumps(payload), status_code=status, media_type="application/json")
    return Response(json.dumps(body), status_code=status, media_type="application/json")


async def _download_references(
    rt: Runtime, scope: Scope, items: list[IncomingImage], downloads: contextlib.AsyncExitStack
) -> None:
    """Download the batch's URL/URI items on the fetch pool (request threads never wait on a remote server); the
    files live until ``downloads`` closes. A failure is kept on its item and reported for that item only."""
    gate = asyncio.Semaphore(rt.settings.fetches_per_org)

    async def one(item: IncomingImage) -> None:
        ref = item.url if item.uri is None else item.uri if item.url is None else None
        if ref is None or item.data is not None:
            return  # several sources or none: ingest reports it
        async with gate:
            try:
                item.fetched = (await downloads.enter_async_context(rt.sources.aopen(scope, ref))).path
            except ServiceError as e:
                item.fetch_error = e

    # a task group, not gather: on an unexpected error the other downloads are cancelled and awaited, so none
    # lands in ``downloads`` after it was closed (its temporary file would stay behind)
    async with asyncio.TaskGroup() as group:
        for item in items:
            group.create_task(one(item))


@router.get("/{image_id}/file", dependencies=[requires(Permission.READ)])
async def image_file(
    image_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Response:
    """The original file (uploaded, or read from its URL/URI)."""
    doc = await run_in_threadpool(rt.assets.get, p.scope, "images", image_id)
    data = await rt.images.aread_original(doc)
    content_type = content_type_for(doc["format"])
    filename = (doc.get("object_access") or {}).get("filename") or doc["id"]
    return Response(data, media_type=content_type, headers={"Content-Disposition": f'inline; filename="{filename}"'})


@router.get("/{image_id}/thumbnail/{tag}", dependencies=[requires(Permission.READ)])
async def image_thumbnail(
    image_id: str, tag: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Response:
    """A thumbnail; presets (tiny, small, full_size_png) are made on first request and cached."""
    doc = await run_in_threadpool(rt.assets.get, p.scope, "images", image_id)
    access = doc.get("object_access") or {}
    original = None
    if not access.get("key") and tag not in (doc.get("thumbnails") or {}) and tag in THUMBNAIL_PRESETS:
        original = await rt.images.aread_original(doc)  # a referenced file: downloaded off the request threads
    data, content_type = await run_in_threadpool(rt.images.thumbnail, p.scope, image_id, tag, original)
    return Response(data, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})


class CompressBody(BaseModel):
    ids: list[str] = Field(min_length=1)
    desired_shape: list[int] | None = None
    thumbnail_tag: str | None = None
    use_preset: str | None = None


@router.post("/compress_images/", dependencies=[requires(Permission.INGEST)])
def compress_images(
    body: CompressBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    if body.use_preset is not None:
        if body.use_preset not in THUMBNAIL_PRESETS:
            raise InvalidArgument(f"unknown preset {body.use_preset!r}; presets: {sorted(THUMBNAIL_PRESETS)}")
        params: dict[str, Any] = {"ids": body.ids, "presets": [body.use_preset]}
    else:
        if not body.desired_shape or len(body.desired_shape) < 2 or not body.thumbnail_tag:
            raise InvalidArgument("give use_preset, or desired_shape (height, width) and thumbnail_tag")
        if any(x <= 0 for x in body.desired_shape[:2]):
            raise InvalidArgument("desired_shape must be positive")
        params = {"ids": body.ids, "desired_shape": body.desired_shape, "thumbnail_tag": body.thumbnail_tag}
    row = rt.jobs.submit(p.scope, "image_compression", params, description="compress images", asset_type="images")
    return {"job_id": row["id"]}


class PropertiesBody(BaseModel):
    ids: list[str] | None = None
    search: dict[str, Any] | None = None
    properties: list[str] | None = None
    asset_type: str = "images"
    additional_params: dict[str, Any] | None = None


@router.post("/image_properties_enrichment/", dependencies=[requires(Permission.INGEST)])
def image_properties_enrichment(
    body: PropertiesBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    if body.asset_type not in ("images", "objects"):
        raise InvalidArgument("asset_type must be 'images' or 'objects'")
    if body.ids is None and body.search is None:
        raise InvalidArgument("give ids or a search")
    props = body.properties or list(ImageProperties.VALID)
    unknown = set(props) - set(ImageProperties.VALID)
    if unknown:
        raise InvalidArgument(f"unknown properties {sorted(unknown)}; valid: {list(ImageProperties.VALID)}")
    if body.search is not None:
        parse(body.search)  # a malformed query fails here, not in the job
    params = body.model_dump()
    params["properties"] = props
    row = rt.jobs.submit(
        p.scope, "image_properties_enrichment", params, description="image properties", asset_type=body.asset_type
    )
    return {"job_id": row["id"]}
