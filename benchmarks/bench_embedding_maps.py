"""UMAP maps and set comparison (issue 10): the library in this process, and the jobs over HTTP.

    python benchmarks/bench_embedding_maps.py [--vectors 100000] [--dim 512] [--sets 4] [--set-size 5000]
                                              [--skip-library] [--skip-http]

Data: clustered vectors like embeddings (``bench_embeddings.clustered``: ``vectors / 100`` Gaussian clusters with
noise, unit length), not uniform noise.

* **library** (this process, so the first UMAP fit includes umap-learn's import and numba compiles, as in a fresh
  worker): ``fit_map`` with the seed's defaults (train_size 10,000, n_neighbors 20, min_dist 0.3): wall and CPU
  seconds, and the time at each progress stage; then ``pairwise_sliced_wasserstein`` over ``--sets`` sets of
  ``--set-size`` vectors (25 projections x 50 seeds, the seed's defaults).
* **http** (``scenebase serve``, SQLite catalog, one job worker, a fresh process): image records (metadata only)
  and their embeddings are written first; then ``create_umap`` over all of them (wall, the job's own run time, the
  server's CPU seconds, the progress values the client saw), ``create_umap(transform_only=True)``, and
  ``compare_sets`` over ``--sets`` sets of ``--set-size`` images.

CPU seconds are given next to wall seconds because the machine may be shared: CPU time is what the work cost,
whatever else ran. Prints the figures and writes ``benchmarks/results/embedding_maps.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from bench_embeddings import clustered  # noqa: E402
from bench_images import _job_seconds  # noqa: E402
from run import TOKEN, cpu_seconds, machine, serve_process, write_report  # noqa: E402
from scenebase.clients.scene_engine_client import SceneEngineClient  # noqa: E402
from scenebase.domain.set_distance import pairwise_sliced_wasserstein  # noqa: E402
from scenebase.domain.umap_maps import fit_map  # noqa: E402
from scenebase.models.assets import Embedding  # noqa: E402

RESULTS = HERE / "results"
SEED = 20
TARGETS = {"umap_100k_x_512_s": 60.0}
SPACE = "similarity_images_default_v1"


def bench_library(x: np.ndarray, sets: int, set_size: int) -> dict[str, Any]:
    stages: list[tuple[str, float, float]] = []
    wall0, cpu0 = time.perf_counter(), time.process_time()

    def progress(stage: str, fraction: float) -> None:
        stages.append((stage, round(time.perf_counter() - wall0, 1), round(fraction, 3)))
        print(f"    {stages[-1][1]:7.1f} s  {fraction:5.1%}  {stage}", flush=True)

    fitted = fit_map(x, progress=progress)
    out: dict[str, Any] = {"umap_wall_s": round(time.perf_counter() - wall0, 1),
                           "umap_cpu_s": round(time.process_time() - cpu0, 1), "umap_stages": stages,
                           "umap_map_bytes": len(fitted.reducer)}  # fmt: skip
    print(f"  UMAP {len(x):,} x {x.shape[1]}: {out['umap_wall_s']} s wall, {out['umap_cpu_s']} s CPU", flush=True)
    clouds = [x[i * set_size : (i + 1) * set_size] for i in range(sets)]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    pairs = pairwise_sliced_wasserstein(clouds)
    out.update({"compare_pairs": len(pairs), "compare_wall_s": round(time.perf_counter() - wall0, 2),
                "compare_cpu_s": round(time.process_time() - cpu0, 2)})  # fmt: skip
    print(f"  sliced Wasserstein, {sets} sets x {set_size}: {out['compare_wall_s']} s wall", flush=True)
    return out


def bench_http(x: np.ndarray, sets: int, set_size: int, umap_only: bool = False) -> dict[str, Any]:
    from scenebase.runtime import Runtime
    from scenebase.settings import Settings

    n = len(x)
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-maps-"))
    data = tmp / "data"
    out: dict[str, Any] = {"vectors": n}
    try:
        rt = Runtime(Settings(data_dir=data, admin_token=TOKEN, workers=0))
        rt.start(workers=0, reaper=False)
        scope = rt.identity.authenticate(TOKEN).scope
        for start in range(0, n, 5000):
            docs = [{"id": f"img_{i}", "timestamp": "2026-01-01T00:00:00+00:00", "media_type": "image"}
                    for i in range(start, min(start + 5000, n))]  # fmt: skip
            rt.assets.put(scope, "images", docs)
        rt.stop()
        with serve_process(data, {"SCENEBASE_WORKERS": "1"}) as (url, proc):
            client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
            client.add_embeddings([Embedding(x[i], f"img_{i}") for i in range(n)], similarity_ingest=False,
                                  create_umap=False, disable_tqdm=True)  # fmt: skip
            seen: list[tuple[float, float]] = []
            load0 = [round(v, 2) for v in os.getloadavg()]
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            job_id = client.create_umap(
                "images",
                SPACE,
                wait_for_completion=True,
                progress_callback=lambda v: seen.append((time.perf_counter() - wall0, v)),
            )
            out.update({"umap_wall_s": round(time.perf_counter() - wall0, 1),
                        "umap_job_s": _job_seconds(client.get_job(job_id).document)[1],
                        "umap_server_cpu_s": round(cpu_seconds(proc.pid) - cpu0, 1),
                        "umap_progress_values_seen": len(seen), "umap_phases_s": _phases(seen),
                        "umap_load_before_after": [load0, [round(v, 2) for v in os.getloadavg()]]})  # fmt: skip
            print(f"  create_umap: {out['umap_wall_s']} s wall ({out['umap_server_cpu_s']} s server CPU), "
                  f"{len(seen)} progress values", flush=True)  # fmt: skip
            if umap_only:
                return out
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            job_id = client.create_umap("images", SPACE, transform_only=True, wait_for_completion=True)
            out.update({"transform_only_wall_s": round(time.perf_counter() - wall0, 1),
                        "transform_only_server_cpu_s": round(cpu_seconds(proc.pid) - cpu0, 1)})  # fmt: skip
            set_ids = []
            for s in range(sets):
                set_id = client.create_set(f"bench set {s}", "images")
                members = [f"img_{i}" for i in range(s * set_size, min(n, (s + 1) * set_size))]
                client.add_assets_to_set(set_id, ids=members, wait_for_completion=True)
                set_ids.append(set_id)
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            job_id = client.compare_sets(set_ids, SPACE)
            out.update({"compare_sets": sets, "compare_set_size": set_size,
                        "compare_wall_s": round(time.perf_counter() - wall0, 1),
                        "compare_job_s": _job_seconds(client.get_job(job_id).document)[1],
                        "compare_server_cpu_s": round(cpu_seconds(proc.pid) - cpu0, 1),
                        "comparisons": len(client.get_comparison_matrix(index_name=SPACE))})  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _phases(seen: list[tuple[float, float]]) -> dict[str, float]:
    """Seconds (as the client saw them) spent reading vectors (progress 0-5 %), in UMAP (5-85 %) and writing
    the points (85-100 %): the job's progress is laid out that way (services/embedding_maps.py)."""

    def first(at_least: float) -> float:
        return next((t for t, v in seen if v >= at_least), seen[-1][0] if seen else 0.0)

    end = seen[-1][0] if seen else 0.0
    return {"read": round(first(5.0), 1), "umap": round(first(85.0) - first(5.0), 1),
            "write": round(end - first(85.0), 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--sets", type=int, default=4, help="sets compared (every pair)")
    parser.add_argument("--set-size", type=int, default=5000, help="vectors per compared set")
    parser.add_argument("--skip-library", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--umap-only", action="store_true", help="HTTP part: stop after the first create_umap")
    parser.add_argument("--output", type=Path, default=RESULTS / "embedding_maps.json")
    args = parser.parse_args(argv)
    if args.sets * args.set_size > args.vectors:
        parser.error("--sets x --set-size must be at most --vectors")
    started = time.monotonic()
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
                              "load_at_start": [round(v, 2) for v in os.getloadavg()], "targets": TARGETS,
                              "parameters": vars(args) | {"output": str(args.output)}}  # fmt: skip
    x = clustered(args.vectors, args.dim, SEED)
    if not args.skip_library:
        print(f"library: {args.vectors:,} x {args.dim} clustered vectors", flush=True)
        report["library"] = bench_library(x, args.sets, args.set_size)
    if not args.skip_http:
        print(f"http: {args.vectors:,} x {args.dim}", flush=True)
        report["http"] = bench_http(x, args.sets, args.set_size, args.umap_only)
        print(f"  {report['http']}", flush=True)
    report["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
    report["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
