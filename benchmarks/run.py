"""HTTP throughput and latency of ``scenebase serve`` on loopback.

    python benchmarks/run.py [--quick] [--threads N] [--postgres]
    python benchmarks/run.py images [...]   # = python benchmarks/bench_images.py [...] (ingest and zip_set)
    python benchmarks/run.py images_compare [...]  # = python benchmarks/bench_images_compare.py [...] (vs a commit)
    python benchmarks/run.py search [...]   # = python benchmarks/bench_search.py [...] (search over 1M records)
    python benchmarks/run.py video [...]    # = python benchmarks/bench_videos.py [...] (video ingest, jobs, memory)
    python benchmarks/run.py sessions [...] # = python benchmarks/bench_sessions.py [...] (timeline targets)
    python benchmarks/run.py jobs [...]     # = python benchmarks/bench_jobs.py [...] (fair claims, failure notes)
    python benchmarks/run.py limits [...]   # = python benchmarks/bench_limits.py [...] (checks, decode memory, sweep)
    python benchmarks/run.py lidar [...]    # = python benchmarks/bench_lidars.py [...] (add_lidars, a 2 GB upload)
    python benchmarks/run.py properties [...]  # = python benchmarks/bench_properties.py [...] (image properties)
    python benchmarks/run.py webapp [...]   # = python benchmarks/bench_webapp.py [...] (set page in Chromium)
    python benchmarks/run.py embeddings [...]  # = python benchmarks/bench_embeddings.py [...] (vector index, HTTP)
    python benchmarks/run.py embedding_maps [...]  # = python benchmarks/bench_embedding_maps.py [...] (UMAP, sets)

Starts ``scenebase serve`` as a subprocess on 127.0.0.1 with a fresh data folder (embedded SQLite catalog; with
``--postgres`` a second run uses a throwaway PostgreSQL cluster from ``tests/servers.py``), then sends a fixed
number of requests from N client threads, each with its own keep-alive ``httpx.Client``:

* ``GET /auth`` (the client's ``whoami``): token check + identity document;
* ``POST /v1/jobs/add/``: one job row written to the catalog per request.

Prints a table and writes ``benchmarks/results/latest.json``. Every loop is bounded by its request count.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
TESTS = ROOT / "tests"
RESULTS = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
TOKEN = "default-admin-benchmark-token"
STARTUP_TIMEOUT_S = 30.0

Request = Callable[[httpx.Client], httpx.Response]


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    requests: int
    call: Request


@dataclass
class Result:
    backend: str
    scenario: str
    threads: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float


# ---- the server -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(data_dir: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """``scenebase serve`` on a free loopback port; yields its base URL and stops it (SIGTERM, then SIGKILL)."""
    with serve_process(data_dir, extra_env) as (url, _proc):
        yield url


def write_report(output: Path, report: dict[str, Any]) -> None:
    """Write a benchmark's JSON report and say where it went."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {output} ({report['wall_seconds']} s in all)")


def child_env(src: Path = SRC) -> dict[str, str]:
    """This process's environment for a child that runs ``src``'s ``scenebase``: no ``SCENEBASE_`` settings of its
    own, ``src`` first on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENEBASE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return env


@contextlib.contextmanager
def serve_process(
    data_dir: Path, extra_env: dict[str, str], src: Path = SRC
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Like :func:`serve`, and also yields the server process (its pid, for memory sampling). ``src``: the source
    tree whose ``scenebase`` runs (another commit's, to compare)."""
    port = _free_port()
    env = child_env(src)
    env.update(
        {
            "SCENEBASE_ADMIN_TOKEN": TOKEN,
            "SCENEBASE_WORKERS": "0",  # no job runs here: idle workers polling the queue would only add noise
            "SCENEBASE_LOG_LEVEL": "warning",  # no access log line per request
            **extra_env,
        }
    )
    log_path = data_dir.parent / "serve.log"
    args = [sys.executable, "-m", "scenebase.cli.main", "serve", "--data-dir", str(data_dir)]
    args += ["--host", HOST, "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"scenebase serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/status", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"scenebase serve did not answer in {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# ---- the load ---------------------------------------------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def run_scenario(url: str, backend: str, scenario: Scenario, threads: int, warmup: int) -> Result:
    """``scenario.requests`` requests split over ``threads`` threads (one keep-alive client each)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    clients = [httpx.Client(base_url=url, headers=headers, timeout=30.0) for _ in range(threads)]
    shares = [scenario.requests // threads + (1 if i < scenario.requests % threads else 0) for i in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads + 1)

    def work(i: int) -> None:
        c = clients[i]
        for _ in range(warmup):  # opens the connection and warms caches; not measured
            scenario.call(c)
        start.wait()
        out = latencies[i]
        for _ in range(shares[i]):
            t0 = time.perf_counter()
            resp = scenario.call(c)
            out.append(time.perf_counter() - t0)
            if resp.status_code >= 300:
                errors[i] += 1

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    try:
        for t in workers:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in workers:
            t.join()
        seconds = time.perf_counter() - t0
    finally:
        for c in clients:
            c.close()
    flat = sorted(x * 1000.0 for lst in latencies for x in lst)
    done = len(flat)
    return Result(
        backend=backend,
        scenario=scenario.name,
        threads=threads,
        requests=done,
        errors=sum(errors),
        seconds=round(seconds, 3),
        rps=round(done / seconds, 1),
        p50_ms=round(_percentile(flat, 50), 2),
        p95_ms=round(_percentile(flat, 95), 2),
        p99_ms=round(_percentile(flat, 99), 2),
        mean_ms=round(sum(flat) / done, 2),
        max_ms=round(flat[-1], 2),
    )


def scenarios(quick: bool) -> list[Scenario]:
    scale = 4 if quick else 1
    job = {"description": "benchmark job", "tags": ["benchmark"]}
    return [
        Scenario("whoami", "GET", "/auth", 8000 // scale, lambda c: c.get("/auth")),
        Scenario("create job", "POST", "/v1/jobs/add/", 4000 // scale, lambda c: c.post("/v1/jobs/add/", json=job)),
    ]


def bench_backend(backend: str, extra_env: dict[str, str], args: argparse.Namespace, tmp: Path) -> list[Result]:
    out: list[Result] = []
    workdir = tmp / backend
    workdir.mkdir()
    with serve(workdir / "data", extra_env) as url:
        for sc in scenarios(args.quick):
            r = run_scenario(url, backend, sc, args.threads, args.warmup)
            print(f"  {backend:<10} {sc.name:<11} {r.requests} requests in {r.seconds:.2f} s", flush=True)
            if r.errors:
                raise SystemExit(f"{r.errors} failed requests in {backend}/{sc.name}; see {workdir / 'serve.log'}")
            out.append(r)
    return out


@contextlib.contextmanager
def with_postgres(tmp: Path) -> Iterator[str]:
    """A throwaway PostgreSQL (tests/servers.py) and the URL of a fresh database in it."""
    with with_postgres_server(tmp) as (url, _pid):
        yield url


@contextlib.contextmanager
def with_postgres_server(tmp: Path) -> Iterator[tuple[str, int]]:
    """Like :func:`with_postgres`, and also yields the postmaster's pid (to count PostgreSQL's own CPU)."""
    with postgres_cluster(tmp) as server:
        yield server.create_database("scenebase_bench"), server.pid


@contextlib.contextmanager
def postgres_cluster(tmp: Path) -> Iterator[Any]:
    """A throwaway PostgreSQL cluster under ``tmp`` (``tests/servers.py``'s ``PostgresServer``: ``create_database``,
    ``drop_database``, ``pid``), stopped on exit."""
    sys.path.insert(0, str(TESTS))
    from servers import start_postgres

    server = start_postgres(tmp / "pgcluster")
    try:
        yield server
    finally:
        server.stop()


# ---- report -----------------------------------------------------------------------------------------


def process_tree_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, its live children (``serve --processes N`` forks N servers) and the
    children it reaped, from /proc: what the server spent, whatever else ran on the machine meanwhile."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            user += (int(fields[11]) + int(fields[13])) / tick  # utime + cutime
            system += (int(fields[12]) + int(fields[14])) / tick  # stime + cstime
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # a process that ended meanwhile
    return user, system


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of :func:`process_tree_cpu`."""
    return sum(process_tree_cpu(pid))


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:", 1)[1].split()[0])
        mem_gib = round(kb / 1024 / 1024, 1)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(results: list[Result]) -> str:
    head = ("backend", "scenario", "threads", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = [
        (r.backend, r.scenario, str(r.threads), str(r.requests), f"{r.rps:.0f}", f"{r.p50_ms:.2f}",
         f"{r.p95_ms:.2f}", f"{r.p99_ms:.2f}", f"{r.max_ms:.1f}")
        for r in results
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(cells))

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    scripts = {"images": "bench_images", "search": "bench_search", "lidar": "bench_lidars", "video": "bench_videos",
               "sessions": "bench_sessions", "jobs": "bench_jobs", "limits": "bench_limits",
               "properties": "bench_properties", "embeddings": "bench_embeddings",
               "embedding_maps": "bench_embedding_maps", "webapp": "bench_webapp",
               "images_compare": "bench_images_compare"}  # fmt: skip
    if given and given[0] in scripts:  # the issue benchmarks live in their own scripts
        import importlib

        bench = importlib.import_module(scripts[given[0]])
        return int(bench.main(given[1:]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a quarter of the requests (smoke run)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per thread first (default 20)")
    parser.add_argument("--postgres", action="store_true", help="also run against PostgreSQL (tests/servers.py)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json", help="results JSON")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be >= 1")

    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other processes on the machine skew the numbers
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-"))
    results: list[Result] = []
    try:
        print(f"scenebase benchmark: {args.threads} client threads, loopback, data in {tmp}", flush=True)
        results += bench_backend("sqlite", {}, args, tmp)
        if args.postgres:
            with with_postgres(tmp) as url:
                results += bench_backend("postgres", {"SCENEBASE_CATALOG_URL": url}, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(table(results))
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "load_average_at_start_1_5_15_min": load_at_start,
        "settings": {"threads": args.threads, "warmup_per_thread": args.warmup, "quick": args.quick},
        "results": [asdict(r) for r in results],
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
