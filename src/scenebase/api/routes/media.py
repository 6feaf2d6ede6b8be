"""``/v1/{asset_type}/...`` for every media kind (images, videos, lidars): batch upload, the original file (with
HTTP byte ranges, so a browser can seek in a video) and thumbnails/renditions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.responses import content_disposition, parse_range
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import binary_answer
from scenebase.api.schemas.media import ORIGINAL_MEDIA_TYPES, THUMBNAIL_MEDIA_TYPES, UPLOAD_BODY, MediaAdded
from scenebase.api.uploads import parse_upload, spooled
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.errors import InvalidArgument, NotFound, PayloadTooLarge, ServiceError
from scenebase.services.fetch_policy import display_ref
from scenebase.services.identity import Principal
from scenebase.services.ingest import IncomingItem, IngestResult, item_error
from scenebase.services.kinds import AssetKind, FileMedia, Media, StreamMedia
from scenebase.storage.scope import Scope

router = SlashAgnosticRouter(prefix="/v1", tags=["media"])
#: JSON parts (the manifest) of an upload may be this large
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def _media_kind(rt: Runtime, asset_type: str) -> AssetKind:
    if asset_type not in rt.kinds:
        raise NotFound(f"no media routes for {asset_type!r}; media types: {rt.kinds.asset_types()}")
    return rt.kinds.get(asset_type)


async def _manifest(form: FormData) -> dict[str, Any]:
    raw = form.get("manifest")
    if raw is None:
        raise InvalidArgument("missing 'manifest' part")
    try:
        if isinstance(raw, UploadFile):
            raw = (await raw.read()).decode()
        manifest = json.loads(raw)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, integers of more than 4,300 digits
        raise InvalidArgument(f"manifest is not valid JSON: {e}") from None
    except RecursionError:
        raise InvalidArgument("manifest is nested too deeply to be read") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("items"), list):
        raise InvalidArgument("manifest must be an object with an 'items' list")
    return manifest


def _items(
    form: FormData, manifest: dict[str, Any], kind: AssetKind, max_bytes: int
) -> tuple[list[IncomingItem], list[dict[str, Any]]]:
    """Manifest items with their file parts (left spooled, not read); items whose part is too large become errors."""
    raw_items = manifest["items"]
    if not 1 <= len(raw_items) <= kind.max_batch:
        raise InvalidArgument(f"a batch holds 1 to {kind.max_batch} {kind.asset_type}, got {len(raw_items)}")
    items: list[IncomingItem] = []
    errors: list[dict[str, Any]] = []
    for i, it in enumerate(raw_items):
        if not isinstance(it, dict):
            raise InvalidArgument(f"items[{i}] must be an object")
        meta = it.get("metadata") or {}
        if not isinstance(meta, dict):
            raise InvalidArgument(f"items[{i}].metadata must be an object")
        # a reference names its item without credentials or signed query strings: errors echo the name
        ref = it.get("url") or it.get("uri")
        name = str(it.get("name") or (display_ref(str(ref)) if ref else None) or meta.get("id") or f"item {i}")
        media = None
        if it.get("file") is not None:
            part = form.get(str(it["file"]))
            if not isinstance(part, UploadFile):
                raise InvalidArgument(f"items[{i}]: no file part named {it['file']!r}")
            size = part.size if part.size is not None else 0
            if size > max_bytes:
                errors.append(
                    item_error(i, name, PayloadTooLarge(f"the file is {size} bytes; the limit is {max_bytes}"))
                )
                continue
            path, content_hash = spooled(part)
            media = StreamMedia(part.file, name, size, path, content_hash)
        items.append(IncomingItem(i, name, meta, media, it.get("url"), it.get("uri"),
                                  relative_path=it.get("relative_path")))  # fmt: skip
    return items, errors


def _answer(result: IngestResult, rejected: list[dict[str, Any]], total: int) -> Response:
    errors = sorted([*rejected, *result.errors], key=lambda e: e["index"])
    ids: list[str | None] = [None] * total
    for item_id, err_free_index in zip(result.ids, _indexes(total, rejected), strict=True):
        ids[err_free_index] = item_id
    job_ids = result.job_ids
    body = {"ids": ids, "errors": errors, "job_id": job_ids[0] if job_ids else None, "job_ids": job_ids,
            "warnings": result.warnings}  # fmt: skip
    if not errors:
        status = 200
    elif any(i is not None for i in ids):
        status = 207
    else:
        statuses = [e["status"] for e in errors]
        status = max(set(statuses), key=statuses.count)
        first = errors[0]
        payload = {"error": {"code": first["code"], "message": f"{first['name']}: {first['error']}",
                             "details": errors, "resource": None}}  # fmt: skip
        return Response(json.dumps(payload), status_code=status, media_type="application/json")
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _indexes(total: int, rejected: list[dict[str, Any]]) -> list[int]:
    """Input positions of the items that went on to ingestion (those not rejected while parsing)."""
    gone = {e["index"] for e in rejected}
    return [i for i in range(total) if i not in gone]


@router.post(
    "/{asset_type}/add/",
    response_class=Response,
    responses={
        200: {"model": MediaAdded, "description": "Every item was ingested."},
        207: {"model": MediaAdded, "description": "Some items were not: see `errors` (their `ids` are null)."},
    },
    openapi_extra=UPLOAD_BODY,
    dependencies=[requires(Permission.INGEST)],
)
async def add_media(
    asset_type: str, request: Request, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Response:
    """Multipart batch upload of one media type: a ``manifest`` JSON part ``{"items": [{"file"|"url"|"uri",
    "name", "metadata", "relative_path"?}], "set_ids", "overwrite", ...options}`` and one file part per uploaded
    item. Answers 200 when every item was ingested, 207 with per-item ``errors`` when some were not, and the most
    common item error when none was. ``warnings`` lists ingested items with a remark (``duplicate_content``: an
    asset of the organization already has the same bytes). Options: images ``thumbnailize_at_ingest`` +
    ``thumbnail_presets``; see each kind."""
    kind = _media_kind(rt, asset_type)
    started = time.perf_counter()
    upload = await parse_upload(
        request, max_files=kind.max_batch + 1, max_fields=kind.max_batch + 10, max_part_size=MAX_MANIFEST_BYTES,
        max_file_bytes=rt.settings.max_file_bytes, spool_folder=rt.settings.data_dir / "tmp",
    )  # fmt: skip
    form = upload.form
    received = time.perf_counter() - started
    try:
        manifest = await _manifest(form)
        items, rejected = _items(form, manifest, kind, rt.settings.max_file_bytes)
        set_ids = manifest.get("set_ids") or []
        if isinstance(set_ids, str):
            set_ids = [set_ids]
        if not isinstance(set_ids, list) or not all(isinstance(s, str) for s in set_ids):
            raise InvalidArgument("set_ids must be a list of set ids")
        options = {k: v for k, v in manifest.items() if k not in ("items", "set_ids", "overwrite")}
        async with contextlib.AsyncExitStack() as downloads:
            await _download_references(rt, p.scope, items, downloads)
            # ingestion is blocking work (probing, blob and catalog writes): keep it off the event loop
            result = await run_in_threadpool(
                rt.ingest.ingest, p.scope, asset_type, items, list(set_ids), bool(manifest.get("overwrite", True)),
                options,
            )  # fmt: skip
    finally:
        await upload.close()
    answer = _answer(result, rejected, len(manifest["items"]))
    answer.headers["Server-Timing"] = server_timing({"receive": received, **result.timings})
    return answer


def server_timing(stages: dict[str, float]) -> str:
    """A ``Server-Timing`` header value (milliseconds per stage; browsers' network panels and benchmarks read it).
    For an upload: ``receive`` (the body read, spooled and hashed as it arrives), ``probe``, ``store`` (blob
    writes) and ``catalog`` (the one transaction)."""
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in stages.items())


async def _download_references(
    rt: Runtime, scope: Scope, items: list[IncomingItem], downloads: contextlib.AsyncExitStack
) -> None:
    """Download the batch's URL/URI items on the fetch pool (request threads never wait on a remote server); the
    files live until ``downloads`` closes. A failure is kept on its item and reported for that item only."""
    gate = asyncio.Semaphore(rt.settings.fetches_per_org)

    async def one(item: IncomingItem) -> None:
        ref = item.url if item.uri is None else item.uri if item.url is None else None
        if ref is None or item.media is not None:
            return  # several sources or none: ingest reports it
        async with gate:
            try:
                source = await downloads.enter_async_context(rt.sources.aopen(scope, ref))
                item.media, item.prefetched = FileMedia(source.path, item.name), True
            except ServiceError as e:
                item.fetch_error = e

    # a task group, not gather: on an unexpected error the other downloads are cancelled and awaited, so none
    # lands in ``downloads`` after it was closed (its temporary file would stay behind)
    async with asyncio.TaskGroup() as group:
        for item in items:
            group.create_task(one(item))


async def _prefetch(rt: Runtime, doc: dict[str, Any], stack: contextlib.AsyncExitStack) -> Media | None:
    """The original of a referenced asset, downloaded off the request threads (None for uploaded files)."""
    access = doc.get("object_access") or {}
    ref = access.get("url") or access.get("uri")
    if access.get("key") or not ref:
        return None
    source = await stack.enter_async_context(rt.sources.aopen(Scope.of(doc["owner"]), ref))
    return FileMedia(source.path, str(access.get("filename") or doc["id"]))


@router.get(
    "/{asset_type}/{asset_id}/file",
    response_class=Response,
    responses=binary_answer("The original file, with its stored content type.", ORIGINAL_MEDIA_TYPES, ranges=True),
    dependencies=[requires(Permission.READ)],
)
async def media_file(
    asset_type: str,
    asset_id: str,
    request: Request,
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Response:
    """The original file (uploaded, or read from its URL/URI). Uploaded files answer ``Range: bytes=a-b``
    requests with 206 and ``Content-Range`` (``Accept-Ranges: bytes``), so players can seek."""
    _media_kind(rt, asset_type)
    original = await run_in_threadpool(rt.media.original_info, p.scope, asset_type, asset_id)
    headers = {"Content-Disposition": content_disposition("inline", original.filename)}
    if original.key is not None:
        headers["Accept-Ranges"] = "bytes"
        wanted = parse_range(request.headers.get("range"), original.size)
        if wanted is not None:
            start, end = wanted
            headers["Content-Range"] = f"bytes {start}-{end}/{original.size}"
            headers["Content-Length"] = str(end - start + 1)
            pieces = rt.media.read_range(original, start, end)
            return StreamingResponse(pieces, status_code=206, media_type=original.content_type, headers=headers)
        headers["Content-Length"] = str(original.size)
        return StreamingResponse(rt.media.stream_blob(original.key), media_type=original.content_type, headers=headers)
    stack = contextlib.AsyncExitStack()
    try:
        media = await _prefetch(rt, original.doc, stack)
        assert media is not None
        await run_in_threadpool(rt.media.check_reference, asset_type, original.doc, media)
    except BaseException:
        await stack.aclose()
        raise
    headers["Content-Length"] = str(media.size)

    async def referenced() -> AsyncIterator[bytes]:
        async with stack:
            with media.open() as fh:
                while chunk := await run_in_threadpool(fh.read, 1024 * 1024):
                    yield chunk

    return StreamingResponse(referenced(), media_type=original.content_type, headers=headers)


@router.get(
    "/{asset_type}/{asset_id}/thumbnail/{tag}",
    response_class=Response,
    responses=binary_answer("A thumbnail, or a LIDAR rendition (`Content-Encoding: gzip`).", THUMBNAIL_MEDIA_TYPES),
    dependencies=[requires(Permission.READ)],
)
async def media_thumbnail(
    asset_type: str, asset_id: str, tag: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Response:
    """A thumbnail or rendition; presets (images: tiny, small, full_size_png; lidars: skip_1, skip_10, skip_100)
    are made on first request and cached."""
    kind = _media_kind(rt, asset_type)
    doc = await run_in_threadpool(rt.assets.get, p.scope, asset_type, asset_id)
    async with contextlib.AsyncExitStack() as stack:
        prefetched = None
        if tag not in (doc.get("thumbnails") or {}) and tag in kind.thumbnail_presets:
            prefetched = await _prefetch(rt, doc, stack)  # a referenced file: downloaded off the request threads
        try:
            data, content_type = await run_in_threadpool(
                rt.media.thumbnail, p.scope, asset_type, asset_id, tag, prefetched
            )
        except ServiceError as e:
            e.resource = e.resource or asset_type
            raise
    headers = {"Cache-Control": "private, max-age=3600"}
    encoding = kind.thumbnail_encoding(data)
    if encoding is not None:  # e.g. a gzip-compressed LIDAR rendition: browsers and HTTP clients inflate it
        headers["Content-Encoding"] = encoding
    return Response(data, media_type=content_type, headers=headers)
