"""What a job handler gets (:class:`JobContext`), how it stops, how per-item failures are reported, the registry
of handlers (:class:`JobRegistry`), and the public shape of a job (:func:`job_document`).

A handler that works on many items (assets, files) reports each item that fails with ``ctx.item_failed(id,
reason)`` and goes on with the rest. The job then ends ``finished`` but *partial*: its result lists the failed ids
(``failed``, at most MAX_FAILED_IDS; ``failed_count`` when more failed) and a sample with reasons
(``failures``), its document says ``partial: true``, and the client warns (or raises, when asked to). The first
FAILURE_NOTES failures are also job notes; the rest are counted in one summary note, so a job with 200k bad ids
writes a dozen notes, not 200k.

Why ``finished`` + ``partial`` rather than a fifth status: scripts written for SceneBox wait for
``status == "finished"`` and treat anything else but ``aborted`` as still running; a new terminal status would
make them wait forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from scenebase.constants import JobConstants
from scenebase.storage.job_repo import FINISHED
from scenebase.storage.scope import Scope

if TYPE_CHECKING:
    from scenebase.services.jobs import JobService

#: failures written as notes one by one; later ones are counted in a summary note
FAILURE_NOTES = 10
#: failures kept with their reasons in ``result["failures"]``
FAILURE_SAMPLE = 20
#: failed ids kept in ``result["failed"]``; ``result["failed_count"]`` has the total when more failed
MAX_FAILED_IDS = 1000
#: progress is written at most this often (a stage, or ``force``, is written at once): a job that moves through
#: 100 % in a second wrote the job row a hundred times (8 % of zipping 2,000 images), where a reader polling the
#: progress sees no more than a few updates a second
PROGRESS_INTERVAL_S = 0.2


class JobStopped(Exception):
    """Raised inside a handler when it must stop now; the worker decides what becomes of the job."""


class JobCancelled(JobStopped):
    """The job was cancelled, or taken away from this worker (its lease expired and another worker has it)."""


class JobInterrupted(JobStopped):
    """This worker is stopping: the job goes back to the queue for another worker."""


@dataclass
class JobContext:
    """What a handler gets: its parameters, the owner's scope, and ways to report progress and failures."""

    job: dict[str, Any]
    scope: Scope
    _service: JobService
    _claim: str
    _last_write: float = 0.0
    _last_progress: float = -100.0
    _stage: str | None = None
    _lost: threading.Event = field(default_factory=threading.Event)
    failed_count: int = 0
    _failed_ids: list[str] = field(default_factory=list)
    _failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.job["id"])

    @property
    def job_type(self) -> str:
        return str(self.job.get("job_type"))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.job.get("params") or {})

    def check_cancelled(self) -> None:
        """Raise JobCancelled (cancelled, or taken away) or JobInterrupted (the worker is stopping).

        Cheap (no I/O: the heartbeat thread watches the job row): call it in every loop that can run long."""
        if self._lost.is_set():
            raise JobCancelled(self.id)
        if self._service.interrupting:
            raise JobInterrupted(self.id)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, but raise JobStopped as soon as the job is cancelled or the worker stops."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.check_cancelled()
            self._lost.wait(min(left, 0.05))
        self.check_cancelled()

    def progress(self, percent: float, stage: str | None = None, force: bool = False) -> None:
        """Report progress (0-100). Writes are throttled to steps of 1 % or 0.5 s, and to one per
        ``PROGRESS_INTERVAL_S``; raises JobStopped."""
        self.check_cancelled()
        percent = max(0.0, min(100.0, float(percent)))
        now = time.monotonic()
        since = now - self._last_write
        if (
            not force
            and stage is None
            and (since < PROGRESS_INTERVAL_S or (percent - self._last_progress < 1.0 and since < 0.5))
        ):
            return
        values: dict[str, Any] = {"progress": percent}
        if stage is not None:
            values["stage"] = self._stage = stage[:1024]
        if not self._service.repo.system_update_claimed(self.id, self._claim, **values):
            self._lost.set()
            raise JobCancelled(self.id)
        self._last_write, self._last_progress = now, percent

    def stage(self, text: str) -> None:
        self.progress(self._last_progress if self._last_progress >= 0 else 0.0, stage=text)

    def note(self, text: str) -> None:
        self._service.repo.append_note(None, self.id, text)

    def item_failed(self, item_id: str, reason: str) -> None:
        """One item of the job failed (the job goes on with the others and ends finished, partial)."""
        self.failed_count += 1
        if len(self._failed_ids) < MAX_FAILED_IDS:
            self._failed_ids.append(item_id)
        if len(self._failures) < FAILURE_SAMPLE:
            self._failures.append({"id": item_id, "error": reason})
        if self.failed_count <= FAILURE_NOTES:
            self.note(f"{item_id}: {reason}")

    def failure_summary(self) -> str | None:
        """A note counting the failures that were not noted one by one (None when all were)."""
        if self.failed_count <= FAILURE_NOTES:
            return None
        return (
            f"{self.failed_count} items failed in all; the first {FAILURE_NOTES} are noted above, the first "
            f"{min(self.failed_count, MAX_FAILED_IDS)} ids are in the result's 'failed'"
        )

    def describe(self) -> str:
        stage = f", stage {self._stage!r}" if self._stage else ""
        return f"{self.id} ({self.job_type}{stage}, {max(0.0, self._last_progress):.0f} %)"


def final_result(result: Any, ctx: JobContext) -> Any:
    """The handler's result with the failures folded in: ``failed`` (ids, capped), ``failed_count`` (when capped)
    and ``failures`` (a sample with reasons). A handler may return ``failed`` itself; its list wins."""
    returned = result.get("failed") if isinstance(result, dict) else None
    if ctx.failed_count == 0 and not returned:
        return result
    out = dict(result) if isinstance(result, dict) else {"value": result} if result is not None else {}
    failed = list(returned) if isinstance(returned, list) and returned else list(ctx._failed_ids)
    count = max(len(failed), ctx.failed_count)
    out["failed"] = failed[:MAX_FAILED_IDS]
    if count > len(out["failed"]):
        out["failed_count"] = count
    if ctx._failures:
        out["failures"] = list(ctx._failures)
    return out


def failed_count(result: Any) -> int:
    """How many items of a finished job failed (0 when none, or when its result says nothing about items)."""
    if not isinstance(result, dict) or not isinstance(result.get("failed"), list):
        return 0
    return max(int(result.get("failed_count") or 0), len(result["failed"]))


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
        "partial": row["status"] == FINISHED and failed_count(row.get("result")) > 0,
        "failed_count": failed_count(row.get("result")),
        "created_at": iso(row.get("created_at")),
        "updated_at": iso(row.get("updated_at")),
        "started_at": iso(row.get("started_at")),
        "finished_at": iso(row.get("finished_at")),
    }
