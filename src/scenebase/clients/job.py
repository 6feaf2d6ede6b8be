"""``Job``: a server job as the client sees it, with ``wait()`` (FACTS 8.3).

A job over many items (zipping, thumbnails, image properties, set membership) can finish *partially*: its status
is ``finished`` (as SceneBox scripts expect) and ``partial`` is true, with the failed items in ``failed`` and a
sample of reasons in ``failures``. ``wait()`` logs a WARNING naming them, or raises ``JobError`` with
``raise_on_partial=True``.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from scenebase.errors import JobError

if TYPE_CHECKING:
    from scenebase.clients.http import HttpSession

log = logging.getLogger("scenebase.client")

TERMINAL = ("finished", "aborted")
#: failed items named in a warning; the rest are counted
NAMED_FAILURES = 5


class Job:
    """Status, progress (0-100), description, stage and notes of a job; ``wait()`` polls until it ends."""

    def __init__(self, http: HttpSession, job_id: str, document: dict[str, Any] | None = None) -> None:
        self._http = http
        self.id = job_id
        self.status: str = "queued"
        self.progress: float = 0.0
        self.description: str | None = None
        self.stage: str | None = None
        self.notes: list[str] = []
        self.job_type: str | None = None
        self.result: Any = None
        #: finished, but some items failed: their ids (at most 1000 kept by the server), how many, and reasons
        self.partial = False
        self.failed: list[str] = []
        self.failed_count = 0
        self.failures: list[dict[str, Any]] = []
        self.document: dict[str, Any] = {}
        if document is not None:
            self._apply(document)

    def _apply(self, doc: dict[str, Any]) -> None:
        self.document = doc
        self.status = doc.get("status", self.status)
        self.progress = float(doc.get("progress") or 0.0)
        self.description = doc.get("description")
        self.stage = doc.get("stage")
        self.notes = list(doc.get("notes") or [])
        self.job_type = doc.get("job_type")
        self.result = doc.get("result")
        result = self.result if isinstance(self.result, dict) else {}
        self.failed = [str(i) for i in result.get("failed") or []]
        self.failures = [f for f in result.get("failures") or [] if isinstance(f, dict)]
        self.failed_count = int(doc.get("failed_count") or len(self.failed))
        self.partial = bool(doc.get("partial", self.status == "finished" and self.failed_count > 0))

    def refresh(self) -> Job:
        self._apply(self._http.json("GET", f"/v1/jobs/{self.id}", error=JobError))
        return self

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def errors(self) -> list[dict[str, Any]]:
        """The failed items as ``[{"id", "error", "job_id"}]`` (``client.last_errors`` after a wait)."""
        reasons = {str(f.get("id")): str(f.get("error")) for f in self.failures}
        return [{"id": i, "error": reasons.get(i, "failed (reason not kept; see the job's notes)"), "job_id": self.id}
                for i in self.failed]  # fmt: skip

    def partial_message(self) -> str:
        named = [f"{f.get('id')} ({f.get('error')})" for f in self.failures[:NAMED_FAILURES]]
        if not named:
            named = self.failed[:NAMED_FAILURES]
        more = self.failed_count - len(named)
        listed = "; ".join(named) + (f"; and {more} more" if more > 0 else "")
        return f"job {self.id} ({self.job_type}) finished, but {self.failed_count} item(s) failed: {listed}"

    def cancel(self) -> Job:
        self._apply(self._http.json("PUT", f"/v1/jobs/cancel/{self.id}", error=JobError))
        return self

    def wait(
        self,
        timeout: float | None = None,
        progress_callback: Callable[..., Any] | None = None,
        show_progress: bool | None = None,
        poll_interval: float = 0.05,
        raise_on_partial: bool = False,
    ) -> Job:
        """Poll until the job finishes. Raises ``JobError`` if it is aborted (with its notes) or on timeout.

        A job that finished with failed items logs a WARNING naming them (``job.failed``, ``job.errors()``), or
        raises ``JobError`` when ``raise_on_partial``.

        ``progress_callback`` is called with ``(progress)`` or ``(progress, stage)``, whichever it accepts.
        A tqdm bar is shown on terminals (``show_progress=None``), always (True) or never (False).
        Ctrl-C cancels the job on the server and re-raises.
        """
        two_args = _accepts_two(progress_callback)
        start = time.monotonic()
        bar = tqdm(total=100, desc=f"job {self.id[:8]}", unit="%", disable=_tqdm_disable(show_progress), leave=False)
        delay = poll_interval
        try:
            while True:
                self.refresh()
                bar.n = round(self.progress, 1)
                bar.set_postfix_str(self.stage or self.status, refresh=True)
                if progress_callback is not None:
                    if two_args:
                        progress_callback(self.progress, self.stage)
                    else:
                        progress_callback(self.progress)
                if self.status == "finished":
                    if self.partial:
                        if raise_on_partial:
                            raise JobError(self.partial_message(), details=self.document)
                        log.warning("%s", self.partial_message())
                    return self
                if self.status == "aborted":
                    detail = "; ".join(self.notes) or self.stage or "no details"
                    raise JobError(f"job {self.id} was aborted: {detail}", details=self.document)
                if timeout is not None and time.monotonic() - start > timeout:
                    raise JobError(f"job {self.id} did not finish within {timeout} s (status {self.status})")
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
        except KeyboardInterrupt:
            self.cancel()
            raise
        finally:
            bar.close()

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, status={self.status!r}, progress={self.progress:.1f}, stage={self.stage!r})"


def _accepts_two(cb: Callable[..., Any] | None) -> bool:
    if cb is None:
        return False
    try:
        params = [
            p
            for p in inspect.signature(cb).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def _tqdm_disable(show: bool | None) -> bool | None:
    if show is None:
        return None  # tqdm: disabled when not writing to a terminal
    return not show
