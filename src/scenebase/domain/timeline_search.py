"""Scenario search over resolved timelines (FACTS 4.6): AND-ed conditions on entity names, answered as the maximal
runs of buckets of each session where all of them hold.

Query (a search dict; every key optional)::

    {"filters":        [{"field": "weather", "values": ["rain"], "filter_out": false}],   # state/state-set/media
     "ranges":         [{"field": "speed", "min": 20, "max": null}],                       # scalars
     "geo_filters":    [{"field": "geolocation", "min_lat": 37.7, "max_lat": 37.8,
                         "min_lon": -122.5, "max_lon": -122.4}],      # or "top_left"/"bottom_right": {lat, lon}
     "exists_filters": [{"field": "pedestrian"}],                                          # any value
     "time_range":     {"start_time": "<iso>", "end_time": "<iso>"},
     "min_duration":   5.0}                                                                # seconds

A filter on ``session_uid``, ``id``, ``session_name``, ``session_type``, ``status``, ``sets``, ``tags`` or a
``session_aux.*`` field restricts which sessions are searched (a metadata search on sessions) instead of naming
an entity. A bucket without a value of a name never matches a positive condition on it (and always matches a
``filter_out`` one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scenebase.domain.search import did_you_mean
from scenebase.domain.timeline import Grid
from scenebase.domain.timeline_data import Column, bucket_of

KEYS = {"filters", "ranges", "geo_filters", "exists_filters", "time_range", "min_duration"}
#: fields that describe the session document rather than name a timeline entity
SESSION_FIELDS = {"session_uid", "id", "session_name", "session_type", "status", "sets", "tags"}
BoolArray = npt.NDArray[np.bool_]


class ScenarioQueryError(ValueError):
    """A malformed scenario search; the message names the offending part."""


@dataclass(frozen=True)
class Condition:
    name: str
    op: str  # values | range | geo | exists
    strings: tuple[str, ...] = ()
    numbers: tuple[float, ...] = ()
    low: float | None = None
    high: float | None = None
    box: tuple[float, float, float, float] | None = None  # min_lat, max_lat, min_lon, max_lon
    negate: bool = False


@dataclass
class ScenarioQuery:
    conditions: list[Condition] = field(default_factory=list)
    #: filters on session documents (a metadata search on ``sessions``), or None
    session_search: dict[str, Any] | None = None
    time_range: tuple[float, float] | None = None
    min_duration: float = 0.0

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(c.name for c in self.conditions))


def _is_session_field(name: str) -> bool:
    return name in SESSION_FIELDS or name.startswith("session_aux.")


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ScenarioQueryError(f"{where}: expected a finite number, got {raw!r}")
    return float(raw)


def _list_of_dicts(search: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = search.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScenarioQueryError(f"{key!r} must be a list of objects")
    return value


def _field(item: dict[str, Any], where: str, allowed: set[str]) -> tuple[str, bool]:
    unknown = set(item) - allowed
    if unknown:
        raise ScenarioQueryError(f"{where}: unknown key(s) {sorted(unknown)}{did_you_mean(unknown, allowed)}")
    name = item.get("field")
    if not isinstance(name, str) or not name.strip():
        raise ScenarioQueryError(f"{where}: 'field' must name an entity, got {name!r}")
    negate = item.get("filter_out", False)
    if not isinstance(negate, bool):
        raise ScenarioQueryError(f"{where}: 'filter_out' must be true or false")
    return name.strip(), negate


def parse_scenario(search: Any, to_epoch: Any) -> ScenarioQuery:
    """Parse a scenario search dict; ``to_epoch`` converts a time (raising ValueError for a bad or naive one)."""
    if search is None:
        search = {}
    if not isinstance(search, dict):
        raise ScenarioQueryError("a session search must be an object")
    unknown = set(search) - KEYS
    if unknown:
        raise ScenarioQueryError(f"unknown key(s) {sorted(unknown)}{did_you_mean(unknown, KEYS)}; keys: {sorted(KEYS)}")
    q = ScenarioQuery()
    session_filters: list[dict[str, Any]] = []
    for i, item in enumerate(_list_of_dicts(search, "filters")):
        where = f"filters[{i}]"
        name, negate = _field(item, where, {"field", "values", "filter_out"})
        values = item.get("values")
        if not isinstance(values, list) or not values:
            raise ScenarioQueryError(f"{where}: 'values' must be a non-empty list")
        if _is_session_field(name):
            session_filters.append({**item, "field": "id" if name == "session_uid" else name})
            continue
        strings = tuple(str(v) for v in values if not isinstance(v, bool) and isinstance(v, str | int | float))
        if len(strings) != len(values):
            raise ScenarioQueryError(f"{where}: values must be strings or numbers")
        numbers = tuple(float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool))
        q.conditions.append(Condition(name, "values", strings=strings, numbers=numbers, negate=negate))
    session_ranges = []
    for i, item in enumerate(_list_of_dicts(search, "ranges")):
        where = f"ranges[{i}]"
        name, negate = _field(item, where, {"field", "min", "max", "filter_out"})
        if _is_session_field(name):
            session_ranges.append(item)
            continue
        low = None if item.get("min") is None else _number(item["min"], f"{where}.min")
        high = None if item.get("max") is None else _number(item["max"], f"{where}.max")
        if low is None and high is None:
            raise ScenarioQueryError(f"{where}: give 'min', 'max' or both")
        if low is not None and high is not None and low > high:
            raise ScenarioQueryError(f"{where}: min {low} is above max {high}")
        q.conditions.append(Condition(name, "range", low=low, high=high, negate=negate))
    for i, item in enumerate(_list_of_dicts(search, "geo_filters")):
        where = f"geo_filters[{i}]"
        name, negate = _field(item, where, {"field", "filter_out", "min_lat", "max_lat", "min_lon", "max_lon",
                                            "top_left", "bottom_right"})  # fmt: skip
        if "top_left" in item or "bottom_right" in item:
            tl, br = item.get("top_left"), item.get("bottom_right")
            if not isinstance(tl, dict) or not isinstance(br, dict):
                raise ScenarioQueryError(f"{where}: 'top_left' and 'bottom_right' must both be {{lat, lon}}")
            box = (br.get("lat"), tl.get("lat"), tl.get("lon"), br.get("lon"))
        else:
            box = (item.get("min_lat"), item.get("max_lat"), item.get("min_lon"), item.get("max_lon"))
        nums = tuple(_number(v, f"{where}: bounding box") for v in box)
        if not (-90 <= nums[0] <= nums[1] <= 90) or not all(-180 <= x <= 180 for x in nums[2:]):
            raise ScenarioQueryError(f"{where}: latitudes must satisfy -90 <= min <= max <= 90, longitudes lie in "
                                     f"[-180, 180] (min_lon > max_lon crosses the antimeridian)")  # fmt: skip
        q.conditions.append(Condition(name, "geo", box=(nums[0], nums[1], nums[2], nums[3]), negate=negate))
    for i, item in enumerate(_list_of_dicts(search, "exists_filters")):
        name, negate = _field(item, f"exists_filters[{i}]", {"field", "filter_out"})
        q.conditions.append(Condition(name, "exists", negate=negate))
    if session_filters or session_ranges:
        q.session_search = {k: v for k, v in (("filters", session_filters), ("ranges", session_ranges)) if v}
    tr = search.get("time_range")
    if tr is not None:
        if not isinstance(tr, dict) or set(tr) - {"start_time", "end_time"}:
            raise ScenarioQueryError('\'time_range\' must be {"start_time": <iso>, "end_time": <iso>}')
        try:
            start = to_epoch(tr["start_time"]) if tr.get("start_time") is not None else -math.inf
            end = to_epoch(tr["end_time"]) if tr.get("end_time") is not None else math.inf
        except ValueError as e:
            raise ScenarioQueryError(f"time_range: {e}") from None
        if start > end:
            raise ScenarioQueryError("time_range: start_time is after end_time")
        q.time_range = (start, end)
    if search.get("min_duration") is not None:
        q.min_duration = _number(search["min_duration"], "min_duration")
        if q.min_duration < 0:
            raise ScenarioQueryError("min_duration must be >= 0")
    return q


def condition_mask(cond: Condition, column: Column | None, grid: Grid) -> BoolArray:
    """Where ``cond`` holds on ``grid`` (missing values never match a positive condition)."""
    out = np.zeros(grid.length, dtype=bool)
    if column is not None:
        hit = _column_hit(cond, column)
        lo = column.start_index - grid.start_index
        a, b = max(0, lo), min(grid.length, lo + column.length)
        if a < b:
            out[a:b] = hit[a - lo : b - lo]
    return ~out if cond.negate else out


def _column_hit(cond: Condition, col: Column) -> BoolArray:
    if cond.op == "exists":
        return col.present()
    if cond.op == "range":
        if col.kind != "scalar":
            return np.zeros(col.length, dtype=bool)
        assert col.num is not None
        hit = ~np.isnan(col.num)
        if cond.low is not None:
            hit &= col.num >= cond.low
        if cond.high is not None:
            hit &= col.num <= cond.high
        return hit
    if cond.op == "geo":
        if col.kind != "geo" or cond.box is None:
            return np.zeros(col.length, dtype=bool)
        assert col.lat is not None and col.lon is not None
        min_lat, max_lat, min_lon, max_lon = cond.box
        with np.errstate(invalid="ignore"):
            in_lat = (col.lat >= min_lat) & (col.lat <= max_lat)
            in_lon = ((col.lon >= min_lon) & (col.lon <= max_lon) if min_lon <= max_lon
                      else (col.lon >= min_lon) | (col.lon <= max_lon))  # fmt: skip
        return np.asarray(in_lat & in_lon)
    # values
    if col.kind == "scalar":
        assert col.num is not None
        return np.isin(col.num, list(cond.numbers)) if cond.numbers else np.zeros(col.length, dtype=bool)
    # a lookup table by code (its last slot answers code -1, "no value"): one gather instead of a set test
    lut = np.zeros(len(col.labels) + 1, dtype=bool)
    wanted = set(cond.strings)
    lut[[i for i, label in enumerate(col.labels) if label in wanted]] = True
    if col.kind == "state":
        assert col.codes is not None
        return np.asarray(lut[col.codes])
    if col.kind == "set":
        assert col.codes is not None and col.offsets is not None
        hits = np.concatenate([[0], np.cumsum(lut[col.codes])])
        return np.asarray((hits[col.offsets[1:]] - hits[col.offsets[:-1]]) > 0)
    return np.zeros(col.length, dtype=bool)


def runs(mask: BoolArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First and last positions of each maximal run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def window_mask(grid: Grid, time_range: tuple[float, float] | None) -> BoolArray | None:
    """Buckets overlapping ``[start, end)`` of ``time_range`` (None: no restriction)."""
    if time_range is None:
        return None
    start, end = time_range
    first = -(2**62) if math.isinf(start) else int(bucket_of(start, grid.resolution))
    last = 2**62 if math.isinf(end) else max(first, math.ceil(end / grid.resolution) - 1)
    idx = grid.start_index + np.arange(grid.length)
    return (idx >= first) & (idx <= last)


def session_intervals(columns: dict[str, Column], grid: Grid, query: ScenarioQuery) -> list[tuple[int, int]]:
    """Maximal runs ``(first_bucket, last_bucket)`` (absolute time indices) where every condition holds, within
    the time range, at least ``min_duration`` seconds long. No condition: the whole (windowed) session."""
    mask = np.ones(grid.length, dtype=bool)
    for cond in query.conditions:
        mask &= condition_mask(cond, columns.get(cond.name), grid)
        if not mask.any():
            return []
    window = window_mask(grid, query.time_range)
    if window is not None:
        mask &= window
    first, last = runs(mask)
    if query.min_duration > 0:
        keep = (last - first + 1) * grid.resolution >= query.min_duration - 1e-9
        first, last = first[keep], last[keep]
    return [(int(a) + grid.start_index, int(b) + grid.start_index) for a, b in zip(first, last, strict=True)]
