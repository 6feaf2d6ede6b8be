"""The parts of a search plan: each filter of a parsed query as SQL on the term index.

A term filter can be evaluated two ways: as a *posting list* (the scoped ``asset_pk`` of every asset that has the
value; drives a query when it is small) or as a *probe* (an ``EXISTS`` for one asset, checked along a walk in sort
order). A positive filter on one string can also be *walked in time order* (``ix_terms_str_ts``). Nested filters
bind their conditions to one element of a list of objects through ``asset_element_terms.pos``.

:class:`PostingStats` remembers how long posting lists are. The sizes only choose between plans that return the
same rows, so an estimate that is a few seconds old is as good as a fresh one and saves counting the postings of
every filter on every search.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, false, func, literal, not_, or_, select

from scenebase.domain.search import (
    COLUMN_FIELDS,
    Condition,
    ExistsFilter,
    NestedFilter,
    Query,
    RangeFilter,
    ValuesFilter,
)
from scenebase.storage.scope import Scope
from scenebase.storage.tables import asset_element_terms, asset_terms, assets

A = assets
T = asset_terms
E = asset_element_terms


def owner_cond(column: Any, scope: Scope) -> ColumnElement[bool]:
    return column == scope.org_id if len(scope.readable) == 1 else column.in_(sorted(scope.readable))


def scope_cond(scope: Scope, asset_type: str) -> ColumnElement[bool]:
    return and_(owner_cond(A.c.owner, scope), A.c.asset_type == asset_type)


def term_scope(t: Any, scope: Scope, asset_type: str) -> ColumnElement[bool]:
    return and_(owner_cond(t.c.owner, scope), t.c.asset_type == asset_type)


def value_cond(t: Any, f: ValuesFilter) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if f.strings:
        parts.append(t.c.vstr.in_(f.strings) if len(f.strings) > 1 else t.c.vstr == f.strings[0])
    if f.numbers:
        parts.append(t.c.vnum.in_(f.numbers) if len(f.numbers) > 1 else t.c.vnum == f.numbers[0])
    return and_(t.c.field == f.field, or_(*parts) if len(parts) > 1 else parts[0])


def range_cond(t: Any, r: RangeFilter) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = [t.c.field == r.field]
    if r.low is not None:
        conds.append(t.c.vnum >= r.low)
    if r.high is not None:
        conds.append(t.c.vnum <= r.high)
    if r.low is None or r.high is None:
        conds.append(t.c.vnum.is_not(None))
    return and_(*conds)


def exists_cond(t: Any, e: ExistsFilter) -> ColumnElement[bool]:
    # the field itself, or any field below it ("a.b" covers "a.b.c"); '/' sorts right after '.'
    return or_(t.c.field == e.field, and_(t.c.field > e.field + ".", t.c.field < e.field + "/"))


def condition(t: Any, c: Condition) -> ColumnElement[bool]:
    if isinstance(c, ValuesFilter):
        return value_cond(t, c)
    if isinstance(c, RangeFilter):
        return range_cond(t, c)
    return exists_cond(t, c)


def column_cond(f: ValuesFilter | RangeFilter) -> ColumnElement[bool]:
    col = A.c.id if f.field == "id" else A.c.timestamp
    if isinstance(f, RangeFilter):
        conds = []
        if f.low is not None:
            conds.append(col >= f.low)
        if f.high is not None:
            conds.append(col <= f.high)
        return and_(*conds)
    values: Sequence[Any] = f.strings if f.field == "id" else f.numbers
    return col.in_(values) if values else false()


@dataclass(frozen=True)
class TermFilter:
    """One filter on the term index (flat, or nested on element terms)."""

    #: the filter without its negation: what the posting statistics are kept under
    key: Hashable
    negate: bool
    #: ``postings(scope, asset_type, bound)``: SELECT asset_pk of the matching assets (``bound``: extra conditions
    #: on the posting's ``asset_pk`` column, e.g. a scan's keyset bound)
    postings: Callable[[Scope, str, Callable[[Any], list[Any]]], Select[Any]]
    #: ``probe(pk, bound)``: EXISTS for the asset whose primary key is ``pk``
    probe: Callable[[Any, Callable[[Any], list[Any]]], ColumnElement[bool]]
    #: (field, value) when the filter is one string value: its postings can be walked in time order
    walkable: tuple[str, str] | None = None


def _flat(c: ValuesFilter | RangeFilter | ExistsFilter) -> TermFilter:
    def postings(scope: Scope, asset_type: str, bound: Callable[[Any], list[Any]]) -> Select[Any]:
        return select(T.c.asset_pk).where(term_scope(T, scope, asset_type), condition(T, c), *bound(T.c.asset_pk))

    def probe(pk: Any, bound: Callable[[Any], list[Any]]) -> ColumnElement[bool]:
        return select(T.c.asset_pk).where(T.c.asset_pk == pk, *bound(T.c.asset_pk), condition(T, c)).exists()

    walkable = None
    if isinstance(c, ValuesFilter) and len(c.strings) == 1 and not c.numbers:
        walkable = (c.field, c.strings[0])
    key = (type(c).__name__, *(v for k, v in vars(c).items() if k != "negate"))
    return TermFilter(key, c.negate, postings, probe, walkable)


def _nested(n: NestedFilter) -> TermFilter:
    anchor = next(c for c in n.conditions if not c.negate)
    rest = [c for c in n.conditions if c is not anchor]

    def same_element(e1: Any) -> list[ColumnElement[bool]]:
        out = []
        for c in rest:
            other = E.alias()
            found = exists().where(other.c.asset_pk == e1.c.asset_pk, other.c.pos == e1.c.pos, condition(other, c))
            out.append(not_(found) if c.negate else found)
        return out

    def postings(scope: Scope, asset_type: str, bound: Callable[[Any], list[Any]]) -> Select[Any]:
        e1 = E.alias()
        return select(e1.c.asset_pk).where(
            term_scope(e1, scope, asset_type), condition(e1, anchor), *bound(e1.c.asset_pk), *same_element(e1)
        )

    def probe(pk: Any, bound: Callable[[Any], list[Any]]) -> ColumnElement[bool]:
        e1 = E.alias()
        return exists().where(e1.c.asset_pk == pk, *bound(e1.c.asset_pk), condition(e1, anchor), *same_element(e1))

    key = ("nested", n.path, tuple(sorted(map(repr, n.conditions))))
    return TermFilter(key, n.negate, postings, probe)


def split_query(query: Query) -> tuple[list[ColumnElement[bool]], list[TermFilter]]:
    """Conditions on the ``assets`` columns (id, timestamp), and the filters on the term index."""
    columns: list[ColumnElement[bool]] = []
    terms: list[TermFilter] = []
    filters: list[ValuesFilter | RangeFilter] = [*query.values, *query.ranges]
    for f in filters:
        if f.field in COLUMN_FIELDS:
            c = column_cond(f)
            columns.append(not_(c) if f.negate else c)
        else:
            terms.append(_flat(f))
    for e in query.exists:
        if e.field in COLUMN_FIELDS:
            if e.negate:
                columns.append(false())
            continue
        terms.append(_flat(e))
    terms.extend(_nested(n) for n in query.nested)
    return columns, terms


class PostingStats:
    """How many postings a filter has (counted up to ``cap``), remembered for ``ttl`` seconds per readable scope
    and asset type. Used only to choose a plan; every plan returns the same rows."""

    def __init__(self, cap: int = 100_000, ttl: float = 30.0, max_entries: int = 20_000) -> None:
        self.cap = cap
        self.ttl = ttl
        self.max_entries = max_entries
        self._counts: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def count(self, conn: Connection, scope: Scope, asset_type: str, f: TermFilter, at_least: int) -> int:
        """The number of postings of ``f``, exact up to ``max(cap, at_least)``."""
        limit = max(self.cap, at_least)
        key = (tuple(sorted(scope.readable)), asset_type, f.key)
        now = time.monotonic()
        with self._lock:
            hit = self._counts.get(key)
        if hit is not None and hit[0] > now and (hit[1] < self.cap or limit <= self.cap):
            return hit[1]
        bounded = f.postings(scope, asset_type, lambda _pk: []).with_only_columns(literal(1)).limit(limit)
        n = int(conn.execute(select(func.count()).select_from(bounded.subquery())).scalar_one())
        with self._lock:
            if len(self._counts) >= self.max_entries:
                self._counts.clear()
            self._counts[key] = (now + self.ttl, min(n, self.cap))
        return n

    def forget(self, asset_type: str) -> None:
        """After a write: counts of this asset type are recounted on next use."""
        with self._lock:
            for key in [k for k in self._counts if k[1] == asset_type]:
                del self._counts[key]
