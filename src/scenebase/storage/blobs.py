"""Blob stores: a local folder (embedded default) or any S3-compatible service.

Keys are relative POSIX paths made of ``[A-Za-z0-9._~@#!=-]`` segments, e.g. ``<org>/images/<id>/original``.
A key that tries to leave the store (``..``, absolute, backslashes) is rejected before any I/O.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlparse

_SEGMENT = re.compile(r"^[A-Za-z0-9._~@#!=-]+$")
#: copy buffer for streamed writes and reads
CHUNK = 1024 * 1024


class BlobNotFound(KeyError):
    """No blob under this key."""


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _SEGMENT.match(p) for p in parts):
        raise ValueError(f"invalid blob key {key!r}")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """What every blob backend offers. ``tests/contract/test_blobs.py`` runs against each one."""

    url: str

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    def put_file(self, key: str, path: Path, content_type: str | None = None, move: bool = False) -> None:
        """Write a blob from a local file in constant memory. ``move``: the file is the caller's temporary copy
        and may be moved into the store (a folder store renames it: no copy); it is gone afterwards."""
        ...

    def put_stream(self, key: str, stream: BinaryIO, content_type: str | None = None) -> int:
        """Write a blob from a readable binary stream (read from its current position to its end) in constant
        memory; returns the number of bytes written."""
        ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the blob (the caller closes it). Raises BlobNotFound."""
        ...

    def local_path(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """A local file holding the blob, for libraries that need a seekable path (PyAV, rosbags): the file
        itself for a folder store, a temporary copy (removed on exit) for remote stores. Raises BlobNotFound."""
        ...

    def open_range(self, key: str, start: int, length: int) -> bytes: ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def modified_at(self, key: str) -> float:
        """When the blob was last written (epoch seconds). Raises BlobNotFound. The sweeper leaves blobs younger
        than its grace period alone: an ingest in flight writes blobs before its documents point at them."""
        ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> Iterator[str]: ...


class LocalBlobStore:
    """Blobs as files under one root folder. Writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.as_uri()
        #: folders known to exist: a mkdir per write is a failing system call each time (blobs are never removed
        #: with their folder; one removed behind our back is made again, see ``_temporary``)
        self._folders: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _temporary(self, target: Path) -> tuple[int, str]:
        """A new temporary file beside ``target`` (made atomic by a rename), its folder created when needed."""
        folder = target.parent
        if folder not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        try:
            return tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except FileNotFoundError:
            folder.mkdir(parents=True, exist_ok=True)
            return tempfile.mkstemp(dir=folder, prefix=".tmp-")

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        path = self._path(key)
        fd, tmp = self._temporary(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path, content_type: str | None = None, move: bool = False) -> None:
        """Copy a file in (constant memory: zips of large sets are gigabytes); with ``move``, rename it into place
        when it is on the store's filesystem (an upload spooled to the data folder: written once, never copied)."""
        target = self._path(key)
        for attempt in (1, 2) if move else ():
            try:
                os.replace(path, target)
                return
            except FileNotFoundError:
                if attempt == 2 or not path.exists():
                    raise
                target.parent.mkdir(parents=True, exist_ok=True)  # the target's folder is missing: make it, retry
            except OSError as e:
                if e.errno != errno.EXDEV:  # another filesystem: copy, then remove the source below
                    raise
                break
        fd, tmp = self._temporary(target)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if move:
            path.unlink(missing_ok=True)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str | None = None) -> int:
        target = self._path(key)
        fd, tmp = self._temporary(target)
        written = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                while chunk := stream.read(CHUNK):
                    fh.write(chunk)
                    written += len(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return written

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFound(key)
        yield path

    def open_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as fh:
                fh.seek(start)
                return fh.read(length)
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def modified_at(self, key: str) -> float:
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                rel = Path(dirpath, name).relative_to(base).as_posix()
                if rel.startswith(prefix):
                    yield rel


def open_blob_store(url: str) -> BlobStore:
    """``file:///abs/path`` → :class:`LocalBlobStore`; ``s3://bucket?endpoint=...`` → ``S3BlobStore``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from scenebase.storage.s3 import S3BlobStore

        opts = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return S3BlobStore(
            bucket=parsed.netloc,
            prefix=parsed.path.strip("/"),
            endpoint=opts.get("endpoint"),
            region=opts.get("region", "us-east-1"),
            access_key=opts.get("access_key") or os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_key=opts.get("secret_key") or os.environ.get("AWS_SECRET_ACCESS_KEY"),
            create_bucket=opts.get("create_bucket", "true").lower() == "true",
        )
    raise ValueError(f"unsupported blob URL {url!r}: use file:///PATH or s3://BUCKET?endpoint=URL")
