"""Reading media that users reference instead of upload: ``http(s)://`` URLs, ``s3://`` and ``file://`` URIs.

References are stored as given and read when the server needs the bytes (probing, thumbnails, zips), always on
behalf of one organization (its :class:`Scope`):

* ``file://`` URIs must lie, symlinks and ``..`` resolved, under one of the organization's
  ``SCENEBASE_ALLOWED_FILE_ROOTS``; ``s3://`` URIs must name one of its ``SCENEBASE_ALLOWED_S3_BUCKETS``.
* URLs may only reach public addresses, checked on every redirect hop (``fetch_http``).
* Every download has a deadline (``SCENEBASE_FETCH_DEADLINE_SECONDS``) and a size cap, lands in a temporary file
  under ``<data_dir>/tmp`` (removed when the caller is done), and holds one of its organization's
  ``SCENEBASE_FETCHES_PER_ORG`` slots. A request waiting for a slot gets 503 after ``SCENEBASE_FETCH_WAIT_SECONDS``
  (503 rather than 429: the server's own error tree has no 429, and both tell a client to retry later).
* :meth:`SourceReader.aopen` downloads on a thread pool of its own, so requests waiting on slow URLs hold no
  request thread; :meth:`SourceReader.open` downloads in the calling thread (jobs, scripts).

What a read returns is whatever the remote holds *now*: callers that stored facts about the media at ingest
(format, size) must probe the bytes again before serving or decoding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from scenebase.services.errors import Forbidden, InvalidArgument, NotFound, PayloadTooLarge, Unavailable
from scenebase.services.fetch_http import Fetched, UrlFetcher, parse_http_url
from scenebase.services.fetch_policy import AddressPolicy, Deadline, display_ref, install_log_redaction
from scenebase.services.fetch_s3 import S3Fetcher, s3_available
from scenebase.settings import Settings
from scenebase.storage.scope import Scope

log = logging.getLogger("scenebase.sources")

_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class Source:
    """A referenced file readable on local disk: the file itself (``file://``) or a temporary download."""

    path: Path
    size: int
    name: str
    content_type: str | None


def reference_name(ref: str) -> str:
    """The last path segment of a reference (its file name), without query or credentials."""
    try:
        parts = urlsplit(ref)
        path = unquote(parts.path).rstrip("/")
        return path.rsplit("/", 1)[-1] or parts.hostname or "file"
    except ValueError:
        return "file"


class OrgSlots:
    """Downloads in flight per organization, counted across threads and event loops (every uvicorn loop, test
    client loop and job thread shares one :class:`SourceReader`). Async waiters park on a future of their own loop
    and are woken, thread-safely, when a slot of their organization frees."""

    def __init__(self, per_org: int) -> None:
        self.per_org = per_org
        self._cond = threading.Condition()
        self._in_flight: dict[str, int] = {}
        self._async_waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def _full(self) -> Unavailable:
        return Unavailable(
            f"too many URL fetches in flight for your organization (at most {self.per_org}); retry later"
        )

    def try_acquire(self, org_id: str) -> bool:
        with self._cond:
            if self._in_flight.get(org_id, 0) >= self.per_org:
                return False
            self._in_flight[org_id] = self._in_flight.get(org_id, 0) + 1
            return True

    def release(self, org_id: str) -> None:
        with self._cond:
            left = self._in_flight.get(org_id, 1) - 1
            if left:
                self._in_flight[org_id] = left
            else:
                self._in_flight.pop(org_id, None)
            waiters = self._async_waiters.pop(org_id, [])
            self._cond.notify_all()
        for loop, waiter in waiters:  # all of them retry; the losers park again
            with contextlib.suppress(RuntimeError):  # that loop has closed: its waiter is gone
                loop.call_soon_threadsafe(_wake, waiter)

    def acquire(self, org_id: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        with self._cond:
            while not self.try_acquire(org_id):
                if not self._cond.wait(max(0.0, end - time.monotonic())) and time.monotonic() >= end:
                    raise self._full()

    async def aacquire(self, org_id: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        end = time.monotonic() + timeout
        while True:
            with self._cond:  # trying and parking under one lock: a release in between cannot be missed
                if self.try_acquire(org_id):
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._async_waiters.setdefault(org_id, []).append((loop, waiter))
            try:
                await asyncio.wait_for(waiter, max(0.0, end - time.monotonic()))
            except TimeoutError:
                raise self._full() from None
            finally:
                with self._cond:
                    parked = self._async_waiters.get(org_id, [])
                    if (loop, waiter) in parked:
                        parked.remove((loop, waiter))

    def in_flight(self, org_id: str) -> int:
        with self._cond:
            return self._in_flight.get(org_id, 0)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class SourceReader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.allowed_networks())
        self.urls = UrlFetcher(self.policy, settings.url_fetch_timeout_seconds)
        self.s3 = S3Fetcher(settings.s3_endpoint, settings.url_fetch_timeout_seconds)
        self.slots = OrgSlots(settings.fetches_per_org)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        install_log_redaction()

    def close(self) -> None:
        """Stop the fetch pool (downloads in progress finish on their own deadline)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _fetch_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.fetch_threads, thread_name_prefix="scenebase-fetch")
            return self._pool

    # ------------------------------------------------------------------ checking

    def check(self, scope: Scope, ref: str) -> str:
        """Validate a reference without reading it: syntax, scheme, and what ``scope``'s organization may read."""
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidArgument("empty media reference")
        shown = display_ref(ref)
        if "\x00" in ref:
            raise InvalidArgument(f"{shown!r} contains a NUL character")
        match = _SCHEME.match(ref)
        scheme = match.group(1).lower() if match else ""
        if scheme in ("http", "https"):
            parse_http_url(ref, self.policy)
        elif scheme == "file":
            self._file_path(scope, ref)
        elif scheme == "s3":
            self._s3_location(scope, ref)
        else:
            raise InvalidArgument(f"unsupported media reference {shown!r}: use http(s)://, s3:// or file://")
        return ref

    def _file_path(self, scope: Scope, ref: str) -> Path:
        shown = display_ref(ref)
        try:
            parts = urlsplit(ref)
        except ValueError:
            raise InvalidArgument(f"{shown!r} is not a valid file:// URI") from None
        if parts.netloc not in ("", "localhost"):
            raise InvalidArgument(f"{shown!r}: a file:// URI names a file on the server, not on host {parts.netloc!r}")
        raw = unquote(parts.path)
        if "\x00" in raw:
            raise InvalidArgument(f"{shown!r}: the path contains a NUL character")
        if not raw.startswith("/"):
            raise InvalidArgument(f"{shown!r}: the path must be absolute (file:///folder/file)")
        try:
            path = Path(raw).resolve()
        except (OSError, RuntimeError, ValueError):  # symlink loops, names too long
            raise InvalidArgument(f"{shown!r}: the path cannot be resolved") from None
        roots = self.settings.file_roots(scope.org_id)
        if not any(path == r or r in path.parents for r in roots):
            raise Forbidden(
                f"{shown!r} is outside the folders your organization may read (SCENEBASE_ALLOWED_FILE_ROOTS)"
            )
        if path.is_dir():
            raise InvalidArgument(f"{shown!r} is a directory, not a file")
        return path

    def _s3_location(self, scope: Scope, ref: str) -> tuple[str, str]:
        shown = display_ref(ref)
        try:
            parts = urlsplit(ref)
        except ValueError:
            raise InvalidArgument(f"{shown!r} is not a valid s3:// URI") from None
        bucket, key = parts.netloc, parts.path.lstrip("/")
        if not _BUCKET.fullmatch(bucket) or not key:
            raise InvalidArgument(f"{shown!r}: an S3 URI is s3://BUCKET/KEY")
        if bucket not in self.settings.s3_buckets(scope.org_id):
            raise Forbidden(
                f"{shown!r}: bucket {bucket!r} is not one your organization may read (SCENEBASE_ALLOWED_S3_BUCKETS)"
            )
        if not s3_available():
            raise InvalidArgument(f"cannot read {shown}: this server's S3 support (boto3) is not installed")
        return bucket, key

    # ------------------------------------------------------------------ opening

    def _limit(self, limit: int | None) -> int:
        return self.settings.max_file_bytes if limit is None else min(limit, self.settings.max_file_bytes)

    def _file_source(self, scope: Scope, ref: str, limit: int) -> Source:
        path = self._file_path(scope, ref)
        shown = display_ref(ref)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"{shown!r} does not exist") from None
        except OSError:
            raise Forbidden(f"{shown!r} cannot be read by the server") from None
        if not os.path.isfile(path):
            raise InvalidArgument(f"{shown!r} is not a regular file")
        if st.st_size > limit:
            raise PayloadTooLarge(f"{shown!r} is {st.st_size} bytes; the limit is {limit}")
        return Source(path=path, size=st.st_size, name=path.name, content_type=None)

    def _download(self, scope: Scope, ref: str, deadline: Deadline, limit: int) -> Source:
        """Download ``ref`` into a new temporary file (removed again on failure)."""
        shown = display_ref(ref)
        if deadline.expired():  # queued behind other downloads for the whole deadline
            raise Unavailable(f"cannot fetch {shown}: it did not start within {deadline.seconds:g} s")
        tmp = self.settings.data_dir / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=tmp, prefix="fetch-")
        except OSError as e:
            log.warning("cannot create a download file under %s: %s", tmp, e)
            raise Unavailable(f"cannot fetch {shown}: the server cannot store downloads right now") from None
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                fetched: Fetched
                if ref.lower().startswith("s3:"):
                    bucket, key = self._s3_location(scope, ref)
                    fetched = self.s3.fetch(bucket, key, shown, out, deadline, limit)
                else:
                    fetched = self.urls.fetch(ref, out, deadline, limit)
        except OSError as e:  # the local disk (full, read-only): network errors arrive as ServiceErrors
            path.unlink(missing_ok=True)
            log.warning("cannot write a download under %s: %s", tmp, e)
            raise Unavailable(f"cannot fetch {shown}: the server cannot store downloads right now") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Source(path=path, size=fetched.size, name=reference_name(ref), content_type=fetched.content_type)

    @contextlib.contextmanager
    def open(self, scope: Scope, ref: str, *, limit: int | None = None) -> Iterator[Source]:
        """The referenced file on local disk, downloaded in this thread when remote. Blocking."""
        ref = self.check(scope, ref)
        cap = self._limit(limit)
        if ref.lower().startswith("file:"):
            yield self._file_source(scope, ref, cap)
            return
        self.slots.acquire(scope.org_id, self.settings.fetch_wait_seconds)
        try:
            source = self._download(scope, ref, Deadline(self.settings.fetch_deadline_seconds), cap)
        finally:
            self.slots.release(scope.org_id)
        try:
            yield source
        finally:
            source.path.unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def aopen(self, scope: Scope, ref: str, *, limit: int | None = None) -> AsyncIterator[Source]:
        """Like :meth:`open`, but the download runs on the fetch pool while the caller awaits."""
        ref = self.check(scope, ref)
        cap = self._limit(limit)
        if ref.lower().startswith("file:"):
            yield self._file_source(scope, ref, cap)
            return
        org = scope.org_id
        await self.slots.aacquire(org, self.settings.fetch_wait_seconds)
        try:
            future = self._fetch_pool().submit(
                self._download, scope, ref, Deadline(self.settings.fetch_deadline_seconds), cap
            )
        except BaseException:
            self.slots.release(org)
            raise
        # released when the download ends, however it ends (also when cancelled before it started)
        future.add_done_callback(lambda _f: self.slots.release(org))
        try:
            source = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.add_done_callback(_remove_download)  # the caller left: nobody else will remove the file
            raise
        try:
            yield source
        finally:
            source.path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ bytes

    def read(self, scope: Scope, ref: str, limit: int | None = None) -> bytes:
        """The whole referenced file (for small media such as images)."""
        with self.open(scope, ref, limit=limit) as source:
            return _read_capped(source, self._limit(limit))

    async def aread(self, scope: Scope, ref: str, limit: int | None = None) -> bytes:
        async with self.aopen(scope, ref, limit=limit) as source:
            return await asyncio.wrap_future(self._fetch_pool().submit(_read_capped, source, self._limit(limit)))


def _read_capped(source: Source, limit: int) -> bytes:
    # a local file may have grown since it was measured
    with source.path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"{source.name!r} is larger than {limit} bytes")
    return data


def _remove_download(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().path.unlink(missing_ok=True)
