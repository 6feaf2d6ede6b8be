"""Sessions (FACTS 4.1-4.2): session documents, raw entities and deletion.

A session is an asset document of type ``sessions`` (searchable like any asset); what happens over time lives in
the timeline storage (``storage/session_repo.py``), never in the term index. Resolution, scenario search and
field data are in ``services/session_timeline.py``.

Entity batches keep their valid part: each rejected entity is reported with its index, id and the problem, the rest
is written in one transaction per session together with any growth of the session's time span.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np

from scenebase.constants import (
    AssetsConstants,
    EnrichmentTypes,
    EntityTypes,
    SensorTypes,
    SessionConstants,
    SessionStatuses,
    SessionTypes,
)
from scenebase.domain.entities import EntityError, ParsedEntity, aware_epoch, build_chunks, columns_chunks, parse_entity
from scenebase.domain.ids import new_id, standardize_id
from scenebase.domain.timeline_data import EntityChunk
from scenebase.domain.timeutil import now_iso, to_epoch, to_iso
from scenebase.services.assets import AssetService
from scenebase.services.errors import Conflict, InvalidArgument, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.lifecycle import AssetLifecycleService
from scenebase.services.session_timeline import TimelineService
from scenebase.services.sets import SetService
from scenebase.storage.asset_repo import NameTaken
from scenebase.storage.scope import Scope
from scenebase.storage.session_repo import SessionRepo

log = logging.getLogger("scenebase.sessions")

KIND = AssetsConstants.SESSIONS_ASSET_ID
NAME_KIND = "session"
#: the most entities one request may carry (the client sends 5,000 per request)
MAX_ENTITIES_PER_REQUEST = 50_000
MAX_MEASUREMENT_ROWS = 2_000_000


def standardized_session_name(name: str) -> str:
    """Special characters become ``_`` and letters lower case (the id rule, FACTS 1.1)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument("a session name must be a non-empty string", resource=KIND)
    return standardize_id(name.strip())


def _epoch(value: Any, key: str) -> float:
    try:
        return aware_epoch(value, key)
    except EntityError as e:
        raise InvalidArgument(str(e), resource=KIND) from None


def _span(doc: dict[str, Any]) -> tuple[float, float] | None:
    if doc.get("start_time") and doc.get("end_time"):
        return to_epoch(doc["start_time"]), to_epoch(doc["end_time"])
    return None


class SessionService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("session_deletion", "entity_modification")

    def __init__(
        self,
        assets: AssetService,
        repo: SessionRepo,
        timeline: TimelineService,
        sets: SetService,
        lifecycle: AssetLifecycleService,
        jobs: JobService,
    ) -> None:
        self.assets = assets
        self.repo = repo
        self.timeline = timeline
        self.sets = sets
        self.lifecycle = lifecycle
        self.jobs = jobs

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("session_deletion", self._deletion_job)
        registry.register("entity_modification", self._comments_job)

    # ------------------------------------------------------------------ documents

    def get(self, scope: Scope, session_uid: str) -> dict[str, Any]:
        try:
            return self.assets.get(scope, KIND, session_uid)
        except NotFound:
            raise NotFound(f"no session with uid {session_uid!r}", resource=KIND) from None

    def own(self, scope: Scope, session_uid: str) -> dict[str, Any]:
        doc = self.get(scope, session_uid)
        if doc.get("owner") != scope.org_id:
            raise NotFound(f"no session with uid {session_uid!r}", resource=KIND)  # shared sessions are read-only
        return doc

    def create(
        self,
        scope: Scope,
        session_name: str,
        session_type: str = SessionTypes.GENERIC,
        resolution: float | None = None,
        aux: dict[str, Any] | None = None,
        status: str = SessionStatuses.READY,
        set_id: str | None = None,
        raise_if_exists: bool = False,
    ) -> tuple[str, bool]:
        """Create a session; a session of the same standardized name answers its uid (``created=False``)."""
        if not isinstance(session_name, str) or not session_name.strip():
            raise InvalidArgument("session_name must be a non-empty string", resource=KIND)
        if session_type not in SessionTypes.VALID_TYPES:
            raise InvalidArgument(f"unknown session_type {session_type!r}; types: {list(SessionTypes.VALID_TYPES)}",
                                  resource=KIND)  # fmt: skip
        if status not in SessionStatuses.VALID_STATUSES:
            raise InvalidArgument(f"unknown status {status!r}; statuses: {list(SessionStatuses.VALID_STATUSES)}",
                                  resource=KIND)  # fmt: skip
        res = SessionConstants.DEFAULT_RESOLUTION if resolution is None else resolution
        if isinstance(res, bool) or not isinstance(res, int | float) or not math.isfinite(res) or res <= 0:
            raise InvalidArgument(f"resolution must be a positive number of seconds, got {resolution!r}", resource=KIND)
        if aux is not None and not isinstance(aux, dict):
            raise InvalidArgument("session_aux_metadata must be an object", resource=KIND)
        sets = []
        if set_id:
            sets = self.sets.check_writable(scope, [standardize_id(set_id)], KIND)
        name_key = standardized_session_name(session_name)
        uid = new_id()
        doc = self.assets.prepare(
            {"id": uid, "timestamp": now_iso(), "session_name": session_name.strip(), "session_type": session_type,
             "session_aux": aux or {}, "status": status, "resolution": float(res), "sets": sets, "source_data": [],
             "sensors": [], "auxiliary_data": [], "enrichments_configs": []},
            scope.username,
        )  # fmt: skip

        def write(conn: Any) -> tuple[str, bool]:
            try:
                self.assets.repo.claim_name(conn, scope, NAME_KIND, name_key, uid)
            except NameTaken:
                existing = self.assets.repo.id_for_name(scope, NAME_KIND, name_key)
                if raise_if_exists:
                    raise Conflict(f"a session named {session_name!r} already exists (uid {existing})",
                                   resource=KIND) from None  # fmt: skip
                return str(existing), False
            self.assets.repo.upsert_in(conn, scope, KIND, [doc], "replace")
            self.repo.ensure_state_in(conn, scope, uid)
            return uid, True

        out = self.assets.repo.catalog.write_retrying(write)
        self.assets.written(scope, KIND)
        return out

    def _patch(self, scope: Scope, doc: dict[str, Any], mode: str = "merge", **values: Any) -> dict[str, Any]:
        patch = {"id": doc["id"], "timestamp": doc["timestamp"], **values}
        stored = self.assets.put(scope, KIND, [patch], mode="merge_replace_lists" if mode == "replace" else "merge")
        return stored[0]

    def update_time_span(self, scope: Scope, session_uid: str, start: Any, end: Any) -> dict[str, Any]:
        doc = self.own(scope, session_uid)
        t0, t1 = _epoch(start, "session_start_time"), _epoch(end, "session_end_time")
        if t0 > t1:
            raise InvalidArgument("session_start_time is after session_end_time", resource=KIND)
        self._check_length(doc, t0, t1)
        return self._patch(scope, doc, start_time=to_iso(t0), end_time=to_iso(t1))

    def _check_length(self, doc: dict[str, Any], t0: float, t1: float) -> None:
        res = float(doc.get("resolution") or SessionConstants.DEFAULT_RESOLUTION)
        limit = SessionConstants.MAX_SESSION_BUCKETS * res
        if t1 - t0 > limit:
            raise InvalidArgument(f"session {doc['id']!r} would span {t1 - t0:.0f} s; at resolution {res:g} s a "
                                  f"session spans at most {limit:.0f} s", resource=KIND)  # fmt: skip

    def add_source_data(
        self, scope: Scope, session_uid: str, source_data: Any, sensors: Any, replace: bool
    ) -> dict[str, Any]:
        doc = self.own(scope, session_uid)
        items = _dict_list(source_data, "source_data", {"sensor", "id", "type"})
        sensor_items = _dict_list(sensors, "sensors", {"name", "type"})
        for i, s in enumerate(sensor_items):
            if s.get("type") not in SensorTypes.VALID_TYPES:
                raise InvalidArgument(f"sensors[{i}].type: unknown {s.get('type')!r}; types: "
                                      f"{list(SensorTypes.VALID_TYPES)}", resource=KIND)  # fmt: skip
        if not replace:
            items = [*(doc.get("source_data") or []), *items]
            sensor_items = [
                *(doc.get("sensors") or []),
                *(s for s in sensor_items if s not in (doc.get("sensors") or [])),
            ]
        return self._patch(scope, doc, "replace", source_data=items, sensors=sensor_items)

    def add_auxiliary_data(self, scope: Scope, session_uid: str, auxiliary_data: Any, replace: bool) -> dict[str, Any]:
        doc = self.own(scope, session_uid)
        items = _dict_list(auxiliary_data, "auxiliary_data", {"id", "type"})
        if not replace:
            ids = {i.get("id") for i in items}
            items = [*items, *(a for a in doc.get("auxiliary_data") or [] if a.get("id") not in ids)]
        return self._patch(scope, doc, "replace", auxiliary_data=items)

    def add_enrichments_configs(self, scope: Scope, session_uid: str, configs: Any, replace: bool) -> dict[str, Any]:
        doc = self.own(scope, session_uid)
        items = _dict_list(configs, "enrichments_configs", {"type"})
        for i, c in enumerate(items):
            if c["type"] not in EnrichmentTypes.VALID_TYPES:
                raise InvalidArgument(f"enrichments_configs[{i}].type: unknown {c['type']!r}; types: "
                                      f"{list(EnrichmentTypes.VALID_TYPES)}", resource=KIND)  # fmt: skip
            radius = (c.get("configuration") or {}).get("influence_radius_in_seconds")
            if radius is not None and (not isinstance(radius, int | float) or radius < 0):
                raise InvalidArgument(f"enrichments_configs[{i}]: influence_radius_in_seconds must be >= 0",
                                      resource=KIND)  # fmt: skip
        if not replace:
            items = [*(doc.get("enrichments_configs") or []), *items]
        return self._patch(scope, doc, "replace", enrichments_configs=items)

    # ------------------------------------------------------------------ entities

    def add_entities(self, scope: Scope, raws: Any, urgent: bool = False) -> dict[str, Any]:
        """Validate and store entities; ``{"acknowledged": true, "accepted": n, "rejected": [...]}``."""
        if not isinstance(raws, list):
            raise InvalidArgument("entity_dicts must be a list", resource="session_manager")
        if len(raws) > MAX_ENTITIES_PER_REQUEST:
            raise InvalidArgument(f"at most {MAX_ENTITIES_PER_REQUEST} entities per request, got {len(raws)}",
                                  resource="session_manager")  # fmt: skip
        rejected: list[dict[str, Any]] = []
        by_session: dict[str, list[tuple[int, ParsedEntity]]] = {}
        for i, raw in enumerate(raws):
            try:
                e = parse_entity(raw)
            except EntityError as err:
                rejected.append(_rejection(i, raw, str(err)))
                continue
            by_session.setdefault(e.session, []).append((i, e))
        docs = self.assets.get_many(scope, KIND, list(by_session))
        accepted = 0
        for uid, items in by_session.items():
            doc = docs.get(uid)
            if doc is None or doc.get("owner") != scope.org_id:
                rejected.extend(_rejection(i, raws[i], f"session: unknown session {uid!r}") for i, _ in items)
                continue
            ok, too_long = self._fit(doc, items)
            rejected.extend(_rejection(i, raws[i], msg) for i, msg in too_long)
            if ok:
                self._store(scope, uid, build_chunks([e for _, e in ok], urgent), urgent)
                accepted += len(ok)
        rejected.sort(key=lambda r: r["index"])
        return {"acknowledged": True, "accepted": accepted, "rejected": rejected}

    def _fit(
        self, doc: dict[str, Any], items: list[tuple[int, ParsedEntity]]
    ) -> tuple[list[tuple[int, ParsedEntity]], list[tuple[int, str]]]:
        """Split entities into those the session can take and those that would stretch it past its limit."""
        res = float(doc.get("resolution") or SessionConstants.DEFAULT_RESOLUTION)
        limit = SessionConstants.MAX_SESSION_BUCKETS * res
        span = _span(doc)
        ok, bad = [], []
        for i, e in items:
            lo, hi = e.bounds(res)
            if span is None or e.extend_session:
                grown = (lo, hi) if span is None else (min(span[0], lo), max(span[1], hi))
                if grown[1] - grown[0] > limit:
                    bad.append((i, f"entity {e.entity_id!r} at {to_iso(lo)}..{to_iso(hi)} would stretch session "
                                   f"{doc['id']!r} to {grown[1] - grown[0]:.0f} s; at resolution {res:g} s a session "
                                   f"spans at most {limit:.0f} s"))  # fmt: skip
                    continue
                span = grown
            ok.append((i, e))
        return ok, bad

    def _store(self, scope: Scope, uid: str, chunks: list[EntityChunk], urgent: bool) -> None:
        """Write chunks of one session in one transaction, growing its span (extend_session, or a session that has
        none yet), then ask for a debounced resolution unless urgent."""

        def write(conn: Any) -> None:
            doc = self.assets.repo.get_for_update(conn, scope, KIND, [uid])[uid][1]
            res = float(doc.get("resolution") or SessionConstants.DEFAULT_RESOLUTION)
            span = _span(doc)
            grow = [c.extent(res) for c in chunks if c.extend_session or span is None]
            if grow:
                lo = min(g[0] for g in grow) if span is None else min(span[0], *(g[0] for g in grow))
                hi = max(g[1] for g in grow) if span is None else max(span[1], *(g[1] for g in grow))
                if span is None or (lo, hi) != span:
                    self._check_length(doc, lo, hi)
                    patch = {"id": uid, "timestamp": doc["timestamp"], "start_time": to_iso(lo), "end_time": to_iso(hi)}
                    self.assets.put_in(conn, scope, KIND, [patch], "merge")
            self.repo.add_chunks_in(conn, scope, uid, chunks, res, auto_resolve=not urgent)

        self.assets.repo.catalog.write_retrying(write)
        self.assets.written(scope, KIND)
        if not urgent:
            self.timeline.request_auto_resolution(scope, uid)

    def add_measurements(self, scope: Scope, session_uid: str, body: Any, urgent: bool = False) -> dict[str, Any]:
        """A table of measurements (``add_df``): ``{"timestamps": [...], "columns": {name: {"entity_type",
        "values"}}}``; scalars interpolate linearly, states hold as point events, geo interpolates. Rows with a
        missing value are skipped for that column only, and counted in the answer."""
        doc = self.own(scope, session_uid)
        where = "session_manager"
        if not isinstance(body, dict) or not isinstance(body.get("timestamps"), list):
            raise InvalidArgument("give {'timestamps': [...], 'columns': {...}}", resource=where)
        stamps = body["timestamps"]
        if not stamps or len(stamps) > MAX_MEASUREMENT_ROWS:
            raise InvalidArgument(f"timestamps: 1 to {MAX_MEASUREMENT_ROWS} rows, got {len(stamps)}", resource=where)
        try:
            ts = np.array(stamps, dtype=np.float64)
        except (TypeError, ValueError):
            ts = np.array([aware_epoch(v, f"timestamps[{i}]") if v is not None else math.nan
                           for i, v in enumerate(stamps)], dtype=np.float64)  # fmt: skip
        bad = np.flatnonzero(~np.isfinite(ts))
        if len(bad):
            raise InvalidArgument(f"timestamps[{int(bad[0])}]: missing or not a time ({len(bad)} such rows)",
                                  resource=where)  # fmt: skip
        columns = body.get("columns")
        if not isinstance(columns, dict) or not columns:
            raise InvalidArgument("columns: an object {name: {'entity_type', 'values'}}", resource=where)
        types, values, influence, skipped = {}, {}, {}, {}
        for name, col in columns.items():
            if not isinstance(col, dict) or col.get("entity_type") not in (
                EntityTypes.SCALAR,
                EntityTypes.STATE,
                EntityTypes.GEO,
            ):
                raise InvalidArgument(f"columns[{name!r}]: entity_type must be scalar, state or geo", resource=where)
            etype = col["entity_type"]
            raw = col.get("values")
            if etype == EntityTypes.GEO:
                raw = list(zip(col.get("lat") or [], col.get("lon") or [], strict=False))
            if not isinstance(raw, list) or len(raw) != len(ts):
                raise InvalidArgument(f"columns[{name!r}]: {len(raw) if isinstance(raw, list) else 'no'} values "
                                      f"for {len(ts)} timestamps", resource=where)  # fmt: skip
            try:
                if etype == EntityTypes.SCALAR:
                    arr: Any = np.array([math.nan if v is None else v for v in raw], dtype=np.float64)
                elif etype == EntityTypes.GEO:
                    arr = np.array([[math.nan if a is None else a, math.nan if b is None else b] for a, b in raw],
                                   dtype=np.float64).reshape(-1, 2)  # fmt: skip
                else:
                    arr = np.array([None if v is None else str(v) for v in raw], dtype=object)
            except (TypeError, ValueError):
                raise InvalidArgument(f"columns[{name!r}]: values must be numbers (or null)", resource=where) from None
            if etype == EntityTypes.SCALAR and np.isinf(arr).any():
                row = int(np.flatnonzero(np.isinf(arr))[0])
                raise InvalidArgument(f"columns[{name!r}] row {row}: {arr[row]} is not a finite number", resource=where)
            if etype == EntityTypes.GEO:
                finite = arr[~np.isnan(arr).any(axis=1)]
                if len(finite) and (np.abs(finite[:, 0]).max() > 90 or np.abs(finite[:, 1]).max() > 180):
                    raise InvalidArgument(f"columns[{name!r}]: latitudes must lie in [-90, 90] and longitudes in "
                                          f"[-180, 180]", resource=where)  # fmt: skip
            types[name], values[name] = etype, arr
            influence[name] = {"scalar": "linear_interpolation", "geo": "geo_interpolation"}.get(etype, "interval")
            missing = (
                int(np.isnan(arr).any(axis=-1).sum()) if etype != EntityTypes.STATE else sum(v is None for v in arr)
            )
            if missing:
                skipped[name] = missing
        chunks = columns_chunks(types, ts, values, influence, urgent=urgent)
        res = float(doc.get("resolution") or SessionConstants.DEFAULT_RESOLUTION)
        for c in chunks:
            c.extend_session = True  # a table of measurements defines the recording's span
            if c.entity_type == EntityTypes.STATE:
                c.radius = np.full(len(c), res)
        lo, hi = float(ts.min()), float(ts.max())
        span = _span(doc)
        grown = (lo, hi) if span is None else (min(span[0], lo), max(span[1], hi))
        self._check_length(doc, grown[0] - res, grown[1] + res)
        self._store(scope, doc["id"], chunks, urgent)
        return {"acknowledged": True, "accepted": int(sum(len(c) for c in chunks)), "skipped_missing": skipped}

    def entities(self, scope: Scope, session_uid: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """Raw entities of a session as the seed's entity dicts (for ``get_metadata(with_session_metadata)``)."""
        doc = self.get(scope, session_uid)
        out: list[dict[str, Any]] = []
        for chunk in self.repo.chunks(doc["owner"], doc["id"]):
            for i in range(len(chunk)):
                if len(out) >= limit:
                    return out
                e: dict[str, Any] = {
                    "session": doc["id"],
                    "entity_id": chunk.entity_id(i),
                    "entity_name": chunk.name,
                    "entity_type": chunk.entity_type,
                    "entity_value": chunk.value_of(i),
                    "influence": chunk.influence,
                    "timestamp": to_iso(float(chunk.timestamps[i])),
                }
                for key, arr in (("start_time", chunk.starts), ("end_time", chunk.ends)):
                    if not math.isnan(arr[i]):
                        e[key] = to_iso(float(arr[i]))
                out.append(e)
        return out

    # ------------------------------------------------------------------ comments

    def add_comments(self, scope: Scope, session_uid: str, intervals: Any, texts: Any) -> str:
        """Comments over intervals (FACTS 4.5): a job writing a ``comment`` state set (the texts) and a
        ``commentator`` state set (the author) over each interval."""
        doc = self.own(scope, session_uid)
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise InvalidArgument("texts must be a non-empty list of non-empty strings", resource=KIND)
        if not isinstance(intervals, list) or not intervals:
            raise InvalidArgument("intervals must be a non-empty list of {start_time, end_time}", resource=KIND)
        spans = []
        for i, iv in enumerate(intervals):
            if not isinstance(iv, dict):
                raise InvalidArgument(f"intervals[{i}] must be an object {{start_time, end_time}}", resource=KIND)
            t0 = _epoch(iv.get("start_time"), f"intervals[{i}].start_time")
            t1 = _epoch(iv.get("end_time"), f"intervals[{i}].end_time")
            if t0 > t1:
                raise InvalidArgument(f"intervals[{i}]: start_time is after end_time", resource=KIND)
            spans.append((t0, t1))
        params = {"session_uid": doc["id"], "spans": spans, "texts": texts, "author": scope.username or "unknown"}
        row = self.jobs.submit(scope, "entity_modification", params, description=f"comments on session {doc['id']}",
                               asset_type=KIND, asset_id=doc["id"])  # fmt: skip
        return str(row["id"])

    def _comments_job(self, ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        raws = []
        for t0, t1 in p["spans"]:
            for name, value in (("comment", p["texts"]), ("commentator", [p["author"]])):
                raws.append({"session": p["session_uid"], "entity_name": name, "entity_type": EntityTypes.STATE_SET,
                             "entity_value": value, "influence": "interval", "timestamp": t0, "start_time": t0,
                             "end_time": t1, "extend_session": True})  # fmt: skip
        out = self.add_entities(ctx.scope, raws)
        if out["rejected"]:
            raise InvalidArgument(f"comments refused: {out['rejected'][0]['error']}", resource=KIND)
        return {"session_uid": p["session_uid"], "comments": len(p["spans"])}

    # ------------------------------------------------------------------ deletion

    def delete(self, scope: Scope, session_uid: str, delete_assets_contents: bool) -> str:
        doc = self.own(scope, session_uid)
        params = {"session_uid": doc["id"], "delete_assets_contents": bool(delete_assets_contents)}
        row = self.jobs.submit(scope, "session_deletion", params, description=f"delete session {doc['id']}",
                               asset_type=KIND, asset_id=doc["id"])  # fmt: skip
        return str(row["id"])

    def _deletion_job(self, ctx: JobContext) -> dict[str, Any]:
        uid = str(ctx.params["session_uid"])
        scope = ctx.scope
        media_deleted = 0
        if ctx.params.get("delete_assets_contents"):
            for asset_type in AssetsConstants.PRIMARY_ASSETS:
                ctx.stage(f"deleting {asset_type} of session {uid}")
                ids = [i for batch in self.assets.scan(scope, asset_type, {"filters": [
                    {"field": "session_uid", "values": [uid]}]}) for i in batch]  # fmt: skip
                own = [i for i, d in self.assets.get_many(scope, asset_type, ids).items() if d["owner"] == scope.org_id]
                for start in range(0, len(own), 500):
                    media_deleted += int(self.lifecycle.delete(scope, asset_type, own[start : start + 500])["deleted"])
        ctx.stage(f"deleting the timeline of session {uid}")
        doc = self.assets.get_many(scope, KIND, [uid]).get(uid)

        def drop(conn: Any) -> int:
            n = self.repo.delete_session_in(conn, scope, uid)
            if doc is not None and doc.get("owner") == scope.org_id:
                self.assets.repo.delete_in(conn, scope, KIND, [uid])
                self.assets.repo.release_name(conn, scope, NAME_KIND, standardized_session_name(doc["session_name"]))
            return n

        entities = self.assets.repo.catalog.write_retrying(drop)
        self.assets.written(scope, KIND)
        self.timeline.forget(scope.org_id, uid)
        return {"session_uid": uid, "entities_deleted": entities, "media_deleted": media_deleted}


def _dict_list(value: Any, key: str, required: set[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidArgument(f"{key} must be a list of objects", resource=KIND)
    for i, item in enumerate(value):
        missing = required - set(item)
        if missing:
            raise InvalidArgument(f"{key}[{i}] lacks {sorted(missing)}", resource=KIND)
    return [dict(v) for v in value]


def _rejection(index: int, raw: Any, message: str) -> dict[str, Any]:
    entity_id = raw.get("entity_id") if isinstance(raw, dict) else None
    name = raw.get("entity_name") if isinstance(raw, dict) else None
    return {"index": index, "entity_id": entity_id, "entity_name": name, "error": message}
