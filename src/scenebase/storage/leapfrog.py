"""Leapfrog intersection of string posting lists in time order, inside SQLite (one recursive query).

A search sorted by time whose filters are all positive one-string filters (``sensor = cam_front AND aux.weather =
rain AND tags = night``) used to walk the smallest posting list in time order and probe the others per asset:
2,000 probes for 50 hits when the others rarely hold together. Leapfrogging seeks instead: from a cursor
``(ts, pk)`` take the first posting of the walked list at or past it, then the first posting of every other list
at or past *that*; when all name the same asset it is a hit, and otherwise the cursor jumps to the first list
that is ahead (nothing between can match, since that list has no posting there). Values that come in runs (the
weather of a drive, the time of day) are skipped a run at a time. Each seek is one probe of ``ix_terms_str_ts``
(``owner, asset_type, field, vstr, ts, asset_pk``); the row found is joined back by its rowid.

SQLite only: the query relies on the table's rowid. PostgreSQL keeps the walk with probes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: cursors before every posting, per direction: (ts, asset_pk)
_START = {True: ("1e308", "9223372036854775807"), False: ("-1e308", "-9223372036854775808")}


def _seek(i: int, desc: bool, ts: str, pk: str) -> str:
    """The rowid of the first posting of list ``i`` at or past ``(ts, pk)`` in the walk's direction."""
    cmp, order = ("<=", "DESC") if desc else (">=", "ASC")
    return (
        f"(SELECT rowid FROM asset_terms WHERE owner = :owner AND asset_type = :asset_type AND field = :f{i} "
        f"AND vstr = :v{i} AND vstr IS NOT NULL AND (ts, asset_pk) {cmp} ({ts}, {pk}) "
        f"ORDER BY ts {order}, asset_pk {order} LIMIT 1)"
    )


def leapfrog_query(
    lists: Sequence[tuple[str, str]], column: str, desc: bool, owner: str, asset_type: str, size: int, offset: int
) -> tuple[str, dict[str, Any]]:
    """SQL and parameters (SQLite's ``:name`` style) of ``SELECT assets.<column>`` of the first ``size`` assets
    after ``offset`` that have every ``(field, string)`` of ``lists``, in ``(timestamp, pk)`` order. The first list
    is walked; the others should come most selective first (they jump furthest). The SQL goes to the driver as it
    is: compiling it through SQLAlchemy took as long as running it."""
    if len(lists) < 2:
        raise ValueError("leapfrogging needs two posting lists or more")
    others = range(1, len(lists))
    step = "-" if desc else "+"
    joins = " ".join(f"JOIN asset_terms b{i} ON b{i}.rowid = {_seek(i, desc, 'a.ts', 'a.asset_pk')}" for i in others)
    same = " AND ".join(f"b{i}.asset_pk = a.asset_pk" for i in others)
    ahead_ts = " ".join(f"WHEN b{i}.asset_pk != a.asset_pk THEN b{i}.ts" for i in others)
    ahead_pk = " ".join(f"WHEN b{i}.asset_pk != a.asset_pk THEN b{i}.asset_pk" for i in others)
    start_ts, start_pk = _START[desc]
    order = "DESC" if desc else "ASC"
    sql = f"""
WITH RECURSIVE frog(ts, pk, hit, n) AS (
  SELECT {start_ts}, {start_pk}, NULL, 0
  UNION ALL
  SELECT CASE WHEN {same} THEN a.ts {ahead_ts} END,
         CASE WHEN {same} THEN a.asset_pk {step} 1 {ahead_pk} END,
         CASE WHEN {same} THEN a.asset_pk END,
         frog.n + ({same})
  FROM frog JOIN asset_terms a ON a.rowid = {_seek(0, desc, "frog.ts", "frog.pk")} {joins}
  WHERE frog.n < :need
)
SELECT assets.{column} FROM frog JOIN assets ON assets.pk = frog.hit
ORDER BY assets.timestamp {order}, assets.pk {order} LIMIT :size OFFSET :offset"""
    params: dict[str, Any] = {"owner": owner, "asset_type": asset_type, "need": size + offset, "size": size,
                              "offset": offset}  # fmt: skip
    for i, (field, value) in enumerate(lists):
        params[f"f{i}"], params[f"v{i}"] = field, value
    return sql, params
