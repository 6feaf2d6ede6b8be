"""The sweeper: removes what a killed process left behind (blobs no document points at, stale temporary files).

A server killed with ``kill -9`` in the middle of an ingest has written blobs whose documents were never committed;
one killed while zipping or downloading leaves temporary files. Nothing else ever removes them, so every server
sweeps now and then (``SCENEBASE_SWEEP_INTERVAL_SECONDS``):

* **blobs** under the prefixes the server writes (``<asset type>/``, ``thumbnails/``, ``zipfiles/``) that no
  document of any organization points at, and that are older than ``SCENEBASE_SWEEP_GRACE_SECONDS``. Ingests
  write their blobs before their documents, so the grace period is what keeps a sweep from removing the blob of an
  ingest in flight: the blobs are listed first, the references read afterwards, and an unreferenced blob goes
  only when it was written before the grace period (a document is never made to point at an old blob). A
  reference is any string under a ``key`` field anywhere in a document (``object_access.key``,
  ``thumbnails.<tag>.key``, ...): reading too many as references keeps a blob, never loses one.
* **temporary files** older than the grace period: downloads, spooled uploads, video job folders and zips being
  built in ``<data_dir>/tmp``, the folder blob store's ``.tmp-*`` files (writes in progress), and ``scenebase-*``
  files and folders in the system's temporary folder (media copies, S3 blob copies).

Several servers may sweep at once: deleting a blob or a file twice is harmless.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from scenebase.constants import AssetsConstants
from scenebase.storage.blobs import BlobNotFound, BlobStore, LocalBlobStore
from scenebase.storage.catalog import Catalog
from scenebase.storage.tables import assets as assets_table

log = logging.getLogger("scenebase.sweeper")

#: blob key prefixes the server writes (other prefixes in a shared bucket are never touched)
OWN_PREFIXES = tuple(dict.fromkeys([*(f"{t}/" for t in AssetsConstants.VALID_ASSETS), "thumbnails/", "zipfiles/"]))
#: name prefix of the system temporary files and folders scenebase makes
TEMP_PREFIX = "scenebase-"
#: documents read per catalog query while collecting references
_BATCH = 1000


@dataclass
class SweepReport:
    blobs_removed: list[str] = field(default_factory=list)
    temp_removed: list[str] = field(default_factory=list)
    blobs_kept_young: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"blobs_removed": len(self.blobs_removed), "temp_removed": len(self.temp_removed),
                "blobs_kept_young": self.blobs_kept_young}  # fmt: skip


def referenced_keys(docs: Iterable[Any]) -> set[str]:
    """Every string under a ``key`` field anywhere in ``docs`` (iterative: documents may nest 32 deep)."""
    keys: set[str] = set()
    stack = list(docs)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for name, item in value.items():
                if name == "key" and isinstance(item, str):
                    keys.add(item)
                elif isinstance(item, dict | list):
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, dict | list))
    return keys


class Sweeper:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        data_dir: Path,
        grace_seconds: float,
        interval_seconds: float,
        system_temp: Path | None = None,
    ) -> None:
        self.catalog = catalog
        self.blobs = blobs
        self.data_dir = data_dir
        self.grace_seconds = grace_seconds
        self.interval_seconds = interval_seconds
        self.system_temp = system_temp or Path(tempfile.gettempdir())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one sweep

    def sweep(self, now: float | None = None) -> SweepReport:
        """Remove unreferenced blobs and temporary files older than the grace period; returns what went."""
        cutoff = (time.time() if now is None else now) - self.grace_seconds
        report = SweepReport()
        self._sweep_blobs(cutoff, report)
        self._sweep_temp(cutoff, report)
        if report.blobs_removed or report.temp_removed:
            log.info("sweep removed %s", report.as_dict())
        return report

    def _sweep_blobs(self, cutoff: float, report: SweepReport) -> None:
        listed = [key for prefix in OWN_PREFIXES for key in self.blobs.list(prefix)]
        if not listed:
            return
        referenced = referenced_keys(self._all_documents())  # read after the listing: see the module docstring
        for key in listed:
            if key in referenced:
                continue
            try:
                if self.blobs.modified_at(key) >= cutoff:
                    report.blobs_kept_young += 1  # possibly an ingest in flight
                    continue
            except BlobNotFound:  # removed meanwhile
                continue
            self.blobs.delete(key)
            report.blobs_removed.append(key)

    def _all_documents(self) -> Iterator[Any]:
        """Every document of every organization and type, in primary-key batches (constant memory)."""
        last = None
        while True:
            query = select(assets_table.c.pk, assets_table.c.doc).order_by(assets_table.c.pk).limit(_BATCH)
            if last is not None:
                query = query.where(assets_table.c.pk > last)
            with self.catalog.read() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for _pk, doc in rows:
                yield doc
            last = rows[-1][0]

    def _sweep_temp(self, cutoff: float, report: SweepReport) -> None:
        places: list[tuple[Path, str]] = [(self.data_dir / "tmp", ""), (self.system_temp, TEMP_PREFIX)]
        for folder, prefix in places:
            try:
                entries = list(folder.iterdir())
            except OSError:  # not there (yet), or unreadable
                continue
            for entry in entries:
                if entry.name.startswith(prefix) and _newest_change(entry) < cutoff:
                    _remove(entry)
                    report.temp_removed.append(str(entry))
        if isinstance(self.blobs, LocalBlobStore):
            for dirpath, _dirs, files in os.walk(self.blobs.root):
                for name in files:
                    path = Path(dirpath, name)
                    if name.startswith(".tmp-") and _newest_change(path) < cutoff:
                        _remove(path)
                        report.temp_removed.append(str(path))

    # ------------------------------------------------------------------ in the background

    def start(self) -> None:
        """Sweep every ``interval_seconds`` on a thread of its own (not at all when the interval is 0)."""
        if self.interval_seconds <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scenebase-sweeper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.sweep()
            except Exception:  # a sweep that failed (catalog or store unreachable) is retried next time
                log.exception("sweep failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


def _newest_change(path: Path) -> float:
    """The latest modification time of ``path`` or anything inside it (a zip being written grows inside its
    folder, which itself does not change); +inf when it cannot be read, so it is left alone."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for dirpath, dirs, files in os.walk(path):
                for name in [*dirs, *files]:
                    newest = max(newest, Path(dirpath, name).lstat().st_mtime)
        return newest
    except OSError:
        return float("inf")


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as e:
        log.warning("cannot remove %s: %s", path, e)
