"""Scenario search over many sessions at once, as interval arithmetic (FACTS 4.6); the same answers as
:func:`scenebase.domain.timeline_search.session_intervals` session by session, without testing every bucket of
every session.

* Each resolved column gets a :class:`ColumnIndex` once (kept beside the decoded column): for state and set
  columns the runs of buckets holding each label, for every column the runs where it has a value, for scalars
  their smallest and largest value. A condition on a state, a set or the presence of a value is then a lookup of
  runs; a scalar range that cannot match (or matches every value) is decided by the column's min/max.
* Only scalar ranges and geo boxes that the min/max cannot decide look at values, and only within the runs of
  the buckets the other conditions left.
* Every session's runs are laid end to end on one axis (one empty bucket between sessions, so runs never join
  across them) and conditions are AND-ed in one sweep over all their boundaries: a few numpy calls per query,
  not per session.

Runs are half-open ``[start, end)`` bucket positions, sorted and disjoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from scenebase.domain.timeline import Grid
from scenebase.domain.timeline_data import Column, bucket_of
from scenebase.domain.timeline_search import Condition, ScenarioQuery

I8 = npt.NDArray[np.int64]
Runs = tuple[I8, I8]
_EMPTY: Runs = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def mask_runs(mask: npt.NDArray[np.bool_]) -> Runs:
    """The maximal runs of True of ``mask`` as ``[start, end)``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1).astype(np.int64), np.flatnonzero(edges == -1).astype(np.int64)


@dataclass
class ColumnIndex:
    """What a search needs of one resolved column without reading its buckets (column-relative positions)."""

    present: Runs
    #: state and set columns: label -> runs of the buckets holding it
    postings: dict[str, Runs] = field(default_factory=dict)
    #: scalar columns: smallest and largest value (NaN without values)
    low: float = math.nan
    high: float = math.nan

    @property
    def nbytes(self) -> int:
        return 16 * (len(self.present[0]) + sum(len(s) for s, _ in self.postings.values())) + 64 * len(self.postings)


def build_index(col: Column) -> ColumnIndex:
    index = ColumnIndex(present=mask_runs(col.present()))
    if col.kind == "scalar" and len(index.present[0]):
        assert col.num is not None
        index.low, index.high = float(np.nanmin(col.num)), float(np.nanmax(col.num))
    elif col.kind == "state" and col.length:
        assert col.codes is not None
        codes = col.codes
        change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        starts = np.concatenate([[0], change]).astype(np.int64)
        ends = np.concatenate([change, [col.length]]).astype(np.int64)
        index.postings = _by_label(codes[starts], starts, ends, col.labels)
    elif col.kind == "set" and col.codes is not None and len(col.codes):
        assert col.offsets is not None
        buckets = np.repeat(np.arange(col.length, dtype=np.int64), np.diff(col.offsets))
        order = np.lexsort((buckets, col.codes))
        labels, buckets = col.codes[order], buckets[order]
        # a run of one label ends where the label changes or a bucket is skipped
        new = np.ones(len(labels), dtype=bool)
        new[1:] = (labels[1:] != labels[:-1]) | (buckets[1:] - buckets[:-1] > 1)
        first = np.flatnonzero(new)
        last = np.concatenate([first[1:], [len(labels)]]) - 1
        index.postings = _by_label(labels[first], buckets[first], buckets[last] + 1, col.labels)
    return index


def _by_label(codes: npt.NDArray[np.int32], starts: I8, ends: I8, labels: list[str]) -> dict[str, Runs]:
    keep = codes >= 0
    codes, starts, ends = codes[keep], starts[keep], ends[keep]
    order = np.argsort(codes, kind="stable")  # runs of one label stay in time order
    codes, starts, ends = codes[order], starts[order], ends[order]
    found, first = np.unique(codes, return_index=True)
    bounds = np.concatenate([first, [len(codes)]])
    return {labels[int(c)]: (starts[a:b], ends[a:b]) for c, a, b in zip(found, bounds[:-1], bounds[1:], strict=True)}


# ---------------------------------------------------------------------------------------------- conditions


def _cheap_runs(cond: Condition, col: Column, index: ColumnIndex) -> Runs | None:
    """The condition's runs (not negated) from the index alone, or None when the values must be looked at."""
    if cond.op == "exists":
        return index.present
    if cond.op == "values":
        if col.kind in ("state", "set"):
            parts = [index.postings[s] for s in cond.strings if s in index.postings]
            if not parts:
                return _EMPTY
            if len(parts) == 1:
                return parts[0]
            return _union(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        return None if col.kind == "scalar" and cond.numbers else _EMPTY
    if cond.op == "range":
        if col.kind != "scalar" or math.isnan(index.low):
            return _EMPTY
        low = -math.inf if cond.low is None else cond.low
        high = math.inf if cond.high is None else cond.high
        if index.high < low or index.low > high:
            return _EMPTY
        if low <= index.low and index.high <= high:
            return index.present
        return None
    if cond.op == "geo":
        return None if col.kind == "geo" and cond.box is not None and len(index.present[0]) else _EMPTY
    return _EMPTY


def _dense_hit(cond: Condition, values: Callable[[str], npt.NDArray[np.float64]]) -> npt.NDArray[np.bool_]:
    """Where ``cond`` holds (scalar ranges and values, geo boxes) on buckets whose arrays ``values`` gives."""
    if cond.op == "geo":
        assert cond.box is not None
        lat, lon = values("lat"), values("lon")
        min_lat, max_lat, min_lon, max_lon = cond.box
        in_lon = ((lon >= min_lon) & (lon <= max_lon) if min_lon <= max_lon
                  else (lon >= min_lon) | (lon <= max_lon))  # fmt: skip
        return np.asarray((lat >= min_lat) & (lat <= max_lat) & in_lon)
    x = values("num")
    if cond.op == "values":
        return np.isin(x, list(cond.numbers))
    hit = ~np.isnan(x)
    if cond.low is not None:
        hit &= x >= cond.low
    if cond.high is not None:
        hit &= x <= cond.high
    return hit


# ---------------------------------------------------------------------------------------------- runs on one axis


def _union(starts: I8, ends: I8) -> Runs:
    """Sorted disjoint maximal runs covering the given (possibly overlapping or touching) runs."""
    if len(starts) == 0:
        return _EMPTY
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(len(starts), dtype=bool)
    new[1:] = starts[1:] > reach[:-1]
    first = np.flatnonzero(new)
    last = np.concatenate([first[1:], [len(starts)]]) - 1
    return starts[first], reach[last]


def _sweep(parts: list[tuple[I8, I8, int]], target: int) -> Runs:
    """The maximal runs where the weights of the (each disjoint) parts covering a position add up to ``target``."""
    starts = np.concatenate([p[0] for p in parts])
    if len(starts) == 0:
        return _EMPTY
    ends = np.concatenate([p[1] for p in parts])
    weights = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int64) for p in parts])
    pos = np.concatenate([starts, ends])
    delta = np.concatenate([weights, -weights])
    is_start = np.concatenate([np.ones(len(starts), np.int8), np.zeros(len(ends), np.int8)])
    order = np.lexsort((is_start, pos))  # at one position, runs end before others start
    pos, level = pos[order], np.cumsum(delta[order])
    inside = np.flatnonzero((level[:-1] == target) & (pos[1:] > pos[:-1]))
    if len(inside) == 0:
        return _EMPTY
    seg_start, seg_end = pos[inside], pos[inside + 1]
    new = np.ones(len(seg_start), dtype=bool)
    new[1:] = seg_start[1:] != seg_end[:-1]
    first = np.flatnonzero(new)
    last = np.concatenate([first[1:], [len(seg_start)]]) - 1
    return seg_start[first], seg_end[last]


class _Collector:
    """Runs of one condition across sessions, shifted onto the common axis (in no particular order: ``_sweep``
    sorts)."""

    def __init__(self) -> None:
        self.starts: list[I8] = []
        self.ends: list[I8] = []
        self.bases: list[int] = []
        self.spans: list[int] = []  # single runs, as axis positions: start, end, start, end, ...

    def add(self, runs: Runs, base: int) -> None:
        if len(runs[0]):
            self.starts.append(runs[0])
            self.ends.append(runs[1])
            self.bases.append(base)

    def add_span(self, start: int, end: int) -> None:
        self.spans += (start, end)

    def runs(self) -> Runs:
        spans = np.array(self.spans, dtype=np.int64).reshape(-1, 2)
        starts, ends = [spans[:, 0]], [spans[:, 1]]
        if self.starts:
            shift = np.repeat(np.array(self.bases, dtype=np.int64), [len(s) for s in self.starts])
            starts.append(np.concatenate(self.starts) + shift)
            ends.append(np.concatenate(self.ends) + shift)
        return np.concatenate(starts), np.concatenate(ends)


def _clip(runs: Runs, offset: int, length: int) -> Runs:
    """Column-relative runs as grid positions within ``[0, length)``."""
    if offset == 0 and len(runs[0]) and runs[1][-1] <= length:
        return runs
    starts = np.clip(runs[0] + offset, 0, length)
    ends = np.clip(runs[1] + offset, 0, length)
    keep = ends > starts
    return starts[keep], ends[keep]


def _window(grid: Grid, time_range: tuple[float, float] | None) -> tuple[int, int]:
    """The grid positions ``[a, b)`` inside the query's time range (as ``timeline_search.window_mask``)."""
    if time_range is None:
        return 0, grid.length
    start, end = time_range
    first = -(2**62) if math.isinf(start) else int(bucket_of(start, grid.resolution))
    last = 2**62 if math.isinf(end) else max(first, math.ceil(end / grid.resolution) - 1)
    return max(0, first - grid.start_index), min(grid.length, last - grid.start_index + 1)


# ---------------------------------------------------------------------------------------------- the search


def search_sessions(
    sessions: Sequence[tuple[Grid, Mapping[str, Column]]],
    query: ScenarioQuery,
    index_of: Callable[[Column], ColumnIndex] = build_index,
) -> list[list[tuple[int, int]]]:
    """Per session (in order), the maximal runs ``(first_bucket, last_bucket)`` (absolute time indices) where every
    condition of ``query`` holds, within its time range and at least ``min_duration`` long: what
    ``session_intervals`` answers for each. ``index_of`` may return cached indexes."""
    conds = query.conditions
    big = len(conds) + 2  # a negated condition's weight: no run it covers can reach the target
    bases = np.zeros(len(sessions), dtype=np.int64)
    universe = _Collector()
    cheap = [_Collector() for _ in conds]
    deferred: list[list[int]] = [[] for _ in conds]  # sessions whose values a condition must look at
    base = 0
    for s, (grid, columns) in enumerate(sessions):
        bases[s] = session_base = base
        a, b = _window(grid, query.time_range)
        length = grid.length
        base += length + 1
        if a >= b:
            continue
        found: list[Runs | None] = []
        for cond in conds:
            col = columns.get(cond.name)
            if col is None:
                runs: Runs | None = _EMPTY
            else:
                runs = _cheap_runs(cond, col, index_of(col))
                if runs is not None:
                    runs = _clip(runs, col.start_index - grid.start_index, length)
            if runs is not None and not cond.negate and len(runs[0]) == 0:
                break  # a positive condition that holds nowhere: the session has no match
            found.append(runs)
        else:
            universe.add_span(session_base + a, session_base + b)
            for i, (cond, runs) in enumerate(zip(conds, found, strict=True)):
                if runs is not None:
                    cheap[i].add(runs, session_base)
                    continue
                deferred[i].append(s)
                if not cond.negate:  # passed here; _refine decides it
                    cheap[i].add_span(session_base, session_base + length)
    parts = [(*universe.runs(), 1)]
    parts += [(*c.runs(), -big if cond.negate else 1) for c, cond in zip(cheap, conds, strict=True)]
    found_runs = _sweep(parts, 1 + sum(not c.negate for c in conds))
    if any(deferred):
        found_runs = _refine(sessions, conds, deferred, found_runs, bases, big)
    return _per_session(sessions, found_runs, bases, query.min_duration)


def _refine(
    sessions: Sequence[tuple[Grid, Mapping[str, Column]]],
    conds: list[Condition],
    deferred: list[list[int]],
    candidates: Runs,
    bases: I8,
    big: int,
) -> Runs:
    """AND the conditions that must look at values into ``candidates``, reading only the candidates' buckets."""
    if len(candidates[0]) == 0:
        return _EMPTY
    owner = np.searchsorted(bases, candidates[0], side="right") - 1
    alive = np.zeros(len(sessions), dtype=bool)
    alive[owner] = True
    parts: list[tuple[I8, I8, int]] = [(*candidates, 1)]
    target = 1
    for cond, where in zip(conds, deferred, strict=True):
        if not where:
            continue
        chosen = np.zeros(len(sessions), dtype=bool)
        chosen[where] = True
        hits = _dense_runs(cond, sessions, candidates, owner, chosen[owner], bases)
        if cond.negate:
            parts.append((*hits, -big))
            continue
        # sessions where the index decided the condition already passed it in the candidates
        decided = np.flatnonzero(alive & ~chosen)
        lengths = np.array([sessions[s][0].length for s in decided.tolist()], np.int64)
        parts.append((np.concatenate([hits[0], bases[decided]]), np.concatenate([hits[1], bases[decided] + lengths]),
                      1))  # fmt: skip
        target += 1
    return _sweep(parts, target)


def _dense_runs(
    cond: Condition,
    sessions: Sequence[tuple[Grid, Mapping[str, Column]]],
    candidates: Runs,
    owner: I8,
    chosen: npt.NDArray[np.bool_],
    bases: I8,
) -> Runs:
    """Where ``cond`` holds within the ``chosen`` candidate runs (``owner``: their sessions), testing only their
    buckets: the runs' values are laid end to end, a NaN (which matches nothing) after each, tested in one numpy
    pass, and the runs found are shifted back onto the axis."""
    if not chosen.any():
        return _EMPTY
    own = owner[chosen]
    offset = np.zeros(len(sessions), np.int64)
    length = np.zeros(len(sessions), np.int64)
    cols: dict[int, Column] = {}
    for s in np.unique(own).tolist():
        grid, columns = sessions[s]
        cols[s] = col = columns[cond.name]
        offset[s], length[s] = col.start_index - grid.start_index, col.length
    lo = np.maximum(candidates[0][chosen] - bases[own], offset[own])  # grid positions
    hi = np.minimum(candidates[1][chosen] - bases[own], offset[own] + length[own])
    keep = lo < hi
    own, lo, hi = own[keep], lo[keep], hi[keep]
    if len(own) == 0:
        return _EMPTY
    slots = hi - lo + 1  # the run's buckets and a never-matching NaN after them
    at = np.cumsum(slots) - slots  # where each run starts in the joined arrays
    column_lo, column_hi = (lo - offset[own]).tolist(), (hi - offset[own]).tolist()
    owners = own.tolist()
    nan = np.full(1, np.nan)

    def values(attr: str) -> npt.NDArray[np.float64]:
        arrays = {s: getattr(col, attr) for s, col in cols.items()}
        parts: list[npt.NDArray[np.float64]] = []
        for s, a, b in zip(owners, column_lo, column_hi, strict=True):
            parts += (arrays[s][a:b], nan)
        return np.concatenate(parts)

    starts, ends = mask_runs(_dense_hit(cond, values))
    found = np.searchsorted(at, starts, side="right") - 1
    shift = bases[own][found] + lo[found] - at[found]
    return starts + shift, ends + shift


def _per_session(
    sessions: Sequence[tuple[Grid, Mapping[str, Column]]], runs: Runs, bases: I8, min_duration: float
) -> list[list[tuple[int, int]]]:
    out: list[list[tuple[int, int]]] = [[] for _ in sessions]
    if len(runs[0]) == 0:
        return out
    owner = np.searchsorted(bases, runs[0], side="right") - 1
    local_start, local_end = runs[0] - bases[owner], runs[1] - bases[owner]
    if min_duration > 0:
        resolution = np.array([g.resolution for g, _ in sessions], dtype=np.float64)[owner]
        keep = (local_end - local_start) * resolution >= min_duration - 1e-9
        owner, local_start, local_end = owner[keep], local_start[keep], local_end[keep]
    starts = np.array([g.start_index for g, _ in sessions], dtype=np.int64)[owner]
    first, last = (local_start + starts).tolist(), (local_end - 1 + starts).tolist()
    for s, a, b in zip(owner.tolist(), first, last, strict=True):
        out[s].append((a, b))
    return out
