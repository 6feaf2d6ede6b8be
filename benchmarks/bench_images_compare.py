"""The images benchmark of issue 3 (``add_images`` and ``zip_set``), this tree against another commit, back to back.

    python benchmarks/bench_images_compare.py --ref da192b3^ [--rounds 6] [--runs 3] [--images 2000]
        [--processes 1] [--backends sqlite,postgres] [--data-base PATH]

Issue 6 asks that the images benchmarks do not get slower. On a small shared machine one run of
``bench_images.py`` varies by more than the difference in question (±20 %; much of it is the kernel's time to
create files, which depends on what was deleted on the disk before), so this script measures both trees on the
same data, interleaved, and reports the ratio with its uncertainty:

* exports ``--ref``'s ``src/`` (``git archive``) into a temporary folder;
* generates the issue-3 workload once (``bench_images.make_images`` with ``aux.boxes``: 640x480 JPEGs of about
  75 KiB, sensor, timestamp, tags, three boxes as metadata);
* for each round, for each tree in turn (ABBA order across rounds, so a drift of the machine cancels): starts a
  fresh ``scenebase serve`` of that tree (the embedded SQLite catalog, or a new database in one throwaway
  PostgreSQL cluster from ``tests/servers.py``; the folder store in a new data folder; 2 job workers), runs
  ``add_images`` of the workload ``--runs`` times into new sets through that tree's own client (a child process
  with the tree's ``src`` on ``PYTHONPATH`` runs this script with ``--drive``), then ``zip_set`` of the last set;
* per run it records images/s (call to return), the server's user and system CPU seconds during the call (from
  /proc, over its process tree), the client's, and on PostgreSQL the cluster's own (its process tree).

Prints both trees' medians and the ratio this/ref of each median with a 95 % bootstrap interval (resampling the
rounds of each tree: runs of one round share a server start), and the median of paired ratios (the same round and
run of both trees: same workload, close in time, so the machine's drift cancels) with its interval (rounds
resampled); an interval wholly below 1.0 for images/s means this tree is slower. Writes
``benchmarks/results/images_compare.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import math
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import (  # noqa: E402
    SRC,
    TOKEN,
    child_env,
    machine,
    postgres_cluster,
    process_tree_cpu,
    serve_process,
    write_report,
)

RESULTS = HERE / "results"
JOB_TIMEOUT_S = 300.0
METRICS = {  # name: (label, True when higher is better)
    "images_per_s": ("add_images images/s", True),
    "server_cpu_s": ("server CPU s per run (user + system)", False),
    "server_user_s": ("server user CPU s per run", False),
    "server_system_s": ("server system CPU s per run", False),
    "client_cpu_s": ("client CPU s per run", False),
    "postgres_cpu_s": ("PostgreSQL's CPU s per run", False),
    "zip_s": ("zip_set s (submit to finished)", False),
    "zip_queue_s": ("zip job s in the queue", False),
    "zip_job_s": ("zip job s running", False),
}


# ---- the child: one tree's server and client --------------------------------------------------------------


def drive(
    src: Path,
    workload: Path,
    runs: int,
    processes: int,
    data_base: Path | None,
    catalog_url: str | None,
    postgres_pid: int | None,
) -> int:
    """Runs in a child whose ``PYTHONPATH`` starts with ``src``: that tree's client against that tree's server.
    Prints one JSON line per run."""
    import scenebase
    from scenebase.clients.scene_engine_client import SceneEngineClient
    from scenebase.models.assets import Image

    if not Path(scenebase.__file__).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"the driver imported {scenebase.__file__}, not the tree under {src}")
    with workload.open("rb") as fh:
        batches: list[list[dict[str, Any]]] = pickle.load(fh)  # written by the parent process
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-compare-", dir=data_base))
    env = {"SCENEBASE_WORKERS": "2", "SCENEBASE_PROCESSES": str(processes)}
    if catalog_url:
        env["SCENEBASE_CATALOG_URL"] = catalog_url
    try:
        with serve_process(tmp / "data", env, src=src) as (url, proc):
            client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
            client.whoami()
            set_id = ""
            for run in range(runs):
                images = [Image(**item) for item in batches[run % len(batches)]]
                set_id = client.create_set(f"compare {run}", "images")
                user0, system0 = process_tree_cpu(proc.pid)
                pg0 = sum(process_tree_cpu(postgres_pid)) if postgres_pid else 0.0
                client0, t0 = time.process_time(), time.perf_counter()
                ids = client.add_images(images, set_id)
                wall = time.perf_counter() - t0
                user1, system1 = process_tree_cpu(proc.pid)
                pg1 = sum(process_tree_cpu(postgres_pid)) if postgres_pid else 0.0
                client_cpu = time.process_time() - client0
                if len(ids) != len(images) or client.last_errors:
                    raise SystemExit(f"{len(ids)} of {len(images)} ingested: {client.last_errors[:3]}")
                line = {"run": run, "images": len(images), "seconds": round(wall, 3),
                        "images_per_s": round(len(images) / wall, 1), "server_user_s": round(user1 - user0, 2),
                        "server_system_s": round(system1 - system0, 2),
                        "server_cpu_s": round(user1 - user0 + system1 - system0, 2),
                        "client_cpu_s": round(client_cpu, 2),
                        **({"postgres_cpu_s": round(pg1 - pg0, 2)} if postgres_pid else {})}  # fmt: skip
                print(json.dumps(line), flush=True)
            t0 = time.perf_counter()
            job_id, _zip_id = client.zip_set(set_id)
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while True:
                status = client._request("GET", f"/v1/jobs/{job_id}").get("status")
                if status in ("finished", "aborted"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"zip job {job_id} did not finish in {JOB_TIMEOUT_S} s")
                time.sleep(0.02)
            zip_s = time.perf_counter() - t0
            if status != "finished":
                raise SystemExit(f"zip job {job_id} ended {status}")
            job = client._request("GET", f"/v1/jobs/{job_id}")
            created, started, finished = (_epoch(job.get(k)) for k in ("created_at", "started_at", "finished_at"))
            print(json.dumps({"zip_s": round(zip_s, 3), "zip_queue_s": round(started - created, 3),
                              "zip_job_s": round(finished - started, 3)}), flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _epoch(value: Any) -> float:
    """A job time as either tree stores it: epoch seconds or an ISO 8601 string."""
    return float(value) if isinstance(value, int | float) else dt.datetime.fromisoformat(str(value)).timestamp()


# ---- the parent: trees, rounds, statistics ----------------------------------------------------------------


def export_ref(ref: str, into: Path) -> Path:
    """``ref``'s ``src/`` folder, extracted under ``into``."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if commit.returncode != 0:
        raise SystemExit(f"--ref {ref!r} is not a commit of {ROOT}: {commit.stderr.strip()}")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit.stdout.strip(), "src"],
                             capture_output=True, check=True)  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def make_workload(images: int, runs: int, path: Path) -> float:
    """The issue-3 images, as keyword arguments both trees' ``Image`` take; returns the average JPEG KiB."""
    from bench_images import make_images

    batches, total = [], 0
    for run in range(runs):
        made, nbytes = make_images(images, run, aux_boxes=True)
        total += nbytes
        batches.append([{"id": im.id, "image_bytes": im.bytes, "sensor": im.sensor, "timestamp": im.timestamp,
                         "aux_metadata": im.aux_metadata, "tags": im.tags} for im in made])  # fmt: skip
    with path.open("wb") as fh:
        pickle.dump(batches, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return total / (images * runs) / 1024


def run_tree(
    src: Path, workload: Path, runs: int, processes: int, data_base: Path | None, postgres: Any, database: str
) -> list[dict[str, Any]]:
    args = [sys.executable, str(Path(__file__).resolve()), "--drive", str(src), "--workload", str(workload),
            "--runs", str(runs), "--processes", str(processes)]  # fmt: skip
    if data_base is not None:
        args += ["--data-base", str(data_base)]
    if postgres is not None:
        args += ["--catalog-url", postgres.create_database(database), "--postgres-pid", str(postgres.pid)]
    try:
        done = subprocess.run(args, env=child_env(src), capture_output=True, text=True, check=False, timeout=1800)
    finally:
        if postgres is not None:
            postgres.drop_database(database)
    if done.returncode != 0:
        tail = done.stdout[-2000:] + done.stderr[-3000:]
        raise SystemExit(f"the driver for {src} failed ({done.returncode}):\n{tail}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _resampled(groups: list[list[float]], rng: random.Random) -> list[float]:
    """The values of ``len(groups)`` groups drawn with replacement: runs of one round share a server start and the
    machine's state of that moment, so the round, not the run, is the independent unit (resampling runs made
    intervals too narrow: two runs of the same trees gave paired ratios of 0.90 [0.86, 0.94] and 0.98 [0.93,
    1.03])."""
    return [value for group in rng.choices(groups, k=len(groups)) for value in group]


def ratio_interval(this: list[list[float]], ref: list[list[float]], draws: int = 5000) -> tuple[float, float, float]:
    """median(this) / median(ref) of the runs, grouped by round, and a 95 % percentile-bootstrap interval (each
    tree's rounds resampled)."""
    rng = random.Random(0)
    ratios = sorted(
        statistics.median(_resampled(this, rng)) / statistics.median(_resampled(ref, rng)) for _ in range(draws)
    )
    whole = statistics.median([v for g in this for v in g]) / statistics.median([v for g in ref for v in g])
    return whole, ratios[int(0.025 * draws)], ratios[int(0.975 * draws)]


def paired_interval(ratios: list[list[float]], draws: int = 5000) -> tuple[float, float, float]:
    """The median of per-pair ratios (this/ref of the same round and run: same workload, neighbours in time),
    grouped by round, and a 95 % percentile-bootstrap interval (rounds resampled): the machine's drift between
    rounds cancels, so it separates smaller differences than the ratio of medians."""
    rng = random.Random(1)
    boots = sorted(statistics.median(_resampled(ratios, rng)) for _ in range(draws))
    return statistics.median([v for g in ratios for v in g]), boots[int(0.025 * draws)], boots[int(0.975 * draws)]


def _verdict(low: float, high: float, higher_better: bool) -> str:
    if (high < 1.0) if higher_better else (low > 1.0):
        return "worse"
    if (low > 1.0) if higher_better else (high < 1.0):
        return "better"
    return "no difference shown"


def _by_round(rows: list[dict[str, Any]], name: str) -> list[list[float]]:
    rounds: dict[int, list[float]] = {}
    for r in rows:
        if name in r:
            rounds.setdefault(r["round"], []).append(r[name])
    return list(rounds.values())


def summarize(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for name, (label, higher_better) in METRICS.items():
        this = [r[name] for r in results["this"] if name in r]
        ref = [r[name] for r in results["ref"] if name in r]
        if not this or not ref or 0 in (statistics.median(this), statistics.median(ref)):
            continue
        ratio, low, high = ratio_interval(_by_round(results["this"], name), _by_round(results["ref"], name))
        by_key = {(r["round"], r.get("run")): r[name] for r in results["ref"] if r.get(name)}
        ratios = [{"round": r["round"], name: r[name] / by_key[(r["round"], r.get("run"))]} for r in results["this"]
                  if name in r and (r["round"], r.get("run")) in by_key]  # fmt: skip
        pairs = _by_round(ratios, name)
        paired, plow, phigh = paired_interval(pairs) if pairs else (math.nan, math.nan, math.nan)
        out.append({"metric": name, "label": label, "this_median": statistics.median(this),
                    "ref_median": statistics.median(ref), "ratio": round(ratio, 3), "ratio_95": [round(low, 3),
                    round(high, 3)], "verdict": _verdict(low, high, higher_better), "paired_ratio": round(paired, 3),
                    "paired_95": [round(plow, 3), round(phigh, 3)],
                    "paired_verdict": _verdict(plow, phigh, higher_better) if pairs else None,
                    "samples": [len(this), len(ref), sum(map(len, pairs))], "rounds": len(pairs)})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="da192b3^", help="the commit to compare with (default da192b3^, the tree "
                        "before the asset-kind seam of issue 6)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=6, help="server starts per tree (default 6)")
    parser.add_argument("--runs", type=int, default=3, help="add_images runs per server start (default 3)")
    parser.add_argument("--images", type=int, default=2000, help="images per add_images call (default 2000)")
    parser.add_argument("--processes", type=int, default=1, help="scenebase serve processes (default 1)")
    parser.add_argument(
        "--data-base",
        type=Path,
        default=None,
        help="folder for the servers' data folders (default: the system's temporary folder)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "images_compare.json", help="results JSON")
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite, postgres (default sqlite)")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)  # the child, see drive()
    parser.add_argument("--workload", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--catalog-url", help=argparse.SUPPRESS)
    parser.add_argument("--postgres-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive is not None:
        return drive(args.drive, args.workload, args.runs, args.processes, args.data_base, args.catalog_url,
                     args.postgres_pid)  # fmt: skip
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite and/or postgres")
    if not 1 <= args.rounds <= 50 or not 1 <= args.runs <= 20 or not 1 <= args.images <= 100_000:
        parser.error("--rounds in [1, 50], --runs in [1, 20], --images in [1, 100000]")

    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-compare-"))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {b: {"this": [], "ref": []} for b in backends}
    try:
        trees = {"this": SRC, "ref": export_ref(args.ref, tmp / "ref")}
        workload = tmp / "workload.pickle"
        kib = make_workload(args.images, args.runs, workload)
        print(f"images compare: this tree ({ROOT}) against {args.ref}; {args.rounds} rounds x {args.runs} runs x "
              f"{args.images} JPEGs ({kib:.0f} KiB on average), {args.processes} server process(es)",
              flush=True)  # fmt: skip
        for backend in backends:
            with contextlib.ExitStack() as stack:
                # one cluster per backend run; run_tree gives each server start a database of its own
                postgres = stack.enter_context(postgres_cluster(tmp)) if backend == "postgres" else None
                for rnd in range(args.rounds):
                    for name in ["this", "ref"] if rnd % 2 == 0 else ["ref", "this"]:
                        lines = run_tree(trees[name], workload, args.runs, args.processes, args.data_base, postgres,
                                         f"compare_{rnd}_{name}")  # fmt: skip
                        results[backend][name] += [{"round": rnd, **line} for line in lines]
                        shown = ", ".join(f"{r['images_per_s']:,.0f} img/s ({r['server_cpu_s']:.2f} CPU s)"
                                          for r in lines if "images_per_s" in r)  # fmt: skip
                        zips = [r["zip_s"] for r in lines if "zip_s" in r]
                        print(f"  {backend} round {rnd} {name:<4}: {shown}; zip {zips[0] if zips else '-'} s",
                              flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary = {backend: summarize(results[backend]) for backend in backends}
    for backend in backends:
        print()
        print(f"{backend + ': metric':<38} {'this':>9} {'ref':>9} {'ratio':>6}  {'95 % interval':<15} "
              f"{'verdict':<20} {'paired':>6}  {'95 % interval':<15} verdict")  # fmt: skip
        for s in summary[backend]:
            low, high = s["ratio_95"]
            plow, phigh = s["paired_95"]
            print(f"{s['label']:<38} {s['this_median']:>9,.2f} {s['ref_median']:>9,.2f} {s['ratio']:>6.3f}  "
                  f"[{low:.3f}, {high:.3f}]   {s['verdict']:<20} {s['paired_ratio']:>6.3f}  "
                  f"[{plow:.3f}, {phigh:.3f}]   {s['paired_verdict']}")  # fmt: skip
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "load_average_at_start_1_5_15_min": load_at_start,
        "load_average_at_end_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "settings": {"ref": args.ref, "rounds": args.rounds, "runs": args.runs, "images": args.images,
                     "processes": args.processes, "backends": backends,
                     "data_base": str(args.data_base) if args.data_base else None},
        "summary": summary,
        "runs": results,
        "wall_seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
