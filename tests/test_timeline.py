"""The timeline library (resolution, FACTS 4.3, and scenario search, 4.6) against a slow pure-Python oracle.

The oracle below re-derives every influence rule bucket by bucket, from the rules as the module docstring of
``scenebase.domain.timeline`` states them, without numpy; hypothesis generates sessions of mixed influences and
kinds, and both painting strategies (expanded pairs and the per-entity / per-label loop) must agree with it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scenebase.domain.timeline import Grid, resolve, resolve_name
from scenebase.domain.timeline_data import Column, EntityChunk
from scenebase.domain.timeline_search import (
    ScenarioQueryError,
    parse_scenario,
    session_intervals,
)
from scenebase.domain.timeutil import to_epoch

KIND_TYPES = {"scalar": "scalar", "state": "state", "set": "state_set", "geo": "geo"}
DISCRETE = ["point", "interval", "affect_forward", "affect_backward", "start_stop"]
LABELS = ["a", "b", "c", "d"]


@dataclass
class E:
    """One raw entity as the oracle sees it."""

    seq: int
    influence: str
    ts: float
    start: float | None
    end: float | None
    radius: float | None
    value: Any  # float | str | frozenset[str] | (lat, lon)


# ------------------------------------------------------------------------------------------------- the oracle


def o_bucket(t: float, res: float) -> int:
    return math.floor(t / res)


def o_last(s: float, e: float, res: float) -> int:
    return max(o_bucket(s, res), math.ceil(e / res) - 1)


def o_ranges(ents: list[E], res: float, g0: int, g1: int) -> dict[int, tuple[int, int]]:
    """seq -> covered bucket range (unclipped) for the discrete influences."""
    out: dict[int, tuple[int, int]] = {}
    for e in ents:
        if e.influence == "point":
            out[e.seq] = (o_bucket(e.ts, res), o_bucket(e.ts, res))
        elif e.influence == "interval":
            if e.start is not None and e.end is not None:
                out[e.seq] = (o_bucket(e.start, res), o_last(e.start, e.end, res))
            else:
                r = e.radius if e.radius is not None else res
                out[e.seq] = (o_bucket(e.ts - r, res), o_last(e.ts - r, e.ts + r, res))
    fwd = sorted((e for e in ents if e.influence == "affect_forward"),
                 key=lambda e: (e.start if e.start is not None else e.ts, e.seq))  # fmt: skip
    for i, e in enumerate(fwd):
        anchor = e.start if e.start is not None else e.ts
        a = o_bucket(anchor, res)
        if e.end is not None:
            b = o_last(anchor, e.end, res)
        elif i + 1 < len(fwd):
            nxt = fwd[i + 1]
            b = o_bucket(nxt.start if nxt.start is not None else nxt.ts, res) - 1
        else:
            b = g1
        out[e.seq] = (a, max(a, b))
    back = sorted((e for e in ents if e.influence == "affect_backward"), key=lambda e: (e.ts, e.seq))
    for i, e in enumerate(back):
        b = o_bucket(e.ts, res)
        a = g0 if i == 0 else o_bucket(back[i - 1].ts, res) + 1
        out[e.seq] = (min(a, b), b)
    ss = sorted((e for e in ents if e.influence == "start_stop"), key=lambda e: (e.ts, e.seq))
    for i in range(0, len(ss), 2):
        s = ss[i]
        if i + 1 < len(ss):
            out[s.seq] = (o_bucket(s.ts, res), o_last(s.ts, ss[i + 1].ts, res))
        else:
            out[s.seq] = (o_bucket(s.ts, res), g1)
    return out


def o_interp(points: list[tuple[float, int, float]], t: float) -> float:
    """Linear interpolation at t (clamped) through points sorted by time; equal times: the last written."""
    by_time: dict[float, float] = {}
    for ts, _seq, v in sorted(points, key=lambda p: (p[0], p[1])):
        by_time[ts] = v
    xs = sorted(by_time)
    t = min(max(t, xs[0]), xs[-1])
    for x0, x1 in itertools.pairwise(xs):
        if x0 <= t <= x1:
            return by_time[x0] + (by_time[x1] - by_time[x0]) * (t - x0) / (x1 - x0)
    return by_time[xs[0]]


def oracle(kind: str, ents: list[E], grid: Grid) -> list[Any]:
    res, g0, g1 = grid.resolution, grid.start_index, grid.end_index
    ranges = o_ranges(ents, res, g0, g1)
    interp = [e for e in ents if e.influence in ("linear_interpolation", "linear_interpolation_integer",
                                                 "geo_interpolation")]  # fmt: skip
    out: list[Any] = []
    for i in range(g0, g1 + 1):
        covering = [e for e in ents if e.seq in ranges and ranges[e.seq][0] <= i <= ranges[e.seq][1]]
        if kind == "set":
            union = sorted(set().union(*(e.value for e in covering)))
            out.append(union or None)
            continue
        if covering:
            latest = max(covering, key=lambda e: (e.ts, e.seq))
            out.append(list(latest.value) if kind == "geo" else latest.value)
            continue
        if interp:
            first = min(o_bucket(e.ts, res) for e in interp)
            last = max(o_bucket(e.ts, res) for e in interp)
            if first <= i <= last:
                t = i * res
                if kind == "scalar":
                    v = o_interp([(e.ts, e.seq, e.value) for e in interp], t)
                    integer = all(e.influence == "linear_interpolation_integer" for e in interp)
                    out.append(float(round(v)) if integer else v)
                else:
                    lat = o_interp([(e.ts, e.seq, e.value[0]) for e in interp], t)
                    lon = _o_lon([(e.ts, e.seq, e.value[1]) for e in interp], t)
                    out.append([lat, lon])
                continue
        out.append(None)
    return out


def _o_lon(points: list[tuple[float, int, float]], t: float) -> float:
    by_time: dict[float, float] = {}
    for ts, _seq, v in sorted(points, key=lambda p: (p[0], p[1])):
        by_time[ts] = v
    xs = sorted(by_time)
    unwrapped = [by_time[xs[0]]]
    for a, b in itertools.pairwise(xs):
        d = by_time[b] - by_time[a]
        while d > 180:
            d -= 360
        while d < -180:
            d += 360
        unwrapped.append(unwrapped[-1] + d)
    v = o_interp([(x, 0, u) for x, u in zip(xs, unwrapped, strict=True)], t)
    return (v + 180.0) % 360.0 - 180.0


# ------------------------------------------------------------------------------------------------- chunks


def to_chunks(name: str, kind: str, ents: list[E], split: int) -> list[EntityChunk]:
    """The entities as chunks of one influence each, in write order, cut after ``split`` entities."""
    chunks = []
    groups: list[list[E]] = []
    for i, e in enumerate(ents):
        if not groups or groups[-1][0].influence != e.influence or i == split:
            groups.append([])
        groups[-1].append(e)
    for g in groups:
        c = EntityChunk(
            name=name, entity_type=KIND_TYPES[kind], influence=g[0].influence,
            timestamps=np.array([e.ts for e in g]), entity_ids=[f"e{e.seq}" for e in g],
            starts=np.array([np.nan if e.start is None else e.start for e in g]),
            ends=np.array([np.nan if e.end is None else e.end for e in g]),
            radius=np.array([np.nan if e.radius is None else e.radius for e in g]),
        )  # fmt: skip
        if kind == "scalar":
            c.num = np.array([e.value for e in g], dtype=np.float64)
        elif kind == "geo":
            c.lat = np.array([e.value[0] for e in g], dtype=np.float64)
            c.lon = np.array([e.value[1] for e in g], dtype=np.float64)
        elif kind == "state":
            c.labels = sorted({e.value for e in g}, reverse=True)  # chunk-local label order differs on purpose
            c.codes = np.array([c.labels.index(e.value) for e in g], dtype=np.int32)
        else:
            c.labels = sorted(set().union(*(e.value for e in g)), reverse=True)
            flat = [c.labels.index(v) for e in g for v in sorted(e.value)]
            c.codes = np.array(flat, dtype=np.int32)
            c.offsets = np.concatenate([[0], np.cumsum([len(e.value) for e in g])]).astype(np.int64)
        chunks.append(c)
    return chunks


@st.composite
def sessions(draw: st.DrawFn) -> tuple[str, list[E], Grid, int]:
    kind = draw(st.sampled_from(list(KIND_TYPES)))
    res = draw(st.sampled_from([0.5, 1.0, 2.0]))
    start = 1000.0 + draw(st.integers(0, 7)) * 0.25
    length = draw(st.integers(1, 30))
    grid = Grid.spanning(start, start + (length - 1) * res, res)
    influences = list(DISCRETE)
    if kind == "scalar":
        influences += ["linear_interpolation", "linear_interpolation_integer"]
    if kind == "geo":
        influences += ["geo_interpolation"]
    times = st.floats(start - 3 * res, start + (length + 3) * res, allow_nan=False).map(lambda t: round(t * 8) / 8)
    ents = []
    n = draw(st.integers(1, 12))
    for seq in range(n):
        influence = draw(st.sampled_from(influences))
        ts = draw(times)
        start_t = end_t = radius = None
        if influence in ("interval", "affect_forward") and draw(st.booleans()):
            start_t = ts
            end_t = ts + draw(st.integers(0, 12)) * 0.25
        if influence == "interval" and start_t is None and draw(st.booleans()):
            radius = draw(st.sampled_from([0.25, 0.5, 2.0, 3.5]))
        if kind == "scalar":
            value: Any = float(draw(st.integers(-50, 50)))
        elif kind == "state":
            value = draw(st.sampled_from(LABELS))
        elif kind == "set":
            value = frozenset(draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=3)))
        else:
            value = (draw(st.integers(-80, 80)) * 0.5, draw(st.integers(-179, 179)) * 1.0)
        ents.append(E(seq, influence, ts, start_t, end_t, radius, value))
    if kind == "geo":
        lons = [e.value[1] for e in sorted(ents, key=lambda e: e.ts) if e.influence == "geo_interpolation"]
        assume(all(abs(abs(b - a) - 180) > 1e-6 for a, b in itertools.pairwise(lons)))
    return kind, ents, grid, draw(st.integers(0, n))


def _same(a: list[Any], b: list[Any]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            if x is not y:
                return False
        elif isinstance(x, list) and x and isinstance(x[0], float):
            if not np.allclose(x, y, atol=1e-9):
                return False
        elif isinstance(x, float):
            if not math.isclose(x, y, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(sessions(), st.sampled_from([0, 10**9]))
def test_resolution_matches_oracle(case: tuple[str, list[E], Grid, int], expand_limit: int) -> None:
    kind, ents, grid, split = case
    col = resolve_name(to_chunks("x", kind, ents, split), grid, expand_limit=expand_limit)
    got = col.values(0, col.length)
    want = oracle(kind, ents, grid)
    assert _same(got, want), (got, want)
    back = Column.from_bytes(col.to_bytes())
    assert _same(back.values(0, back.length), got)


def test_named_examples() -> None:
    grid = Grid.spanning(100.0, 110.0, 1.0)
    speed = EntityChunk("speed", "scalar", "linear_interpolation", np.array([102.5, 106.5]), ["a", "b"],
                        num=np.array([0.0, 8.0]))  # fmt: skip
    col = resolve_name([speed], grid)
    # bucket 102 overlaps the first point (clamped to it); 103..106 interpolate at their start times
    assert col.values(0, 11) == [None, None, 0.0, 1.0, 3.0, 5.0, 7.0, None, None, None, None]
    # affect_forward holds to the bucket before the next one, the last holds to the end of the session
    weather = EntityChunk("weather", "state", "affect_forward", np.array([101.0, 104.0]), ["w1", "w2"],
                          labels=["rain", "sun"], codes=np.array([0, 1], np.int32))  # fmt: skip
    assert resolve_name([weather], grid).values(0, 11) == [None, "rain", "rain", "rain"] + ["sun"] * 7
    # geo interpolation crosses the antimeridian the short way
    geo = EntityChunk("geolocation", "geo", "geo_interpolation", np.array([100.0, 104.0]), ["g1", "g2"],
                      lat=np.array([0.0, 0.0]), lon=np.array([178.0, -178.0]))  # fmt: skip
    lons = [v[1] for v in resolve_name([geo], grid).values(0, 5)]
    assert np.allclose(lons, [178.0, 179.0, -180.0, -179.0, -178.0])


def test_mixed_kinds_keep_latest_and_say_so() -> None:
    grid = Grid.spanning(0.0, 4.0, 1.0)
    a = EntityChunk("x", "scalar", "point", np.array([1.0]), ["a"], num=np.array([3.0]))
    b = EntityChunk("x", "state", "point", np.array([2.0]), ["b"], labels=["on"], codes=np.array([0], np.int32))
    cols, notes = resolve([a, b], grid)
    assert [c.kind for c in cols] == ["state"]
    assert "'x'" in notes[0] and "1 entities" in notes[0]


# ------------------------------------------------------------------------------------------------- search


def o_search(values: dict[str, list[Any]], kinds: dict[str, str], grid: Grid, conds: list[dict[str, Any]],
             window: tuple[float, float] | None, min_duration: float) -> list[tuple[int, int]]:  # fmt: skip
    ok = []
    for j in range(grid.length):
        idx = grid.start_index + j
        good = True
        for c in conds:
            v = values.get(c["field"], [None] * grid.length)[j]
            if c["op"] == "values":
                hit = v is not None and (
                    (kinds[c["field"]] == "set" and bool(set(v) & set(c["values"])))
                    or (kinds[c["field"]] == "state" and v in c["values"])
                    or (kinds[c["field"]] == "scalar" and v in c["values"])
                )
            elif c["op"] == "range":
                hit = kinds[c["field"]] == "scalar" and v is not None and c["min"] <= v <= c["max"]
            elif c["op"] == "geo":
                hit = (
                    kinds[c["field"]] == "geo"
                    and v is not None
                    and c["box"][0] <= v[0] <= c["box"][1]
                    and c["box"][2] <= v[1] <= c["box"][3]
                )
            else:
                hit = v is not None
            good = good and (not hit if c["negate"] else hit)
        if window is not None:
            good = good and math.floor(window[0] / grid.resolution) <= idx <= max(
                math.floor(window[0] / grid.resolution), math.ceil(window[1] / grid.resolution) - 1
            )
        ok.append(good)
    out, j = [], 0
    while j < len(ok):
        if ok[j]:
            k = j
            while k + 1 < len(ok) and ok[k + 1]:
                k += 1
            if (k - j + 1) * grid.resolution >= min_duration:
                out.append((grid.start_index + j, grid.start_index + k))
            j = k + 1
        else:
            j += 1
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(sessions(), min_size=1, max_size=3), st.data())
def test_search_matches_oracle(cases: list[tuple[str, list[E], Grid, int]], data: st.DataObject) -> None:
    grid = cases[0][2]
    columns: dict[str, Column] = {}
    values: dict[str, list[Any]] = {}
    kinds: dict[str, str] = {}
    for i, (kind, ents, _g, split) in enumerate(cases):
        name = f"n{i}"
        columns[name] = resolve_name(to_chunks(name, kind, ents, split), grid)
        values[name] = oracle(kind, ents, grid)
        kinds[name] = "set" if kind == "set" else kind
    conds, search = [], {"filters": [], "ranges": [], "geo_filters": [], "exists_filters": []}
    for name in data.draw(st.lists(st.sampled_from([*columns, "absent"]), min_size=1, max_size=3)):
        negate = data.draw(st.booleans())
        kind = kinds.get(name, "state")
        op = data.draw(st.sampled_from(["exists", {"scalar": "range", "geo": "geo"}.get(kind, "values")]))
        c: dict[str, Any] = {"field": name, "op": op, "negate": negate}
        if op == "values":
            c["values"] = data.draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=2))
            search["filters"].append({"field": name, "values": c["values"], "filter_out": negate})
        elif op == "range":
            lo = float(data.draw(st.integers(-50, 50)))
            c["min"], c["max"] = lo, lo + data.draw(st.integers(0, 60))
            search["ranges"].append({"field": name, "min": c["min"], "max": c["max"], "filter_out": negate})
        elif op == "geo":
            lat0, lon0 = data.draw(st.integers(-40, 30)), data.draw(st.integers(-170, 100))
            c["box"] = (lat0, lat0 + 20, lon0, lon0 + 60)
            search["geo_filters"].append({"field": name, "min_lat": lat0, "max_lat": lat0 + 20, "min_lon": lon0,
                                          "max_lon": lon0 + 60, "filter_out": negate})  # fmt: skip
        else:
            search["exists_filters"].append({"field": name, "filter_out": negate})
        conds.append(c)
    window = None
    if data.draw(st.booleans()):
        a = grid.start_index * grid.resolution + data.draw(st.integers(-4, 20)) * 0.75
        window = (a, a + data.draw(st.integers(0, 20)) * 0.5)
        search["time_range"] = {"start_time": window[0], "end_time": window[1]}
    min_duration = data.draw(st.sampled_from([0.0, 1.0, 2.5]))
    search["min_duration"] = min_duration
    query = parse_scenario(search, to_epoch)
    got = session_intervals(columns, grid, query)
    assert got == o_search(values, kinds, grid, conds, window, min_duration)


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"filter": []}, "did you mean 'filters'"),
        ({"filters": [{"field": "w"}]}, "filters[0]: 'values' must be a non-empty list"),
        ({"ranges": [{"field": "speed"}]}, "ranges[0]: give 'min', 'max' or both"),
        ({"ranges": [{"field": "speed", "min": 5, "max": 1}]}, "min 5.0 is above max 1.0"),
        ({"geo_filters": [{"field": "g", "min_lat": 95, "max_lat": 96, "min_lon": 0, "max_lon": 1}]}, "latitudes"),
        ({"time_range": {"start_time": "2020-01-01T00:00:00"}}, "time_range"),
        ({"min_duration": -1}, "min_duration must be >= 0"),
    ],
)
def test_bad_queries_name_the_part(search: dict[str, Any], message: str) -> None:
    def strict(value: Any) -> float:
        if isinstance(value, str) and "+" not in value and not value.endswith("Z"):
            raise ValueError(f"{value!r} has no time zone")
        return to_epoch(value)

    with pytest.raises(ScenarioQueryError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(search, strict)


def test_session_fields_become_a_session_search() -> None:
    q = parse_scenario({"filters": [{"field": "session_uid", "values": ["s1"]},
                                    {"field": "weather", "values": ["rain"]}]}, to_epoch)  # fmt: skip
    assert q.session_search == {"filters": [{"field": "id", "values": ["s1"]}]}
    assert q.names == ["weather"]
