"""Set-based writes of documents and their index rows for SQLite: one statement per table and batch, its rows
passed as one JSON parameter and unpacked by ``json_each``, instead of a driver ``executemany``.

Why: Python's ``sqlite3`` releases the GIL around every ``sqlite3_step``, so an ``executemany`` of 19,000 index
rows (a batch of 500 annotations) gives the GIL away 19,000 times. While another request thread is busy in Python
(preparing the next batch), the writer then waits up to a switch interval (5 ms) to get it back, each time: a
convoy that stalls the one writer SQLite allows. One statement is one step. The JSON is built when the write is
planned (``AssetRepo.plan``), possibly before its transaction, so the transaction itself runs statements only.

Floats do not go through SQLite's text-to-float conversion, which is not correctly rounded before SQLite 3.43
(on 3.40 about one value in ten came back one unit in the last place off from a JSON number, so an exact search
would miss it). Each float travels as an integer significand and a power of two, which SQLite scales exactly (a
product or quotient of a 53-bit integer and a power of two). A batch with a float beyond that range (below 2**-71
or from 2**115 up) is written with ``executemany`` instead (:class:`NotExact`).

Each ``->>`` re-reads its row's JSON, so rows are short: the owner and the type are parameters, and the time of
an index row is read from its asset's row (written first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

#: smallest and largest binary exponent ``frexp`` may give for a float sent as [significand, exponent]
_MIN_EXP, _MAX_EXP = -71, 115

Term = tuple[str, str | None, float | None]
ElementTerm = tuple[str, str | None, float | None, int]


class NotExact(ValueError):
    """A float outside the range :func:`exact` encodes."""


def exact(value: float | None) -> tuple[int, int] | tuple[None, None]:
    """``value`` as ``(M, E)`` with ``value == M * 2**E`` and ``|M| < 2**53``, for :func:`real`."""
    if value is None:
        return None, None
    if not math.isfinite(value):
        raise NotExact(value)
    mantissa, exponent = math.frexp(value)
    if not _MIN_EXP <= exponent <= _MAX_EXP:
        raise NotExact(value)
    return int(mantissa * (1 << 53)), exponent - 53


def real(m: str, e: str) -> str:
    """SQL for the float of :func:`exact`'s pair held in the expressions ``m`` and ``e`` (NULL for NULL)."""
    return (
        f"CASE WHEN {m} IS NULL THEN NULL WHEN {e} >= 0 THEN CAST({m} AS REAL) * (1 << ({e})) "
        f"WHEN {e} >= -62 THEN CAST({m} AS REAL) / (1 << -({e})) "
        f"ELSE CAST({m} AS REAL) / 4611686018427387904 / (1 << (-62 - ({e}))) END"
    )


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass
class Packed:
    """The JSON parameters of one planned write (see ``AssetRepo.plan``); None where there is nothing to write."""

    #: new documents: ``[[id, time M, time E, document text], ...]``
    new_docs: str | None = None
    #: their index rows by id: ``[[id, [[field, vstr, vnum M, vnum E], ...]], ...]`` (element rows add the position)
    new_terms: str | None = None
    new_elements: str | None = None
    #: changed documents: ``[[pk, document text, time M, time E], ...]``
    update: str | None = None
    #: index rows of changed documents: ``[[pk, field, vstr, vnum M, vnum E(, pos)], ...]``
    terms: str | None = None
    elements: str | None = None
    gone_terms: str | None = None
    gone_elements: str | None = None


def pack(
    new: Sequence[tuple[str, float, str, Iterable[Term], Iterable[ElementTerm]]],
    changed: Sequence[tuple[int, str, float]],
    terms: Sequence[tuple[int, str, str, str, str | None, float | None, Any]],
    elements: Sequence[tuple[int, str, str, str, str | None, float | None, int]],
    gone_terms: Sequence[tuple[int, str, str | None, float | None]],
    gone_elements: Sequence[tuple[int, str, str | None, float | None, int]],
) -> Packed:
    """The parameters for :func:`write`. ``new``: (id, time, document text, terms, element terms) per new
    document; ``changed``: (pk, document text, time); rows as ``AssetRepo`` keeps them. Raises :class:`NotExact`."""
    out = Packed()
    if new:
        out.new_docs = _dumps([(i, *exact(ts), text) for i, ts, text, _t, _e in new])
        out.new_terms = _dumps([(i, [(f, s, *exact(n)) for f, s, n in t]) for i, _ts, _x, t, _e in new])
        out.new_elements = _dumps([(i, [(f, s, *exact(n), p) for f, s, n, p in e]) for i, _ts, _x, _t, e in new])
    if changed:
        out.update = _dumps([(pk, text, *exact(ts)) for pk, text, ts in changed])
    if terms:
        out.terms = _dumps([(r[0], r[3], r[4], *exact(r[5])) for r in terms])
    if elements:
        out.elements = _dumps([(r[0], r[3], r[4], *exact(r[5]), r[6]) for r in elements])
    if gone_terms:
        out.gone_terms = _dumps([(pk, f, s, *exact(n)) for pk, f, s, n in gone_terms])
    if gone_elements:
        out.gone_elements = _dumps([(pk, f, s, *exact(n), p) for pk, f, s, n, p in gone_elements])
    return out


_TIME = real("j.value->>1", "j.value->>2")
_CHANGED_TIME = real("j.value->>2", "j.value->>3")
_VNUM = real("t.value->>2", "t.value->>3")
_ROW_VNUM = real("j.value->>3", "j.value->>4")

INSERT_DOCS = (
    "INSERT INTO assets (owner, asset_type, id, timestamp, doc, created_at, updated_at) "
    f"SELECT ?, ?, j.value->>0, {_TIME}, j.value->>3, ?, ? FROM json_each(?) j"
)
#: index rows of new documents: the primary key and the time come from the document's row, found by id
_NEW_ROWS = (
    "INSERT INTO {table} (asset_pk, owner, asset_type, field, vstr, vnum, {last}) "
    f"SELECT a.pk, a.owner, a.asset_type, t.value->>0, t.value->>1, {_VNUM}, {{value}} FROM json_each(?) j "
    "CROSS JOIN assets a ON a.owner = ? AND a.asset_type = ? AND a.id = j.value->>0 "
    "CROSS JOIN json_each(j.value, '$[1]') t"
)
INSERT_NEW_TERMS = _NEW_ROWS.format(table="asset_terms", last="ts", value="a.timestamp")
INSERT_NEW_ELEMENTS = _NEW_ROWS.format(table="asset_element_terms", last="pos", value="t.value->>4")
UPDATE_DOCS = (
    f"UPDATE assets SET doc = j.value->>1, timestamp = {_CHANGED_TIME}, updated_at = ? FROM json_each(?) j "
    "WHERE assets.pk = j.value->>0"
)
INSERT_TERMS = (
    "INSERT INTO asset_terms (asset_pk, owner, asset_type, field, vstr, vnum, ts) "
    f"SELECT j.value->>0, ?, ?, j.value->>1, j.value->>2, {_ROW_VNUM}, a.timestamp FROM json_each(?) j "
    "CROSS JOIN assets a ON a.pk = j.value->>0"
)
INSERT_ELEMENTS = (
    "INSERT INTO asset_element_terms (asset_pk, owner, asset_type, field, vstr, vnum, pos) "
    f"SELECT j.value->>0, ?, ?, j.value->>1, j.value->>2, {_ROW_VNUM}, j.value->>5 FROM json_each(?) j"
)
_DELETE = (
    "DELETE FROM {table} WHERE rowid IN (SELECT t.rowid FROM json_each(?) j CROSS JOIN {table} t "
    f"ON t.asset_pk = j.value->>0 AND t.field = j.value->>1 AND t.vstr IS j.value->>2 AND t.vnum IS {_ROW_VNUM}"
    "{pos})"
)
DELETE_TERMS = _DELETE.format(table="asset_terms", pos="")
DELETE_ELEMENTS = _DELETE.format(table="asset_element_terms", pos=" AND t.pos = j.value->>5")


def write(conn: Connection, owner: str, asset_type: str, now: float, packed: Packed) -> None:
    """Run a packed write: new documents and their rows, then changed documents (their rows' time is read from
    them). The caller deletes the rows of documents rewritten whole before, and maps a duplicate id to a
    concurrent write."""
    run = conn.exec_driver_sql
    if packed.new_docs:
        run(INSERT_DOCS, (owner, asset_type, now, now, packed.new_docs))
        run(INSERT_NEW_TERMS, (packed.new_terms, owner, asset_type))
        run(INSERT_NEW_ELEMENTS, (packed.new_elements, owner, asset_type))
    if packed.gone_terms:
        run(DELETE_TERMS, (packed.gone_terms,))
    if packed.gone_elements:
        run(DELETE_ELEMENTS, (packed.gone_elements,))
    if packed.update:
        run(UPDATE_DOCS, (now, packed.update))
    if packed.terms:
        run(INSERT_TERMS, (owner, asset_type, packed.terms))
    if packed.elements:
        run(INSERT_ELEMENTS, (owner, asset_type, packed.elements))
