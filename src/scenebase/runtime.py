"""Wires settings to backends and services. One :class:`Runtime` per server or worker process.

Services are built here and register their job handlers here (``register_jobs``); building fails when a job type
that a service submits has no handler. Services never see the runtime: each gets the services it uses.
"""

from __future__ import annotations

import logging

from scenebase.services import diagnostics
from scenebase.services.annotation_export import AnnotationExport
from scenebase.services.annotation_jobs import AnnotationJobs
from scenebase.services.annotations import AnnotationService
from scenebase.services.assets import AssetService
from scenebase.services.cache import OrgCache
from scenebase.services.evaluation import EvaluationService
from scenebase.services.identity import IdentityService
from scenebase.services.images import ImageService
from scenebase.services.ingest import IngestService
from scenebase.services.jobs import JobOwner, JobService
from scenebase.services.kinds import default_kinds
from scenebase.services.lifecycle import AssetLifecycleService
from scenebase.services.media import MediaService
from scenebase.services.objects import ObjectService
from scenebase.services.sets import SetService
from scenebase.services.sources import SourceReader
from scenebase.services.zips import ZipService
from scenebase.settings import Settings
from scenebase.storage.asset_repo import AssetRepo
from scenebase.storage.blobs import BlobStore, open_blob_store
from scenebase.storage.catalog import Catalog
from scenebase.storage.identity_repo import IdentityRepo
from scenebase.storage.job_repo import JobRepo
from scenebase.storage.queue import HueyQueue

log = logging.getLogger("scenebase")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(settings.resolved_catalog_url())
        self.blobs: BlobStore = open_blob_store(settings.resolved_blob_url())
        self.cache = OrgCache()
        self.kinds = default_kinds()
        self.identity = IdentityService(IdentityRepo(self.catalog))
        self.jobs = JobService(
            JobRepo(self.catalog),
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            reaper_interval=settings.reaper_interval_seconds,
        )
        self.queue = HueyQueue(settings.resolved_queue_url(), self.jobs.execute)
        self.jobs.queue = self.queue
        self.sources = SourceReader(settings)
        # configuration bodies (e.g. an imported COCO file's category table) are stored, not searched
        never_indexed = {**self.kinds.never_indexed(), "configs": frozenset({"config"})}
        self.assets = AssetService(AssetRepo(self.catalog, never_indexed=never_indexed), self.cache)
        self.sets = SetService(self.assets, self.jobs)
        self.media = MediaService(self.assets, self.blobs, self.sources, self.kinds)
        self.ingest = IngestService(self.assets, self.blobs, self.sources, self.sets, self.jobs, self.kinds)
        self.images = ImageService(self.assets, self.media, self.jobs)
        self.lifecycle = AssetLifecycleService(self.assets, self.sets, self.blobs, self.kinds)
        self.exports = AnnotationExport(self.assets, self.blobs)
        self.zips = ZipService(self.assets, self.sets, self.media, self.kinds, self.blobs, self.jobs, self.exports)
        self.annotations = AnnotationService(self.assets, self.blobs, self.sources, self.sets, self.jobs)
        self.annotation_jobs = AnnotationJobs(self.assets, self.blobs, self.jobs)
        self.objects = ObjectService(self.assets, self.sets, self.blobs, self.jobs)
        self.evaluation = EvaluationService(self.assets, self.jobs)
        registry = self.jobs.registry
        owners: list[JobOwner] = [self.sets, self.images, self.zips, self.annotation_jobs, self.objects,
                                  self.evaluation]  # fmt: skip
        for owner in owners:
            owner.register_jobs(registry)
        diagnostics.register_jobs(registry)
        registry.verify(
            [*diagnostics.JOB_TYPES, *self.kinds.job_types(), *(t for owner in owners for t in owner.JOB_TYPES)]
        )
        self._started = False

    def start(self, workers: int | None = None, reaper: bool = True) -> str | None:
        """Migrate, bootstrap, start workers and the reaper. Returns a generated admin token, if any."""
        self.catalog.migrate()
        token = self.identity.bootstrap(self.settings.admin_token)
        n = self.settings.workers if workers is None else workers
        if n > 0:
            self.queue.start_workers(n)
        if reaper:
            self.jobs.start_reaper()
        self._started = True
        return token

    def stop(self) -> None:
        self.jobs.stop_reaper()
        self.queue.stop_workers()
        self.sources.close()
        self.catalog.dispose()
        self._started = False
