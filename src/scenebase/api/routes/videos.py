"""``/v1/videos``: video-only jobs (FACTS 10.2-10.4, 15) and streaming of stored renditions. Upload, originals
(with HTTP byte ranges) and poster thumbnails of videos are the generic media routes (``api/routes/media.py``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.responses import content_disposition, parse_range
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import JobStarted, binary_answer, inline_schema
from scenebase.api.schemas.videos import RENDITION_MEDIA_TYPES, VideoFromImagesStarted
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.errors import InvalidArgument, NotFound, PayloadTooLarge
from scenebase.services.identity import Principal
from scenebase.services.media import Original
from scenebase.storage.blobs import BlobNotFound

router = SlashAgnosticRouter(prefix="/v1/videos", tags=["videos"])
#: largest ``timestamp,image_uri`` CSV accepted by make_video_from_image_uris
MAX_CSV_BYTES = 32 * 1024 * 1024


def _no_job_id(job_id: str | None) -> None:
    if job_id is not None:
        raise InvalidArgument("job_id: this server names its jobs itself; leave job_id out", resource="videos")


class CompressBody(BaseModel):
    ids: list[str] = Field(min_length=1)
    desired_shape: list[int] | None = None
    thumbnail_tag: str | None = None
    use_preset: str | None = None
    job_id: str | None = None


@router.post("/compress_videos/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def compress_videos(
    body: CompressBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start a ``video_compression`` job: an H.264 MP4 rendition per video, by preset (``tiny``, ``small``,
    ``full_size``; stored as ``thumbnails.video_<preset>``) or fitting ``desired_shape`` (height, width) under
    ``thumbnail_tag``. Poster thumbnails (tiny, small, full_size_png) need no job: they are made on request."""
    _no_job_id(body.job_id)
    job_id = rt.videos.compress(p.scope, body.ids, body.desired_shape, body.thumbnail_tag, body.use_preset)
    return {"job_id": job_id}


class ConcatenateBody(BaseModel):
    ids: list[str] = Field(min_length=1)
    output_video_id: str
    video_metadata: dict[str, Any] | None = None
    job_id: str | None = None


@router.post("/concatenate_videos/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def concatenate_videos(
    body: ConcatenateBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start a ``video_concatenation`` job: ``ids`` joined in order into the new video ``output_video_id``
    (tagged ``concatenated``, starting when the first one starts, in the sets named by ``video_metadata.sets`` or
    ``video_metadata.set_id``)."""
    _no_job_id(body.job_id)
    job_id = rt.videos.concatenate(p.scope, body.ids, body.output_video_id, body.video_metadata)
    return {"job_id": job_id}


class ExtractBody(BaseModel):
    ids: list[str] = Field(min_length=1)
    frames: list[int] = Field(min_length=1)
    thumbnail_tags: list[str] | None = None


@router.post("/extract_frame_thumbnails/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def extract_frame_thumbnails(
    body: ExtractBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start a ``video_extraction`` job storing ``thumbnails.<tag>_frame_<n>`` for each video and frame number
    (0-based; tags tiny, small, full_size_png; default small and full_size_png)."""
    job_id = rt.videos.extract_frame_thumbnails(p.scope, body.ids, body.frames, body.thumbnail_tags)
    return {"job_id": job_id}


class FromImagesParams(BaseModel):
    width: int
    height: int
    image_format: str
    sensor: str | None = None
    session_uid: str | None = None
    video_id: str | None = None
    tags: list[str] | None = None
    set_id: str | list[str] | None = None
    image_skip_factor: int = 1


FROM_IMAGES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["csv", "params"],
                    "properties": {
                        "csv": {"type": "string", "format": "binary", "description": "Rows `timestamp,image_uri`."},
                        "params": inline_schema(FromImagesParams),
                    },
                },
                "encoding": {"params": {"contentType": "application/json"}, "csv": {"contentType": "text/csv"}},
            }
        },
    }
}


@router.post(
    "/make_video_from_image_uris/",
    response_model=VideoFromImagesStarted,
    openapi_extra=FROM_IMAGES_BODY,
    dependencies=[requires(Permission.INGEST)],
)
async def make_video_from_image_uris(
    request: Request, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Multipart: a ``csv`` file part (rows ``timestamp,image_uri``) and a ``params`` JSON part (width, height,
    image_format, sensor, session_uid, video_id, tags, set_id, image_skip_factor). Starts a ``media_extraction``
    job encoding the images into an H.264 MP4 video; answers ``{"job_id", "video_id"}``."""
    form = await request.form(max_files=1, max_fields=2, max_part_size=1024 * 1024)
    try:
        part = form.get("csv")
        if not isinstance(part, UploadFile):
            raise InvalidArgument("missing 'csv' file part (rows of timestamp,image_uri)", resource="videos")
        if part.size is not None and part.size > MAX_CSV_BYTES:
            raise PayloadTooLarge(f"the CSV is {part.size} bytes; the limit is {MAX_CSV_BYTES}", resource="videos")
        raw = await part.read(MAX_CSV_BYTES + 1)
        if len(raw) > MAX_CSV_BYTES:
            raise PayloadTooLarge(f"the CSV is over the limit of {MAX_CSV_BYTES} bytes", resource="videos")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise InvalidArgument(f"the CSV is not UTF-8 text (byte {e.start})", resource="videos") from None
        params_raw = form.get("params")
        if isinstance(params_raw, UploadFile):
            params_raw = (await params_raw.read(1024 * 1024)).decode("utf-8", "replace")
        try:
            params = FromImagesParams.model_validate(json.loads(params_raw or "null"))
        except (ValueError, TypeError) as e:
            raise InvalidArgument(f"params: {e}", resource="videos") from None
    finally:
        await form.close()
    metadata = {"id": params.video_id, "sensor": params.sensor, "session_uid": params.session_uid,
                "tags": params.tags, "set_id": params.set_id}  # fmt: skip
    job_id, video_id = await run_in_threadpool(
        rt.videos.make_from_images, p.scope, text, params.width, params.height, params.image_format,
        params.image_skip_factor, metadata,
    )  # fmt: skip
    return {"job_id": job_id, "video_id": video_id}


@router.get(
    "/{video_id}/rendition/{tag}",
    response_class=Response,
    responses=binary_answer("The rendition, with its stored content type.", RENDITION_MEDIA_TYPES, ranges=True),
    dependencies=[requires(Permission.READ)],
)
async def video_rendition(
    video_id: str, tag: str, request: Request, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Response:
    """A stored rendition or thumbnail (``video_small``, a custom ``compress_videos`` tag, ``small_frame_12``,
    ...) streamed from the store with HTTP byte ranges (206 + ``Content-Range``), so players can seek in it."""
    doc = await run_in_threadpool(rt.assets.get, p.scope, "videos", video_id)
    entry = (doc.get("thumbnails") or {}).get(tag)
    if not isinstance(entry, dict) or not entry.get("key"):
        made = sorted(doc.get("thumbnails") or {})
        raise NotFound(f"video {doc['id']!r} has no stored rendition {tag!r}; stored: {made}", resource="videos")
    key = str(entry["key"])
    try:
        size = await run_in_threadpool(rt.blobs.size, key)
    except BlobNotFound:
        raise NotFound(f"the file of {doc['id']!r} {tag} is missing from the blob store", resource="videos") from None
    content_type = str(entry.get("content_type") or "application/octet-stream")
    filename = str(entry.get("filename") or f"{doc['id']}_{tag}")
    original = Original(doc, size, content_type, filename, key, None)
    headers = {"Content-Disposition": content_disposition("inline", filename), "Accept-Ranges": "bytes"}
    wanted = parse_range(request.headers.get("range"), size)
    if wanted is not None:
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        pieces = rt.media.read_range(original, start, end)
        return StreamingResponse(pieces, status_code=206, media_type=content_type, headers=headers)
    headers["Content-Length"] = str(size)
    return StreamingResponse(rt.media.stream_blob(key), media_type=content_type, headers=headers)
