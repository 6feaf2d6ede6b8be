"""Resolution of session timelines (a job, debounced for automatic runs), its status, scenario search and field
data (FACTS 4.3, 4.6).

Resolved columns are kept decoded in a per-process cache keyed by (owner, session, name) and checked against the
catalog's ``generation`` on every search, so several servers never answer from a stale column: a search asks the
catalog only which columns exist and of which generation, and reads payloads for those it does not hold.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from typing import Any, ClassVar, Protocol

from scenebase.constants import AssetsConstants, SessionConstants
from scenebase.domain.entities import EntityError, aware_epoch
from scenebase.domain.timeline import Grid, resolve
from scenebase.domain.timeline_data import Column, EntityChunk
from scenebase.domain.timeline_index import ColumnIndex, build_index, search_sessions
from scenebase.domain.timeline_search import ScenarioQuery, ScenarioQueryError, parse_scenario
from scenebase.domain.timeutil import to_epoch, to_iso, to_iso_many
from scenebase.services.assets import AssetService
from scenebase.services.errors import InvalidArgument, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.storage.job_repo import TERMINAL as TERMINAL_STATUSES
from scenebase.storage.scope import Scope
from scenebase.storage.session_repo import ColumnRef, SessionRepo

log = logging.getLogger("scenebase.sessions")
KIND = AssetsConstants.SESSIONS_ASSET_ID
WHERE = "session_manager"


class Enricher(Protocol):
    """Derives entities (location, visibility, weather) from a session's geo entities at resolution time."""

    def derive(self, doc: dict[str, Any], chunks: list[EntityChunk]) -> tuple[list[EntityChunk], list[str]]: ...


class ColumnCache:
    """Decoded resolved columns and their search indexes (built on first use), least recently used first out,
    bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str, str], tuple[int, Column, ColumnIndex | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(entry: tuple[int, Column, ColumnIndex | None]) -> int:
        return entry[1].nbytes + (entry[2].nbytes if entry[2] is not None else 0)

    def get_many(self, wanted: list[tuple[tuple[str, str, str], int]]) -> list[Column | None]:
        """The cached columns of ``(key, generation)``s (None where missing or of another generation)."""
        out: list[Column | None] = []
        with self._lock:
            for key, generation in wanted:
                hit = self._items.get(key)
                if hit is None or hit[0] != generation:
                    out.append(None)
                else:
                    self._items.move_to_end(key)
                    out.append(hit[1])
        return out

    def put(self, key: tuple[str, str, str], generation: int, column: Column) -> None:
        with self._lock:
            self._store(key, (generation, column, None))

    def indexes(self, columns: list[tuple[tuple[str, str, str], int, Column]]) -> dict[int, ColumnIndex]:
        """``id(column) -> search index`` of cached ``(key, generation, column)``s; the missing indexes are built
        (outside the lock) and kept with their columns while those are still cached and current."""
        out: dict[int, ColumnIndex] = {}
        todo: list[tuple[tuple[str, str, str], int, Column]] = []
        with self._lock:
            for key, generation, column in columns:
                hit = self._items.get(key)
                if hit is not None and hit[0] == generation and hit[1] is column and hit[2] is not None:
                    out[id(column)] = hit[2]
                else:
                    todo.append((key, generation, column))
        built = [(key, generation, column, build_index(column)) for key, generation, column in todo]
        with self._lock:
            for key, generation, column, index in built:
                out[id(column)] = index
                hit = self._items.get(key)
                if hit is not None and hit[0] == generation and hit[1] is column:
                    self._store(key, (generation, column, index))
        return out

    def _store(self, key: tuple[str, str, str], entry: tuple[int, Column, ColumnIndex | None]) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= self._size(old)
        self._items[key] = entry
        self._bytes += self._size(entry)
        while self._bytes > self.max_bytes and self._items:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= self._size(dropped)

    def forget_session(self, owner: str, session_uid: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == owner and k[1] == session_uid]:
                self._bytes -= self._size(self._items.pop(key))


def _strict_epoch(value: Any) -> float:
    try:
        return aware_epoch(value, "time")
    except EntityError as e:
        raise ValueError(str(e)) from None


class TimelineService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("session_resolution",)

    def __init__(
        self,
        assets: AssetService,
        repo: SessionRepo,
        jobs: JobService,
        enricher: Enricher | None = None,
        debounce_seconds: float = 1.0,
        cache_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.assets = assets
        self.repo = repo
        self.jobs = jobs
        self.enricher = enricher
        self.debounce_seconds = debounce_seconds
        self.cache = ColumnCache(cache_bytes)

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("session_resolution", self._resolution_job)

    def _doc(self, scope: Scope, session_uid: str, own: bool = False) -> dict[str, Any]:
        try:
            doc = self.assets.get(scope, KIND, session_uid)
        except NotFound:
            raise NotFound(f"no session with uid {session_uid!r}", resource=KIND) from None
        if own and doc.get("owner") != scope.org_id:
            raise NotFound(f"no session with uid {session_uid!r}", resource=KIND)
        return doc

    # ------------------------------------------------------------------ resolution

    def resolve(self, scope: Scope, session_uid: str, resolution: float | None = None) -> str:
        """Start a resolution job now (no debounce); a given resolution becomes the session's."""
        doc = self._doc(scope, session_uid, own=True)
        if resolution is not None:
            if isinstance(resolution, bool) or not math.isfinite(resolution) or resolution <= 0:
                raise InvalidArgument(f"resolution must be a positive number of seconds, got {resolution!r}",
                                      resource=KIND)  # fmt: skip
            if resolution != doc.get("resolution"):
                self.assets.put(scope, KIND, [{"id": doc["id"], "timestamp": doc["timestamp"],
                                               "resolution": float(resolution)}], mode="merge")  # fmt: skip
        return self._submit(scope, doc["id"], auto=False)

    def _submit(self, scope: Scope, uid: str, auto: bool) -> str:
        row = self.jobs.submit(scope, "session_resolution", {"session_uid": uid, "auto": auto},
                               description=f"resolve session {uid}", asset_type=KIND, asset_id=uid)  # fmt: skip
        self.repo.set_job(scope, uid, str(row["id"]))
        return str(row["id"])

    def request_auto_resolution(self, scope: Scope, uid: str) -> None:
        """After a non-urgent write: make sure a queued resolution job will see it. A job that is still queued
        has read nothing yet, so one is enough; a running one may have read the entities already, so another is
        queued behind it (it waits for the writes to pause, then resolves once)."""
        state = self.repo.state(scope.org_id, uid)
        if state is not None and state.job_id:
            job = self.jobs.repo.get(scope, state.job_id)
            if job is not None and job["status"] == "queued" and (job.get("params") or {}).get("auto"):
                return
        self._submit(scope, uid, auto=True)

    def _resolution_job(self, ctx: JobContext) -> dict[str, Any]:
        uid = str(ctx.params["session_uid"])
        auto = bool(ctx.params.get("auto"))
        while auto:
            state = self.repo.state(ctx.scope.org_id, uid)
            if state is None:
                return {"session_uid": uid, "resolved": False, "reason": "the session was deleted"}
            if state.resolved_seq >= state.auto_seq:
                return {"session_uid": uid, "resolved": False, "reason": "already up to date"}
            wait = (state.changed_at or 0.0) + self.debounce_seconds - time.time()
            if wait <= 0:
                break
            ctx.stage(f"waiting {wait:.1f} s for writes to session {uid} to pause")
            time.sleep(min(wait, 0.25))
            ctx.check_cancelled()
        return self.resolve_now(ctx.scope, uid, ctx)

    def resolve_now(self, scope: Scope, uid: str, ctx: JobContext | None = None) -> dict[str, Any]:
        """Resolve the session from every stored entity (enrichments derived on the way) and save the columns."""
        docs = self.assets.get_many(scope, KIND, [uid])
        doc = docs.get(uid)
        if doc is None or doc.get("owner") != scope.org_id:
            return {"session_uid": uid, "resolved": False, "reason": "the session was deleted"}
        with self.repo.catalog.write() as conn:
            seq = self.repo.ensure_state_in(conn, scope, uid).write_seq  # read before the entities: never newer
        chunks = self.repo.chunks(scope.org_id, uid)
        res = float(doc.get("resolution") or SessionConstants.DEFAULT_RESOLUTION)
        notes: list[str] = []
        if self.enricher is not None and chunks:
            derived, enrich_notes = self.enricher.derive(doc, chunks)
            chunks = chunks + derived
            notes += enrich_notes
        if doc.get("start_time") and doc.get("end_time"):
            start, end = to_epoch(doc["start_time"]), to_epoch(doc["end_time"])
        elif chunks:
            extents = [c.extent(res) for c in chunks]
            start, end = min(e[0] for e in extents), max(e[1] for e in extents)
        else:
            start = end = to_epoch(doc["timestamp"])
        grid = Grid.spanning(start, end, res)
        if grid.length > SessionConstants.MAX_SESSION_BUCKETS:
            notes.append(f"the session spans {grid.length} buckets; resolved the first "
                         f"{SessionConstants.MAX_SESSION_BUCKETS}")  # fmt: skip
            grid = Grid(res, grid.start_index, SessionConstants.MAX_SESSION_BUCKETS)
        if ctx is not None:
            ctx.stage(f"resolving {sum(len(c) for c in chunks)} entities on {grid.length} buckets of {res:g} s")
        columns, problems = resolve(chunks, grid)
        notes += problems
        saved = self.repo.save_resolution(scope, uid, seq, grid, columns)
        for note in notes:
            log.warning("session %s: %s", uid, note)
            if ctx is not None:
                ctx.note(note)
        return {"session_uid": uid, "resolved": saved is not None, "names": sorted(c.name for c in columns),
                "buckets": grid.length, "resolution": res, "notes": notes}  # fmt: skip

    def status(self, scope: Scope, session_uid: str) -> str:
        """``ready`` when the resolved timeline covers every write; else the resolution job's status
        (queued, running, aborted), or ``unresolved`` when only urgent writes wait for a manual resolve."""
        doc = self._doc(scope, session_uid)
        state = self.repo.state(doc["owner"], doc["id"])
        if state is None or state.up_to_date:
            return "ready"
        if state.job_id:
            job = self.jobs.repo.get(scope, state.job_id)
            if job is not None and job["status"] not in TERMINAL_STATUSES:
                return str(job["status"])
            if job is not None and job["status"] == "aborted":
                return "aborted"
        return "unresolved"

    def forget(self, owner: str, session_uid: str) -> None:
        self.cache.forget_session(owner, session_uid)

    # ------------------------------------------------------------------ search

    def parse(self, search: Any) -> ScenarioQuery:
        try:
            return parse_scenario(search, _strict_epoch)
        except ScenarioQueryError as e:
            raise InvalidArgument(f"invalid session search: {e}", resource=WHERE) from None

    def _sessions(self, scope: Scope, query: ScenarioQuery) -> dict[tuple[str, str], Grid]:
        """The grids of the resolved sessions the query may match: all readable ones, or those its session
        filters keep."""
        if query.session_search is not None:
            docs = self.assets.scan(scope, KIND, query.session_search, ids_only=False)
            keys = [(d["owner"], d["id"]) for batch in docs for d in batch]
            return {k: s.grid for k, s in self.repo.states(keys).items() if s.grid is not None}
        return self.repo.resolved_grids(sorted(scope.readable))

    def _columns(
        self, keys: list[tuple[str, str]], names: list[str], refs_out: dict[int, tuple[tuple[str, str, str], int]]
    ) -> dict[tuple[str, str], dict[str, Column]]:
        """The current columns of ``names`` of the sessions ``keys`` (cached or read); ``refs_out`` receives
        ``id(column) -> (cache key, generation)`` for finding their indexes."""
        out: dict[tuple[str, str], dict[str, Column]] = {k: {} for k in keys}
        if not names or not keys:
            return out
        missing: list[ColumnRef] = []
        refs = self.repo.column_refs(keys, names)
        cached = self.cache.get_many([((r.owner, r.session_uid, r.entity_name), r.generation) for r in refs])
        for ref, col in zip(refs, cached, strict=True):
            if col is None:
                missing.append(ref)
            else:
                out[(ref.owner, ref.session_uid)][ref.entity_name] = col
                refs_out[id(col)] = ((ref.owner, ref.session_uid, ref.entity_name), ref.generation)
        for key, (gen, col) in self.repo.load_columns(missing).items():
            self.cache.put(key, gen, col)
            out[(key[0], key[1])][key[2]] = col
            refs_out[id(col)] = (key, gen)
        return out

    def intervals(self, scope: Scope, search: Any) -> dict[str, tuple[Grid, list[tuple[int, int]]]]:
        """``session_uid -> (grid, [(first_bucket, last_bucket), ...])`` of every session with a match."""
        query = self.parse(search)
        grids = self._sessions(scope, query)
        keys = sorted(grids)
        refs: dict[int, tuple[tuple[str, str, str], int]] = {}
        columns = self._columns(keys, query.names, refs)

        sessions = [(grids[key], columns[key]) for key in keys]
        indexes = self.cache.indexes([(*refs[id(c)], c) for _, cols in sessions for c in cols.values()])
        found = search_sessions(sessions, query, lambda col: indexes[id(col)])
        return {key[1]: (grid, runs) for key, (grid, _), runs in zip(keys, sessions, found, strict=True) if runs}

    def search(self, scope: Scope, search: Any) -> dict[str, dict[str, list[list[str]]]]:
        """``{session_uid: {"intervals": [[start_iso, end_iso], ...]}}`` (end: the end of the last bucket)."""
        found = self.intervals(scope, search)
        edges = [x for g, runs in found.values() for a, b in runs for x in (a * g.resolution, (b + 1) * g.resolution)]
        texts = iter(to_iso_many(edges))
        return {uid: {"intervals": [[next(texts), next(texts)] for _ in runs]} for uid, (_, runs) in found.items()}

    def field_data(
        self, scope: Scope, session_uid: str, fields: list[str] | None, time_range: tuple[float, float] | None
    ) -> dict[str, Any]:
        """Resolved values of ``fields`` (None or ["*"]: every name) with ``time_index`` and ``timestamp`` lists,
        over the buckets overlapping ``time_range`` (whole session without one)."""
        doc = self._doc(scope, session_uid)
        state = self.repo.state(doc["owner"], doc["id"])
        if state is None or state.grid is None:
            raise InvalidArgument(f"session {doc['id']!r} has no resolved timeline yet; resolve it first",
                                  resource=KIND)  # fmt: skip
        grid = state.grid
        names = None if not fields or fields == ["*"] else fields
        key = (doc["owner"], doc["id"])
        cols = self._columns([key], names or self.repo.column_names(*key), {})
        columns = cols[(doc["owner"], doc["id"])]
        first, last = grid.start_index, grid.end_index
        if time_range is not None:
            first = max(first, math.floor(time_range[0] / grid.resolution))
            last = min(
                last, max(math.floor(time_range[0] / grid.resolution), math.ceil(time_range[1] / grid.resolution) - 1)
            )
        idx = list(range(first, last + 1))
        out: dict[str, Any] = {"time_index": idx, "timestamp": [to_iso(i * grid.resolution) for i in idx]}
        for name in names or sorted(columns):
            col = columns.get(name)
            out[name] = (col.values(first - col.start_index, last + 1 - col.start_index) if col is not None
                         else [None] * len(idx))  # fmt: skip
        return out

    def timeseries(self, scope: Scope, search: Any, fields: list[str] | None) -> dict[str, list[dict[str, Any]]]:
        """The seed's ``download_timeseries``: per session, per matching interval, the fields' values and
        timestamps (``time_index`` dropped)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for uid, (grid, runs) in self.intervals(scope, search).items():
            items = []
            for a, b in runs:
                data = self.field_data(scope, uid, fields, (a * grid.resolution, (b + 1) * grid.resolution))
                data.pop("time_index")
                items.append({"start_time": to_iso(a * grid.resolution), "end_time": to_iso((b + 1) * grid.resolution),
                              **data})  # fmt: skip
            out[uid] = items
        return out
