"""Image ingestion (uploads and references), bytes, thumbnails and image-property enrichment."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from scenebase.constants import ImagePreprocesses, ImageProperties
from scenebase.domain.ids import new_id, standardize_id
from scenebase.media.images import (
    THUMBNAIL_PRESETS,
    ImageDecodeError,
    content_type_for,
    custom_thumbnail,
    image_properties,
    preset_thumbnail,
    probe_image,
)
from scenebase.services.assets import AssetService, normalize_timestamp
from scenebase.services.errors import InvalidArgument, NotFound, ServiceError, UnsupportedMedia
from scenebase.services.fetch_policy import display_ref
from scenebase.services.jobs import JobContext, JobService, job_handler
from scenebase.services.sources import SourceReader, reference_name
from scenebase.storage.blobs import BlobNotFound, BlobStore
from scenebase.storage.scope import Scope

if TYPE_CHECKING:
    from scenebase.services.sets import SetService

log = logging.getLogger("scenebase.images")

#: metadata the server derives; a client cannot set these
DERIVED = frozenset({"width", "height", "format", "object_access", "thumbnails", "owner", "media_type"})
#: metadata a client may send with an image
ACCEPTED = frozenset(
    {"id", "timestamp", "sensor", "session_uid", "aux", "tags", "preprocesses", "annotations", "annotations_meta",
     "sets", "geolocation", "enrichments"}
)  # fmt: skip
#: what ``overwrite=False`` may add to an existing image (FACTS 10.1)
MERGE_ON_NO_OVERWRITE = ("sets", "aux", "preprocesses", "annotations", "annotations_meta")


@dataclass
class IncomingImage:
    index: int
    name: str
    meta: dict[str, Any]
    data: bytes | None = None
    url: str | None = None
    uri: str | None = None
    #: the referenced file, already downloaded by the caller (off the request threads), or why that failed
    fetched: Path | None = None
    fetch_error: ServiceError | None = None


@dataclass
class IngestResult:
    ids: list[str | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    job_id: str | None = None


class ImageService:
    def __init__(
        self, assets: AssetService, blobs: BlobStore, sources: SourceReader, sets: SetService, jobs: JobService
    ) -> None:
        self.jobs = jobs
        self.assets = assets
        self.blobs = blobs
        self.sources = sources
        self.sets = sets
        # on-the-fly thumbnails: concurrent first requests for one (image, tag) make and store it once
        self._thumb_locks = [threading.Lock() for _ in range(64)]

    # ------------------------------------------------------------------ ingestion

    def _validate_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        bad = set(meta) & DERIVED
        if bad:
            raise InvalidArgument(f"{sorted(bad)} are computed by the server and cannot be set")
        unknown = set(meta) - ACCEPTED
        if unknown:
            raise InvalidArgument(f"unknown image metadata {sorted(unknown)}; put custom fields under 'aux'")
        if "aux" in meta and meta["aux"] is not None and not isinstance(meta["aux"], dict):
            raise InvalidArgument("aux must be an object")
        for key in ("tags", "preprocesses", "sets"):
            value = meta.get(key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise InvalidArgument(f"{key} must be a list of strings")
        for key in ("sensor", "session_uid"):
            if meta.get(key) is not None and not isinstance(meta[key], str):
                raise InvalidArgument(f"{key} must be a string")
        pre = meta.get("preprocesses") or []
        unknown_pre = set(pre) - {ImagePreprocesses.NORMALIZE_THUMBNAIL_COLORS}
        if unknown_pre:
            raise InvalidArgument(f"unknown preprocesses {sorted(unknown_pre)}")
        out = {k: v for k, v in meta.items() if v is not None}
        if "id" in out:
            if not isinstance(out["id"], str) or not out["id"].strip():
                raise InvalidArgument("id must be a non-empty string")
            out["id"] = standardize_id(out["id"])
        out["timestamp"] = normalize_timestamp(out.get("timestamp"))
        return out

    def ingest(
        self,
        scope: Scope,
        items: list[IncomingImage],
        set_ids: list[str],
        overwrite: bool = True,
        thumbnailize_at_ingest: bool = False,
        thumbnail_presets: tuple[str, ...] = ("small",),
    ) -> IngestResult:
        """Ingest a batch. Bad items are reported by index and name; good ones are written in one transaction."""
        set_ids = self.sets.check_writable(scope, [standardize_id(s) for s in set_ids], "images")
        result = IngestResult(ids=[None] * len(items))
        prepared: list[tuple[int, dict[str, Any], bytes | None]] = []
        seen: set[str] = set()
        for pos, item in enumerate(items):
            try:
                meta = self._validate_meta(item.meta)
                sources = [s for s in (item.data, item.url, item.uri) if s is not None]
                if len(sources) != 1:
                    raise InvalidArgument("give exactly one of image path/bytes, url and uri")
                if item.data is not None:
                    data: bytes | None = item.data
                    access: dict[str, Any] = {"filename": item.name}
                else:
                    if item.fetch_error is not None:
                        raise item.fetch_error
                    ref = self.sources.check(scope, item.url or item.uri or "")
                    data = item.fetched.read_bytes() if item.fetched is not None else self.sources.read(scope, ref)
                    access = {"url": ref} if item.url else {"uri": ref}
                    access["filename"] = reference_name(ref)
                if not data:
                    raise UnsupportedMedia("empty file")
                try:
                    info = probe_image(data, item.name)
                except ImageDecodeError as e:
                    raise UnsupportedMedia(e.problem) from None
                meta.setdefault("id", new_id())
                if meta["id"] in seen:
                    raise InvalidArgument(f"id {meta['id']!r} appears twice in this batch")
                seen.add(meta["id"])
                doc = {
                    **meta,
                    "media_type": "image",
                    "width": info.width,
                    "height": info.height,
                    "format": info.format,
                    "object_access": access,
                    "thumbnails": {},
                    "sets": sorted(set(meta.get("sets", [])) | set(set_ids)),
                }
                doc["sets"] = [standardize_id(s) for s in doc["sets"]]
                prepared.append((pos, doc, data if item.data is not None else None))
            except ServiceError as e:
                result.errors.append({"index": item.index, "name": item.name, "code": e.code, "error": e.message,
                                      "status": e.http_status})  # fmt: skip
        if not prepared:
            return result

        existing = self.assets.get_many(scope, "images", [d["id"] for _, d, _ in prepared])
        writes: list[dict[str, Any]] = []
        new_blobs: list[str] = []
        old_blobs: list[str] = []
        merge_only: list[dict[str, Any]] = []
        try:
            for _pos, doc, data in prepared:
                old = existing.get(doc["id"])
                if old is not None and old.get("owner") != scope.org_id:
                    old = None  # a shared organization's image: ours is a separate document
                if old is not None and not overwrite:
                    patch = {k: doc[k] for k in MERGE_ON_NO_OVERWRITE if k in doc}
                    merge_only.append({"id": doc["id"], "timestamp": old["timestamp"], **patch})
                    continue
                if data is not None:
                    key = f"images/{new_id()}.{file_extension(doc['format'])}"
                    self.blobs.put(key, data, content_type_for(doc["format"]))
                    new_blobs.append(key)
                    doc["object_access"]["key"] = key
                if old is not None:
                    old_key = (old.get("object_access") or {}).get("key")
                    if old_key:
                        old_blobs.append(old_key)
                    old_blobs.extend(t.get("key") for t in (old.get("thumbnails") or {}).values() if t.get("key"))
                writes.append(doc)
            with self.assets.repo.catalog.write() as conn:  # one transaction: all of the batch or nothing
                # set membership survives a re-upload: unioned with the stored list under the write's row lock
                stored = self.assets.put_in(conn, scope, "images", writes, "replace", keep_lists=("sets",))
                stored += self.assets.put_in(conn, scope, "images", merge_only, "merge")
            self.assets.written(scope, "images")
        except BaseException:
            for key in new_blobs:
                self.blobs.delete(key)
            raise
        for key in old_blobs:
            self.blobs.delete(key)
        by_id = {d["id"] for d in stored}
        for pos, doc, _ in prepared:
            if doc["id"] in by_id:
                result.ids[pos] = doc["id"]
        if thumbnailize_at_ingest and writes:
            row = self.jobs.submit(
                scope, "image_compression", {"ids": [d["id"] for d in writes], "presets": list(thumbnail_presets)},
                description="thumbnails at ingest",
            )  # fmt: skip
            result.job_id = str(row["id"])
        return result

    # ------------------------------------------------------------------ bytes and thumbnails

    def original(self, scope: Scope, image_id: str) -> tuple[bytes, str, dict[str, Any]]:
        doc = self.assets.get(scope, "images", image_id)
        return self.read_original(doc), content_type_for(doc["format"]), doc

    def read_original(self, doc: dict[str, Any]) -> bytes:
        access = doc.get("object_access") or {}
        try:
            if access.get("key"):
                return self.blobs.get(access["key"])
        except BlobNotFound:
            raise NotFound(f"the file of image {doc['id']!r} is missing from the blob store") from None
        ref = access.get("url") or access.get("uri")
        if not ref:
            raise NotFound(f"image {doc['id']!r} has no file")
        # the owner's roots and buckets apply, whoever reads (a shared image was checked against them at ingest)
        return self._still_the_image(doc, ref, self.sources.read(Scope.of(doc["owner"]), ref))

    async def aread_original(self, doc: dict[str, Any]) -> bytes:
        """:meth:`read_original` for async routes: a referenced file is downloaded off the request threads."""
        access = doc.get("object_access") or {}
        ref = access.get("url") or access.get("uri")
        if access.get("key") or not ref:
            return await anyio.to_thread.run_sync(self.read_original, doc)
        return self._still_the_image(doc, ref, await self.sources.aread(Scope.of(doc["owner"]), ref))

    def _still_the_image(self, doc: dict[str, Any], ref: str, data: bytes) -> bytes:
        """A referenced file is read again each time: serve it only if it is still an image of the probed format."""
        try:
            fmt = probe_image(data, doc["id"]).format
        except ImageDecodeError as e:
            raise UnsupportedMedia(f"{display_ref(ref)} no longer holds a valid image: {e.problem}") from None
        if fmt != doc.get("format"):
            raise UnsupportedMedia(f"{display_ref(ref)} now holds a {fmt} image, not the {doc.get('format')} ingested")
        return data

    def _cached_thumbnail(self, doc: dict[str, Any], tag: str) -> tuple[bytes, str] | None:
        thumb = (doc.get("thumbnails") or {}).get(tag)
        if thumb and thumb.get("key"):
            try:
                return self.blobs.get(thumb["key"]), content_type_for(thumb.get("format", "JPEG"))
            except BlobNotFound:
                pass
        return None

    def thumbnail(self, scope: Scope, image_id: str, tag: str, original: bytes | None = None) -> tuple[bytes, str]:
        """``original``: the image's bytes when the caller already read them (async routes read URLs themselves)."""
        doc = self.assets.get(scope, "images", image_id)
        cached = self._cached_thumbnail(doc, tag)
        if cached is not None:
            return cached
        if tag not in THUMBNAIL_PRESETS:
            raise NotFound(f"image {image_id!r} has no thumbnail {tag!r}; presets: {sorted(THUMBNAIL_PRESETS)}")
        with self._thumb_locks[hash((doc["owner"], doc["id"], tag)) % len(self._thumb_locks)]:
            doc = self.assets.get(scope, "images", image_id)  # a concurrent request may have made it meanwhile
            cached = self._cached_thumbnail(doc, tag)
            if cached is not None:
                return cached
            data, fmt = self.make_thumbnails(scope, doc, {tag: None}, original)[tag]
        return data, content_type_for(fmt)

    def make_thumbnails(
        self,
        scope: Scope,
        doc: dict[str, Any],
        tags: dict[str, tuple[int, ...] | None],
        original: bytes | None = None,
    ) -> dict[str, tuple[bytes, str]]:
        """Make and store thumbnails ``tag -> desired_shape`` (None: the preset of that name)."""
        if original is None:
            original = self.read_original(doc)
        normalize = ImagePreprocesses.NORMALIZE_THUMBNAIL_COLORS in (doc.get("preprocesses") or [])
        out: dict[str, tuple[bytes, str]] = {}
        entries: dict[str, Any] = {}
        for tag, shape in tags.items():
            try:
                if shape is None:
                    data, w, h, fmt = preset_thumbnail(original, tag, normalize, name=doc["id"])
                else:
                    data, w, h, fmt = custom_thumbnail(original, shape, normalize, name=doc["id"])
            except ImageDecodeError as e:
                raise UnsupportedMedia(e.problem) from None
            ext = file_extension(fmt)
            key = f"thumbnails/{new_id()}.{ext}"
            self.blobs.put(key, data, content_type_for(fmt))
            entries[tag] = {"resolution": {"height": h, "width": w}, "filename": f"{doc['id']}_{tag}.{ext}",
                            "key": key, "format": fmt}  # fmt: skip
            out[tag] = (data, fmt)
        old = doc.get("thumbnails") or {}
        self.assets.put(
            Scope.of(doc["owner"], username=scope.username), "images",
            [{"id": doc["id"], "timestamp": doc["timestamp"], "thumbnails": entries}], mode="merge",
        )  # fmt: skip
        for tag in entries:
            if old.get(tag, {}).get("key"):
                self.blobs.delete(old[tag]["key"])
        return out


def file_extension(fmt: str) -> str:
    """The extension scenebase writes for a probed format."""
    return {"JPEG": "jpg", "PNG": "png", "TIFF": "tiff"}[fmt]


@job_handler("image_compression")
def compress_images_job(ctx: JobContext) -> dict[str, Any]:
    rt = ctx.runtime
    presets = list(ctx.params.get("presets") or [])
    shape = ctx.params.get("desired_shape")
    tag = ctx.params.get("thumbnail_tag")
    tags: dict[str, tuple[int, ...] | None] = {p: None for p in presets}
    if shape is not None:
        tags[str(tag)] = tuple(int(x) for x in shape)
    ids = rt.assets.resolve_ids(ctx.scope, "images", ctx.params.get("ids"), ctx.params.get("search"))
    done, failed = 0, []
    ctx.stage(f"making {sorted(tags)} thumbnails of {len(ids)} images")
    for i, image_id in enumerate(ids):
        try:
            doc = rt.assets.get(ctx.scope, "images", image_id)
            rt.images.make_thumbnails(ctx.scope, doc, tags)
            done += 1
        except ServiceError as e:
            failed.append(image_id)
            ctx.note(f"{image_id}: {e.message}")
        ctx.progress(100.0 * (i + 1) / max(1, len(ids)))
    return {"thumbnailed": done, "failed": failed}


@job_handler("image_properties_enrichment")
def image_properties_job(ctx: JobContext) -> dict[str, Any]:
    rt = ctx.runtime
    asset_type = ctx.params.get("asset_type", "images")
    properties = list(ctx.params.get("properties") or ImageProperties.VALID)
    ids = rt.assets.resolve_ids(ctx.scope, asset_type, ctx.params.get("ids"), ctx.params.get("search"))
    batch_size = int((ctx.params.get("additional_params") or {}).get("batch_size", 50))
    enriched, failed = 0, []
    ctx.stage(f"computing {properties} for {len(ids)} {asset_type}")
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        docs = rt.assets.get_many(ctx.scope, asset_type, chunk)
        patches = []
        for image_id in chunk:
            doc = docs.get(image_id)
            if doc is None or doc.get("owner") != ctx.scope.org_id:
                failed.append(image_id)
                ctx.note(f"{image_id}: not found")
                continue
            try:
                values = image_properties(rt.images.read_original(doc), properties, name=image_id)
            except (ImageDecodeError, ServiceError) as e:
                failed.append(image_id)
                ctx.note(f"{image_id}: {getattr(e, 'message', None) or e}")
                continue
            patches.append({"id": image_id, "timestamp": doc["timestamp"], "aux": values})
        if patches:
            rt.assets.put(ctx.scope, asset_type, patches, mode="merge")
            enriched += len(patches)
        ctx.progress(100.0 * min(len(ids), start + batch_size) / max(1, len(ids)))
    return {"enriched": enriched, "failed": failed, "properties": properties}
