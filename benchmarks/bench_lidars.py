"""LIDAR ingestion through ``scenebase serve`` on loopback (issue 6): ``add_lidars`` throughput and the server's
memory while one very large point cloud is uploaded.

    python benchmarks/bench_lidars.py [--files 1000] [--points 100000] [--repeat 2] [--processes 1,2]
                                      [--workers 0,2] [--big-gib 2] [--skip-big] [--skip-batch]

Writes ``--files`` binary PCD files of ``--points`` LIDAR-like points each (x, y, z, intensity float32: 1.6 MB for
100k points; 16 distinct scans, each file shifted by its index so that no two are equal) into a temporary folder,
then per ``--processes`` and ``--workers`` value starts ``scenebase serve`` (that many job worker threads per
process, blobs in the data folder, embedded SQLite) and, ``--repeat`` times, each time into a new set:

* ``client.add_lidars(lidars, set_id)`` from paths: files/s and MB/s from the call to its return (100 files per
  request, 4 requests in flight, as the client does). The server queues one ``lidar_compression`` job per request
  (renditions skip_1/10/100). With 0 workers they stay queued (job workers on other machines): this is the ingest
  alone. With workers they run in the server while the upload goes on and compete with it for the CPU;
* with workers, then waits for those jobs (polling every 50 ms): files/s from the same start to the last job's
  end, i.e. ingest plus every rendition made;
* the CPU time (user + system) per file of the server processes and of the client: on a machine shared with
  other work the rates move with its load, these much less.

With ``--big-gib`` (default 2) it then writes one KITTI ``.bin`` of that size, starts a fresh single-process server
without job workers (``SCENEBASE_MAX_FILE_BYTES`` raised to fit the file) and uploads it with ``client.add_lidar``
while a thread samples the server's ``VmRSS`` and ``RssAnon`` (``/proc/<pid>/status``) every 0.2 s: baseline,
peak during the upload, after it. Then a second server with 2 workers on the same data folder runs the queued
compression job (skip_1 and skip_10 are refused above 10M points, skip_100 is made): its peak and end RSS.

Prints tables and writes ``benchmarks/results/lidars.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

from bench_pointcloud_media import lidar_scan  # noqa: E402
from run import TOKEN, cpu_seconds, machine, serve_process, write_report  # noqa: E402
from scenebase.clients.scene_engine_client import SceneEngineClient  # noqa: E402
from scenebase.models.assets import Lidar  # noqa: E402

RESULTS = HERE / "results"
DISTINCT_SCANS = 16
TARGET_FILES_PER_S = 200.0
JOB_TIMEOUT_S = 900.0
SAMPLE_EVERY_S = 0.2


def pcd_binary(points: npt.NDArray[np.float32]) -> bytes:
    n = len(points)
    header = (
        f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\n"
        f"TYPE F F F F\nCOUNT 1 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    return header.encode() + points.tobytes()


def write_pcds(folder: Path, files: int, points: int) -> tuple[list[Path], int]:
    scans = [lidar_scan(points, seed) for seed in range(DISTINCT_SCANS)]
    paths, total = [], 0
    for i in range(files):
        scan = scans[i % DISTINCT_SCANS].copy()
        scan[:, 0] += np.float32(i / 100)  # every file its own cloud
        data = pcd_binary(scan)
        path = folder / f"scan_{i:05d}.pcd"
        path.write_bytes(data)
        paths.append(path)
        total += len(data)
    return paths, total


def write_kitti(path: Path, gib: float) -> int:
    """A KITTI .bin of about ``gib`` GiB, written scan by scan (never whole in memory)."""
    scan = lidar_scan(1_000_000, seed=99)
    target = int(gib * 2**30) // 16 * 16
    written = 0
    with path.open("wb") as fh:
        while written < target:
            chunk = scan.tobytes()[: target - written]
            fh.write(chunk)
            written += len(chunk)
            scan[:, 2] += np.float32(0.01)
    return written


def wait_jobs(client: SceneEngineClient, job_ids: list[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    docs: list[dict[str, Any]] = []
    for job_id in job_ids:
        while True:
            doc = client._request("GET", f"/v1/jobs/{job_id}")
            if doc.get("status") in ("finished", "aborted"):
                if doc["status"] != "finished":
                    raise RuntimeError(f"job {job_id} ended {doc['status']}: {doc.get('notes')}")
                docs.append(dict(doc))
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish in {JOB_TIMEOUT_S} s")
            time.sleep(0.05)
    return docs


# ---- add_lidars -------------------------------------------------------------------------------------------------


@dataclass
class BatchRun:
    processes: int
    workers: int
    run: int
    files: int
    mib: float
    ingest_s: float
    files_per_s: float
    mib_per_s: float
    with_compression_s: float | None
    files_per_s_with_compression: float | None
    #: CPU time (user + system) per file of the server processes (their job workers included) and of this client
    server_cpu_ms_per_file: float
    client_cpu_ms_per_file: float


def bench_batches(
    paths: list[Path], nbytes: int, processes: int, workers: int, repeat: int, tmp: Path
) -> list[BatchRun]:
    out: list[BatchRun] = []
    workdir = tmp / f"batch-p{processes}-w{workers}"
    workdir.mkdir()
    env = {"SCENEBASE_WORKERS": str(workers), "SCENEBASE_PROCESSES": str(processes)}
    with serve_process(workdir / "data", env) as (url, proc):
        client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
        client.whoami()
        for run in range(repeat):
            if run or processes > 1 or workers:  # new content each run: re-adding the same bytes is a duplicate path
                for i, path in enumerate(paths):
                    with path.open("r+b") as fh:  # the last point's intensity: the cloud stays valid, the hash moves
                        fh.seek(-4, 2)
                        fh.write(np.float32(run * 1000 + processes * 100 + workers * 10 + i % 10).tobytes())
            set_id = client.create_set(f"bench lidars {run}", "lidars")
            lidars = [Lidar(id=f"r{run}-{p.stem}", path=p) for p in paths]
            server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
            t0 = time.perf_counter()
            ids = client.add_lidars(lidars, set_id)
            ingest_s = time.perf_counter() - t0
            if len(ids) != len(paths) or client.last_errors:
                raise SystemExit(f"{len(ids)} of {len(paths)} ingested: {client.last_errors[:3]}")
            all_s = None
            if workers:
                wait_jobs(client, client.last_job_ids)
                all_s = time.perf_counter() - t0
            server_ms = (cpu_seconds(proc.pid) - server_cpu) * 1000 / len(paths)
            client_ms = (time.process_time() - client_cpu) * 1000 / len(paths)
            mib = nbytes / 2**20
            r = BatchRun(processes, workers, run, len(paths), round(mib, 1), round(ingest_s, 3),
                         round(len(paths) / ingest_s, 1), round(mib / ingest_s, 1),
                         None if all_s is None else round(all_s, 3),
                         None if all_s is None else round(len(paths) / all_s, 1), round(server_ms, 2),
                         round(client_ms, 2))  # fmt: skip
            then = "" if all_s is None else f"; with compression {len(paths) / all_s:,.1f} files/s ({all_s:.2f} s)"
            print(f"  processes={processes} workers={workers} run {run}: add_lidars {r.files_per_s:,.1f} files/s "
                  f"({r.mib_per_s:,.0f} MiB/s, {ingest_s:.2f} s){then}; CPU per file: server {server_ms:.1f} ms, "
                  f"client {client_ms:.1f} ms", flush=True)  # fmt: skip
            out.append(r)
    return out


# ---- one huge cloud ---------------------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples VmRSS and RssAnon (MiB) of one process every SAMPLE_EVERY_S; ``mark`` names the current phase."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.phase = "baseline"
        self.samples: list[tuple[str, float, float]] = []
        self._halt = threading.Event()

    def read(self) -> tuple[float, float]:
        fields = dict(line.split(":", 1) for line in self.status.read_text().splitlines() if ":" in line)
        return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon"))  # type: ignore[return-value]

    def run(self) -> None:
        while not self._halt.is_set():
            rss, anon = self.read()
            self.samples.append((self.phase, rss, anon))
            self._halt.wait(SAMPLE_EVERY_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def peak(self, phase: str) -> dict[str, float]:
        rows = [s for s in self.samples if s[0] == phase] or [self.samples[-1]]
        return {"vm_rss_mib": round(max(r[1] for r in rows), 1), "rss_anon_mib": round(max(r[2] for r in rows), 1)}


def _sampled(proc_pid: int, phase: str, settle_s: float) -> RssSampler:
    sampler = RssSampler(proc_pid)
    sampler.phase = phase
    sampler.start()
    time.sleep(settle_s)
    return sampler


def bench_big(tmp: Path, gib: float) -> dict[str, Any]:
    """The upload into a server without job workers (its RSS is the ingest's alone), then the compression job
    on a second server with 2 workers over the same data folder (its RSS is the job's)."""
    path = tmp / "huge_scan.bin"
    t0 = time.perf_counter()
    size = write_kitti(path, gib)
    print(f"\nwrote a {size / 2**30:.2f} GiB KITTI file ({size // 16:,} points) in {time.perf_counter() - t0:.1f} s",
          flush=True)  # fmt: skip
    data = tmp / "big" / "data"
    data.parent.mkdir()
    env = {"SCENEBASE_PROCESSES": "1", "SCENEBASE_MAX_FILE_BYTES": str(size + 2**20)}
    with serve_process(data, {**env, "SCENEBASE_WORKERS": "0"}) as (url, proc):
        client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
        set_id = client.create_set("huge", "lidars")
        upload = _sampled(proc.pid, "baseline", 1.0)
        upload.phase = "upload"
        t0 = time.perf_counter()
        lidar_id = client.add_lidar(set_id, lidar_path=str(path), format="kitti", id="huge")
        upload_s = time.perf_counter() - t0
        upload.phase = "end"
        time.sleep(1.0)
        upload.stop()
        job_ids = client.last_job_ids
    with serve_process(data, {**env, "SCENEBASE_WORKERS": "2"}) as (url, proc):
        client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
        t1 = time.perf_counter()
        job_rss = _sampled(proc.pid, "compression", 0.0)  # the queued job may start at once: no baseline here
        [job] = wait_jobs(client, job_ids)
        job_s = time.perf_counter() - t1
        job_rss.phase = "end"
        time.sleep(1.0)
        job_rss.stop()
        meta = client.get_metadata(lidar_id, "lidars")
    if meta["num_points"] != size // 16:
        raise SystemExit(f"the server counted {meta['num_points']} points, expected {size // 16}")
    result = {
        "bytes": size, "points": size // 16, "upload_s": round(upload_s, 2),
        "upload_mib_per_s": round(size / 2**20 / upload_s, 1), "compression_job_s": round(job_s, 2),
        "compression_result": job.get("result"), "thumbnails": sorted(meta.get("thumbnails") or {}),
        "rss_baseline": upload.peak("baseline"), "rss_peak_upload": upload.peak("upload"),
        "rss_after_upload": upload.peak("end"), "rss_peak_compression": job_rss.peak("compression"),
        "rss_after_compression": job_rss.peak("end"),
    }  # fmt: skip
    print(f"  add_lidar of {size / 2**30:.2f} GiB: {upload_s:.1f} s ({result['upload_mib_per_s']} MiB/s); "
          f"compression job {job_s:.1f} s, made {result['thumbnails']}")  # fmt: skip
    for name in ("rss_baseline", "rss_peak_upload", "rss_after_upload", "rss_peak_compression",
                 "rss_after_compression"):  # fmt: skip
        peak = result[name]
        print(f"  server {name:<22} VmRSS {peak['vm_rss_mib']:8.1f} MiB   RssAnon {peak['rss_anon_mib']:8.1f} MiB")
    return result


# ---- report -----------------------------------------------------------------------------------------------------


def table(runs: list[BatchRun]) -> str:
    head = ("processes", "workers", "run", "files", "MiB", "ingest s", "files/s", "MiB/s", "+compression s",
            "files/s", "server CPU ms/file", "client CPU ms/file")  # fmt: skip
    rows = [(str(r.processes), str(r.workers), str(r.run), str(r.files), f"{r.mib:.0f}", f"{r.ingest_s:.2f}",
             f"{r.files_per_s:.1f}", f"{r.mib_per_s:.1f}", f"{r.with_compression_s or '-'}",
             f"{r.files_per_s_with_compression or '-'}", f"{r.server_cpu_ms_per_file:.2f}",
             f"{r.client_cpu_ms_per_file:.2f}") for r in runs]  # fmt: skip
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="PCD files per add_lidars call (default 1000)")
    parser.add_argument("--points", type=int, default=100_000, help="points per file (default 100000)")
    parser.add_argument("--repeat", type=int, default=2, help="add_lidars runs per server (default 2)")
    parser.add_argument("--processes", default="1,2", help="scenebase serve processes, comma-separated (default 1,2)")
    parser.add_argument(
        "--workers", default="0,2", help="job worker threads per process, comma-separated (default 0,2)"
    )
    parser.add_argument("--big-gib", type=float, default=2.0, help="size of the one huge upload (default 2 GiB)")
    parser.add_argument("--skip-big", action="store_true", help="leave out the huge upload")
    parser.add_argument("--skip-batch", action="store_true", help="leave out add_lidars")
    parser.add_argument("--output", type=Path, default=RESULTS / "lidars.json", help="results JSON")
    args = parser.parse_args(argv)
    processes = [int(p) for p in args.processes.split(",") if p.strip()]
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if not 1 <= args.files <= 100_000 or not 1 <= args.repeat <= 20 or not 1000 <= args.points <= 10_000_000:
        parser.error("--files in [1, 100000], --repeat in [1, 20], --points in [1000, 10000000]")
    if not processes or min(processes) < 1 or not workers or min(workers) < 0 or not 0.01 <= args.big_gib <= 16:
        parser.error("--processes takes positive integers, --workers integers >= 0, --big-gib is in [0.01, 16]")

    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-lidars-"))
    runs: list[BatchRun] = []
    big: dict[str, Any] | None = None
    try:
        if not args.skip_batch:
            t0 = time.monotonic()
            files_dir = tmp / "pcd"
            files_dir.mkdir()
            paths, nbytes = write_pcds(files_dir, args.files, args.points)
            print(f"scenebase LIDAR benchmark: {args.files} binary PCDs of {args.points:,} points "
                  f"({nbytes / args.files / 2**20:.2f} MiB each) written in {time.monotonic() - t0:.1f} s",
                  flush=True)  # fmt: skip
            for p in processes:
                for w in workers:
                    runs += bench_batches(paths, nbytes, p, w, args.repeat, tmp)
            shutil.rmtree(files_dir, ignore_errors=True)
        if not args.skip_big:
            big = bench_big(tmp, args.big_gib)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary = []
    for p in processes:
        for w in workers:
            rs = [r for r in runs if (r.processes, r.workers) == (p, w)]
            if not rs:
                continue
            median = statistics.median(r.files_per_s for r in rs)
            done = [r.files_per_s_with_compression for r in rs if r.files_per_s_with_compression is not None]
            summary.append({"processes": p, "workers": w, "files_per_s_median": median,
                            "target": TARGET_FILES_PER_S, "met": median >= TARGET_FILES_PER_S,
                            "files_per_s_with_compression_median": statistics.median(done) if done else None,
                            })  # fmt: skip
    if runs:
        print()
        print(table(runs))
        print()
        for s in summary:
            done = s["files_per_s_with_compression_median"]
            then = "" if done is None else f"; with compression {done:.1f} files/s"
            print(f"processes={s['processes']} workers={s['workers']}: add_lidars median "
                  f"{s['files_per_s_median']:.1f} files/s (target >= {TARGET_FILES_PER_S:.0f}: "
                  f"{'met' if s['met'] else 'MISSED'}){then}")  # fmt: skip
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "load_average_at_start_1_5_15_min": load_at_start,
        "load_average_at_end_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "settings": {"files": args.files, "points": args.points, "repeat": args.repeat, "processes": processes,
                     "workers_per_process": workers, "big_gib": None if args.skip_big else args.big_gib},
        "summary": summary,
        "runs": [asdict(r) for r in runs],
        "big_upload": big,
        "wall_seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
