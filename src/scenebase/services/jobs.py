"""Jobs: submission, fair execution with leases, cancellation, graceful stops, and the reaper.

The catalog's ``jobs`` table is the source of truth; the queue only carries wake-ups. Each submitted job queues
one task (named by the job's id); a worker that takes a task claims the queued job that is *fairest* to run now
(``JobRepo.system_claim_next``: the organization with the fewest running jobs, then the one served least
recently; ``max_running_per_org`` caps any one organization), so one organization's thousand queued jobs cannot
hold back another's. Every queued job has a task of its own, so every job runs.

A claim (queued → running) holds a random claim token and a lease that a heartbeat thread renews every third of
``job_lease_seconds``. The same thread reads the job row every ``cancel_poll_seconds``: a cancelled job's handler
stops at its next ``ctx.check_cancelled()`` (handlers call it in every long loop), not at the next progress
report. If the worker process dies, the lease expires and any server's or worker's reaper either re-queues the
job (while ``attempts < max_attempts``) or marks it ``aborted`` with a note; it also re-wakes queued jobs whose
queue task was lost. Handlers therefore must be idempotent: a retried job may redo work a dead worker had begun.

A graceful stop (:meth:`JobService.shutdown`) says which jobs it waits for, waits ``stop_grace_seconds``, then
interrupts the rest: they go back to the queue for another worker without spending an attempt.

Outcomes are logged in job ids: aborted, cancelled, interrupted and partial jobs at WARNING with their type and
reason (partial: see ``services/job_context.py``), internal errors at ERROR with the traceback.

Job types are owned by services: each service registers its handlers in the :class:`JobRegistry` when the
runtime is built (``register_jobs``), and the runtime refuses to start when a job type that some service submits
has no handler. A handler receives a :class:`JobContext` (scope, parameters, progress, notes, failures) and
reaches the services it needs through its own object, never through the runtime.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from scenebase.constants import JobConstants
from scenebase.domain.ids import new_id
from scenebase.services.errors import Conflict, InvalidArgument, NotFound, ServiceError
from scenebase.services.job_context import (
    JobCancelled,
    JobContext,
    JobHandler,
    JobInterrupted,
    JobOwner,
    JobRegistry,
    JobStopped,
    failed_count,
    final_result,
    job_document,
)
from scenebase.storage.job_repo import ABORTED, CLIENT_DRIVEN, FINISHED, QUEUED, RUNNING, TERMINAL, JobRepo
from scenebase.storage.scope import Scope

if TYPE_CHECKING:
    from scenebase.storage.queue import JobQueue

log = logging.getLogger("scenebase.jobs")


class JobService:
    def __init__(
        self,
        repo: JobRepo,
        lease_seconds: float = 30.0,
        max_attempts: int = 2,
        reaper_interval: float = 5.0,
        max_running_per_org: int | None = None,
        cancel_poll_seconds: float = 0.5,
        stop_grace_seconds: float = 10.0,
    ) -> None:
        self.repo = repo
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.reaper_interval = reaper_interval
        self.max_running_per_org = max_running_per_org or None
        self.cancel_poll_seconds = cancel_poll_seconds
        self.stop_grace_seconds = stop_grace_seconds
        #: how long a worker holds a wake-up it could not use (every queued job's organization at its cap)
        self.defer_seconds = 0.5
        self.queue: JobQueue | None = None
        self.registry = JobRegistry()
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self._reaper_stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self._stopping = threading.Event()
        self._interrupt = threading.Event()
        self._changed = threading.Condition()
        self._running: dict[str, JobContext] = {}

    @property
    def interrupting(self) -> bool:
        """True once a stopping worker has told its running jobs to give up (see :meth:`shutdown`)."""
        return self._interrupt.is_set()

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
        job_id: str | None = None,
    ) -> dict[str, Any]:
        """Record a job and queue a wake-up for a worker. ``job_id``: an id chosen beforehand (e.g. written on
        the set the job works on, in the same transaction that checked the set)."""
        if job_type not in self.registry:
            raise InvalidArgument(f"job type {job_type!r} cannot run on this server", resource="jobs")
        if self.queue is None:
            raise RuntimeError("job queue not configured")
        row = self.repo.create(
            scope,
            job_id or new_id(),
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
        """Abort a queued or running job. Its worker notices within ``cancel_poll_seconds`` and stops at the
        handler's next cancellation check."""
        row = self.get(scope, job_id)
        if row["owner"] != scope.org_id:
            raise NotFound(f"job {job_id!r} not found")
        if row["status"] in TERMINAL:
            return row
        self.repo.update(
            scope,
            job_id,
            note=reason,
            status=ABORTED,
            finished_at=time.time(),
            claim=None,
            lease_expires_at=None,
            stage=f"Error :{reason}",
        )
        log.warning("job %s (%s) %s while %s", job_id, row["job_type"], reason, row["status"])
        return self.get(scope, job_id)

    def note(self, scope: Scope, job_id: str, text: str) -> None:
        self.get(scope, job_id)
        self.repo.append_note(scope, job_id, text)

    # ---- worker side ----

    def running_jobs(self) -> list[str]:
        """The jobs this process runs now, described (id, type, stage, progress)."""
        with self._changed:
            return [ctx.describe() for ctx in self._running.values()]

    def execute(self, token: str) -> None:
        """Run one job; called by a queue worker for each queue task. Never raises.

        ``token`` is the id of the job the task was queued for, but the worker claims whichever queued job is
        fairest to run now (module docstring); the other job's own task runs it later. It claims only job types
        it has handlers for: a job of a type this worker does not know waits for a worker that does.
        """
        if self._stopping.is_set():
            self._requeue_token(token)  # taken just as this worker began to stop: leave it to the next worker
            return
        claim = new_id()
        try:
            outcome = self.repo.system_claim_next(
                claim, self.worker_name, self.lease_seconds, self.registry.job_types(), self.max_running_per_org
            )
        except Exception:
            log.exception("claiming a job failed (queue task of job %s); the task is queued again", token)
            self._stopping.wait(1.0)
            self._requeue_token(token)
            return
        if outcome.job is None:
            if outcome.held_back:
                # queued jobs wait until their organizations' running jobs end: keep a wake-up for them
                self._stopping.wait(self.defer_seconds)
                self._requeue_token(token)
            return
        self._run(outcome.job, claim)

    def _requeue_token(self, token: str) -> None:
        if self.queue is not None:
            try:
                self.queue.enqueue(token)
            except Exception:
                log.exception("could not queue the task of job %s again; the reaper wakes it later", token)

    def _run(self, job: dict[str, Any], claim: str) -> None:
        job_id, job_type = str(job["id"]), job["job_type"]
        handler = self.registry.get(job_type)
        ctx = JobContext(job=job, scope=Scope.of(job["owner"], username=job["user"]), _service=self, _claim=claim)
        if handler is None:
            self._abort(ctx, f"no handler for job type {job_type!r} on worker {self.worker_name}")
            return
        with self._changed:
            self._running[job_id] = ctx
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(ctx, stop), name=f"job-{job_id[:8]}", daemon=True)
        beat.start()
        try:
            result = handler(ctx)
        except JobInterrupted:
            self._give_back(ctx)
        except JobCancelled:
            self._stopped(ctx)
        except ServiceError as e:
            self._abort(ctx, e.message)
        except Exception as e:
            log.exception("job %s (%s) failed with an internal error", job_id, job_type)
            self._abort(ctx, f"internal error: {type(e).__name__}: {e}", logged=True)
        else:
            self._finish(ctx, result)
        finally:
            stop.set()
            beat.join(5)
            with self._changed:
                self._running.pop(job_id, None)
                self._changed.notify_all()

    def _finish(self, ctx: JobContext, result: Any) -> None:
        final = final_result(result, ctx)
        failed = failed_count(final)
        stage = f"finished; {failed} item(s) failed" if failed else "finished"
        summary = ctx.failure_summary()
        if summary:
            ctx.note(summary)
        done = self.repo.system_update_claimed(
            ctx.id, ctx._claim, status=FINISHED, progress=100.0, result=final, finished_at=time.time(),
            lease_expires_at=None, stage=stage,
        )  # fmt: skip
        if not done:
            log.warning("job %s (%s) ended, but it was cancelled or taken over meanwhile", ctx.id, ctx.job_type)
        elif failed:
            sample = "; ".join(f"{f['id']}: {f['error']}" for f in (final.get("failures") or [])[:3])
            log.warning("job %s (%s) finished partially: %d item(s) failed (%s)", ctx.id, ctx.job_type, failed,
                        sample or ", ".join(final["failed"][:3]))  # fmt: skip
        else:
            log.info("job %s (%s) finished", ctx.id, ctx.job_type)

    def _abort(self, ctx: JobContext, message: str, logged: bool = False) -> None:
        summary = ctx.failure_summary()
        if summary:
            ctx.note(summary)
        if self.repo.system_update_claimed(
            ctx.id, ctx._claim, note=message, status=ABORTED, finished_at=time.time(), lease_expires_at=None,
            stage=f"Error :{message}"[:1024],
        ):  # fmt: skip
            if not logged:
                log.warning("job %s (%s) aborted: %s", ctx.id, ctx.job_type, message)
        else:
            log.warning("job %s (%s) failed (%s) after it was cancelled or taken over", ctx.id, ctx.job_type, message)

    def _stopped(self, ctx: JobContext) -> None:
        """The handler stopped because the job was cancelled (or its lease lost to another worker)."""
        summary = ctx.failure_summary()
        if summary:
            ctx.note(summary)
        row = self.repo.system_get(ctx.id) or {}
        why = row.get("stage") or row.get("status") or "gone"
        log.warning("job %s (%s) stopped at %s: %s", ctx.id, ctx.job_type, ctx.describe(), why)

    def _give_back(self, ctx: JobContext) -> None:
        note = f"worker {self.worker_name} stopped during this run; queued again for another worker"
        if self.repo.system_requeue_claimed(ctx.id, ctx._claim, note):
            self._requeue_token(ctx.id)
            log.warning("job %s (%s) interrupted by the stop of this worker; queued again", ctx.id, ctx.job_type)
        else:
            self._stopped(ctx)

    def _heartbeat(self, ctx: JobContext, stop: threading.Event) -> None:
        """Renew the lease every third of it; in between, read the job every ``cancel_poll_seconds`` so that a
        cancel reaches the handler's next check promptly."""
        renew_every = self.lease_seconds / 3
        next_renewal = time.monotonic() + renew_every
        while not stop.wait(min(self.cancel_poll_seconds, renew_every)):
            try:
                if time.monotonic() >= next_renewal:
                    held = self.repo.system_update_claimed(
                        ctx.id, ctx._claim, lease_expires_at=time.time() + self.lease_seconds
                    )
                    next_renewal = time.monotonic() + renew_every
                else:
                    held = self.repo.system_holds(ctx.id, ctx._claim)
            except Exception:
                log.exception("lease check of job %s failed", ctx.id)
                continue
            if not held:
                ctx._lost.set()
                return

    # ---- stopping ----

    def shutdown(self, grace_seconds: float | None = None) -> None:
        """Stop taking jobs; give the running ones ``grace_seconds`` (default ``stop_grace_seconds``) to end, then
        interrupt them: they are queued again, for another worker. Says what it waits for."""
        grace = self.stop_grace_seconds if grace_seconds is None else grace_seconds
        self._stopping.set()
        running = self.running_jobs()
        if running:
            log.warning("stopping: waiting up to %.0f s for %d running job(s): %s; jobs still running then are "
                        "interrupted and queued again", grace, len(running), "; ".join(running))  # fmt: skip
        if self._wait_idle(grace):
            return
        log.warning("stopping: interrupting job(s) %s; they go back to the queue", "; ".join(self.running_jobs()))
        self._interrupt.set()
        if not self._wait_idle(max(5.0, self.cancel_poll_seconds * 4)):
            log.warning("stopping without waiting longer for job(s) %s: the reaper queues them again when their "
                        "leases expire", "; ".join(self.running_jobs()))  # fmt: skip

    def _wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def resume(self) -> None:
        """Take jobs again after :meth:`shutdown` (a runtime started again)."""
        self._stopping.clear()
        self._interrupt.clear()

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
                log.warning("job %s (%s): %s", job["id"], job.get("job_type"), note)
        self._wake_stale(now)
        return count

    def _wake_stale(self, now: float) -> None:
        """Queue a task for jobs queued a while with no task left in the queue (a worker took their task and died
        before claiming): extra tasks are harmless, a missing one would leave the job queued forever."""
        if self.queue is None or self.queue.pending() > 0:
            return
        stale = self.repo.system_stale_queued(now - max(2 * self.reaper_interval, 5.0), self.registry.job_types())
        for job_id in stale:
            self.queue.enqueue(job_id)
        if stale:
            log.warning("%d queued job(s) had no queue task; woken: %s", len(stale), ", ".join(stale[:10]))

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
    "JobInterrupted",
    "JobOwner",
    "JobRegistry",
    "JobService",
    "JobStopped",
    "job_document",
]
