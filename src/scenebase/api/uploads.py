"""Parsing multipart uploads: Starlette's parser with two changes that matter for media.

* **Memory**: Starlette spools every file part above 1 MiB to a temporary file and writes it there on a worker
  thread, one hand-off per received chunk, so a batch of 1.6 MB point clouds writes every byte twice (spool,
  blob) and waits on the hand-offs. Here a part may grow in memory up to what a process-wide budget grants it when
  its headers arrive (at most ``IN_MEMORY_PART_BYTES``); past that it rolls over to a temporary file as before, so
  a huge upload still costs constant memory. What a part did not use goes back to the budget when it ends, the
  rest when the request's form is closed.
* **Spooling**: a part that rolled over to its temporary file is written there directly, not on a worker thread
  for every received piece (a 2 GB video arrives in ~30,000 pieces of 64 KiB; a write into the page cache costs
  microseconds, the thread hand-off more than that). The temporary file is a named file in the server's own
  temporary folder (``<data dir>/tmp``), so the ingest service can *move* it into a folder blob store instead of
  copying it, and a part that rolled over is hashed (SHA-256) as it arrives, so the content hash costs no second
  read: a large upload is written to disk once. A part kept in memory is hashed by the ingest, in one call.
* **Size**: a file part stops being stored once it passes ``max_file_bytes`` (it is still counted): its
  ``UploadFile.size`` is its full size, so the route reports that item as too large and goes on with the batch.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from pathlib import Path
from typing import Any, cast

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from scenebase.services.errors import InvalidArgument, UnsupportedMedia

#: an uploaded file part of at most this size stays in memory while the process holds less than
#: IN_MEMORY_UPLOADS_BYTES of such parts; larger ones (and any beyond that budget) are spooled to a temporary file
IN_MEMORY_PART_BYTES = 16 * 1024 * 1024
IN_MEMORY_UPLOADS_BYTES = 256 * 1024 * 1024


class _MemoryBudget:
    """Bytes of uploaded parts a process may hold in memory at once, shared by every request."""

    def __init__(self, total: int) -> None:
        self.available = total
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        with self._lock:
            granted = min(wanted, self.available)
            self.available -= granted
            return granted

    def give(self, n: int) -> None:
        with self._lock:
            self.available += n


UPLOAD_MEMORY = _MemoryBudget(IN_MEMORY_UPLOADS_BYTES)


class NamedSpool(tempfile.SpooledTemporaryFile):
    """A spooled file that rolls over into a *named* file (``path``), which the caller may move away; whatever is
    left at ``path`` is removed by :meth:`discard`."""

    def __init__(self, max_size: int, folder: Path) -> None:
        super().__init__(max_size=max_size, dir=str(folder), prefix="scenebase-upload-")
        self.folder = folder
        self.path: Path | None = None
        #: the SHA-256 of what was written, kept from the rollover on: a part small enough to stay in memory is
        #: hashed by the ingest when it writes the blob (hashing each arriving piece on the event loop releases and
        #: retakes the GIL per piece, which the request threads then wait for)
        self.sha256: Any = None

    def write(self, data: Any) -> int:
        rolled = cast(Any, self)._rolled
        written = super().write(data)
        if rolled:
            self.sha256.update(data)
        return written

    def content_hash(self) -> str | None:
        """``sha256:<hex>`` of the whole part once it rolled over to its file (None while it is in memory)."""
        return None if self.sha256 is None else f"sha256:{self.sha256.hexdigest()}"

    def rollover(self) -> None:
        # mirrors SpooledTemporaryFile.rollover, with a named file (it owns the file until ``discard``)
        state: Any = self
        if state._rolled:
            return
        memory = state._file
        self.folder.mkdir(parents=True, exist_ok=True)  # here, not per part: most parts never roll over
        named = tempfile.NamedTemporaryFile(**state._TemporaryFileArgs, delete=False)  # noqa: SIM115
        self.path = Path(named.name)
        del state._TemporaryFileArgs
        position = memory.tell()
        self.sha256 = hashlib.sha256(memory.getbuffer())
        named.write(memory.getvalue())
        named.seek(position, 0)
        state._file = named
        state._rolled = True

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _DirectUploadFile(UploadFile):
    """An ``UploadFile`` whose writes go straight to its spool (no thread hop; module docstring)."""

    async def write(self, data: bytes) -> None:
        if self.size is not None:
            self.size += len(data)
        self.file.write(data)


class UploadParser(MultiPartParser):
    """See the module docstring. ``release()`` returns the memory the request still holds."""

    def __init__(self, *args: Any, max_file_bytes: int, spool_folder: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_file_bytes = max_file_bytes
        self.spool_folder = spool_folder
        self.spools: list[NamedSpool] = []
        self.file_bytes: dict[int, int] = {}  # id(UploadFile) -> bytes the part had
        self.oversized: dict[int, UploadFile] = {}
        self._granted = 0  # for the file part being received
        self._received = 0
        self._held = 0  # by the finished in-memory parts of this request

    def on_headers_finished(self) -> None:
        self._granted = UPLOAD_MEMORY.take(IN_MEMORY_PART_BYTES)
        self._received = 0
        self.spool_max_size = max(1, self._granted)  # read by the parent when it makes the part's spool file
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is not None:  # nothing was written to the part's file yet: swap in the named spool
            spool = NamedSpool(self.spool_max_size, self.spool_folder)
            self.spools.append(spool)
            upload.file.close()
            upload.file = spool  # type: ignore[assignment]
            upload.__class__ = _DirectUploadFile
        if self._current_part.file is None:  # a plain field (the manifest): no file, no memory taken
            UPLOAD_MEMORY.give(self._granted)
            self._granted = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        upload = self._current_part.file
        if upload is not None:
            seen = self.file_bytes.get(id(upload), 0) + (end - start)
            self.file_bytes[id(upload)] = seen
            if seen > self.max_file_bytes:
                self.oversized[id(upload)] = upload
                return  # counted, not stored
            self._received += end - start
        super().on_part_data(data, start, end)

    def on_part_end(self) -> None:
        super().on_part_end()
        kept = self._received if self._current_part.file is not None and self._received <= self._granted else 0
        UPLOAD_MEMORY.give(self._granted - kept)  # a part that rolled over to disk keeps nothing
        self._held += kept
        self._granted = 0

    def release(self) -> None:
        UPLOAD_MEMORY.give(self._held + self._granted)
        self._held = self._granted = 0
        for spool in self.spools:  # files the ingest did not move into the blob store
            spool.discard()
        self.spools = []


class Upload:
    """A parsed upload; ``close()`` closes its files and returns its memory."""

    def __init__(self, form: FormData, parser: UploadParser) -> None:
        self.form = form
        self._parser = parser

    async def close(self) -> None:
        try:
            await self.form.close()
        finally:
            self._parser.release()


async def parse_upload(
    request: Request, *, max_files: int, max_fields: int, max_part_size: int, max_file_bytes: int, spool_folder: Path
) -> Upload:
    """The multipart form of an upload request (see the module docstring)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMedia(f"an upload is multipart/form-data with a 'manifest' part, not {content_type[:60]!r}")
    parser = UploadParser(
        request.headers, request.stream(), max_files=max_files, max_fields=max_fields, max_part_size=max_part_size,
        max_file_bytes=max_file_bytes, spool_folder=spool_folder,
    )  # fmt: skip
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        parser.release()
        raise InvalidArgument(f"malformed multipart upload: {exc.message}") from None
    except BaseException:
        parser.release()
        raise
    for key, upload in parser.oversized.items():
        upload.size = parser.file_bytes[key]
    return Upload(form, parser)


def spooled(upload: UploadFile) -> tuple[Path | None, str | None]:
    """The named file an upload part rolled over to (None while it is in memory) and its content hash."""
    spool = upload.file
    if not isinstance(spool, NamedSpool):
        return None, None
    return spool.path, spool.content_hash()
