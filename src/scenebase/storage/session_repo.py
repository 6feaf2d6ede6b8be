"""Session timelines in the catalog: raw entity chunks, resolution state and resolved columns (FACTS 4).

Layout and why (the targets: 20,000 entities/s in, 200,000 entities resolved in 2 s, a three-condition scenario
search over 1,000 three-hour sessions in 200 ms):

* ``session_entity_chunks``: a written batch becomes one row per (name, type, influence, flags) holding arrays,
  so ingestion writes a few rows per request whatever its size, and resolution reads a session's entities as a
  few dozen array blobs, ordered by the ``(owner, session_uid, entity_name, t_min)`` index.
* ``session_columns``: the resolved timeline as one array per (session, entity name), at most 10,800 values. A
  search over 1,000 sessions touches 3,000 such arrays, which numpy tests in milliseconds; one row per sample
  would be 32 million rows. ``generation`` lets a server keep decoded columns in memory and ask the catalog only
  which changed (the ``ix_session_columns_name`` index answers that without reading payloads).
* ``session_timelines``: counters that say whether the columns cover every write (``write_seq`` vs
  ``resolved_seq``) and which job resolves them.

Writes always go to ``scope.org_id``; reads name the owner of the session (a shared organization's session is
read with its owner's id, which the service took from a scoped read of the session document).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, func, insert, select, tuple_, update

from scenebase.domain.timeline import Grid
from scenebase.domain.timeline_data import Column, EntityChunk
from scenebase.storage.catalog import Catalog
from scenebase.storage.scope import Scope
from scenebase.storage.tables import session_columns, session_entity_chunks, session_timelines

C = session_entity_chunks
TL = session_timelines
COL = session_columns


@dataclass(frozen=True)
class TimelineState:
    owner: str
    session_uid: str
    write_seq: int
    auto_seq: int
    resolved_seq: int
    generation: int
    changed_at: float | None
    resolved_at: float | None
    grid: Grid | None
    job_id: str | None

    @property
    def up_to_date(self) -> bool:
        return self.resolved_seq >= self.write_seq


def _state(row: Any) -> TimelineState:
    grid = None
    if row.resolution is not None and row.start_index is not None and row.length is not None:
        grid = Grid(float(row.resolution), int(row.start_index), int(row.length))
    return TimelineState(row.owner, row.session_uid, int(row.write_seq), int(row.auto_seq), int(row.resolved_seq),
                         int(row.generation), row.changed_at, row.resolved_at, grid, row.job_id)  # fmt: skip


class ColumnRef(NamedTuple):  # a tuple: a search makes thousands of them
    owner: str
    session_uid: str
    entity_name: str
    kind: str
    generation: int


class SessionRepo:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # ------------------------------------------------------------------ raw entities

    def add_chunks_in(
        self, conn: Connection, scope: Scope, session_uid: str, chunks: Sequence[EntityChunk], default_radius: float,
        auto_resolve: bool,
    ) -> TimelineState:  # fmt: skip
        """Store entity chunks of one session and count the write; returns the timeline state after it."""
        now = time.time()
        rows = []
        for chunk in chunks:
            lo, hi = chunk.extent(default_radius)
            rows.append({"owner": scope.org_id, "session_uid": session_uid, "entity_name": chunk.name,
                         "entity_type": chunk.entity_type, "influence": chunk.influence, "count": len(chunk),
                         "t_min": lo, "t_max": hi, "urgent": chunk.urgent, "payload": chunk.to_bytes(),
                         "created_at": now})  # fmt: skip
        if rows:
            conn.execute(insert(C), rows)
        state = self._lock_state(conn, scope.org_id, session_uid)
        seq = state.write_seq + 1
        values: dict[str, Any] = {"write_seq": seq, "changed_at": now}
        if auto_resolve:
            values["auto_seq"] = seq
        conn.execute(update(TL).where(*self._key(scope.org_id, session_uid)).values(**values))
        return self._lock_state(conn, scope.org_id, session_uid)

    def chunks(
        self,
        owner: str,
        session_uid: str,
        names: Iterable[str] | None = None,
        time_range: tuple[float, float] | None = None,
    ) -> list[EntityChunk]:
        """The session's chunks in write order, optionally of some names and overlapping a time range."""
        conds: list[Any] = [C.c.owner == owner, C.c.session_uid == session_uid]
        if names is not None:
            conds.append(C.c.entity_name.in_(sorted(set(names))))
        if time_range is not None:
            conds += [C.c.t_max >= time_range[0], C.c.t_min <= time_range[1]]
        with self.catalog.read() as conn:
            payloads = conn.execute(select(C.c.payload).where(*conds).order_by(C.c.pk)).scalars().all()
        return [EntityChunk.from_bytes(p) for p in payloads]

    def entity_names(self, owner: str, session_uid: str) -> dict[str, str]:
        """``name -> entity type`` of the session's raw entities (the latest type written under each name)."""
        with self.catalog.read() as conn:
            q = (select(C.c.entity_name, C.c.entity_type).where(C.c.owner == owner, C.c.session_uid == session_uid)
                 .order_by(C.c.pk))  # fmt: skip
            return {name: etype for name, etype in conn.execute(q)}

    def count_entities(self, owner: str, session_uid: str) -> int:
        with self.catalog.read() as conn:
            q = select(func.coalesce(func.sum(C.c.count), 0)).where(C.c.owner == owner, C.c.session_uid == session_uid)
            return int(conn.execute(q).scalar_one())

    # ------------------------------------------------------------------ resolution state

    @staticmethod
    def _key(owner: str, session_uid: str) -> tuple[Any, Any]:
        return TL.c.owner == owner, TL.c.session_uid == session_uid

    def _lock_state(self, conn: Connection, owner: str, session_uid: str) -> TimelineState:
        """The session's state row, locked until ``conn`` commits; created when missing."""
        row = conn.execute(select(TL).where(*self._key(owner, session_uid)).with_for_update()).first()
        if row is None:
            conn.execute(insert(TL).values(owner=owner, session_uid=session_uid, write_seq=0, auto_seq=0,
                                           resolved_seq=0, generation=0))  # fmt: skip
            row = conn.execute(select(TL).where(*self._key(owner, session_uid)).with_for_update()).first()
        return _state(row)

    def ensure_state_in(self, conn: Connection, scope: Scope, session_uid: str) -> TimelineState:
        return self._lock_state(conn, scope.org_id, session_uid)

    def state(self, owner: str, session_uid: str) -> TimelineState | None:
        with self.catalog.read() as conn:
            row = conn.execute(select(TL).where(*self._key(owner, session_uid))).first()
        return None if row is None else _state(row)

    def states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], TimelineState]:
        """States of many ``(owner, session_uid)`` at once."""
        out: dict[tuple[str, str], TimelineState] = {}
        with self.catalog.read() as conn:
            for part in _chunks(list(keys), 400):
                q = select(TL).where(tuple_(TL.c.owner, TL.c.session_uid).in_(part))
                out.update({(r.owner, r.session_uid): _state(r) for r in conn.execute(q)})
        return out

    def resolved_grids(self, owners: Sequence[str]) -> dict[tuple[str, str], Grid]:
        """The grid of every resolved session of these organizations (what a search needs of their states)."""
        cols = (TL.c.owner, TL.c.session_uid, TL.c.resolution, TL.c.start_index, TL.c.length)
        q = select(*cols).where(TL.c.owner.in_(list(owners)), TL.c.resolution.is_not(None),
                                TL.c.start_index.is_not(None), TL.c.length.is_not(None))  # fmt: skip
        with self.catalog.read() as conn:
            rows = conn.execute(q).all()
        return {(o, u): Grid(float(r), int(i), int(n)) for o, u, r, i, n in rows}

    def set_job(self, scope: Scope, session_uid: str, job_id: str) -> None:
        with self.catalog.write() as conn:
            self._lock_state(conn, scope.org_id, session_uid)
            conn.execute(update(TL).where(*self._key(scope.org_id, session_uid)).values(job_id=job_id))

    def save_resolution(
        self, scope: Scope, session_uid: str, seq_read: int, grid: Grid, columns: Sequence[Column]
    ) -> TimelineState | None:
        """Replace the session's resolved columns by ``columns`` (resolved from the entities of writes up to
        ``seq_read``), unless a resolution that read newer writes was saved first; returns the new state, or
        None when this one was stale."""
        with self.catalog.write() as conn:
            state = self._lock_state(conn, scope.org_id, session_uid)
            if seq_read < state.resolved_seq:
                return None
            generation = state.generation + 1
            conn.execute(delete(COL).where(COL.c.owner == scope.org_id, COL.c.session_uid == session_uid))
            rows = [{"owner": scope.org_id, "session_uid": session_uid, "entity_name": c.name, "kind": c.kind,
                     "generation": generation, "payload": c.to_bytes()} for c in columns]  # fmt: skip
            if rows:
                conn.execute(insert(COL), rows)
            conn.execute(
                update(TL)
                .where(*self._key(scope.org_id, session_uid))
                .values(
                    resolved_seq=seq_read,
                    generation=generation,
                    resolved_at=time.time(),
                    resolution=grid.resolution,
                    start_index=grid.start_index,
                    length=grid.length,
                )
            )
            return self._lock_state(conn, scope.org_id, session_uid)

    # ------------------------------------------------------------------ resolved columns

    def column_refs(self, keys: Sequence[tuple[str, str]], names: Iterable[str]) -> list[ColumnRef]:
        """Which of the sessions ``(owner, session_uid)`` have resolved columns of ``names`` (no payloads)."""
        names = sorted(set(names))
        by_owner: dict[str, list[str]] = {}
        for owner, uid in keys:
            by_owner.setdefault(owner, []).append(uid)
        out: list[ColumnRef] = []
        with self.catalog.read() as conn:
            for owner, uids in by_owner.items():
                cols = (COL.c.owner, COL.c.session_uid, COL.c.entity_name, COL.c.kind, COL.c.generation)
                if len(uids) > 900:  # many sessions: read the name's whole posting and filter here
                    wanted = set(uids)
                    q = select(*cols).where(COL.c.owner == owner, COL.c.entity_name.in_(names))
                    out.extend(ColumnRef(*r) for r in conn.execute(q).all() if r[1] in wanted)
                    continue
                q = select(*cols).where(COL.c.owner == owner, COL.c.entity_name.in_(names), COL.c.session_uid.in_(uids))
                out.extend(ColumnRef(*r) for r in conn.execute(q).all())
        return out

    def load_columns(self, refs: Sequence[ColumnRef]) -> dict[tuple[str, str, str], tuple[int, Column]]:
        """``(owner, session_uid, name) -> (generation, column)`` for the given refs (current generation)."""
        out: dict[tuple[str, str, str], tuple[int, Column]] = {}
        wanted = {(r.owner, r.session_uid, r.entity_name) for r in refs}
        by_owner: dict[str, set[str]] = {}
        names: dict[str, set[str]] = {}
        for owner, uid, name in wanted:
            by_owner.setdefault(owner, set()).add(uid)
            names.setdefault(owner, set()).add(name)
        # sessions x names per owner, in slices of sessions (one index range scan each, no OR of conditions);
        # pairs not asked for are dropped here before decoding
        cols = (COL.c.owner, COL.c.session_uid, COL.c.entity_name, COL.c.generation, COL.c.payload)
        with self.catalog.read() as conn:
            for owner, uids in by_owner.items():
                for part in _chunks(sorted(uids), 400):
                    q = select(*cols).where(COL.c.owner == owner, COL.c.session_uid.in_(part),
                                            COL.c.entity_name.in_(sorted(names[owner])))  # fmt: skip
                    for row_owner, uid, name, gen, payload in conn.execute(q):
                        if (row_owner, uid, name) in wanted:
                            out[(row_owner, uid, name)] = (int(gen), Column.from_bytes(payload))
        return out

    def column_names(self, owner: str, session_uid: str) -> list[str]:
        with self.catalog.read() as conn:
            q = select(COL.c.entity_name).where(COL.c.owner == owner, COL.c.session_uid == session_uid)
            return sorted(conn.execute(q).scalars().all())

    def session_columns(self, owner: str, session_uid: str, names: Iterable[str] | None = None) -> dict[str, Column]:
        conds: list[Any] = [COL.c.owner == owner, COL.c.session_uid == session_uid]
        if names is not None:
            conds.append(COL.c.entity_name.in_(sorted(set(names))))
        with self.catalog.read() as conn:
            rows = conn.execute(select(COL.c.entity_name, COL.c.payload).where(*conds)).all()
        return {name: Column.from_bytes(payload) for name, payload in rows}

    # ------------------------------------------------------------------ deletion

    def delete_session_in(self, conn: Connection, scope: Scope, session_uid: str) -> int:
        """Remove the session's entities, state and resolved columns; returns how many entities went."""
        owner = scope.org_id
        n = conn.execute(
            select(func.coalesce(func.sum(C.c.count), 0)).where(C.c.owner == owner, C.c.session_uid == session_uid)
        ).scalar_one()
        conn.execute(delete(C).where(C.c.owner == owner, C.c.session_uid == session_uid))
        conn.execute(delete(COL).where(COL.c.owner == owner, COL.c.session_uid == session_uid))
        conn.execute(delete(TL).where(*self._key(owner, session_uid)))
        return int(n)


def _chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
