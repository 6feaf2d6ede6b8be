"""Resolution of raw entities onto a session's time grid (FACTS 4.3), with numpy and no catalog.

The grid has one bucket per ``resolution`` seconds, ``time_index = floor(epoch / resolution)``, from the session's
start bucket to its end bucket. Each entity covers a range of buckets according to its influence:

* ``point``: the bucket of its timestamp.
* ``interval``: every bucket overlapping ``[start_time, end_time)``, or ``timestamp ± radius`` without them
  (radius: ``influence_radius_in_seconds``, default one resolution); at least the start's bucket.
* ``affect_forward``: from its start (or timestamp) to the bucket before the next entity of the same name and
  influence, or to its ``end_time`` when given, or to the end of the session.
* ``affect_backward``: from the bucket after the previous such entity (or the session's start) to its timestamp.
* ``start_stop``: consecutive pairs (by time) delimit an active interval carrying the first one's value; an unpaired
  last start stays active to the end of the session.
* ``linear_interpolation`` (``_integer``: rounded) and ``geo_interpolation`` (latitude and longitude
  independently, longitude across the antimeridian the short way): the value at each bucket's start time between
  consecutive points, clamped to the first and last point, so no bucket outside them gets a value.

Where several entities of a name cover a bucket: for sets (``state_set``, ``state_vector``, ``media``) the union of
their values; otherwise the one with the latest timestamp (ties: the one written last). Interpolated values fill
the buckets that no other entity of the name covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from scenebase.constants import EntityInfluenceTypes as Influence
from scenebase.domain.timeline_data import F8, I8, Column, EntityChunk, bucket_of, last_bucket

INTERPOLATED = frozenset({Influence.LINEAR_INTERPOLATION, Influence.LINEAR_INTERPOLATION_INTEGER,
                          Influence.GEO_INTERPOLATION})  # fmt: skip
#: (entity, bucket) pairs expanded at once before painting falls back to a loop (memory bound)
EXPAND_LIMIT = 20_000_000


@dataclass(frozen=True)
class Grid:
    """Buckets ``start_index .. start_index + length - 1`` of ``resolution`` seconds."""

    resolution: float
    start_index: int
    length: int

    @classmethod
    def spanning(cls, start: float, end: float, resolution: float) -> Grid:
        first = int(bucket_of(start, resolution))
        last = max(first, int(bucket_of(end, resolution)))
        return cls(resolution, first, last - first + 1)

    @property
    def end_index(self) -> int:
        return self.start_index + self.length - 1

    def bucket_times(self) -> F8:
        return (self.start_index + np.arange(self.length, dtype=np.float64)) * self.resolution


@dataclass
class _Flat:
    """All entities of one name, from every chunk, in one set of arrays (labels merged, codes remapped)."""

    influence: npt.NDArray[np.int8]  # per entity, a position in influence_names
    ts: F8
    starts: F8
    ends: F8
    radius: F8
    num: F8 | None
    lat: F8 | None
    lon: F8 | None
    labels: list[str]
    codes: npt.NDArray[np.int32] | None
    offsets: I8 | None
    matrix: F8 | None
    #: the influences present (codes, not strings, per entity: telling 100,000 strings apart took a tenth of a
    #: second per name)
    influence_names: list[str] = field(default_factory=list)


def _flatten(chunks: Sequence[EntityChunk]) -> _Flat:
    kind = chunks[0].kind
    cat = np.concatenate
    influence_names = sorted({c.influence for c in chunks})
    code_of = {name: i for i, name in enumerate(influence_names)}
    influence = cat([np.full(len(c), code_of[c.influence], dtype=np.int8) for c in chunks])
    num = cat([c.num for c in chunks if c.num is not None]) if kind == "scalar" else None
    lat = cat([c.lat for c in chunks if c.lat is not None]) if kind == "geo" else None
    lon = cat([c.lon for c in chunks if c.lon is not None]) if kind == "geo" else None
    labels: list[str] = []
    codes = offsets = matrix = None
    if kind in ("state", "set"):
        labels = sorted({label for c in chunks for label in c.labels})
        position = {label: i for i, label in enumerate(labels)}
        parts = []
        for c in chunks:
            remap = np.array([position[label] for label in c.labels] or [0], dtype=np.int32)
            assert c.codes is not None
            parts.append(remap[c.codes] if len(c.codes) else c.codes.astype(np.int32))
        codes = cat(parts).astype(np.int32)
        if kind == "set":
            lengths = cat([np.diff(c.offsets) for c in chunks if c.offsets is not None])
            offsets = cat([[0], np.cumsum(lengths)]).astype(np.int64)
    if kind == "vector":
        width = max((c.matrix.shape[1] for c in chunks if c.matrix is not None), default=0)
        rows = []
        for c in chunks:
            assert c.matrix is not None
            pad = np.full((len(c), width - c.matrix.shape[1]), np.nan)
            rows.append(np.hstack([c.matrix, pad]))
        matrix = np.vstack(rows)
    return _Flat(influence, cat([c.timestamps for c in chunks]), cat([c.starts for c in chunks]),
                 cat([c.ends for c in chunks]), cat([c.radius for c in chunks]), num, lat, lon, labels, codes,
                 offsets, matrix, influence_names)  # fmt: skip


def _bounds(f: _Flat, grid: Grid) -> tuple[I8, I8]:
    """First and last bucket each entity covers (before clipping to the grid); interpolated entities get an
    empty range (first > last)."""
    res = grid.resolution
    n = len(f.ts)
    first = np.ones(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    anchor = np.where(np.isnan(f.starts), f.ts, f.starts)
    for code, influence in enumerate(f.influence_names):
        if influence in INTERPOLATED:
            continue
        sel = np.flatnonzero(f.influence == code)
        if len(sel) == 0:
            continue
        if influence == Influence.INTERVAL:
            r = np.where(np.isnan(f.radius[sel]), res, f.radius[sel])
            has_span = ~np.isnan(f.starts[sel]) & ~np.isnan(f.ends[sel])
            lo = np.where(has_span, f.starts[sel], f.ts[sel] - r)
            hi = np.where(has_span, f.ends[sel], f.ts[sel] + r)
            first[sel], last[sel] = bucket_of(lo, res), last_bucket(lo, hi, res)
            continue
        if influence in (Influence.AFFECT_FORWARD, Influence.AFFECT_BACKWARD, Influence.START_STOP):
            key = anchor[sel] if influence == Influence.AFFECT_FORWARD else f.ts[sel]
            sel = sel[np.argsort(key, kind="stable")]
            key = anchor[sel] if influence == Influence.AFFECT_FORWARD else f.ts[sel]
            b = bucket_of(key, res)
            if influence == Influence.AFFECT_FORWARD:
                nxt = np.append(b[1:] - 1, grid.end_index)
                ends = f.ends[sel]
                to_end = last_bucket(key, np.where(np.isnan(ends), key, ends), res)
                first[sel], last[sel] = b, np.maximum(b, np.where(np.isnan(ends), nxt, to_end))
            elif influence == Influence.AFFECT_BACKWARD:
                prev = np.insert(b[:-1] + 1, 0, grid.start_index)
                first[sel], last[sel] = np.minimum(prev, b), b
            else:  # start_stop: starts at even positions, stops at odd ones
                starts, stops = sel[0::2], sel[1::2]
                sb = bucket_of(f.ts[starts], res)
                stop_last = last_bucket(f.ts[starts[: len(stops)]], f.ts[stops], res)
                first[starts] = sb
                last[starts] = np.append(stop_last, [grid.end_index] * (len(starts) - len(stops)))
            continue
        first[sel] = last[sel] = bucket_of(f.ts[sel], res)  # point, and anything unknown
    return first, np.asarray(last, dtype=np.int64)


def _expand(first: I8, widths: I8) -> I8:
    """``first[i], first[i]+1, ..., first[i]+widths[i]-1`` for every i, concatenated."""
    total = int(widths.sum())
    starts = np.repeat(np.cumsum(widths) - widths, widths)
    return np.repeat(first, widths) + (np.arange(total, dtype=np.int64) - starts)


def _paint_latest(first: I8, last: I8, rank: I8, length: int, expand_limit: int) -> I8:
    """Per bucket, the highest ``rank`` among entities covering it (-1: none). Buckets are grid-relative."""
    best = np.full(length, -1, dtype=np.int64)
    widths = last - first + 1
    if int(widths.sum()) <= expand_limit:
        np.maximum.at(best, _expand(first, widths), np.repeat(rank, widths))
    else:
        for i in np.argsort(rank, kind="stable"):
            best[first[i] : last[i] + 1] = rank[i]
    return best


def _paint_union(
    first: I8, last: I8, codes: npt.NDArray[np.int32], offsets: I8, length: int, n_labels: int, expand_limit: int
) -> tuple[npt.NDArray[np.int32], I8]:
    """Per bucket, the union of the codes of the entities covering it, as (codes, offsets) sorted by code."""
    widths = last - first + 1
    ncodes = np.diff(offsets)
    if int((widths * ncodes).sum()) <= expand_limit:
        pair_bucket = _expand(first, widths)
        pair_entity = np.repeat(np.arange(len(first)), widths)
        per_pair = ncodes[pair_entity]
        buckets = np.repeat(pair_bucket, per_pair)
        code_at = _expand(offsets[:-1][pair_entity], per_pair)
        keys = buckets * max(1, n_labels) + codes[code_at]
    else:  # long intervals: one coverage count per label instead of one row per covered bucket
        entity_of = np.repeat(np.arange(len(first)), ncodes)
        parts = []
        for code in np.unique(codes):
            ents = entity_of[codes == code]
            diff = np.zeros(length + 1, dtype=np.int64)
            np.add.at(diff, first[ents], 1)
            np.add.at(diff, last[ents] + 1, -1)
            parts.append(np.flatnonzero(np.cumsum(diff)[:length] > 0) * max(1, n_labels) + code)
        keys = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    keys = np.unique(keys)
    bucket = keys // max(1, n_labels)
    out_offsets = np.searchsorted(bucket, np.arange(length + 1)).astype(np.int64)
    return (keys % max(1, n_labels)).astype(np.int32), out_offsets


def _interpolate(ts: F8, ys: F8, grid: Grid, integer: bool = False, angle: bool = False) -> F8:
    """Values at each bucket's start time, linearly between points, clamped to [first, last] point; NaN in
    buckets that do not overlap [first point, last point]. Several points at one time: the last one counts."""
    out = np.full(grid.length, np.nan)
    if len(ts) == 0:
        return out
    order = np.argsort(ts, kind="stable")
    xs, ys = ts[order], ys[order]
    keep = np.append(xs[1:] != xs[:-1], True)  # last of each run of equal times
    xs, ys = xs[keep], ys[keep]
    if angle:
        ys = np.unwrap(ys, period=360.0)
    lo = max(int(bucket_of(xs[0], grid.resolution)), grid.start_index) - grid.start_index
    hi = min(int(bucket_of(xs[-1], grid.resolution)), grid.end_index) - grid.start_index
    if hi < lo:
        return out
    times = np.clip(grid.bucket_times()[lo : hi + 1], xs[0], xs[-1])
    values = np.interp(times, xs, ys)
    if angle:
        values = (values + 180.0) % 360.0 - 180.0
    out[lo : hi + 1] = np.rint(values) if integer else values
    return out


def resolve_name(chunks: Sequence[EntityChunk], grid: Grid, expand_limit: int = EXPAND_LIMIT) -> Column:
    """The resolved column of one entity name from its chunks (all of one value kind, in write order)."""
    if not chunks:
        raise ValueError("resolve_name needs at least one chunk")
    kind = chunks[0].kind
    name = chunks[0].name
    if any(c.kind != kind for c in chunks):
        raise ValueError(f"entity name {name!r} mixes value kinds {sorted({c.kind for c in chunks})}")
    f = _flatten(chunks)
    n = grid.length
    col = Column(name=name, kind=kind, start_index=grid.start_index, length=n, labels=f.labels)

    interp = np.array([name in INTERPOLATED for name in f.influence_names], dtype=bool)[f.influence]
    discrete = np.flatnonzero(~interp)
    first, last = _bounds(f, grid)
    first = np.maximum(first[discrete], grid.start_index) - grid.start_index
    last = np.minimum(last[discrete], grid.end_index) - grid.start_index
    inside = first <= last
    ents, first, last = discrete[inside], first[inside], last[inside]
    # priority: latest timestamp wins, ties go to the entity written last
    priority = np.lexsort((np.arange(len(f.ts)), f.ts))
    rank_of = np.empty(len(f.ts), dtype=np.int64)
    rank_of[priority] = np.arange(len(f.ts))

    if kind == "set":
        assert f.codes is not None and f.offsets is not None
        sub_len = np.diff(f.offsets)[ents]
        sub_codes = (np.concatenate([f.codes[f.offsets[e] : f.offsets[e + 1]] for e in ents])
                     if len(ents) else np.zeros(0, np.int32))  # fmt: skip
        sub_offsets = np.concatenate([[0], np.cumsum(sub_len)]).astype(np.int64)
        col.codes, col.offsets = _paint_union(first, last, sub_codes, sub_offsets, n, len(f.labels), expand_limit)
        return col

    best_rank = _paint_latest(first, last, rank_of[ents], n, expand_limit)
    has = best_rank >= 0
    who = priority[np.where(has, best_rank, 0)]
    if kind == "state":
        assert f.codes is not None
        col.codes = np.where(has, f.codes[who] if len(f.codes) else -1, -1).astype(np.int32)
    elif kind == "vector":
        assert f.matrix is not None
        col.matrix = np.where(has[:, None], f.matrix[who] if len(f.matrix) else np.nan, np.nan)
    elif kind == "scalar":
        assert f.num is not None
        col.num = np.where(has, f.num[who] if len(f.num) else np.nan, np.nan)
        if interp.any():
            sel = np.flatnonzero(interp)
            integer_code = (f.influence_names.index(Influence.LINEAR_INTERPOLATION_INTEGER)
                            if Influence.LINEAR_INTERPOLATION_INTEGER in f.influence_names else -1)  # fmt: skip
            integer = bool(np.all(f.influence[sel] == integer_code))
            filled = _interpolate(f.ts[sel], f.num[sel], grid, integer=integer)
            col.num = np.where(has, col.num, filled)
    else:  # geo
        assert f.lat is not None and f.lon is not None
        col.lat = np.where(has, f.lat[who] if len(f.lat) else np.nan, np.nan)
        col.lon = np.where(has, f.lon[who] if len(f.lon) else np.nan, np.nan)
        if interp.any():
            sel = np.flatnonzero(interp)
            col.lat = np.where(has, col.lat, _interpolate(f.ts[sel], f.lat[sel], grid))
            col.lon = np.where(has, col.lon, _interpolate(f.ts[sel], f.lon[sel], grid, angle=True))
    return col


def group_chunks(chunks: Sequence[EntityChunk]) -> tuple[dict[str, list[EntityChunk]], list[str]]:
    """Chunks by entity name, in write order. A name whose chunks disagree on the value kind keeps the chunks of
    its latest kind; the second result says which names dropped chunks, and why."""
    by_name: dict[str, list[EntityChunk]] = {}
    for c in chunks:
        by_name.setdefault(c.name, []).append(c)
    problems = []
    for name, group in by_name.items():
        kinds = {c.kind for c in group}
        if len(kinds) > 1:
            latest = group[-1].kind
            dropped = sum(len(c) for c in group if c.kind != latest)
            by_name[name] = [c for c in group if c.kind == latest]
            problems.append(f"entity name {name!r} has values of kinds {sorted(kinds)}: resolved as {latest!r}, "
                            f"{dropped} entities of other kinds ignored")  # fmt: skip
    return by_name, problems


def resolve(
    chunks: Sequence[EntityChunk], grid: Grid, expand_limit: int = EXPAND_LIMIT
) -> tuple[list[Column], list[str]]:
    """Every entity name of a session resolved on ``grid``; plus notes about entities that were ignored."""
    by_name, problems = group_chunks(chunks)
    return [resolve_name(group, grid, expand_limit) for group in by_name.values()], problems
