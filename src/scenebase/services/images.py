"""Image-only work on top of the generic media seam: thumbnail jobs (compress_images) and image properties.

Ingestion, originals and on-request thumbnails of images go through ``services/ingest.py`` and
``services/media.py`` like every other kind (see ``services/kinds/images.py``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from scenebase.constants import ImageProperties
from scenebase.media.budget import DecodeBusy
from scenebase.media.images import THUMBNAIL_PRESETS, ImageDecodeError, image_properties
from scenebase.services.assets import AssetService, parse
from scenebase.services.errors import InvalidArgument, ServiceError
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.kinds.images import MAX_IMAGE_BYTES
from scenebase.services.media import MediaService
from scenebase.storage.scope import Scope

log = logging.getLogger("scenebase.images")

#: asset types whose media are images (objects are crops of images)
IMAGE_LIKE = ("images", "objects")
#: images per catalog read and write in the properties job (``additional_params.batch_size``)
DEFAULT_BATCH, MAX_BATCH = 50, 1000


def batch_size_of(additional_params: Any) -> int:
    """``additional_params["batch_size"]`` checked: an integer in [1, MAX_BATCH] (default DEFAULT_BATCH)."""
    if additional_params is None:
        return DEFAULT_BATCH
    if not isinstance(additional_params, dict):
        raise InvalidArgument("additional_params must be an object", resource="images")
    size = additional_params.get("batch_size", DEFAULT_BATCH)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
        raise InvalidArgument(
            f"additional_params.batch_size must be an integer from 1 to {MAX_BATCH}, not {size!r}", resource="images"
        )
    return size


#: an image whose properties are being computed: (id, timestamp, values to come)
_Pending = tuple[str, str, Future[dict[str, float]]]
#: threads computing image properties in one job: one per core this process may use
PROPERTY_THREADS = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class ImageService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("image_compression", "image_properties_enrichment")

    def __init__(self, assets: AssetService, media: MediaService, jobs: JobService) -> None:
        self.assets = assets
        self.media = media
        self.jobs = jobs

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("image_compression", self._compress_job)
        registry.register("image_properties_enrichment", self._properties_job)

    # ------------------------------------------------------------------ requests

    def compress(
        self,
        scope: Scope,
        ids: list[str],
        desired_shape: list[int] | None,
        thumbnail_tag: str | None,
        use_preset: str | None,
    ) -> str:
        if use_preset is not None:
            if use_preset not in THUMBNAIL_PRESETS:
                raise InvalidArgument(f"unknown preset {use_preset!r}; presets: {sorted(THUMBNAIL_PRESETS)}")
            params: dict[str, Any] = {"ids": ids, "presets": [use_preset]}
        else:
            if not desired_shape or len(desired_shape) < 2 or not thumbnail_tag:
                raise InvalidArgument("give use_preset, or desired_shape (height, width) and thumbnail_tag")
            if any(x <= 0 for x in desired_shape[:2]):
                raise InvalidArgument("desired_shape must be positive")
            params = {"ids": ids, "desired_shape": desired_shape, "thumbnail_tag": thumbnail_tag}
        row = self.jobs.submit(scope, "image_compression", params, description="compress images", asset_type="images")
        return str(row["id"])

    def enrich_properties(
        self,
        scope: Scope,
        asset_type: str,
        ids: list[str] | None,
        search: dict[str, Any] | None,
        properties: list[str] | None,
        additional_params: dict[str, Any] | None,
    ) -> str:
        if asset_type not in IMAGE_LIKE:
            raise InvalidArgument("asset_type must be 'images' or 'objects'")
        if ids is None and search is None:
            raise InvalidArgument("give ids or a search")
        props = properties or list(ImageProperties.VALID)
        unknown = set(props) - set(ImageProperties.VALID)
        if unknown:
            raise InvalidArgument(f"unknown properties {sorted(unknown)}; valid: {list(ImageProperties.VALID)}")
        if search is not None:
            parse(search)  # a malformed query fails here, not in the job
        batch_size_of(additional_params)  # and a bad batch size here, not as an "internal error" in the job
        params = {"asset_type": asset_type, "ids": ids, "search": search, "properties": props,
                  "additional_params": additional_params}  # fmt: skip
        row = self.jobs.submit(
            scope, "image_properties_enrichment", params, description="image properties", asset_type=asset_type
        )
        return str(row["id"])

    # ------------------------------------------------------------------ jobs

    def _compress_job(self, ctx: JobContext) -> dict[str, Any]:
        presets = list(ctx.params.get("presets") or [])
        shape = ctx.params.get("desired_shape")
        tag = ctx.params.get("thumbnail_tag")
        tags: dict[str, tuple[int, ...] | None] = {p: None for p in presets}
        if shape is not None:
            tags[str(tag)] = tuple(int(x) for x in shape)
        ids = self.assets.resolve_ids(ctx.scope, "images", ctx.params.get("ids"), ctx.params.get("search"))
        done, failed = 0, []
        ctx.stage(f"making {sorted(tags)} thumbnails of {len(ids)} images")
        for i, image_id in enumerate(ids):
            try:
                doc = self.assets.get(ctx.scope, "images", image_id)
                self.media.make_thumbnails(ctx.scope, "images", doc, tags)
                done += 1
            except ServiceError as e:
                failed.append(image_id)
                ctx.item_failed(image_id, e.message)
            ctx.progress(100.0 * (i + 1) / max(1, len(ids)))
        return {"thumbnailed": done, "failed": failed}

    def _properties_job(self, ctx: JobContext) -> dict[str, Any]:
        """Properties of every image into its ``aux``. Images are read and computed on a thread pool (decoding and
        the numpy kernels release the GIL, so every core works); the job's thread reads the catalog and writes each
        batch's patches while the pool already computes the next batch."""
        asset_type = ctx.params.get("asset_type", "images")
        properties = list(ctx.params.get("properties") or ImageProperties.VALID)
        ids = self.assets.resolve_ids(ctx.scope, asset_type, ctx.params.get("ids"), ctx.params.get("search"))
        batch_size = batch_size_of(ctx.params.get("additional_params"))
        tally = _Tally()
        ctx.stage(f"computing {properties} for {len(ids)} {asset_type}")
        pool = ThreadPoolExecutor(PROPERTY_THREADS, thread_name_prefix="scenebase-properties")
        try:
            pending: list[_Pending] = []
            for start in range(0, len(ids), batch_size):
                chunk = ids[start : start + batch_size]
                docs = self.assets.get_many(ctx.scope, asset_type, chunk)
                submitted = []
                for image_id in chunk:
                    ctx.check_cancelled()
                    doc = docs.get(image_id)
                    if doc is None or doc.get("owner") != ctx.scope.org_id:
                        tally.fail(ctx, image_id, f"no {asset_type} with this id")
                        continue
                    future = pool.submit(self._properties_of, asset_type, doc, properties)
                    submitted.append((image_id, str(doc["timestamp"]), future))
                self._write_properties(ctx, asset_type, pending, tally)  # the previous batch, while this one runs
                pending = submitted
                ctx.progress(100.0 * min(len(ids), start) / max(1, len(ids)))
            self._write_properties(ctx, asset_type, pending, tally)
        finally:  # a cancelled job does not wait for the images it has not started
            pool.shutdown(wait=True, cancel_futures=True)
        return {"enriched": tally.enriched, "failed": tally.failed, "properties": properties}

    def _properties_of(self, asset_type: str, doc: dict[str, Any], properties: list[str]) -> dict[str, float]:
        with self.media.open_original(asset_type, doc) as media:
            data = media.read_bytes(MAX_IMAGE_BYTES)
        return image_properties(data, properties, name=doc["id"])

    def _write_properties(self, ctx: JobContext, asset_type: str, pending: list[_Pending], tally: _Tally) -> None:
        patches = []
        for image_id, timestamp, future in pending:
            try:
                patches.append({"id": image_id, "timestamp": timestamp, "aux": future.result()})
            except (ImageDecodeError, DecodeBusy, ServiceError) as e:
                tally.fail(ctx, image_id, str(getattr(e, "message", None) or e))
        if patches:
            self.assets.put(ctx.scope, asset_type, patches, mode="merge")
            tally.enriched += len(patches)


@dataclass
class _Tally:
    enriched: int = 0
    failed: list[str] = field(default_factory=list)

    def fail(self, ctx: JobContext, image_id: str, reason: str) -> None:
        self.failed.append(image_id)
        ctx.item_failed(image_id, reason)
