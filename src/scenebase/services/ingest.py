"""One ingest path for every media kind: validate, read the source, probe, write the blob, one transaction,
clean up on failure, follow-up jobs.

A batch is a list of items, each an uploaded file (spooled by the HTTP server, never read whole into memory
here) or a reference (``http(s)://`` URL, ``s3://`` or ``file://`` URI, read when needed). Bad items are reported
by index and name and the rest of the batch is still ingested; the good items are written in one transaction, so
a batch is never half written, and blobs written for a batch whose transaction fails are removed again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import posixpath
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from scenebase.domain.ids import new_id, standardize_id
from scenebase.domain.metadata import text_problem
from scenebase.services.assets import AssetService, normalize_timestamp, parse
from scenebase.services.errors import InvalidArgument, ServiceError, UnsupportedMedia
from scenebase.services.jobs import JobService
from scenebase.services.kinds import AssetKind, FileMedia, KindRegistry, Media, MediaError
from scenebase.services.lifecycle import blob_keys
from scenebase.services.sets import SetService
from scenebase.services.sources import SourceReader, reference_name
from scenebase.storage.asset_repo import PLAN_ATTEMPTS, Snapshot, StalePlan, WritePlan
from scenebase.storage.blobs import BlobStore
from scenebase.storage.scope import Scope

log = logging.getLogger("scenebase.ingest")


@dataclass
class IncomingItem:
    """One item of an upload batch: exactly one of an uploaded file (``media``), ``url`` or ``uri``. A reference
    whose bytes the caller already fetched carries both the reference and ``media`` (``prefetched``)."""

    index: int
    name: str
    meta: dict[str, Any]
    media: Media | None = None
    url: str | None = None
    uri: str | None = None
    prefetched: bool = False
    #: why the caller could not fetch the reference (reported for this item only)
    fetch_error: ServiceError | None = None
    #: where the file lies inside the folder the client ingested (kept as ``object_access.relative_path``)
    relative_path: str | None = None


@dataclass
class IngestResult:
    ids: list[str | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    #: items ingested with a remark, e.g. ``{"index", "name", "id", "code": "duplicate_content", "warning",
    #: "content_hash", "duplicate_of"}`` (see :meth:`IngestService._report_duplicates`)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: seconds the batch spent per stage ("probe", "store": blob writes, "catalog": the transaction), for the
    #: route's ``Server-Timing`` header
    timings: dict[str, float] = field(default_factory=lambda: {"probe": 0.0, "store": 0.0, "catalog": 0.0})


@dataclass
class _Prepared:
    position: int
    item: IncomingItem
    doc: dict[str, Any]
    media: Media | None  # set for uploads: the blob still has to be written
    content_type: str


@dataclass
class _Batch:
    """What one batch writes, as decided from a snapshot (``IngestService._decide``)."""

    service: IngestService
    scope: Scope
    #: documents written whole (new, or replacing a stored one)
    writes: list[dict[str, Any]] = field(default_factory=list)
    #: blobs of the stored documents ``writes`` replace (removed after the commit)
    old_blobs: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    plans: list[WritePlan] = field(default_factory=list)

    def apply(self, conn: Any) -> list[dict[str, Any]]:
        # the sets must still take members when this commits (not deleted meanwhile): see SetService
        self.service.sets.hold_for_members(conn, self.scope, self.members)
        return [d for plan in self.plans for d in self.service.assets.repo.apply(conn, plan)]


#: most ids named in one duplicate warning
MAX_DUPLICATE_IDS = 10
#: fields an overwriting upload keeps from the stored asset: links to its embeddings (their rows and vectors stay)
#: and its UMAP points, which the new document cannot carry
KEPT_ON_OVERWRITE = ("embeddings", "umap")
#: longest relative path kept for an item (characters)
MAX_RELATIVE_PATH = 1024


def item_error(index: int, name: str, error: ServiceError) -> dict[str, Any]:
    return {"index": index, "name": name, "code": error.code, "error": error.message, "status": error.http_status}


def check_relative_path(value: object) -> str:
    """A folder-relative file path as the client sent it: POSIX separators, no absolute path, no ``.``/``..``
    segment, no control characters (it becomes a name inside zips). Raises InvalidArgument naming the problem."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument("relative_path must be a non-empty string")
    if len(value) > MAX_RELATIVE_PATH:
        raise InvalidArgument(f"relative_path is longer than {MAX_RELATIVE_PATH} characters")
    if any(ord(c) < 32 or c in "\\\x7f" for c in value):
        raise InvalidArgument(f"relative_path {value!r} holds a backslash or a control character")
    parts = value.split("/")
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts) or posixpath.normpath(value) != value:
        raise InvalidArgument(f"relative_path {value!r} must be a plain relative path (a/b.jpg: no /, . or .. parts)")
    return value


def _hash_of(media: Media) -> str:
    digest = hashlib.sha256()
    with media.open() as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


class _HashingReader:
    """A read-only view of a stream that hashes what is read through it (the blob is hashed as it is copied)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._digest.update(chunk)
        return chunk

    def content_hash(self) -> str:
        return f"sha256:{self._digest.hexdigest()}"


class IngestService:
    def __init__(
        self,
        assets: AssetService,
        blobs: BlobStore,
        sources: SourceReader,
        sets: SetService,
        jobs: JobService,
        kinds: KindRegistry,
    ) -> None:
        self.assets = assets
        self.blobs = blobs
        self.sources = sources
        self.sets = sets
        self.jobs = jobs
        self.kinds = kinds

    def ingest(
        self,
        scope: Scope,
        asset_type: str,
        items: list[IncomingItem],
        set_ids: list[str],
        overwrite: bool = True,
        options: dict[str, Any] | None = None,
    ) -> IngestResult:
        """Ingest a batch of one asset type into ``set_ids`` (sets of that type, unlocked, the caller's own).
        ``options`` are kind-specific follow-ups (e.g. ``thumbnailize_at_ingest``)."""
        kind = self.kinds.get(asset_type)
        options = kind.validate_options(dict(options or {}))
        set_ids = self.sets.check_writable(scope, [standardize_id(s) for s in set_ids], asset_type)
        writable = set(set_ids)
        result = IngestResult(ids=[None] * len(items))
        checked: list[tuple[int, IncomingItem, dict[str, Any]]] = []
        for pos, item in enumerate(items):
            try:
                checked.append((pos, item, self._validate(scope, kind, item, writable)))
            except ServiceError as e:
                result.errors.append(item_error(item.index, item.name, e))
        unknown = self._unknown_references(scope, kind, [meta for _, _, meta in checked])
        prepared: list[_Prepared] = []
        seen: set[str] = set()
        for pos, item, meta in checked:
            try:
                _check_references(kind, meta, unknown)
                prepared.append(self._prepare(scope, kind, pos, item, meta, set_ids, seen, result.timings))
            except ServiceError as e:
                result.errors.append(item_error(item.index, item.name, e))
        result.errors.sort(key=lambda e: int(e["index"]))
        if prepared:
            written = self._write(scope, kind, prepared, overwrite, result)
            result.job_ids = self._follow_up(scope, kind, written, options)
        return result

    # ------------------------------------------------------------------ one item

    def _validate(self, scope: Scope, kind: AssetKind, item: IncomingItem, writable: set[str]) -> dict[str, Any]:
        """The item's metadata, checked and cleaned (no file read yet)."""
        meta = kind.validate(item.meta)
        problem = text_problem(item.name)  # stored as object_access.filename: refused here, for this item only
        if problem:
            raise InvalidArgument(f"the file name {problem}")
        meta["timestamp"] = normalize_timestamp(meta.get("timestamp"))
        if item.fetch_error is not None:
            raise item.fetch_error
        item_sets = [s for s in meta.get("sets") or [] if s not in writable]
        if item_sets:  # per-item sets get the same checks as the batch's sets (own, same type, unlocked)
            self.sets.check_writable(scope, item_sets, kind.asset_type)
            writable.update(item_sets)
        return meta

    def _unknown_references(self, scope: Scope, kind: AssetKind, metas: list[dict[str, Any]]) -> dict[str, set[str]]:
        """Per reference field (``kind.references``), the ids the batch names that are no asset of the caller's
        own organization: one lookup per field for the whole batch."""
        unknown: dict[str, set[str]] = {}
        for field_name, target_type in kind.references.items():
            wanted = sorted({ref for meta in metas for ref in meta.get(field_name) or []})
            if not wanted:
                continue
            found = self.assets.get_many(scope, target_type, wanted)
            # a shared organization's asset is readable, but a reference must stay inside the owner's data
            unknown[field_name] = {ref for ref in wanted if (found.get(ref) or {}).get("owner") != scope.org_id}
        return unknown

    def _prepare(
        self,
        scope: Scope,
        kind: AssetKind,
        pos: int,
        item: IncomingItem,
        meta: dict[str, Any],
        set_ids: list[str],
        seen: set[str],
        timings: dict[str, float],
    ) -> _Prepared:
        uploaded = item.media is not None and not item.prefetched
        if sum(x is not None for x in (None if item.prefetched else item.media, item.url, item.uri)) != 1:
            raise InvalidArgument(f"give exactly one of {kind.noun} path/bytes, url and uri")
        relative_path = None if item.relative_path is None else check_relative_path(item.relative_path)
        content_hash = None
        with self._local_media(scope, item) as media:
            if media.size == 0:
                raise UnsupportedMedia("empty file")
            started = time.perf_counter()
            try:
                probed = kind.probe(media, meta)
            except MediaError as e:
                raise UnsupportedMedia(e.problem) from None
            finally:
                timings["probe"] += time.perf_counter() - started
            if not uploaded:  # a reference has no blob to hash while writing: hash the bytes read now
                content_hash = _hash_of(media)
        meta.setdefault("id", new_id())
        if meta["id"] in seen:
            raise InvalidArgument(f"id {meta['id']!r} appears twice in this batch")
        seen.add(meta["id"])
        if uploaded:
            access: dict[str, Any] = {"filename": item.name}
        else:
            ref = str(item.url or item.uri)
            access = {"url": ref} if item.url else {"uri": ref}
            access["filename"] = reference_name(ref)
        access.update(content_type=probed.content_type, extension=probed.extension)
        if relative_path is not None:
            access["relative_path"] = relative_path
        doc = {
            **meta,
            **probed.fields,
            "media_type": kind.media_type,
            "object_access": access,
            "thumbnails": {},
            "sets": sorted(set(meta.get("sets", [])) | set(set_ids)),
        }
        if content_hash is not None:
            doc["content_hash"] = content_hash
        return _Prepared(pos, item, doc, item.media if uploaded else None, probed.content_type)

    @contextlib.contextmanager
    def _local_media(self, scope: Scope, item: IncomingItem) -> Iterator[Media]:
        if item.media is not None:
            yield item.media
            return
        ref = self.sources.check(scope, str(item.url or item.uri))
        with self.sources.open(scope, ref) as source:
            yield FileMedia(source.path, item.name)

    # ------------------------------------------------------------------ the batch

    def _write(
        self, scope: Scope, kind: AssetKind, prepared: list[_Prepared], overwrite: bool, result: IngestResult
    ) -> list[dict[str, Any]]:
        """Store the uploads and write the batch in one transaction. What is written (a new document, a replaced
        one, only a merge of sets and metadata with ``overwrite=False``) is decided from a snapshot read before the
        transaction, and planned there too (see AssetRepo.plan); when a document changed in between (StalePlan),
        everything is decided again from a new snapshot, and after ``PLAN_ATTEMPTS`` from one read inside the
        transaction under its locks. Blobs stored for items that end up not written are removed."""
        asset_type = kind.asset_type
        repo = self.assets.repo
        ids = [p.doc["id"] for p in prepared]
        uploads: dict[int, str] = {}  # position -> blob key of its stored upload, kept across attempts
        try:
            batch = None
            snapshot = repo.snapshot(scope, asset_type, ids)
            for _attempt in range(PLAN_ATTEMPTS):
                batch = self._decide(scope, kind, prepared, overwrite, snapshot, result, uploads)
                started = time.perf_counter()
                try:  # one transaction: all of the batch or nothing
                    stored = repo.catalog.write_retrying(batch.apply)
                    break
                except StalePlan:
                    snapshot = repo.snapshot(scope, asset_type, ids)
                finally:
                    result.timings["catalog"] += time.perf_counter() - started
            else:
                decide_locked = functools.partial(self._write_locked, scope, kind, prepared, overwrite, result, uploads)
                batch, stored = repo.catalog.write_retrying(decide_locked)
            assert batch is not None
            self.assets.written(scope, asset_type)
        except BaseException:
            for key in uploads.values():
                self.blobs.delete(key)
            raise
        used = {d["object_access"].get("key") for d in batch.writes}
        for key in [*batch.old_blobs, *(k for k in uploads.values() if k not in used)]:
            self.blobs.delete(key)
        stored_ids = {d["id"] for d in stored}
        for p in prepared:
            if p.doc["id"] in stored_ids:
                result.ids[p.position] = p.doc["id"]
        written_ids = {d["id"] for d in batch.writes}
        try:
            self._report_duplicates(scope, asset_type, [p for p in prepared if p.doc["id"] in written_ids], result)
        except Exception:  # the batch is committed: a failed check costs its warnings, never the answer
            log.exception("duplicate check of a %s batch failed; its items were ingested", asset_type)
        return batch.writes

    def _write_locked(
        self,
        scope: Scope,
        kind: AssetKind,
        prepared: list[_Prepared],
        overwrite: bool,
        result: IngestResult,
        uploads: dict[int, str],
        conn: Any,
    ) -> tuple[_Batch, list[dict[str, Any]]]:
        """The batch decided and written inside one transaction, from its rows read under locks."""
        snapshot = self.assets.repo.snapshot_in(conn, scope, kind.asset_type, [p.doc["id"] for p in prepared])
        batch = self._decide(scope, kind, prepared, overwrite, snapshot, result, uploads)
        return batch, batch.apply(conn)

    def _decide(
        self,
        scope: Scope,
        kind: AssetKind,
        prepared: list[_Prepared],
        overwrite: bool,
        snapshot: Snapshot,
        result: IngestResult,
        uploads: dict[int, str],
    ) -> _Batch:
        """What the batch writes given the stored documents in ``snapshot``; stores the uploads of the items it
        writes (once: ``uploads``)."""
        asset_type = kind.asset_type
        batch = _Batch(self, scope)
        merge_only: list[dict[str, Any]] = []
        for p in prepared:
            doc = p.doc
            old = snapshot.doc(doc["id"])  # the organization's own (a shared one's is a separate document)
            if old is not None and not overwrite:
                patch = {k: doc[k] for k in kind.merge_on_no_overwrite if k in doc}
                merge_only.append({"id": doc["id"], "timestamp": old["timestamp"], **patch})
                continue
            if p.media is not None and p.position not in uploads:
                key = f"{asset_type}/{new_id()}.{doc['object_access']['extension']}"
                started = time.perf_counter()
                doc["content_hash"] = self._store_upload(key, p.media, p.content_type)
                result.timings["store"] += time.perf_counter() - started
                uploads[p.position] = key
                doc["object_access"]["key"] = key
            if old is not None:
                batch.old_blobs.extend(blob_keys(old))
            batch.writes.append(doc)
        # set membership survives a re-upload: unioned with the stored list; so do the links to the asset's
        # embeddings and its UMAP points (its embedding rows are untouched)
        batch.members = [s for d in batch.writes + merge_only for s in d.get("sets") or []]
        if batch.writes:
            batch.plans.append(self.assets.plan(scope, asset_type, batch.writes, "replace", snapshot,
                                                keep_lists=("sets",), keep_fields=KEPT_ON_OVERWRITE))  # fmt: skip
        if merge_only:
            batch.plans.append(self.assets.plan(scope, asset_type, merge_only, "merge", snapshot))
        return batch

    def _report_duplicates(self, scope: Scope, asset_type: str, written: list[_Prepared], result: IngestResult) -> None:
        """Warn about each written item whose content another asset of the organization already has: one ingested
        before this batch, or one earlier in this batch. Checked after the commit, so of two batches written at
        the same time the later check sees the other one's assets (each pair is reported at least once).

        One query counts the organization's assets per hash of the batch (in the hash postings); only hashes held
        outside the batch (rare) cost a second query, for the ids of a few holders."""
        batch_ids: dict[str, list[str]] = {}
        for p in written:
            if p.doc.get("content_hash"):
                batch_ids.setdefault(str(p.doc["content_hash"]), []).append(str(p.doc["id"]))
        if not batch_ids:
            return
        org = Scope.of(scope.org_id)  # not the organizations that shared their data with this one

        def holders(hashes: list[str]) -> Any:
            return parse({"filters": [{"field": "content_hash", "values": hashes}]})

        totals = self.assets.repo.count_strings(org, asset_type, "content_hash", list(batch_ids))
        outside: dict[str, tuple[list[str], int]] = {}  # hash -> (a few ids held outside the batch, how many)
        for digest, ids in batch_ids.items():
            count = totals.get(digest, 0) - len(ids)
            if count > 0:
                found = self.assets.repo.search(org, asset_type, holders([digest]),
                                                size=MAX_DUPLICATE_IDS + len(ids), ids_only=True)  # fmt: skip
                outside[digest] = (sorted(i for i in found if i not in ids)[:MAX_DUPLICATE_IDS], count)
        earlier: dict[str, list[str]] = {}
        for p in written:
            digest = str(p.doc.get("content_hash") or "")
            if not digest:
                continue
            shown, count = outside.get(digest, ([], 0))
            before = earlier.setdefault(digest, [])
            others, count = (shown + before)[:MAX_DUPLICATE_IDS], count + len(before)
            before.append(str(p.doc["id"]))
            if not count:
                continue
            more = f" and {count - len(others)} more" if count > len(others) else ""
            result.warnings.append({
                "index": p.item.index, "name": p.item.name, "id": p.doc["id"], "code": "duplicate_content",
                "warning": f"same content as {', '.join(others)}{more}", "content_hash": digest,
                "duplicate_of": others, "duplicates": count,
            })  # fmt: skip

    def _store_upload(self, key: str, media: Media, content_type: str) -> str:
        """Write an uploaded file as blob ``key`` and return its content hash, touching its bytes as few times as
        possible: an upload the HTTP server spooled to a named file (and hashed as it arrived) is moved into the
        store; one held in memory is written once; anything else is hashed while it is copied."""
        spooled_path = getattr(media, "path", None)
        known_hash = getattr(media, "content_hash", None)
        if isinstance(spooled_path, Path) and known_hash:
            self.blobs.put_file(key, spooled_path, content_type, move=True)
            return str(known_hash)
        data = media.buffer()
        if data is not None:
            self.blobs.put(key, data, content_type)
            return str(known_hash or f"sha256:{hashlib.sha256(data).hexdigest()}")
        with media.open() as stream:
            reader = _HashingReader(stream)
            self.blobs.put_stream(key, cast(BinaryIO, reader), content_type)
        return reader.content_hash()

    def _follow_up(
        self, scope: Scope, kind: AssetKind, written: list[dict[str, Any]], options: dict[str, Any]
    ) -> list[str]:
        job_ids = []
        for job in kind.after_ingest(written, options):
            row = self.jobs.submit(scope, job.job_type, job.params, description=job.description,
                                   asset_type=kind.asset_type)  # fmt: skip
            job_ids.append(str(row["id"]))
        return job_ids


def _check_references(kind: AssetKind, meta: dict[str, Any], unknown: dict[str, set[str]]) -> None:
    for field_name, target_type in kind.references.items():
        missing = [ref for ref in meta.get(field_name) or [] if ref in unknown.get(field_name, ())]
        if missing:
            raise InvalidArgument(
                f"{field_name}: {', '.join(repr(m) for m in missing)} not found among this organization's {target_type}"
            )
