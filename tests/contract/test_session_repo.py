"""Contract tests for :class:`SessionRepo` (raw entity chunks, resolution state, resolved columns) on SQLite and
PostgreSQL: round trips, time-range reads, write counters, stale resolutions, owners kept apart, deletion."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from scenebase.domain.timeline import Grid, resolve
from scenebase.domain.timeline_data import EntityChunk
from scenebase.storage.catalog import Catalog
from scenebase.storage.scope import Scope
from scenebase.storage.session_repo import SessionRepo
from servers import PostgresServer

A = Scope.of("org_a", username="alice")
B = Scope.of("org_b", username="bob")


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionRepo]:
    cleanup: Callable[[], None] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"t_{uuid.uuid4().hex}"
        url = server.create_database(name)

        def cleanup() -> None:
            server.drop_database(name)

    cat = Catalog(url)
    cat.migrate()
    try:
        yield SessionRepo(cat)
    finally:
        cat.dispose()
        if cleanup is not None:
            cleanup()


def speed(times: list[float], values: list[float], influence: str = "linear_interpolation") -> EntityChunk:
    return EntityChunk("speed", "scalar", influence, np.array(times), [f"s{t}" for t in times],
                       num=np.array(values, dtype=np.float64))  # fmt: skip


def weather(t0: float, t1: float, labels: list[str], urgent: bool = False) -> EntityChunk:
    return EntityChunk("weather", "state_set", "interval", np.array([t0]), ["w"], starts=np.array([t0]),
                       ends=np.array([t1]), labels=labels, codes=np.arange(len(labels), dtype=np.int32),
                       offsets=np.array([0, len(labels)]), urgent=urgent)  # fmt: skip


def write(repo: SessionRepo, scope: Scope, uid: str, chunks: list[EntityChunk], auto: bool = True) -> int:
    with repo.catalog.write() as conn:
        return repo.add_chunks_in(conn, scope, uid, chunks, 1.0, auto).write_seq


def test_chunks_round_trip_in_write_order_and_by_time(repo: SessionRepo) -> None:
    assert write(repo, A, "s1", [speed([10.0, 20.0], [1.0, 2.0]), weather(15.0, 40.0, ["rain", "fog"])]) == 1
    assert write(repo, A, "s1", [speed([30.0, 50.0], [3.0, 5.0])]) == 2
    chunks = repo.chunks("org_a", "s1")
    assert [(c.name, len(c)) for c in chunks] == [("speed", 2), ("weather", 1), ("speed", 2)]
    assert chunks[1].value_of(0) == ["rain", "fog"]
    assert chunks[2].value_of(1) == 5.0 and chunks[2].entity_ids == ["s30.0", "s50.0"]
    # by name and by time (a chunk is returned when its influence overlaps the range)
    assert [len(c) for c in repo.chunks("org_a", "s1", names=["speed"])] == [2, 2]
    assert [c.name for c in repo.chunks("org_a", "s1", time_range=(35.0, 45.0))] == ["weather", "speed"]
    assert repo.chunks("org_a", "s1", time_range=(60.0, 70.0)) == []
    assert repo.entity_names("org_a", "s1") == {"speed": "scalar", "weather": "state_set"}
    assert repo.count_entities("org_a", "s1") == 5


def test_counters_and_stale_resolutions(repo: SessionRepo) -> None:
    write(repo, A, "s1", [speed([10.0, 20.0], [1.0, 2.0])], auto=False)
    state = repo.state("org_a", "s1")
    assert state is not None and (state.write_seq, state.auto_seq, state.resolved_seq) == (1, 0, 0)
    assert not state.up_to_date
    write(repo, A, "s1", [weather(12.0, 14.0, ["rain"])], auto=True)
    grid = Grid.spanning(10.0, 20.0, 1.0)
    cols, _ = resolve(repo.chunks("org_a", "s1"), grid)
    saved = repo.save_resolution(A, "s1", 2, grid, cols)
    assert saved is not None and saved.up_to_date and saved.generation == 1 and saved.grid == grid
    # a resolution that read fewer writes, finishing later, is refused and changes nothing
    assert repo.save_resolution(A, "s1", 1, grid, cols[:1]) is None
    stored = repo.session_columns("org_a", "s1")
    assert sorted(stored) == ["speed", "weather"]
    assert stored["speed"].values(0, 3) == [1.0, 1.1, 1.2]
    assert stored["weather"].values(1, 5) == [None, ["rain"], ["rain"], None]
    repo.set_job(A, "s1", "job1")
    state = repo.state("org_a", "s1")
    assert state is not None and state.job_id == "job1"


def test_column_refs_and_loading_across_sessions(repo: SessionRepo) -> None:
    grid = Grid.spanning(0.0, 9.0, 1.0)
    for i in range(3):
        uid = f"s{i}"
        write(repo, A, uid, [speed([0.0, 9.0], [0.0, 9.0 * (i + 1)])])
        cols, _ = resolve(repo.chunks("org_a", uid), grid)
        repo.save_resolution(A, uid, 1, grid, cols)
    keys = [("org_a", "s0"), ("org_a", "s2"), ("org_a", "nope")]
    refs = repo.column_refs(keys, ["speed", "weather"])
    assert sorted((r.session_uid, r.entity_name, r.generation) for r in refs) == [("s0", "speed", 1),
                                                                                  ("s2", "speed", 1)]  # fmt: skip
    loaded = repo.load_columns(refs)
    assert loaded[("org_a", "s2", "speed")][1].values(9, 10) == [27.0]
    assert set(repo.states(keys)) == {("org_a", "s0"), ("org_a", "s2")}


def test_owners_are_kept_apart_and_deletion_is_per_session(repo: SessionRepo) -> None:
    grid = Grid.spanning(0.0, 9.0, 1.0)
    for scope in (A, B):
        for uid in ("s1", "s2"):
            write(repo, scope, uid, [speed([0.0, 9.0], [1.0, 2.0])])
            cols, _ = resolve(repo.chunks(scope.org_id, uid), grid)
            repo.save_resolution(scope, uid, 1, grid, cols)
    with repo.catalog.write() as conn:
        assert repo.delete_session_in(conn, A, "s1") == 2
    assert repo.chunks("org_a", "s1") == [] and repo.state("org_a", "s1") is None
    assert repo.session_columns("org_a", "s1") == {}
    # the other session of A and both sessions of B are untouched
    assert repo.count_entities("org_a", "s2") == 2 and repo.count_entities("org_b", "s1") == 2
    assert sorted(repo.session_columns("org_b", "s1")) == ["speed"]
    # B's delete of the same uid never reaches A's rows
    with repo.catalog.write() as conn:
        repo.delete_session_in(conn, B, "s2")
    assert repo.count_entities("org_a", "s2") == 2


def test_concurrent_writers_count_every_write(repo: SessionRepo) -> None:
    write(repo, A, "s1", [])  # the state row exists before the race (creating it races by design: retried)

    def one(i: int) -> None:
        repo.catalog.write_retrying(
            lambda conn: repo.add_chunks_in(conn, A, "s1", [speed([float(i)], [float(i)], "point")], 1.0, True)
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(one, range(24)))
    state = repo.state("org_a", "s1")
    assert state is not None and state.write_seq == 25 and state.auto_seq == 25
    assert repo.count_entities("org_a", "s1") == 24
