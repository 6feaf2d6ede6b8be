"""The many-session interval search (domain/timeline_index.py) answers exactly what the bucket-by-bucket
``session_intervals`` answers for each session, on random columns of every kind, offsets and conditions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenebase.domain.timeline import Grid
from scenebase.domain.timeline_data import Column
from scenebase.domain.timeline_index import build_index, mask_runs, search_sessions
from scenebase.domain.timeline_search import Condition, ScenarioQuery, session_intervals
from scenebase.domain.timeutil import to_iso, to_iso_many

LABELS = ["a", "b", "c", "d"]
KINDS = {"s": "scalar", "st": "state", "set": "set", "g": "geo", "v": "vector"}


def blocky(rng: np.random.Generator, n: int, choices: np.ndarray) -> np.ndarray:
    """Values that hold for a few buckets at a time (so runs are long, short, touching and absent)."""
    if n == 0:
        return choices[:0]
    lengths = rng.integers(1, 6, size=n)
    return np.repeat(rng.choice(choices, size=n), lengths)[:n]


def random_column(rng: np.random.Generator, name: str, grid: Grid) -> Column | None:
    kind = KINDS[name]
    if rng.random() < 0.1:
        return None
    start = grid.start_index + int(rng.integers(-3, 4))
    length = max(0, grid.length + int(rng.integers(-4, 4)))
    if kind == "scalar":
        num = blocky(rng, length, np.array([math.nan, 0.0, 1.0, 2.0, 3.0, 5.0]))
        if rng.random() < 0.2:
            num = np.full(length, 2.0)
        return Column(name, kind, start, length, num=num.astype(np.float64))
    if kind == "state":
        k = int(rng.integers(1, 4))
        codes = blocky(rng, length, np.arange(-1, k)).astype(np.int32)
        return Column(name, kind, start, length, labels=LABELS[:k], codes=codes)
    if kind == "set":
        k = int(rng.integers(1, 5))
        sizes = blocky(rng, length, np.array([0, 0, 1, 2, 3]))
        codes = rng.integers(0, k, size=int(sizes.sum())).astype(np.int32)  # duplicates within a bucket too
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return Column(name, kind, start, length, labels=LABELS[:k], codes=codes, offsets=offsets)
    if kind == "geo":
        lat = blocky(rng, length, np.array([math.nan, 10.0, 20.0, 30.0]))
        lon = blocky(rng, length, np.array([-170.0, 0.0, 170.0]))
        lon = np.where(np.isnan(lat), np.nan, lon)
        return Column(name, kind, start, length, lat=lat.astype(np.float64), lon=lon.astype(np.float64))
    matrix = np.where(rng.random((length, 2)) < 0.4, np.nan, 1.0)
    return Column(name, kind, start, length, matrix=matrix)


def random_condition(rng: np.random.Generator) -> Condition:
    name = str(rng.choice(list(KINDS)))
    negate = bool(rng.random() < 0.25)
    op = str(rng.choice(["values", "range", "geo", "exists"]))
    if op == "values":
        picked = [str(v) for v in rng.choice([*LABELS, "2.0", "zzz"], size=int(rng.integers(1, 3)))]
        numbers = tuple(float(v) for v in picked if v.replace(".", "").isdigit())
        return Condition(name, op, strings=tuple(picked), numbers=numbers, negate=negate)
    if op == "range":
        low = None if rng.random() < 0.3 else float(rng.integers(-1, 6))
        high = None if rng.random() < 0.3 and low is not None else float(rng.integers(max(-1, int(low or -1)), 7))
        return Condition(name, op, low=low, high=high, negate=negate)
    if op == "geo":
        lo_lat = float(rng.choice([0.0, 15.0, 20.0]))
        lons = (float(rng.choice([-180.0, -10.0, 160.0])), float(rng.choice([-160.0, 10.0, 180.0])))
        return Condition(name, op, box=(lo_lat, lo_lat + 10, *lons), negate=negate)
    return Condition(name, op, negate=negate)


def random_case(seed: int) -> tuple[list[tuple[Grid, dict[str, Column]]], ScenarioQuery]:
    rng = np.random.default_rng(seed)
    sessions: list[tuple[Grid, dict[str, Column]]] = []
    for _ in range(int(rng.integers(1, 8))):
        grid = Grid(float(rng.choice([0.5, 1.0, 2.0])), int(rng.integers(-20, 40)), int(rng.integers(1, 60)))
        cols = {name: random_column(rng, name, grid) for name in KINDS}
        sessions.append((grid, {k: v for k, v in cols.items() if v is not None}))
    query = ScenarioQuery(conditions=[random_condition(rng) for _ in range(int(rng.integers(0, 4)))])
    if rng.random() < 0.4:
        a = float(rng.integers(-30, 60))
        query.time_range = (a if rng.random() < 0.8 else -math.inf, a + float(rng.integers(0, 40)))
    if rng.random() < 0.4:
        query.min_duration = float(rng.integers(0, 6))
    return sessions, query


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_same_intervals_as_session_by_session(seed: int) -> None:
    sessions, query = random_case(seed)
    want = [session_intervals(cols, grid, query) for grid, cols in sessions]
    assert search_sessions(sessions, query) == want


def test_larger_sessions_and_several_labels() -> None:
    rng = np.random.default_rng(7)
    grid = Grid(1.0, 1000, 5000)
    sessions = []
    for _ in range(40):
        cols = {n: random_column(rng, n, grid) for n in KINDS}
        sessions.append((grid, {k: v for k, v in cols.items() if v is not None}))
    query = ScenarioQuery(
        conditions=[
            Condition("set", "values", strings=("a", "c")),
            Condition("st", "values", strings=("b",), negate=True),
            Condition("s", "range", low=1.0, high=3.0),
        ],
        min_duration=2.0,
    )
    want = [session_intervals(cols, g, query) for g, cols in sessions]
    assert sum(map(len, want)) > 50  # the case is not vacuous
    assert search_sessions(sessions, query) == want


def test_index_postings_are_the_runs_of_each_label() -> None:
    labels = ["x", "y"]
    state = Column("w", "state", 0, 7, labels=labels, codes=np.array([0, 0, -1, 1, 1, 0, 0], np.int32))
    idx = build_index(state)
    as_lists: dict[str, Any] = {k: (s.tolist(), e.tolist()) for k, (s, e) in idx.postings.items()}
    assert as_lists == {"x": ([0, 5], [2, 7]), "y": ([3], [5])}
    assert [r.tolist() for r in idx.present] == [[0, 3], [2, 7]]
    # buckets: {x}, {x, y}, {}, {y, y}, {x}
    sets = Column("o", "set", 0, 5, labels=labels, codes=np.array([0, 0, 1, 1, 1, 0], np.int32),
                  offsets=np.array([0, 1, 3, 3, 5, 6], np.int64))  # fmt: skip
    idx = build_index(sets)
    as_lists = {k: (s.tolist(), e.tolist()) for k, (s, e) in idx.postings.items()}
    assert as_lists == {"x": ([0, 4], [2, 5]), "y": ([1, 3], [2, 4])}
    scalar = Column("v", "scalar", 0, 4, num=np.array([np.nan, 3.0, -1.0, np.nan]))
    idx = build_index(scalar)
    assert (idx.low, idx.high) == (-1.0, 3.0)
    assert [r.tolist() for r in mask_runs(np.array([True, True, False, True]))] == [[0, 3], [2, 4]]


def test_iso_many_writes_what_to_iso_writes() -> None:
    rng = np.random.default_rng(11)
    epochs = np.concatenate([
        rng.uniform(-6e10, 2.5e11, 5000),  # years 1 to 9999
        (rng.integers(0, 10**7, 2000) * 0.1 + 1.6e9),  # buckets of a 0.1 s grid
        np.arange(-40, 40) * 5e-7,  # half microseconds: rounded half to even, also before 1970
        [0.0, 1e9 + 0.9999995, -62135596800.0],
    ])  # fmt: skip
    assert to_iso_many(epochs) == [to_iso(float(x)) for x in epochs]
    assert to_iso_many([]) == []
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        to_iso_many([0.0, 1e12])
