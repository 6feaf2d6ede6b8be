"""The job queue: huey on an embedded SQLite file (default) or on Redis (scale-out).

Why huey: one small library that runs the same task code on an embedded store (SqliteHuey: nothing to
install, survives restarts) and on a networked broker (RedisHuey: many ``scenebase worker`` processes on
many machines). It has no progress API and loses a task whose consumer dies mid-run; both gaps are covered by
the job table in the catalog (progress, leases; see ``services/jobs.py``), which is the source of truth.

The queue only carries job ids. Workers here are plain threads running huey's dequeue/execute loop (huey's
own ``Consumer`` installs signal handlers, which only the main thread may do).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

log = logging.getLogger("scenebase.queue")

TASK_NAME = "scenebase.execute_job"


class JobQueue(Protocol):
    """What every queue backend offers. ``tests/contract/test_queue.py`` runs against each one."""

    url: str

    def enqueue(self, job_id: str) -> None: ...

    def pending(self) -> int: ...

    def start_workers(self, count: int) -> None: ...

    def stop_workers(self, timeout: float = 10.0) -> None: ...


#: an idle worker looks at the queue after this long, then 1.5 times longer each time it was empty, up to
#: ``POLL_MAX_S``; a job enqueued by this process wakes it at once
POLL_MIN_S = 0.05
POLL_MAX_S = 0.25


class HueyQueue:
    """A :class:`JobQueue` on huey. ``execute(job_id)`` is called in a worker thread for each job id."""

    def __init__(self, url: str, execute: Callable[[str], None], name: str = "scenebase") -> None:
        self.url = url
        self._execute = execute
        self.huey = _open_huey(url, name)
        self._task = self.huey.task(name=TASK_NAME)(self._run)
        self._stop = threading.Event()
        #: set by ``enqueue``: this process's idle workers look at the queue now, not at their next poll
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self, job_id: str) -> None:
        self._execute(job_id)

    def enqueue(self, job_id: str) -> None:
        self._task(job_id)
        self._wake.set()

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def start_workers(self, count: int) -> None:
        self._stop.clear()
        for i in range(count):
            t = threading.Thread(target=self._loop, name=f"scenebase-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _loop(self) -> None:
        delay = POLL_MIN_S
        while not self._stop.is_set():
            try:
                task = self.huey.dequeue()
            except Exception:
                log.exception("queue read failed; retrying")
                task = None
                self._stop.wait(1.0)
            if task is None:
                # a job enqueued by another process (a second server, the CLI) waits for the poll: at most POLL_MAX_S
                if self._wake.wait(delay):
                    self._wake.clear()
                    delay = POLL_MIN_S
                else:
                    delay = min(delay * 1.5, POLL_MAX_S)
                continue
            delay = POLL_MIN_S
            try:
                self.huey.execute(task)
            except Exception:
                # the job runner records failures itself; this only guards the loop. Logs speak in job ids.
                log.exception("the queue task of job %s failed", _job_id(task))

    def stop_workers(self, timeout: float = 10.0) -> None:
        """Take no more tasks and wait up to ``timeout`` s for each worker thread (0: do not wait; call again)."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]

    def flush(self) -> None:
        """Drop every queued task (tests only)."""
        self.huey.flush()


def _job_id(task: Any) -> str:
    args = getattr(task, "args", None) or ()
    return str(args[0]) if args else "(unknown)"


def _open_huey(url: str, name: str) -> Huey:
    parsed = urlparse(url)
    common: dict[str, Any] = {"results": False, "store_none": False, "store_intermediate_errors": False}
    if parsed.scheme == "sqlite":
        path = Path(url.split("sqlite:///", 1)[1]) if url.startswith("sqlite:///") else None
        if path is None:
            raise ValueError(f"queue URL {url!r}: use sqlite:///ABSOLUTE/PATH")
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name=name, filename=str(path), **common)
    if parsed.scheme in ("redis", "rediss"):
        return RedisHuey(name=name, url=url, blocking=True, read_timeout=1, **common)
    raise ValueError(f"unsupported queue URL {url!r}: use sqlite:///PATH or redis://HOST:PORT/DB")
