"""Session timelines against the issue's targets, on an in-process server (embedded SQLite catalog):

* add_entities: entities/s through the client (5,000 per request)            target >= 20,000/s
* add_df of 100,000 rows x 10 columns, resolution included                   target <= 10 s
* resolve_session of a 3-hour session at 1 s, 50 names, 200,000 entities     target <= 2 s
* scenario search, three conditions, 1,000 resolved 3-hour sessions          target <= 200 ms median

    python benchmarks/run.py sessions [--quick] [--postgres]

The 1,000 sessions of the search are resolved columns written straight to the catalog (resolving 1,000 sessions
through the API would dominate the run); the first search reads and decodes them (reported as "cold"), later ones
use the server's column cache (and its search indexes) after checking generations with the catalog.

Client and server share this process, so the CPU times (``time.process_time``, every thread) are both sides'
together; on a shared machine they say more than the wall clock. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from scenebase.domain.timeline import Grid
from scenebase.domain.timeline_data import Column
from scenebase.storage.scope import Scope
from scenebase.testing import InProcessServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import with_postgres

T0 = datetime(2022, 3, 1, 8, 0, tzinfo=UTC)
HOURS3 = 10_800


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """Wall and CPU seconds since ``start``."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def bench_add_entities(server: InProcessServer, n: int) -> tuple[float, float]:
    client = server.client()
    uid = client.add_session("bench entities")
    client.update_time_span(uid, T0, T0 + timedelta(seconds=HOURS3 - 1))
    base = T0.timestamp()
    entities = [
        {
            "session": uid,
            "entity_name": f"m{i % 20}",
            "entity_type": "scalar",
            "entity_value": float(i),
            "influence": "linear_interpolation",
            "timestamp": base + (i * 0.05) % HOURS3,
        }
        for i in range(n)
    ]
    t = clocks()
    out = client._add_entities(entities, urgent=True)
    wall, cpu = since(t)
    assert out["accepted"] == n, out["rejected"][:3]
    return wall, cpu


def bench_add_df(server: InProcessServer, rows: int) -> tuple[float, float]:
    import pandas as pd

    client = server.client()
    uid = client.add_session("bench df")
    rng = np.random.default_rng(1)
    times = pd.date_range(T0, periods=rows, freq=pd.Timedelta(seconds=HOURS3 * 0.99 / rows), tz="UTC")
    df = pd.DataFrame({f"c{j}": rng.normal(size=rows).cumsum() for j in range(10)})
    df.insert(0, "timestamp", times)
    t = clocks()
    job = client.add_df(df, uid)
    client.get_job(job).wait(timeout=600)
    return since(t)


def bench_resolve(server: InProcessServer, n: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, CPU) of adding the ``n`` entities (``_add_entities``, 5,000 a request), and of resolving them."""
    client = server.client()
    uid = client.add_session("bench resolve")
    client.update_time_span(uid, T0, T0 + timedelta(seconds=HOURS3 - 1))
    base = T0.timestamp()
    rng = np.random.default_rng(2)
    influences = ["linear_interpolation", "point", "interval", "affect_forward", "state"]
    entities = []
    for i in range(n):
        name = i % 50
        kind = influences[name % 5]
        ts = base + float(rng.uniform(0, HOURS3 - 1))
        if kind == "state":
            entities.append(
                {
                    "session": uid,
                    "entity_name": f"n{name}",
                    "entity_type": "state_set",
                    "entity_value": [f"v{i % 7}"],
                    "influence": "interval",
                    "timestamp": ts,
                }
            )
        else:
            entities.append(
                {
                    "session": uid,
                    "entity_name": f"n{name}",
                    "entity_type": "scalar",
                    "entity_value": float(i % 100),
                    "influence": kind,
                    "timestamp": ts,
                }
            )
    t = clocks()
    client._add_entities(entities, urgent=True)
    adding = since(t)
    org = client.get_metadata(uid, "sessions")["owner"]
    t = clocks()
    out = server.runtime.timeline.resolve_now(Scope.of(org, username="admin"), uid)
    resolving = since(t)
    assert out["resolved"] and len(out["names"]) == 50, out
    return adding, resolving


def bench_search(server: InProcessServer, sessions: int, runs: int) -> dict[str, float]:
    """Seconds to write the sessions, of the first (cold) search, median wall and CPU of the later ones, and the
    number of intervals found."""
    client = server.client()
    rt = server.runtime
    uid0 = client.add_session("probe")
    org = client.get_metadata(uid0, "sessions")["owner"]
    scope = Scope.of(org, username="admin")
    rng = np.random.default_rng(3)
    grid = Grid(1.0, int(T0.timestamp()), HOURS3)
    t0 = time.perf_counter()
    for s in range(sessions):
        uid, _ = rt.sessions.create(scope, f"drive {s}")
        speed = np.clip(15 + np.cumsum(rng.normal(0, 0.3, HOURS3)), 0, 40)
        rain = np.where(np.sin(np.arange(HOURS3) / 900 + s) > 0.3, 0, -1).astype(np.int32)
        ped = np.sin(np.arange(HOURS3) / 200 + s * 0.7) > 0.5
        offsets = np.concatenate([[0], np.cumsum(ped.astype(np.int64) * 2)])
        codes = np.tile(np.array([0, 1], np.int32), int(ped.sum()))
        cols = [
            Column("speed", "scalar", grid.start_index, HOURS3, num=speed),
            Column("weather", "state", grid.start_index, HOURS3, labels=["rain"], codes=rain),
            Column(
                "objects", "set", grid.start_index, HOURS3, labels=["car", "pedestrian"], codes=codes, offsets=offsets
            ),
        ]
        with rt.catalog.write() as conn:
            seq = rt.timeline.repo.ensure_state_in(conn, scope, uid).write_seq
        rt.timeline.repo.save_resolution(scope, uid, seq, grid, cols)
    search = {
        "filters": [{"field": "weather", "values": ["rain"]}, {"field": "objects", "values": ["pedestrian"]}],
        "ranges": [{"field": "speed", "min": 20}],
    }
    writing = time.perf_counter() - t0
    t = clocks()
    hits = rt.timeline.search(scope, search)
    cold = since(t)
    walls, cpus = [], []
    for _ in range(runs):
        t = clocks()
        rt.timeline.search(scope, search)
        wall, cpu = since(t)
        walls.append(wall)
        cpus.append(cpu)
    return {"writing": writing, "cold": cold[0], "wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "intervals": sum(len(v["intervals"]) for v in hits.values())}  # fmt: skip


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not the targets)")
    ap.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL catalog (tests/servers.py)")
    args = ap.parse_args(argv)
    scale = 10 if args.quick else 1
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scenebase-bench-sessions-")))
        catalog = {"catalog_url": stack.enter_context(with_postgres(tmp))} if args.postgres else {}
        server = stack.enter_context(InProcessServer(tmp / "data", workers=2, **catalog))
        print(f"catalog {'PostgreSQL' if args.postgres else 'SQLite'}; load average {load()}; {os.cpu_count()} CPUs")
        n = 20_000 // scale
        wall, cpu = bench_add_entities(server, n)
        print(f"add_entities: {n / wall:,.0f} entities/s ({n} entities; wall {wall:.2f} s, CPU {cpu:.2f} s)"
              f"   target >= 20,000/s")  # fmt: skip
        rows = 100_000 // scale
        wall, cpu = bench_add_df(server, rows)
        print(f"add_df {rows} rows x 10 columns + resolution: wall {wall:.2f} s, CPU {cpu:.2f} s   target <= 10 s")
        n = 200_000 // scale
        (add_wall, add_cpu), (wall, cpu) = bench_resolve(server, n)
        print(f"add_entities of the resolve session: {n / add_wall:,.0f} entities/s ({n} entities; wall "
              f"{add_wall:.2f} s, CPU {add_cpu:.2f} s)   target >= 20,000/s")  # fmt: skip
        print(f"resolve 3 h / 1 s / 50 names / {n} entities: wall {wall:.2f} s, CPU {cpu:.2f} s   target <= 2 s")
        sessions = 1000 // scale
        r = bench_search(server, sessions, 20)
        print(f"search 3 conditions over {sessions} sessions ({r['writing']:.1f} s to write them): median wall "
              f"{r['wall'] * 1000:.0f} ms, CPU {r['cpu'] * 1000:.0f} ms; first (cold) {r['cold'] * 1000:.0f} ms; "
              f"{r['intervals']:.0f} intervals   target <= 200 ms median")  # fmt: skip
        print(f"load average {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
