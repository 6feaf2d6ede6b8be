"""Embeddings and similarity search (issue 10): the vector index itself, and the client over HTTP.

    python benchmarks/bench_embeddings.py [--vectors 100000] [--dim 512] [--queries 200] [--http-vectors 100000]
                                          [--nprobe-sweep 8,16,64] [--cache /tmp] [--compare-usearch] [--skip-http]

Data: clustered unit vectors, like embeddings (``vectors / 100`` Gaussian clusters with noise; on uniform noise
every HNSW graph has poor recall and the figure would mean nothing). Queries are dataset points with a little
noise; the ground truth is exact search (numpy, all vectors).

* **index** (in this process, ``FaissVectorIndex`` in a temporary folder, as the bulk index job fills it: chunks of
  100,000): build wall and CPU seconds, memory (this process's RSS growth) and files on disk, the layout the space
  ended in (HNSW graph or IVF lists); then one query at a time in one thread: recall@10 against exact search,
  median and p95 milliseconds (wall, and median CPU). ``--nprobe-sweep`` / ``--ef-sweep`` query the same index
  at other widths. ``--cache DIR`` keeps the generated vectors as ``.npy`` there (1,000,000 x 512 takes a while to
  make). ``--compare-usearch`` also builds usearch's HNSW with the HNSW parameters (the measurement behind FAISS).
* **http** (``scenebase serve``, SQLite catalog, one job worker): ``--http-vectors`` image records are written
  first (metadata only: similarity search needs no pixels); then ``add_embeddings`` without indexing (vectors/s
  through the client, and the CPU seconds of the server and of the client), the ``similarity_search_bulk_index``
  job (seconds, as the server records them), and ``search_similar_assets`` one at a time (median and p95 ms;
  recall@10 excluding the query asset).

Prints a table and writes ``benchmarks/results/embeddings.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from bench_annotations import cpu_seconds  # noqa: E402
from bench_images import _job_seconds  # noqa: E402
from run import TOKEN, machine, serve_process, write_report  # noqa: E402
from scenebase.clients.scene_engine_client import SceneEngineClient  # noqa: E402
from scenebase.models.assets import Embedding  # noqa: E402
from scenebase.storage.vectors import faiss_index  # noqa: E402
from scenebase.storage.vectors.faiss_index import FaissVectorIndex  # noqa: E402

RESULTS = HERE / "results"
SEED = 10
K = 10
CHUNK = 100_000
TARGETS = {"recall_at_10": 0.95, "index_median_ms": 2.0, "http_median_ms": 15.0, "add_vectors_per_s": 10_000}


def clustered(n: int, dim: int, seed: int = SEED) -> np.ndarray:
    """``n`` unit vectors in ``n // 100`` clusters (at least 10), made in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(n // 100, 10), dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        part = centers[rng.integers(0, len(centers), m)] + 0.35 * rng.normal(size=(m, dim)).astype(np.float32)
        out[start : start + m] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


def queries_for(x: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED + 1)
    picks = rng.choice(len(x), count, replace=False)
    q = x[picks] + 0.05 * rng.normal(size=(count, x.shape[1])).astype(np.float32)
    return picks, q / np.linalg.norm(q, axis=1, keepdims=True)


def exact_top(x: np.ndarray, q: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the exact top ``k`` per query (brute force in chunks)."""
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.zeros((len(q), k), np.int64)
    for start in range(0, len(x), CHUNK):
        s = q @ x[start : start + CHUNK].T
        if exclude is not None:
            rows = np.arange(len(q))
            inside = (exclude >= start) & (exclude < start + s.shape[1])
            s[rows[inside], exclude[inside] - start] = -np.inf
        cand_s = np.concatenate([best_s, s], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + s.shape[1]), s.shape)], axis=1)
        top = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, top, 1)
        best_i = np.take_along_axis(cand_i, top, 1)
    return best_i


def cached_clustered(n: int, dim: int, cache: Path | None) -> np.ndarray:
    """:func:`clustered`, read from / saved to ``cache`` as ``.npy`` when given."""
    if cache is None:
        return clustered(n, dim)
    path = cache / f"scenebase-bench-clustered-{n}x{dim}-seed{SEED}.npy"
    if path.exists():
        return np.load(path)
    x = clustered(n, dim)
    np.save(path, x)
    return x


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_index(
    x: np.ndarray,
    queries: int,
    compare_usearch: bool,
    chunk: int = CHUNK,
    ef_sweep: tuple[int, ...] = (),
    nprobe_sweep: tuple[int, ...] = (),
) -> dict[str, Any]:
    keys = [f"a{i}" for i in range(len(x))]
    _picks, q = queries_for(x, queries)
    truth = exact_top(x, q, K)
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-vectors-"))
    out: dict[str, Any] = {}
    try:
        index = FaissVectorIndex(tmp)
        rss0, wall0, cpu0 = rss_mb(), time.perf_counter(), time.process_time()
        for start in range(0, len(x), chunk):
            index.upsert("org", "space", keys[start : start + chunk], x[start : start + chunk])
            print(f"  indexed {min(start + chunk, len(x)):,} vectors ({time.perf_counter() - wall0:.0f} s)", flush=True)
        out["build_s"] = round(time.perf_counter() - wall0, 1)
        out["build_cpu_s"] = round(time.process_time() - cpu0, 1)
        out["rss_growth_mb"] = round(rss_mb() - rss0)
        out["disk_mb"] = round(sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file()) / 2**20)
        out["load_after_build"] = [round(v, 2) for v in os.getloadavg()]
        nlist = faiss_index.layout_for(index.count("org", "space"))
        out["layout"] = (
            f"IVF-Flat, {nlist} lists, nprobe {index.nprobe}" if nlist else f"HNSW, efSearch {index.ef_search}"
        )
        faiss.omp_set_num_threads(1)  # the figure is for one thread
        out.update(_query_loop(lambda v: [int(h.key[1:]) for h in index.search("org", "space", v, K)], q, truth))
        for name, values in (("ef_search", ef_sweep), ("nprobe", nprobe_sweep)):
            sweep = {}
            for value in values:  # recall against time for other widths on the same index
                setattr(index, name, value)
                sweep[value] = _query_loop(
                    lambda v: [int(h.key[1:]) for h in index.search("org", "space", v, K)], q, truth
                )
                print(f"  {name} {value}: {sweep[value]}", flush=True)
            if values:
                out[f"{name}_sweep"] = sweep
        out["load_after_queries"] = [round(v, 2) for v in os.getloadavg()]
        if compare_usearch:
            out["usearch"] = _usearch(x, q, truth)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _query_loop(search: Any, q: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    times, cpu, recalls = [], [], []
    for v, t in zip(q, truth, strict=True):
        start, cpu0 = time.perf_counter(), time.process_time()
        found = search(v)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - cpu0) * 1000)
        recalls.append(len(set(found) & set(t.tolist())) / K)
    times.sort()
    return {"recall_at_10": round(float(np.mean(recalls)), 4), "median_ms": round(statistics.median(times), 3),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
            "median_cpu_ms": round(statistics.median(cpu), 3)}  # fmt: skip


def _usearch(x: np.ndarray, q: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from usearch.index import Index

    wall0, cpu0 = time.perf_counter(), time.process_time()
    index = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=faiss_index.HNSW_M,
                  expansion_add=faiss_index.EF_CONSTRUCTION, expansion_search=faiss_index.EF_SEARCH)  # fmt: skip
    index.add(np.arange(len(x)), x)
    out = {"build_s": round(time.perf_counter() - wall0, 1), "build_cpu_s": round(time.process_time() - cpu0, 1)}
    out.update(_query_loop(lambda v: index.search(v, K, threads=1).keys.tolist(), q, truth))
    return out


def bench_http(n: int, dim: int, queries: int, add_only: bool = False) -> dict[str, Any]:
    from scenebase.runtime import Runtime
    from scenebase.settings import Settings

    x = clustered(n, dim, SEED + 2)
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-emb-"))
    data = tmp / "data"
    out: dict[str, Any] = {"vectors": n}
    try:
        rt = Runtime(Settings(data_dir=data, admin_token=TOKEN, workers=0))
        rt.start(workers=0, reaper=False)
        scope = rt.identity.authenticate(TOKEN).scope
        wall0 = time.perf_counter()
        for start in range(0, n, 5000):
            docs = [{"id": f"img_{i}", "timestamp": "2026-01-01T00:00:00+00:00", "media_type": "image"}
                    for i in range(start, min(start + 5000, n))]  # fmt: skip
            rt.assets.put(scope, "images", docs)
        out["image_records_s"] = round(time.perf_counter() - wall0, 1)
        rt.stop()
        with serve_process(data, {"SCENEBASE_WORKERS": "1"}) as (url, proc):
            client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
            embeddings = [Embedding(x[i], f"img_{i}") for i in range(n)]
            load0 = [round(v, 2) for v in os.getloadavg()]
            cpu0, client0, wall0 = cpu_seconds(proc.pid), time.process_time(), time.perf_counter()
            ids = client.add_embeddings(embeddings, similarity_ingest=False, create_umap=False, disable_tqdm=True)
            add_s = time.perf_counter() - wall0
            server_cpu = cpu_seconds(proc.pid) - cpu0
            out.update({"add_s": round(add_s, 1), "add_vectors_per_s": round(n / add_s),
                        "add_server_cpu_s": round(server_cpu, 1),
                        "add_vectors_per_server_cpu_s": round(n / max(server_cpu, 1e-9)),
                        "add_client_cpu_s": round(time.process_time() - client0, 1),
                        "add_load_before_after": [load0, [round(v, 2) for v in os.getloadavg()]]})  # fmt: skip
            print(f"  add_embeddings: {n / add_s:,.0f} vectors/s ({out})", flush=True)
            if add_only:
                return out
            wall0 = time.perf_counter()
            job_id = client.similarity_search_bulk_index(embedding_ids=ids, wait_for_completion=True)
            out["bulk_index_wall_s"] = round(time.perf_counter() - wall0, 1)
            out["bulk_index_job_s"] = _job_seconds(client.get_job(job_id).document)[1]
            picks, _ = queries_for(x, queries)
            truth = exact_top(x, x[picks], K, exclude=picks)
            search = [
                lambda _v, i=int(i): [int(a[4:]) for a in client.search_similar_assets(f"img_{i}")] for i in picks
            ]
            calls = iter(search)
            out.update(_query_loop(lambda v: next(calls)(v), x[picks], truth))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=100_000, help="vectors in the index benchmark")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--http-vectors", type=int, default=100_000, help="vectors in the HTTP benchmark")
    parser.add_argument(
        "--chunk",
        type=int,
        default=CHUNK,
        help="vectors per index write (the bulk index job's: 100,000; each write saves the index)",
    )
    parser.add_argument("--ef-sweep", default="", help="also query at these efSearch values (an HNSW space)")
    parser.add_argument("--nprobe-sweep", default="", help="also query at these nprobe values (an IVF space)")
    parser.add_argument("--cache", type=Path, help="keep the generated index vectors as .npy in this folder")
    parser.add_argument("--compare-usearch", action="store_true", help="also build usearch's HNSW (needs usearch)")
    parser.add_argument("--skip-index", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--add-only", action="store_true", help="HTTP part: stop after add_embeddings")
    parser.add_argument("--output", type=Path, default=RESULTS / "embeddings.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
                              "load_at_start": [round(v, 2) for v in os.getloadavg()], "targets": TARGETS,
                              "parameters": vars(args) | {"output": str(args.output),
                                                          "cache": str(args.cache)}}  # fmt: skip
    if not args.skip_index:
        print(f"index: {args.vectors:,} x {args.dim} clustered vectors", flush=True)
        x = cached_clustered(args.vectors, args.dim, args.cache)
        ef_sweep = tuple(int(v) for v in args.ef_sweep.split(",") if v)
        nprobe_sweep = tuple(int(v) for v in args.nprobe_sweep.split(",") if v)
        report["index"] = bench_index(x, args.queries, args.compare_usearch, args.chunk, ef_sweep, nprobe_sweep)
        del x
        print(f"  {report['index']}", flush=True)
    if not args.skip_http:
        print(f"http: {args.http_vectors:,} x {args.dim}", flush=True)
        report["http"] = bench_http(args.http_vectors, args.dim, args.queries, args.add_only)
        print(f"  {report['http']}", flush=True)
    report["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
    report["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
