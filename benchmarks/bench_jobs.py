"""What fair job claims and bounded failure reporting cost (in-process, SQLite catalog in a temp folder).

    python benchmarks/bench_jobs.py [--queued 100,10000,100000] [--orgs 10] [--claims 50] [--failures 200000]

* ``JobRepo.system_claim_next`` (one claim: organizations with queued jobs, their running counts, last start,
  the chosen organization's oldest job; one write transaction) with ``--queued`` jobs queued across ``--orgs``
  organizations, each with 1,000 finished jobs of history; the median of ``--claims`` claims.
* A handler reporting ``--failures`` failed items through ``JobContext.item_failed`` (ten notes, then counted),
  then finishing: wall time, notes kept, catalog + WAL bytes. The old path wrote one note per item, each
  rewriting the whole list (200k notes filled a 287 MB WAL in issue 8.6).

Prints a table and writes ``benchmarks/results/jobs.json``. Every loop is bounded by its arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import machine, write_report  # noqa: E402
from scenebase.domain.ids import new_id  # noqa: E402
from scenebase.services.job_context import JobContext  # noqa: E402
from scenebase.services.jobs import JobService  # noqa: E402
from scenebase.storage.catalog import Catalog  # noqa: E402
from scenebase.storage.job_repo import FINISHED, QUEUED, RUNNING, JobRepo  # noqa: E402
from scenebase.storage.scope import Scope  # noqa: E402
from scenebase.storage.tables import jobs  # noqa: E402

HISTORY_PER_ORG = 1000
JOB_TYPES = ["integration_test"]


def _rows(count: int, orgs: int, status: str, start: float) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        t = start + i * 1e-3
        out.append({"id": new_id(), "owner": f"org_{i % orgs}", "user": "bench", "job_type": "integration_test",
                    "driven_by": "server", "status": status, "progress": 0.0, "notes": [], "tags": [], "params": {},
                    "attempts": 0, "max_attempts": 2, "created_at": t, "updated_at": t,
                    "started_at": t if status == FINISHED else None})  # fmt: skip
    return out


def bench_claims(folder: Path, queued: int, orgs: int, claims: int) -> dict[str, Any]:
    catalog = Catalog(f"sqlite:///{folder / f'claims_{queued}.db'}")
    catalog.migrate()
    repo = JobRepo(catalog)
    with catalog.write() as c:
        history = _rows(HISTORY_PER_ORG * orgs, orgs, FINISHED, time.time() - 3600)
        for part in range(0, len(history), 5000):
            c.execute(insert(jobs), history[part : part + 5000])
        waiting = _rows(queued, orgs, QUEUED, time.time())
        for part in range(0, len(waiting), 5000):
            c.execute(insert(jobs), waiting[part : part + 5000])
    times = []
    for _ in range(claims):
        t0 = time.perf_counter()
        outcome = repo.system_claim_next(new_id(), "bench:1", 30.0, JOB_TYPES)
        times.append((time.perf_counter() - t0) * 1000)
        assert outcome.job is not None and outcome.job["status"] == RUNNING
        with catalog.write() as c:  # finish it and queue another: the backlog keeps its size, the history grows
            c.execute(update(jobs).where(jobs.c.id == outcome.job["id"]).values(status=FINISHED))
            c.execute(insert(jobs), [{**_rows(1, 1, QUEUED, time.time())[0], "owner": outcome.job["owner"]}])
    catalog.dispose()
    return {"queued": queued, "orgs": orgs, "claims": claims, "median_ms": round(statistics.median(times), 2),
            "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 2)}  # fmt: skip


def bench_failures(folder: Path, failures: int) -> dict[str, Any]:
    path = folder / "failures.db"
    catalog = Catalog(f"sqlite:///{path}")
    catalog.migrate()
    repo = JobRepo(catalog)
    service = JobService(repo)
    row = repo.create(Scope.of("org", username="bench"), new_id(), job_type="set_addition", params={})
    job = repo.system_claim(row["id"], "claim", "bench:1", 30.0)
    assert job is not None
    ctx = JobContext(job=job, scope=Scope.of("org"), _service=service, _claim="claim")
    t0 = time.perf_counter()
    for i in range(failures):
        ctx.item_failed(f"ghost_{i:07d}", "no images with this id")
    service._finish(ctx, {"requested": failures, "added": 0})
    seconds = time.perf_counter() - t0
    stored = repo.system_get(row["id"]) or {}
    size = sum(p.stat().st_size for p in folder.glob("failures.db*"))
    catalog.dispose()
    kept = len((stored.get("result") or {}).get("failed") or [])
    return {"failures": failures, "seconds": round(seconds, 2), "notes": len(stored.get("notes") or []),
            "failed_ids_kept": kept, "catalog_bytes": size}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queued", default="100,10000,100000", help="queued jobs per run, comma-separated")
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--failures", type=int, default=200_000)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "jobs.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scenebase-bench-jobs-") as tmp:
        claim_runs = [bench_claims(Path(tmp), int(q), args.orgs, args.claims) for q in args.queued.split(",")]
        failure_run = bench_failures(Path(tmp), args.failures)
    print(f"{'queued':>8} {'orgs':>5} {'claims':>7} {'median ms':>10} {'p90 ms':>8}")
    for r in claim_runs:
        print(f"{r['queued']:>8} {r['orgs']:>5} {r['claims']:>7} {r['median_ms']:>10} {r['p90_ms']:>8}")
    f = failure_run
    print(f"\n{f['failures']} failed items: {f['seconds']} s, {f['notes']} notes, {f['failed_ids_kept']} ids kept, "
          f"catalog + WAL {f['catalog_bytes'] / 1e6:.1f} MB")  # fmt: skip
    report = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
              "claims": claim_runs, "failures": failure_run,
              "wall_seconds": round(time.monotonic() - started, 1)}  # fmt: skip
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
