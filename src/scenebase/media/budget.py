"""How much memory the decoders of one process may use at once (images, video frames, point clouds).

A small compressed file can decode to gigabytes (a 380 KB PNG of 14000x14000 16-bit pixels is 392 MB of samples,
and every conversion copies them). Each decode first estimates the bytes it will hold at its peak, from the header
alone, and reserves them here:

* a decode whose estimate exceeds the whole budget is refused (:class:`DecodeTooLarge`, the file's fault);
* otherwise it waits until the decodes in flight leave room (and fewer than ``max_concurrent`` run), for at most
  ``wait_seconds``, then gives up with :class:`DecodeBusy` (the server's state: retry later).

One :data:`DECODE_BUDGET` per process; the runtime sizes it from the settings (``configure``). A library, like the
decoders: it knows nothing of settings or HTTP.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

__all__ = ["DECODE_BUDGET", "DecodeBudget", "DecodeBusy", "DecodeTooLarge", "describe_bytes"]


class DecodeTooLarge(ValueError):
    """Decoding would need more memory than the whole budget; ``problem`` says how much."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class DecodeBusy(RuntimeError):
    """The budget stayed full for the whole wait: other decodes hold it. Retry later."""


def describe_bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


class DecodeBudget:
    """A counting semaphore over bytes (and decodes): ``reserve`` blocks while the budget is taken."""

    def __init__(self, max_bytes: int = 2 << 30, max_concurrent: int = 4, wait_seconds: float = 30.0) -> None:
        self._cond = threading.Condition()
        self.max_bytes = max_bytes
        self.max_concurrent = max_concurrent
        self.wait_seconds = wait_seconds
        self._used = 0
        self._active = 0

    def configure(self, max_bytes: int, max_concurrent: int, wait_seconds: float) -> None:
        with self._cond:
            self.max_bytes, self.max_concurrent, self.wait_seconds = max_bytes, max_concurrent, wait_seconds
            self._cond.notify_all()

    def check(self, needed: int, what: str) -> None:
        """Raise :class:`DecodeTooLarge` when ``needed`` bytes could never be granted (ingest probes use this)."""
        if needed > self.max_bytes:
            raise DecodeTooLarge(
                f"{what} needs about {describe_bytes(needed)} of memory to decode; this server decodes at most "
                f"{describe_bytes(self.max_bytes)} at once"
            )

    @contextlib.contextmanager
    def reserve(self, needed: int, what: str) -> Iterator[None]:
        """Hold ``needed`` bytes of the budget for the duration of the block."""
        self.check(needed, what)
        end = time.monotonic() + self.wait_seconds
        with self._cond:
            while self._active >= self.max_concurrent or self._used + needed > self.max_bytes:
                left = end - time.monotonic()
                if left <= 0:
                    raise DecodeBusy(
                        f"the server is decoding other media ({self._active} decodes, "
                        f"{describe_bytes(self._used)} in use); retry later"
                    )
                self._cond.wait(left)
            self._used += needed
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._used -= needed
                self._active -= 1
                self._cond.notify_all()

    @property
    def in_use(self) -> tuple[int, int]:
        """(bytes reserved, decodes running) right now."""
        with self._cond:
            return self._used, self._active


DECODE_BUDGET = DecodeBudget()
