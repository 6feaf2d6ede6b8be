"""Jobs: submission, execution with leases, cancellation, and the reaper that recovers dead workers.

The catalog's ``jobs`` table is the source of truth; the queue only carries job ids. A worker claims a
job (queued → running) with a random claim token and a lease that a heartbeat thread renews every third of
``job_lease_seconds``. If the worker process dies, the lease expires and any server's or worker's reaper
either re-queues the job (while ``attempts < max_attempts``) or marks it ``aborted`` with a note.
Handlers therefore must be idempotent: a retried job may redo work a dead worker had begun.

Job types are owned by services: each service registers its handlers in the :class:`JobRegistry` when the
runtime is built (``register_jobs``), and the runtime refuses to start when a job type that some service submits
has no handler. A handler receives a :class:`JobContext` (scope, parameters, progress, notes) and reaches the
services it needs through its own object, never through the runtime.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from scenebase.constants import JobConstants
from scenebase.domain.ids import new_id
from scenebase.services.errors import Conflict, InvalidArgument, NotFound, ServiceError
from scenebase.storage.job_repo import ABORTED, CLIENT_DRIVEN, FINISHED, QUEUED, RUNNING, TERMINAL, JobRepo
from scenebase.storage.scope import Scope

if TYPE_CHECKING:
    from scenebase.storage.queue import JobQueue

log = logging.getLogger("scenebase.jobs")


class JobCancelled(Exception):
    """Raised inside a handler when its job was cancelled or taken away from this worker."""


@dataclass
class JobContext:
    """What a handler gets: its parameters, the owner's scope, and ways to report progress."""

    job: dict[str, Any]
    scope: Scope
    _service: JobService
    _claim: str
    _last_write: float = 0.0
    _last_progress: float = -100.0
    _lost: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> str:
        return str(self.job["id"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.job.get("params") or {})

    def progress(self, percent: float, stage: str | None = None, force: bool = False) -> None:
        """Report progress (0-100). Writes are throttled to steps of 1 % or 0.5 s; raises JobCancelled."""
        if self._lost.is_set():
            raise JobCancelled(self.id)
        percent = max(0.0, min(100.0, float(percent)))
        now = time.monotonic()
        if not force and stage is None and percent - self._last_progress < 1.0 and now - self._last_write < 0.5:
            return
        values: dict[str, Any] = {"progress": percent}
        if stage is not None:
            values["stage"] = stage[:1024]
        if not self._service.repo.system_update_claimed(self.id, self._claim, **values):
            self._lost.set()
            raise JobCancelled(self.id)
        self._last_write, self._last_progress = now, percent

    def stage(self, text: str) -> None:
        self.progress(self._last_progress if self._last_progress >= 0 else 0.0, stage=text)

    def note(self, text: str) -> None:
        self._service.repo.append_note(None, self.id, text)

    def check_cancelled(self) -> None:
        """Raise JobCancelled when the job was cancelled or taken away; for loops between progress reports."""
        if self._lost.is_set():
            raise JobCancelled(self.id)


JobHandler = Callable[[JobContext], "dict[str, Any] | None"]


class JobOwner(Protocol):
    """A service that runs jobs: it names the job types it submits and registers a handler for each."""

    JOB_TYPES: ClassVar[tuple[str, ...]]

    def register_jobs(self, registry: JobRegistry) -> None: ...


class JobRegistry:
    """Which function runs each job type. Filled by the services when the runtime is built."""

    def __init__(self) -> None:
        self._handlers: dict[str, JobHandler] = {}

    def register(self, job_type: str, handler: JobHandler) -> None:
        if job_type not in JobConstants.VALID_JOB_TYPES:
            raise ValueError(f"unknown job type {job_type!r}")
        if job_type in self._handlers:
            raise ValueError(f"job type {job_type!r} already has a handler")
        self._handlers[job_type] = handler

    def get(self, job_type: str | None) -> JobHandler | None:
        return self._handlers.get(job_type or "")

    def __contains__(self, job_type: object) -> bool:
        return job_type in self._handlers

    def job_types(self) -> list[str]:
        return sorted(self._handlers)

    def verify(self, required: Iterable[str]) -> None:
        """Fail at startup, not at the first submission, when a job type some service submits has no handler."""
        missing = sorted(set(required) - set(self._handlers))
        if missing:
            raise RuntimeError(f"job types without a handler: {missing}; register them in the owning service")


def job_document(row: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a job (FACTS 8.1)."""

    def iso(t: float | None) -> str | None:
        if t is None:
            return None
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}+00:00"

    return {
        "id": row["id"],
        "status": row["status"],
        "progress": float(row["progress"] or 0.0),
        "description": row.get("description"),
        "stage": row.get("stage"),
        "notes": list(row.get("notes") or []),
        "job_type": row.get("job_type"),
        "asset_type": row.get("asset_type"),
        "asset_id": row.get("asset_id") or "undefined",
        "user": row.get("user"),
        "owner": row.get("owner"),
        "tags": list(row.get("tags") or []),
        "attempts": row.get("attempts", 0),
        "result": row.get("result"),
        "created_at": iso(row.get("created_at")),
        "updated_at": iso(row.get("updated_at")),
        "started_at": iso(row.get("started_at")),
        "finished_at": iso(row.get("finished_at")),
    }


class JobService:
    def __init__(
        self,
        repo: JobRepo,
        lease_seconds: float = 30.0,
        max_attempts: int = 2,
        reaper_interval: float = 5.0,
    ) -> None:
        self.repo = repo
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.reaper_interval = reaper_interval
        self.queue: JobQueue | None = None
        self.registry = JobRegistry()
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self._reaper_stop = threading.Event()
        self._reaper: threading.Thread | None = None

    # ---- API side ----

    def submit(
        self,
        scope: Scope,
        job_type: str,
        params: dict[str, Any] | None = None,
        description: str | None = None,
        asset_type: str | None = None,
        asset_id: str | None = None,
        tags: list[str] | None = None,
    ) -> dict[str, Any]:
        """Record a job and queue it for a worker."""
        if job_type not in self.registry:
            raise InvalidArgument(f"job type {job_type!r} cannot run on this server", resource="jobs")
        if self.queue is None:
            raise RuntimeError("job queue not configured")
        row = self.repo.create(
            scope,
            new_id(),
            job_type=job_type,
            params=params or {},
            description=description,
            asset_type=asset_type,
            asset_id=asset_id,
            tags=tags or [],
            max_attempts=self.max_attempts,
        )
        self.queue.enqueue(row["id"])
        return row

    def create_record(self, scope: Scope, **fields: Any) -> dict[str, Any]:
        """A job record that the client drives itself (AM ``POST /jobs/add/``); nothing is queued."""
        job_type = fields.get("job_type")
        if job_type is not None and job_type not in JobConstants.VALID_JOB_TYPES:
            raise InvalidArgument(f"invalid job type {job_type!r}")
        notes = fields.pop("notes", None)
        row = self.repo.create(scope, new_id(), **fields, driven_by=CLIENT_DRIVEN)
        if notes:
            self.repo.append_note(scope, row["id"], str(notes))
        return row

    def get(self, scope: Scope, job_id: str) -> dict[str, Any]:
        row = self.repo.get(scope, job_id)
        if row is None:
            raise NotFound(f"job {job_id!r} not found")
        return row

    def set_fields(self, scope: Scope, job_id: str, **values: Any) -> dict[str, Any]:
        """Client-driven updates (progress, stage, status). Finished/aborted jobs are frozen.

        Only records created with :meth:`create_record` take them: a queued server job moved to ``running`` here
        would hold no lease, so no worker would ever claim it and no reaper would ever release it.
        """
        row = self.get(scope, job_id)
        if row["owner"] != scope.org_id:
            raise NotFound(f"job {job_id!r} not found")
        if row["driven_by"] != CLIENT_DRIVEN:
            raise Conflict(
                f"job {job_id!r} ({row['job_type']}) is run by the server, not driven by its client: it can only be"
                f" read or cancelled (PUT /v1/jobs/cancel/{job_id})"
            )
        if row["status"] in TERMINAL:
            raise Conflict(f"job {job_id!r} is already {row['status']}")
        if "progress" in values:
            p = float(values["progress"])
            if not 0.0 <= p <= 100.0:
                raise InvalidArgument("progress must be between 0 and 100")
        self.repo.update(scope, job_id, **values)
        return self.get(scope, job_id)

    def cancel(self, scope: Scope, job_id: str, reason: str) -> dict[str, Any]:
        row = self.get(scope, job_id)
        if row["owner"] != scope.org_id:
            raise NotFound(f"job {job_id!r} not found")
        if row["status"] in TERMINAL:
            return row
        self.repo.update(
            scope,
            job_id,
            status=ABORTED,
            finished_at=time.time(),
            claim=None,
            lease_expires_at=None,
            stage=f"Error :{reason}",
        )
        self.repo.append_note(scope, job_id, reason)
        return self.get(scope, job_id)

    def note(self, scope: Scope, job_id: str, text: str) -> None:
        self.get(scope, job_id)
        self.repo.append_note(scope, job_id, text)

    # ---- worker side ----

    def execute(self, job_id: str) -> None:
        """Run one job (called by a queue worker thread). Never raises."""
        claim = new_id()
        job = self.repo.system_claim(job_id, claim, self.worker_name, self.lease_seconds)
        if job is None:
            log.info("job %s not claimable (cancelled, finished or taken)", job_id)
            return
        handler = self.registry.get(job["job_type"])
        if handler is None:
            self._abort(job_id, claim, f"no handler for job type {job['job_type']!r} on worker {self.worker_name}")
            return
        ctx = JobContext(job=job, scope=Scope.of(job["owner"], username=job["user"]), _service=self, _claim=claim)
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job_id, claim, stop, ctx), daemon=True)
        beat.start()
        try:
            result = handler(ctx)
        except JobCancelled:
            log.info("job %s cancelled", job_id)
        except ServiceError as e:
            self._abort(job_id, claim, e.message)
        except Exception as e:
            log.exception("job %s failed", job_id)
            self._abort(job_id, claim, f"internal error: {type(e).__name__}: {e}")
        else:
            now = time.time()
            self.repo.system_update_claimed(
                job_id,
                claim,
                status=FINISHED,
                progress=100.0,
                result=result,
                finished_at=now,
                lease_expires_at=None,
                stage="finished",
            )
        finally:
            stop.set()
            beat.join(5)

    def _heartbeat(self, job_id: str, claim: str, stop: threading.Event, ctx: JobContext) -> None:
        while not stop.wait(self.lease_seconds / 3):
            try:
                ok = self.repo.system_update_claimed(job_id, claim, lease_expires_at=time.time() + self.lease_seconds)
            except Exception:
                log.exception("lease renewal of job %s failed", job_id)
                continue
            if not ok:
                ctx._lost.set()
                return

    def _abort(self, job_id: str, claim: str, message: str) -> None:
        if self.repo.system_update_claimed(
            job_id,
            claim,
            status=ABORTED,
            finished_at=time.time(),
            lease_expires_at=None,
            stage=f"Error :{message}"[:1024],
        ):
            self.repo.append_note(None, job_id, message)

    # ---- reaper ----

    def reap(self, now: float | None = None) -> int:
        """Recover jobs whose worker died. Returns how many jobs were re-queued or aborted."""
        now = time.time() if now is None else now
        count = 0
        for job in self.repo.system_expired(now):
            retry = job["attempts"] < job["max_attempts"]
            worker = job.get("worker") or "unknown worker"
            if retry:
                note = f"worker {worker} stopped renewing its lease; re-queued (attempt {job['attempts'] + 1})"
            else:
                note = f"worker {worker} stopped renewing its lease after {job['attempts']} attempt(s); aborted"
            if self.repo.system_release_expired(job, now, retry, note):
                count += 1
                if retry and self.queue is not None:
                    self.queue.enqueue(job["id"])
                log.warning("job %s: %s", job["id"], note)
        return count

    def start_reaper(self) -> None:
        self._reaper_stop.clear()
        self._reaper = threading.Thread(target=self._reap_loop, name="scenebase-reaper", daemon=True)
        self._reaper.start()

    def _reap_loop(self) -> None:
        while True:
            try:
                self.reap()
            except Exception:
                log.exception("reaper sweep failed")
            if self._reaper_stop.wait(self.reaper_interval):
                return

    def stop_reaper(self) -> None:
        self._reaper_stop.set()
        if self._reaper is not None:
            self._reaper.join(5)


__all__ = [
    "ABORTED",
    "FINISHED",
    "QUEUED",
    "RUNNING",
    "JobCancelled",
    "JobContext",
    "JobHandler",
    "JobOwner",
    "JobRegistry",
    "JobService",
]
