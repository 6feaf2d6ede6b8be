"""LIDAR-only work on top of the generic media seam: the ``lidar_compression`` job (compress_lidars, and the one
every ingest starts, FACTS 10.5) that stores the decimated renditions ``thumbnails.skip_<s>``.

Ingestion, originals and on-request renditions go through ``services/ingest.py`` and ``services/media.py`` like
every other kind (see ``services/kinds/lidars.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar

from scenebase.domain.ids import standardize_id
from scenebase.services.assets import AssetService
from scenebase.services.errors import InvalidArgument, ServiceError, UnsupportedMedia
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.kinds import KindRegistry, MediaError, Rendition
from scenebase.services.kinds.lidars import (
    DEFAULT_SKIP_FACTORS,
    LidarKind,
    rendition_problem,
    rendition_tag,
    skip_factors_of,
)
from scenebase.services.media import MediaService
from scenebase.storage.scope import Scope

log = logging.getLogger("scenebase.lidars")

#: ids one compress_lidars request may name (the job reads and updates their documents in batches of BATCH)
MAX_IDS = 100_000
BATCH = 100


class LidarService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("lidar_compression",)

    def __init__(self, assets: AssetService, media: MediaService, jobs: JobService, kinds: KindRegistry) -> None:
        self.assets = assets
        self.media = media
        self.jobs = jobs
        kind = kinds.get("lidars")
        if not isinstance(kind, LidarKind):
            raise TypeError(f"the 'lidars' kind must be a LidarKind, not {type(kind).__name__}")
        self.kind = kind

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("lidar_compression", self._compress_job)

    # ------------------------------------------------------------------ requests

    def compress(
        self, scope: Scope, ids: list[str], skip_factors: list[int] | None, gzip_compress: bool = True
    ) -> dict[str, Any]:
        """Queue a ``lidar_compression`` job making ``skip_<s>`` renditions of ``ids``; returns the job row."""
        if not ids or len(ids) > MAX_IDS:
            raise InvalidArgument(f"ids must name 1 to {MAX_IDS} LIDARs, got {len(ids)}", resource="lidars")
        if not all(isinstance(i, str) and i.strip() for i in ids):
            raise InvalidArgument("ids must be non-empty strings", resource="lidars")
        factors = skip_factors_of(list(DEFAULT_SKIP_FACTORS) if skip_factors is None else skip_factors)
        params = {"ids": list(dict.fromkeys(standardize_id(i) for i in ids)), "skip_factors": factors,
                  "gzip_compress": bool(gzip_compress)}  # fmt: skip
        return self.jobs.submit(
            scope, "lidar_compression", params, description=f"LIDAR renditions {factors}", asset_type="lidars"
        )

    # ------------------------------------------------------------------ the job

    def _compress_job(self, ctx: JobContext) -> dict[str, Any]:
        ids = [str(i) for i in ctx.params.get("ids") or []]
        factors = skip_factors_of(ctx.params.get("skip_factors") or list(DEFAULT_SKIP_FACTORS))
        gzip_compress = bool(ctx.params.get("gzip_compress", True))
        compressed: list[str] = []
        failed: list[str] = []
        refused: dict[str, list[str]] = {}
        ctx.stage(f"making {[rendition_tag(s) for s in factors]} of {len(ids)} LIDARs")

        def rendered(chunk: list[str]) -> Iterator[tuple[dict[str, Any], dict[str, Rendition]]]:
            docs = self.assets.get_many(ctx.scope, "lidars", chunk)
            for lidar_id in chunk:
                ctx.check_cancelled()
                doc = docs.get(lidar_id)
                if doc is None or doc.get("owner") != ctx.scope.org_id:
                    failed.append(lidar_id)
                    ctx.note(f"{lidar_id}: not found")
                    continue
                wanted = []
                for s in factors:
                    problem = rendition_problem(doc, s)
                    if problem is None:
                        wanted.append(s)
                    else:  # too large for a rendition: the other factors are still made
                        refused.setdefault(lidar_id, []).append(rendition_tag(s))
                        ctx.note(f"{lidar_id}: {problem}")
                if not wanted:
                    continue
                try:
                    renditions = self._render(doc, wanted, gzip_compress)
                except ServiceError as e:
                    failed.append(lidar_id)
                    ctx.note(f"{lidar_id}: {e.message}")
                    continue
                yield doc, renditions

        for start in range(0, len(ids), BATCH):
            # one catalog write per batch; the renditions become blobs one asset at a time
            stored = self.media.store_renditions_many(ctx.scope, "lidars", rendered(ids[start : start + BATCH]))
            compressed.extend(stored)
            ctx.progress(100.0 * min(len(ids), start + BATCH) / max(1, len(ids)))
        return {"compressed": len(compressed), "failed": failed, "refused": refused,
                "skip_factors": factors, "gzip_compress": gzip_compress}  # fmt: skip

    def _render(self, doc: dict[str, Any], factors: list[int], gzip_compress: bool) -> dict[str, Rendition]:
        with self.media.open_original("lidars", doc) as media:
            try:
                return self.kind.renditions(media, doc, factors, gzip_compress)
            except MediaError as e:
                raise UnsupportedMedia(f"{doc['id']}: {e.problem}", resource="lidars") from None
