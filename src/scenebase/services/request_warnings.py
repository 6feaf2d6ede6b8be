"""Warnings a request gathers on its way through the services, answered beside the result.

A search answer is a bare JSON list (the seed's shape), so warnings cannot ride in the body. The API opens a
collection per request (``collecting``); services call ``warn``, which does nothing outside a request (jobs,
scripts), so callers never pay for warnings nobody will read. ``active`` lets a service skip the work of
finding warnings when there is nobody to tell.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: more than this many warnings in one answer would be noise; the first ones name the problem
MAX_WARNINGS = 20

_current: ContextVar[list[str] | None] = ContextVar("scenebase_request_warnings", default=None)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Collect the warnings of everything run inside, in this context and in the threads it hands work to
    (FastAPI runs sync endpoints in a copy of the context, which holds the same list)."""
    box: list[str] = []
    token = _current.set(box)
    try:
        yield box
    finally:
        _current.reset(token)


def active() -> bool:
    return _current.get() is not None


def warn(message: str) -> None:
    box = _current.get()
    if box is not None and message not in box and len(box) < MAX_WARNINGS:
        box.append(message)
