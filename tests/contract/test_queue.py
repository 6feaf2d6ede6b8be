"""Contract tests that every job queue backend must pass, and the job service running on each of them.

Backends: :class:`HueyQueue` on an SQLite file under ``tmp_path`` and on a real Redis (session fixture
``redis_server``) with a unique huey name per test, so that tests never share a queue. Waits are bounded
poll loops (at most ``WAIT_S`` seconds); no test asserts on timings beyond those bounds.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scenebase.services import diagnostics
from scenebase.services.jobs import JobService
from scenebase.storage.catalog import Catalog
from scenebase.storage.job_repo import ABORTED, FINISHED, QUEUED, TERMINAL, JobRepo
from scenebase.storage.queue import HueyQueue, JobQueue
from scenebase.storage.scope import Scope
from servers import RedisServer

WAIT_S = 10.0


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return predicate()
        time.sleep(interval)


class Recorder:
    """A thread-safe execute callback that remembers which job ids ran."""

    def __init__(self, delay: float = 0.0, fail_on: frozenset[str] = frozenset()) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.lock = threading.Lock()
        self.started: list[tuple[str, float]] = []  # (job id, monotonic time) when the callback began
        self.done: list[str] = []

    def __call__(self, job_id: str) -> None:
        with self.lock:
            self.started.append((job_id, time.monotonic()))
        if self.delay:
            time.sleep(self.delay)
        if job_id in self.fail_on:
            raise RuntimeError(f"callback failed on purpose for {job_id}")
        with self.lock:
            self.done.append(job_id)

    def started_ids(self) -> list[str]:
        with self.lock:
            return [job_id for job_id, _ in self.started]

    def done_ids(self) -> list[str]:
        with self.lock:
            return list(self.done)


@dataclass
class QueueBackend:
    """Where queues of one test live, and the queues the test made (stopped and flushed at teardown)."""

    kind: str
    url: str
    name: str
    made: list[HueyQueue] = field(default_factory=list)

    def make(self, execute: Callable[[str], None], keep: bool = True) -> HueyQueue:
        queue = HueyQueue(self.url, execute, name=self.name)
        if keep:
            self.made.append(queue)
        return queue

    def close(self) -> None:
        for queue in self.made:
            queue.stop_workers()
        flusher = self.make(lambda _job_id: None, keep=False)
        flusher.flush()
        for queue in [*self.made, flusher]:
            _close_huey(queue)
        self.made.clear()


def _close_huey(queue: HueyQueue) -> None:
    storage: Any = queue.huey.storage
    pool = getattr(storage, "pool", None)
    if pool is not None:  # redis
        pool.disconnect()
    close = getattr(storage, "close", None)
    if close is not None:  # sqlite: this thread's connection
        close()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueBackend]:
    name = f"test{uuid.uuid4().hex}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/q.db"
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
    b = QueueBackend(kind=request.param, url=url, name=name)
    try:
        yield b
    finally:
        b.close()


def _worker_threads_started(action: Callable[[], None]) -> list[threading.Thread]:
    before = set(threading.enumerate())
    action()
    return [t for t in threading.enumerate() if t not in before]


# -- the queue contract ----------------------------------------------------------------------------


def test_satisfies_protocol(backend: QueueBackend) -> None:
    queue: JobQueue = backend.make(Recorder())
    assert queue.url == backend.url
    assert queue.pending() == 0


def test_every_task_runs_exactly_once(backend: QueueBackend) -> None:
    rec = Recorder()
    queue = backend.make(rec)
    ids = [f"job-{i}" for i in range(30)]
    for job_id in ids:
        queue.enqueue(job_id)
    assert queue.pending() == len(ids)
    assert rec.started_ids() == []  # nothing runs without workers

    queue.start_workers(2)
    assert wait_until(lambda: len(rec.done_ids()) >= len(ids)), f"ran {len(rec.done_ids())} of {len(ids)}"
    assert wait_until(lambda: queue.pending() == 0)
    queue.stop_workers()
    assert Counter(rec.done_ids()) == Counter(ids)
    assert sorted(rec.started_ids()) == sorted(ids)


def test_pending_counts_queued_tasks(backend: QueueBackend) -> None:
    rec = Recorder()
    queue = backend.make(rec)
    assert queue.pending() == 0
    for i in range(5):
        queue.enqueue(f"job-{i}")
        assert queue.pending() == i + 1
    queue.enqueue("job-0")  # the queue carries ids; the same id twice is two tasks
    assert queue.pending() == 6

    queue.start_workers(2)
    assert wait_until(lambda: queue.pending() == 0)
    assert wait_until(lambda: len(rec.done_ids()) == 6)
    queue.stop_workers()
    assert Counter(rec.done_ids()) == Counter({"job-0": 2, "job-1": 1, "job-2": 1, "job-3": 1, "job-4": 1})


def test_tasks_survive_a_restart(backend: QueueBackend) -> None:
    first = Recorder()
    old = backend.make(first, keep=False)
    ids = [f"job-{i}" for i in range(5)]
    for job_id in ids:
        old.enqueue(job_id)
    _close_huey(old)
    del old
    gc.collect()

    second = Recorder()
    new = backend.make(second)
    assert new.pending() == len(ids)
    new.start_workers(2)
    assert wait_until(lambda: len(second.done_ids()) >= len(ids))
    new.stop_workers()
    assert Counter(second.done_ids()) == Counter(ids)
    assert first.started_ids() == []
    assert new.pending() == 0


def test_failing_callback_does_not_kill_the_worker(backend: QueueBackend) -> None:
    rec = Recorder(fail_on=frozenset({"boom-1", "boom-2"}))
    queue = backend.make(rec)
    for job_id in ("boom-1", "after-1", "boom-2", "after-2"):
        queue.enqueue(job_id)

    workers = _worker_threads_started(lambda: queue.start_workers(1))
    assert len(workers) == 1
    assert wait_until(lambda: {"after-1", "after-2"} <= set(rec.done_ids()))
    # the one worker thread lived through both failures
    assert workers[0].is_alive()
    queue.enqueue("later")
    assert wait_until(lambda: "later" in rec.done_ids())
    queue.stop_workers()
    # failures are not retried by the queue: the job table decides about retries
    assert Counter(rec.started_ids()) == Counter(["boom-1", "after-1", "boom-2", "after-2", "later"])
    assert sorted(rec.done_ids()) == ["after-1", "after-2", "later"]


def test_stop_workers(backend: QueueBackend) -> None:
    rec = Recorder(delay=0.02)
    queue = backend.make(rec)
    total = 200
    for i in range(total):
        queue.enqueue(f"job-{i}")
    workers = _worker_threads_started(lambda: queue.start_workers(2))
    assert len(workers) == 2
    assert wait_until(lambda: len(rec.done_ids()) >= 3)

    t0 = time.monotonic()
    queue.stop_workers()
    stopped_at = time.monotonic()
    assert stopped_at - t0 < WAIT_S, f"stop_workers took {stopped_at - t0:.1f} s"
    assert not any(t.is_alive() for t in workers)

    # tasks that began before stop_workers returned have finished; none began after
    assert all(started < stopped_at for _, started in rec.started)
    assert sorted(rec.done_ids()) == sorted(rec.started_ids())
    ran = len(rec.done_ids())
    assert ran < total  # stopping left work behind ...
    assert queue.pending() == total - ran  # ... still queued, none lost
    queue.enqueue("after-stop")
    assert queue.pending() == total - ran + 1
    assert len(rec.started_ids()) == ran

    # the same object can start again and finishes the rest
    queue.start_workers(2)
    assert wait_until(lambda: queue.pending() == 0 and len(rec.done_ids()) == total + 1, timeout=WAIT_S)
    queue.stop_workers()
    assert Counter(rec.done_ids()) == Counter([*(f"job-{i}" for i in range(total)), "after-stop"])


def test_stop_workers_when_idle(backend: QueueBackend) -> None:
    queue = backend.make(Recorder())
    workers = _worker_threads_started(lambda: queue.start_workers(3))
    assert len(workers) == 3
    t0 = time.monotonic()
    queue.stop_workers()
    assert time.monotonic() - t0 < WAIT_S
    assert not any(t.is_alive() for t in workers)
    queue.stop_workers()  # stopping twice is harmless


def test_a_job_enqueued_here_wakes_an_idle_worker_at_once(
    backend: QueueBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle worker polls less and less often; a job this process enqueues wakes it instead of waiting for the
    next poll (set here to a minute, longer than the test waits). On Redis huey's read blocks until a task comes
    anyway; on SQLite only the wake-up brings it."""
    from scenebase.storage import queue as queue_module

    monkeypatch.setattr(queue_module, "POLL_MIN_S", 60.0)
    monkeypatch.setattr(queue_module, "POLL_MAX_S", 60.0)
    rec = Recorder()
    queue = backend.make(rec)
    queue.start_workers(1)
    time.sleep(0.2)  # the worker found the queue empty and waits for its next poll
    queue.enqueue("job-now")
    assert wait_until(lambda: rec.done_ids() == ["job-now"]), "the idle worker did not wake for the new job"
    t0 = time.monotonic()
    queue.stop_workers()  # wakes it too
    assert time.monotonic() - t0 < WAIT_S


def test_two_queues_share_tasks(backend: QueueBackend) -> None:
    """Two HueyQueue objects on one URL (like two worker processes) split the tasks without duplicates."""
    started = {"a": threading.Event(), "b": threading.Event()}
    lock = threading.Lock()
    runs: list[tuple[str, str]] = []
    timeouts: list[str] = []

    def callback(me: str, other: str) -> Callable[[str], None]:
        def execute(job_id: str) -> None:
            started[me].set()
            # hold this worker until the other "process" has taken a task too: proves both take part
            if not started[other].wait(WAIT_S):
                with lock:
                    timeouts.append(me)
            with lock:
                runs.append((me, job_id))

        return execute

    qa = backend.make(callback("a", "b"))
    qb = backend.make(callback("b", "a"))
    ids = [f"job-{i}" for i in range(40)]
    for i, job_id in enumerate(ids):
        (qa if i % 2 else qb).enqueue(job_id)
    assert qa.pending() == qb.pending() == len(ids)

    qa.start_workers(2)
    qb.start_workers(2)
    assert wait_until(lambda: len(runs) >= len(ids), timeout=2 * WAIT_S)
    qa.stop_workers()
    qb.stop_workers()
    assert timeouts == []
    assert Counter(job_id for _, job_id in runs) == Counter(ids)
    assert {who for who, _ in runs} == {"a", "b"}
    assert qa.pending() == qb.pending() == 0


# -- the job service on each queue -----------------------------------------------------------------


@dataclass
class JobSystem:
    service: JobService
    repo: JobRepo
    queue: HueyQueue


@pytest.fixture
def jobsys(backend: QueueBackend, tmp_path: Path) -> Iterator[JobSystem]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    repo = JobRepo(catalog)
    service = JobService(repo, lease_seconds=30.0, max_attempts=2, reaper_interval=60.0)
    diagnostics.register_jobs(service.registry)
    queue = backend.make(service.execute)
    service.queue = queue
    try:
        yield JobSystem(service, repo, queue)
    finally:
        queue.stop_workers()
        service.stop_reaper()
        catalog.dispose()


def _wait_terminal(repo: JobRepo, job_id: str) -> dict[str, Any]:
    def done() -> bool:
        row = repo.system_get(job_id)
        return row is not None and row["status"] in TERMINAL

    assert wait_until(done), f"job {job_id} did not finish: {repo.system_get(job_id)}"
    row = repo.system_get(job_id)
    assert row is not None
    return row


def test_submit_runs_to_finished(jobsys: JobSystem) -> None:
    row = jobsys.service.submit(Scope.of("org", username="u"), "integration_test", {"duration": 0.2, "steps": 4})
    assert row["status"] == QUEUED
    assert jobsys.queue.pending() == 1

    jobsys.queue.start_workers(2)
    job = _wait_terminal(jobsys.repo, row["id"])
    assert job["status"] == FINISHED
    assert job["progress"] == 100.0
    assert job["stage"] == "finished"
    assert job["result"] == {"slept": 0.2, "steps": 4, "attempt": 1}
    assert job["attempts"] == 1
    assert job["lease_expires_at"] is None
    assert job["owner"] == "org" and job["user"] == "u"
    assert job["started_at"] is not None and job["finished_at"] is not None
    assert job["finished_at"] >= job["started_at"]
    assert jobsys.queue.pending() == 0


def test_failing_job_is_aborted_with_a_note(jobsys: JobSystem) -> None:
    params = {"duration": 0.0, "steps": 1, "fail": True, "fail_message": "asked to fail"}
    row = jobsys.service.submit(Scope.of("org"), "integration_test", params)
    ok = jobsys.service.submit(Scope.of("org"), "integration_test", {"duration": 0.0, "steps": 1})
    jobsys.queue.start_workers(1)
    job = _wait_terminal(jobsys.repo, row["id"])
    assert job["status"] == ABORTED
    assert job["stage"] == "Error :asked to fail"
    assert any(note.endswith(" asked to fail") for note in job["notes"])
    # the worker goes on with the next job
    assert _wait_terminal(jobsys.repo, ok["id"])["status"] == FINISHED


def _claim_and_abandon(jobsys: JobSystem, max_attempts: int) -> dict[str, Any]:
    """A job a worker claimed and then died on: claimed with a tiny lease, never run."""
    row = jobsys.repo.create(
        Scope.of("org"),
        f"job_{uuid.uuid4().hex}",
        job_type="integration_test",
        params={"duration": 0.05, "steps": 2},
        max_attempts=max_attempts,
    )
    claimed = jobsys.repo.system_claim(row["id"], "dead-claim", "dead-host:1", lease_seconds=0.01)
    assert claimed is not None
    return claimed


def test_reaper_requeues_an_expired_lease(jobsys: JobSystem) -> None:
    claimed = _claim_and_abandon(jobsys, max_attempts=2)
    assert jobsys.queue.pending() == 0
    now = claimed["lease_expires_at"] + 1.0
    assert jobsys.service.reap(now=now) == 1
    requeued = jobsys.repo.system_get(claimed["id"])
    assert requeued is not None
    assert requeued["status"] == QUEUED
    assert requeued["claim"] is None
    assert jobsys.queue.pending() == 1
    assert jobsys.service.reap(now=now) == 0  # nothing left to recover

    jobsys.queue.start_workers(2)
    job = _wait_terminal(jobsys.repo, claimed["id"])
    assert job["status"] == FINISHED
    assert job["attempts"] == 2
    assert job["result"] == {"slept": 0.05, "steps": 2, "attempt": 2}
    assert len(job["notes"]) == 1
    note = job["notes"][0]
    assert "dead-host:1" in note and "lease" in note and "re-queued" in note


def test_reaper_aborts_when_attempts_are_exhausted(jobsys: JobSystem) -> None:
    claimed = _claim_and_abandon(jobsys, max_attempts=1)
    jobsys.queue.start_workers(1)
    now = claimed["lease_expires_at"] + 1.0
    assert jobsys.service.reap(now=now) == 1
    job = jobsys.repo.system_get(claimed["id"])
    assert job is not None
    assert job["status"] == ABORTED
    assert job["attempts"] == 1
    assert job["finished_at"] == now
    assert job["claim"] is None and job["lease_expires_at"] is None
    assert job["stage"] is not None and job["stage"].startswith("Error :")
    assert "lease" in job["stage"]
    assert len(job["notes"]) == 1
    assert "lease" in job["notes"][0] and "aborted" in job["notes"][0]
    assert jobsys.queue.pending() == 0  # nothing re-queued
    assert jobsys.service.reap(now=now + 100.0) == 0


# -- fairness, caps, stops ------------------------------------------------------------------------


def _run_all(jobsys: JobSystem, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_wait_terminal(jobsys.repo, r["id"]) for r in rows]


def test_jobs_are_claimed_fairly_across_organizations(jobsys: JobSystem) -> None:
    """Issue 8.7: the queue is FIFO, so organization B's two jobs used to wait behind all of A's. Now a worker
    takes the next job of the organization with the fewest running jobs, then the one served least recently."""
    quick = {"duration": 0.0, "steps": 1}
    rows = [jobsys.service.submit(Scope.of("org_a"), "integration_test", quick) for _ in range(6)]
    rows += [jobsys.service.submit(Scope.of("org_b"), "integration_test", quick) for _ in range(2)]
    jobsys.queue.start_workers(1)
    done = _run_all(jobsys, rows)
    assert {j["status"] for j in done} == {FINISHED}
    order = [j["owner"] for j in sorted(done, key=lambda j: j["started_at"])]
    assert order == ["org_a", "org_b", "org_a", "org_b", "org_a", "org_a", "org_a", "org_a"]
    assert jobsys.queue.pending() == 0


def _overlaps(jobs: list[dict[str, Any]]) -> int:
    """How many jobs started before the previous one (by start) had finished."""
    ordered = sorted(jobs, key=lambda j: j["started_at"])
    return sum(1 for a, b in itertools.pairwise(ordered) if b["started_at"] < a["finished_at"])


def test_a_capped_organization_waits_and_others_go_ahead(jobsys: JobSystem) -> None:
    jobsys.service.max_running_per_org = 1
    jobsys.service.defer_seconds = 0.02
    slow = {"duration": 0.3, "steps": 3}
    a_rows = [jobsys.service.submit(Scope.of("org_a"), "integration_test", slow) for _ in range(3)]
    b_row = jobsys.service.submit(Scope.of("org_b"), "integration_test", slow)
    jobsys.queue.start_workers(3)
    a_jobs = _run_all(jobsys, a_rows)
    b_job = _wait_terminal(jobsys.repo, b_row["id"])
    assert {j["status"] for j in [*a_jobs, b_job]} == {FINISHED}
    assert _overlaps(a_jobs) == 0  # never two of A's at once, although three workers were free
    first_a = min(a_jobs, key=lambda j: j["started_at"])
    assert b_job["started_at"] < first_a["finished_at"]  # B did not wait for A
    assert jobsys.repo.system_get(a_rows[0]["id"])["attempts"] == 1  # type: ignore[index]


def test_the_cap_holds_across_worker_processes(backend: QueueBackend, tmp_path: Path) -> None:
    """Two job services (two "processes") on one catalog and one queue: the cap counts both."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'shared.db'}")
    catalog.migrate()
    services = []
    try:
        for _ in range(2):
            service = JobService(JobRepo(catalog), lease_seconds=30.0, reaper_interval=60.0, max_running_per_org=1)
            service.defer_seconds = 0.02
            diagnostics.register_jobs(service.registry)
            service.queue = backend.make(service.execute)
            services.append(service)
        rows = [services[i % 2].submit(Scope.of("org_a"), "integration_test", {"duration": 0.2, "steps": 2})
                for i in range(4)]  # fmt: skip
        for service in services:
            assert service.queue is not None
            service.queue.start_workers(2)
        done = [_wait_terminal(services[0].repo, r["id"]) for r in rows]
        assert {j["status"] for j in done} == {FINISHED}
        assert _overlaps(done) == 0
        assert len({j["worker"] for j in done}) >= 1
    finally:
        for service in services:
            if service.queue is not None:
                service.queue.stop_workers()
        catalog.dispose()


def test_a_graceful_stop_says_what_it_waits_for_and_requeues_the_job(
    jobsys: JobSystem, backend: QueueBackend, caplog: pytest.LogCaptureFixture
) -> None:
    row = jobsys.service.submit(Scope.of("org"), "integration_test", {"duration": 3.0, "steps": 30})
    jobsys.queue.start_workers(1)
    assert wait_until(lambda: bool(jobsys.service.running_jobs()))
    jobsys.queue.stop_workers(timeout=0)
    with caplog.at_level(logging.WARNING, logger="scenebase.jobs"):
        jobsys.service.shutdown(grace_seconds=0.2)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("stopping: waiting up to 0 s for 1 running job(s): " + row["id"] + " (integration_test")
               for m in messages), messages  # fmt: skip
    assert any(f"job {row['id']} (integration_test) interrupted by the stop of this worker" in m for m in messages)
    jobsys.queue.stop_workers()
    job = jobsys.repo.system_get(row["id"])
    assert job is not None and job["status"] == QUEUED and job["attempts"] == 0 and job["claim"] is None
    assert "stopped during this run; queued again for another worker" in job["notes"][-1]
    assert jobsys.queue.pending() == 1

    # another worker takes it up; the interrupted run did not spend an attempt
    other = JobService(jobsys.repo, lease_seconds=30.0, reaper_interval=60.0)
    diagnostics.register_jobs(other.registry)
    other.queue = backend.make(other.execute)
    other.queue.start_workers(1)
    done = _wait_terminal(jobsys.repo, row["id"])
    other.queue.stop_workers()
    assert done["status"] == FINISHED and done["attempts"] == 1


def test_the_reaper_wakes_a_queued_job_whose_task_was_lost(jobsys: JobSystem) -> None:
    """A worker that took a task and died before claiming its job left the job queued with no task."""
    row = jobsys.repo.create(Scope.of("org"), "lost-task", job_type="integration_test",
                             params={"duration": 0.0, "steps": 1}, max_attempts=2)  # fmt: skip
    client_record = jobsys.repo.create(Scope.of("org"), "client-record", job_type="ingestion", driven_by="client")
    assert jobsys.queue.pending() == 0
    jobsys.service.reap(now=time.time())
    assert jobsys.queue.pending() == 0  # not stale yet
    jobsys.service.reap(now=time.time() + 600)
    assert jobsys.queue.pending() == 1  # one task: the client-driven record is not the workers' business
    jobsys.queue.start_workers(1)
    assert _wait_terminal(jobsys.repo, row["id"])["status"] == FINISHED
    assert jobsys.repo.system_get(client_record["id"])["status"] == QUEUED  # type: ignore[index]
