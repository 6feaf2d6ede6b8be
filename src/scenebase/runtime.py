"""Wires settings to backends and services. One :class:`Runtime` per server or worker process.

Services are built here and register their job handlers here (``register_jobs``); building fails when a job type
that a service submits has no handler. Services never see the runtime: each gets the services it uses.
"""

from __future__ import annotations

import logging

from scenebase.media.budget import DECODE_BUDGET
from scenebase.services import diagnostics
from scenebase.services.annotation_export import AnnotationExport
from scenebase.services.annotation_jobs import AnnotationJobs
from scenebase.services.annotations import AnnotationService
from scenebase.services.assets import AssetService
from scenebase.services.cache import OrgCache
from scenebase.services.embedding_maps import EmbeddingMapService
from scenebase.services.embeddings import EmbeddingService
from scenebase.services.evaluation import EvaluationService
from scenebase.services.identity import IdentityService
from scenebase.services.images import ImageService
from scenebase.services.ingest import IngestService
from scenebase.services.jobs import JobOwner, JobService
from scenebase.services.kinds import default_kinds
from scenebase.services.lidars import LidarService
from scenebase.services.lifecycle import AssetLifecycleService
from scenebase.services.media import MediaService
from scenebase.services.objects import ObjectService
from scenebase.services.session_enrichments import GeoEnricher, OpenMeteoArchive
from scenebase.services.session_timeline import TimelineService
from scenebase.services.sessions import SessionService
from scenebase.services.sets import SetService
from scenebase.services.similarity import SimilarityService
from scenebase.services.sources import SourceReader
from scenebase.services.sweeper import Sweeper
from scenebase.services.video_sessions import VideoSessionService
from scenebase.services.videos import VideoService
from scenebase.services.zips import ZipService
from scenebase.settings import Settings
from scenebase.storage.asset_repo import AssetRepo
from scenebase.storage.blobs import BlobStore, open_blob_store
from scenebase.storage.catalog import Catalog
from scenebase.storage.embedding_repo import EmbeddingRepo
from scenebase.storage.identity_repo import IdentityRepo
from scenebase.storage.job_repo import JobRepo
from scenebase.storage.queue import HueyQueue
from scenebase.storage.session_repo import SessionRepo
from scenebase.storage.vectors import open_vector_index

log = logging.getLogger("scenebase")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # one budget per process: the last runtime built in a process sizes it (one per server process in practice)
        DECODE_BUDGET.configure(
            settings.decode_memory_bytes, settings.decodes_per_process, settings.decode_wait_seconds
        )
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
            max_running_per_org=settings.job_max_running_per_org or None,
            stop_grace_seconds=settings.job_stop_grace_seconds,
        )
        self.queue = HueyQueue(settings.resolved_queue_url(), self.jobs.execute)
        self.jobs.queue = self.queue
        self.sources = SourceReader(settings)
        # configuration bodies (e.g. an imported COCO file's category table) are stored, not searched
        never_indexed = {
            **self.kinds.never_indexed(),
            "configs": frozenset({"config"}),
        }
        repo = AssetRepo(self.catalog, never_indexed=never_indexed, nested=settings.nested_field_map())
        self.assets = AssetService(repo, self.cache)
        self.sets = SetService(self.assets, self.jobs)
        self.media = MediaService(self.assets, self.blobs, self.sources, self.kinds)
        self.ingest = IngestService(self.assets, self.blobs, self.sources, self.sets, self.jobs, self.kinds)
        self.images = ImageService(self.assets, self.media, self.jobs)
        self.lifecycle = AssetLifecycleService(self.assets, self.sets, self.blobs, self.kinds)
        self.lidars = LidarService(self.assets, self.media, self.jobs, self.kinds)
        self.exports = AnnotationExport(self.assets, self.blobs)
        self.zips = ZipService(self.assets, self.sets, self.media, self.kinds, self.blobs, self.jobs, self.exports,
                               settings.data_dir / "tmp")  # fmt: skip
        self.annotation_jobs = AnnotationJobs(self.assets, self.blobs, self.jobs)
        self.evaluation = EvaluationService(self.assets, self.jobs)
        self.videos = VideoService(self.assets, self.media, self.ingest, self.sets, self.jobs, self.blobs, self.sources,
                                   self.kinds, settings.data_dir / "tmp")  # fmt: skip
        session_repo = SessionRepo(self.catalog)
        weather = OpenMeteoArchive(settings.weather_url) if settings.weather_url else None
        self.timeline = TimelineService(self.assets, session_repo, self.jobs, GeoEnricher(weather),
                                        debounce_seconds=settings.session_resolution_debounce_seconds,
                                        cache_bytes=settings.session_column_cache_mb * 1024 * 1024)  # fmt: skip
        self.sessions = SessionService(self.assets, session_repo, self.timeline, self.sets, self.lifecycle, self.jobs)
        self.objects = ObjectService(self.assets, self.sets, self.blobs, self.jobs, self.sessions)
        self.annotations = AnnotationService(self.assets, self.blobs, self.sources, self.sets, self.jobs, self.objects)
        self.sweeper = Sweeper(
            self.catalog, self.blobs, settings.data_dir, settings.sweep_grace_seconds, settings.sweep_interval_seconds
        )
        self.video_sessions = VideoSessionService(self.assets, self.sessions, self.timeline, self.jobs)
        self.embeddings = EmbeddingService(self.assets, open_vector_index(self.catalog, settings.data_dir), self.jobs,
                                           EmbeddingRepo(self.catalog))  # fmt: skip
        self.lifecycle.embeddings = self.embeddings
        self.similarity = SimilarityService(self.assets, self.embeddings, self.jobs)
        self.embedding_maps = EmbeddingMapService(self.assets, self.embeddings, self.similarity, self.sets, self.media,
                                                  self.blobs, self.jobs)  # fmt: skip
        registry = self.jobs.registry
        owners: list[JobOwner] = [
            self.sets,
            self.images,
            self.zips,
            self.videos,
            self.timeline,
            self.sessions,
            self.video_sessions,
            self.lidars,
            self.annotation_jobs,
            self.objects,
            self.evaluation,
            self.embeddings,
            self.similarity,
            self.embedding_maps,
        ]
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
        self.jobs.resume()
        if n > 0:
            self.queue.start_workers(n)
        if reaper:
            self.jobs.start_reaper()
            self.sweeper.start()
        self._started = True
        return token

    def stop(self) -> None:
        self.sweeper.stop()
        self.jobs.stop_reaper()
        self.queue.stop_workers(timeout=0)  # no new tasks; the running jobs get the grace period below
        self.jobs.shutdown()
        self.queue.stop_workers()
        self.sources.close()
        self.catalog.dispose()
        self._started = False
