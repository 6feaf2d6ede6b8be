"""The ``embeddings`` table: one row per (organization, space, asset) with the raw float32 vector.

Writes are one executemany per batch (no document, no index rows); reads answer the services (a space's vectors,
the vectors of given assets, the spaces) and the generic asset routes for ``embeddings`` (get, search, count by
the few columns an embedding has; the vector is never searchable).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, false, func, not_, or_, select, true, tuple_

from scenebase.domain.search import ExistsFilter, Query, QueryError, RangeFilter, ValuesFilter
from scenebase.domain.timeutil import to_iso
from scenebase.storage.catalog import Catalog
from scenebase.storage.scope import Scope
from scenebase.storage.tables import embeddings as EMB

#: search field -> column (``media_type`` is the seed's name of the asset type; ``tags`` holds the layer)
COLUMNS = {
    "id": EMB.c.id, "index_name": EMB.c.index_name, "media_type": EMB.c.asset_type, "asset_type": EMB.c.asset_type,
    "asset_id": EMB.c.asset_id, "model": EMB.c.model, "version": EMB.c.version, "layer": EMB.c.layer,
    "tags": EMB.c.layer, "session_uid": EMB.c.session_uid, "ndim": EMB.c.dims, "timestamp": EMB.c.timestamp,
}  # fmt: skip
NUMERIC = frozenset({"ndim", "timestamp"})
#: bound parameters per IN list (any SQLite build's limit, and PostgreSQL's)
CHUNK = 900
_WRITTEN = ("id", "index_name", "asset_type", "asset_id", "dims", "vector", "model", "version", "layer", "session_uid",
            "timestamp", "created_at")  # fmt: skip
_ROW = [EMB.c.owner, EMB.c.id, EMB.c.index_name, EMB.c.asset_type, EMB.c.asset_id, EMB.c.dims, EMB.c.vector,
        EMB.c.model, EMB.c.version, EMB.c.layer, EMB.c.session_uid, EMB.c.timestamp, EMB.c.created_at]  # fmt: skip


def _readable(scope: Scope) -> ColumnElement[bool]:
    return EMB.c.owner.in_(sorted(scope.readable)) if len(scope.readable) > 1 else EMB.c.owner == scope.org_id


def document(row: Any) -> dict[str, Any]:
    """An embedding as the seed's document (FACTS 2.6): metadata plus ``vector`` (base64 of the float32 bytes)."""
    doc = {"id": row.id, "timestamp": to_iso(row.timestamp), "tags": [row.layer] if row.layer else [],
           "media_type": row.asset_type, "asset_id": row.asset_id, "model": row.model, "version": row.version,
           "ndim": row.dims, "index_name": row.index_name, "layer": row.layer, "session_uid": row.session_uid,
           "created_at": to_iso(row.created_at), "owner": row.owner,
           "vector": base64.b64encode(bytes(row.vector)).decode("ascii")}  # fmt: skip
    return {k: v for k, v in doc.items() if v is not None}


class EmbeddingRepo:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # ------------------------------------------------------------------ writes

    def put_in(self, conn: Connection, scope: Scope, rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        """Write rows (every column but ``owner``), replacing rows with the same id and the asset's earlier
        vector in the same space. Returns ``(index_name, asset_type, asset_id)`` of rows replaced by id from
        another space (their asset's link to that space must go)."""
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        moved: list[tuple[str, str, str]] = []
        space = {(r["id"], r["index_name"]) for r in rows}
        for part in _chunks(ids):
            q = select(EMB.c.index_name, EMB.c.asset_type, EMB.c.asset_id, EMB.c.id).where(
                EMB.c.owner == scope.org_id, EMB.c.id.in_(part)
            )
            moved += [(r.index_name, r.asset_type, r.asset_id) for r in conn.execute(q) if (r.id, r.index_name)
                      not in space]  # fmt: skip
            conn.execute(delete(EMB).where(EMB.c.owner == scope.org_id, EMB.c.id.in_(part)))
        keys = sorted({(r["index_name"], r["asset_type"]) for r in rows})
        for index_name, asset_type in keys:
            assets = [r["asset_id"] for r in rows if r["index_name"] == index_name and r["asset_type"] == asset_type]
            for part in _chunks(assets):
                conn.execute(delete(EMB).where(EMB.c.owner == scope.org_id, EMB.c.index_name == index_name,
                                               EMB.c.asset_type == asset_type, EMB.c.asset_id.in_(part)))  # fmt: skip
        # the driver's executemany: SQLAlchemy's per-row parameter handling would cost more than the insert
        mark = "%s" if conn.dialect.name == "postgresql" else "?"
        sql = (
            f"INSERT INTO embeddings (owner, {', '.join(_WRITTEN)}) VALUES ({', '.join([mark] * (len(_WRITTEN) + 1))})"
        )
        conn.exec_driver_sql(sql, [(scope.org_id, *(r[c] for c in _WRITTEN)) for r in rows])
        return moved

    def delete_for_assets(
        self, conn: Connection, scope: Scope, asset_type: str, asset_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """Delete the embeddings of assets (in every space); returns ``index_name -> asset ids`` deleted."""
        out: dict[str, list[str]] = {}
        for part in _chunks(list(asset_ids)):
            where = [EMB.c.owner == scope.org_id, EMB.c.asset_type == asset_type, EMB.c.asset_id.in_(part)]
            for r in conn.execute(select(EMB.c.index_name, EMB.c.asset_id).where(*where)):
                out.setdefault(r.index_name, []).append(r.asset_id)
            conn.execute(delete(EMB).where(*where))
        return out

    def delete_in_space(
        self, conn: Connection, scope: Scope, index_name: str, asset_type: str, asset_ids: Sequence[str]
    ) -> None:
        for part in _chunks(list(asset_ids)):
            conn.execute(delete(EMB).where(EMB.c.owner == scope.org_id, EMB.c.index_name == index_name,
                                           EMB.c.asset_type == asset_type, EMB.c.asset_id.in_(part)))  # fmt: skip

    # ------------------------------------------------------------------ reads for the services

    def space_dim(self, scope: Scope, index_name: str) -> int | None:
        with self.catalog.read() as conn:
            q = select(EMB.c.dims).where(EMB.c.owner == scope.org_id, EMB.c.index_name == index_name).limit(1)
            found = conn.execute(q).scalar()
        return None if found is None else int(found)

    def spaces(self, scope: Scope) -> dict[str, dict[str, int]]:
        """``index_name -> {asset_type: count}`` of the organization's own embeddings."""
        out: dict[str, dict[str, int]] = {}
        with self.catalog.read() as conn:
            q = (
                select(EMB.c.index_name, EMB.c.asset_type, func.count())
                .where(EMB.c.owner == scope.org_id)
                .group_by(EMB.c.index_name, EMB.c.asset_type)
            )
            for name, asset_type, n in conn.execute(q):
                out.setdefault(name, {})[asset_type] = int(n)
        return out

    def vectors_of(
        self, scope: Scope, index_name: str, asset_type: str, asset_ids: Sequence[str]
    ) -> dict[str, tuple[int, bytes]]:
        """``asset_id -> (dims, float32 bytes)`` of the given assets in a space (assets without one are left
        out)."""
        out: dict[str, tuple[int, bytes]] = {}
        with self.catalog.read() as conn:
            for part in _chunks(list(asset_ids)):
                q = select(EMB.c.asset_id, EMB.c.dims, EMB.c.vector).where(
                    EMB.c.owner == scope.org_id, EMB.c.index_name == index_name, EMB.c.asset_type == asset_type,
                    EMB.c.asset_id.in_(part),
                )  # fmt: skip
                out.update({r.asset_id: (int(r.dims), bytes(r.vector)) for r in conn.execute(q)})
        return out

    def scan_space(
        self, scope: Scope, index_name: str, asset_type: str | None, batch: int = 5000
    ) -> Iterator[list[tuple[str, bytes]]]:
        """Every ``(asset_id, float32 bytes)`` of a space (of one asset type when given), in asset order,
        ``batch`` at a time (keyset paging on the space's unique index)."""
        last: tuple[str, str] | None = None
        while True:
            conds = [EMB.c.owner == scope.org_id, EMB.c.index_name == index_name]
            if asset_type is not None:
                conds.append(EMB.c.asset_type == asset_type)
            if last is not None:
                conds.append(tuple_(EMB.c.asset_type, EMB.c.asset_id) > tuple_(*last))
            q = (
                select(EMB.c.asset_type, EMB.c.asset_id, EMB.c.vector)
                .where(*conds)
                .order_by(EMB.c.asset_type, EMB.c.asset_id)
                .limit(batch)
            )
            with self.catalog.read() as conn:
                rows = conn.execute(q).all()
            if not rows:
                return
            last = (rows[-1].asset_type, rows[-1].asset_id)
            yield [(r.asset_id, bytes(r.vector)) for r in rows]
            if len(rows) < batch:
                return

    def rows_by_id(self, scope: Scope, ids: Sequence[str]) -> list[Any]:
        """The organization's own rows of these embedding ids (for indexing), in no particular order."""
        out: list[Any] = []
        with self.catalog.read() as conn:
            for part in _chunks(list(ids)):
                q = select(EMB.c.id, EMB.c.index_name, EMB.c.asset_type, EMB.c.asset_id, EMB.c.dims, EMB.c.vector)
                out += conn.execute(q.where(EMB.c.owner == scope.org_id, EMB.c.id.in_(part))).all()
        return out

    def space_assets(self, scope: Scope, index_name: str, size: int) -> list[tuple[str, str]]:
        """Up to ``size`` ``(asset_type, asset_id)`` of a space (removing it batch by batch)."""
        with self.catalog.read() as conn:
            q = (
                select(EMB.c.asset_type, EMB.c.asset_id)
                .where(EMB.c.owner == scope.org_id, EMB.c.index_name == index_name)
                .order_by(EMB.c.asset_type, EMB.c.asset_id)
                .limit(size)
            )
            return [(r.asset_type, r.asset_id) for r in conn.execute(q)]

    # ------------------------------------------------------------------ the generic asset routes

    def get_many(self, scope: Scope, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with self.catalog.read() as conn:
            for part in _chunks(list(ids)):
                for r in conn.execute(select(*_ROW).where(_readable(scope), EMB.c.id.in_(part))):
                    if r.id not in out or r.owner == scope.org_id:
                        out[r.id] = document(r)
        return out

    def search(
        self, scope: Scope, query: Query, size: int, offset: int, sort_field: str | None, sort_order: str | None,
        ids_only: bool,
    ) -> list[Any]:  # fmt: skip
        column = COLUMNS.get(sort_field or "id")
        if column is None:
            raise QueryError(f"embeddings sort by one of {sorted(COLUMNS)}, not {sort_field!r}")
        order = [column.desc() if (sort_order or "asc").lower() == "desc" else column.asc(), EMB.c.id]
        cols = [EMB.c.id] if ids_only else _ROW
        q = select(*cols).where(_readable(scope), *conditions(query)).order_by(*order).limit(size).offset(offset)
        with self.catalog.read() as conn:
            rows = conn.execute(q).all()
        return [r.id for r in rows] if ids_only else [document(r) for r in rows]

    def scan(self, scope: Scope, query: Query, ids_only: bool, batch: int = 1000) -> Iterator[list[Any]]:
        conds = [_readable(scope), *conditions(query)]
        last: tuple[str, str] | None = None
        cols = [EMB.c.owner, EMB.c.id] if ids_only else _ROW
        while True:
            where = [*conds, tuple_(EMB.c.owner, EMB.c.id) > tuple_(*last)] if last else conds
            with self.catalog.read() as conn:
                rows = conn.execute(select(*cols).where(*where).order_by(EMB.c.owner, EMB.c.id).limit(batch)).all()
            if not rows:
                return
            last = (rows[-1].owner, rows[-1].id)
            yield [r.id for r in rows] if ids_only else [document(r) for r in rows]
            if len(rows) < batch:
                return

    def count(self, scope: Scope, query: Query) -> int:
        with self.catalog.read() as conn:
            q = select(func.count()).select_from(EMB).where(_readable(scope), *conditions(query))
            return int(conn.execute(q).scalar_one())


def conditions(query: Query) -> list[ColumnElement[bool]]:
    """A search over embeddings as conditions on the table's columns; a field it has not is a QueryError."""
    if query.nested:
        raise QueryError("embeddings have no nested fields to filter on")
    out: list[ColumnElement[bool]] = []
    filters: list[ValuesFilter | ExistsFilter | RangeFilter] = [*query.values, *query.exists, *query.ranges]
    for f in filters:
        column = COLUMNS.get(f.field)
        if column is None:
            raise QueryError(
                f"embeddings are searchable by {sorted(COLUMNS)}, not {f.field!r} (vectors are never searchable)"
            )
        cond: ColumnElement[bool]
        if isinstance(f, ValuesFilter):
            wanted: list[Any] = list(f.numbers if f.field in NUMERIC else f.strings)
            if f.field == "ndim":
                wanted = [int(v) for v in wanted if float(v).is_integer()]
            cond = column.in_(wanted) if wanted else false()
        elif isinstance(f, ExistsFilter):
            cond = column.is_not(None)
        elif isinstance(f, RangeFilter):
            if f.field not in NUMERIC:
                raise QueryError(
                    f"embeddings: {f.field!r} is not a number or a time; ranges apply to {sorted(NUMERIC)}"
                )
            parts: list[ColumnElement[bool]] = [true()]
            if f.low is not None:
                parts.append(column >= f.low)
            if f.high is not None:
                parts.append(column <= f.high)
            cond = and_(*parts)
        else:  # pragma: no cover - the three lists hold only these
            raise QueryError(f"unsupported filter on {f.field!r}")
        # an embedding without the field matches a negated filter, as a document without it does
        out.append(or_(column.is_(None), not_(cond)) if f.negate else cond)
    return out


def _chunks(values: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


__all__ = ["COLUMNS", "EmbeddingRepo", "conditions", "document"]
