"""What the unknown-field warnings cost a search (in-process, SQLite; the catalog of bench_search.py).

    python benchmarks/bench_search_warnings.py [--records N] [--runs 30]

Reuses (or generates) the ``bench_search.py`` image catalog of ``--records`` documents, then times:

* ``AssetRepo.field_names`` (the warnings' source: a loose index scan) against ``field_statistics`` (a full
  aggregation over every term), both uncached;
* the three-filter search of ``bench_search.py`` through ``AssetService.search``: outside a request (no
  warnings looked for), inside one with the field names cached, and inside one right after a write (cache
  cleared before every call: the worst case);
* a search with a misspelt field (the warning path, names cached).

Prints a table and writes ``benchmarks/results/search_warnings.json``. Every loop is bounded by ``--runs``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_search import SCOPE, sqlite_catalog, three_filter_query  # noqa: E402
from run import machine, write_report  # noqa: E402
from scenebase.services import request_warnings  # noqa: E402
from scenebase.services.assets import AssetService  # noqa: E402
from scenebase.services.cache import OrgCache  # noqa: E402
from scenebase.storage.asset_repo import AssetRepo  # noqa: E402
from scenebase.storage.catalog import Catalog  # noqa: E402


def _ms(call: Callable[[int], Any], runs: int, warmup: int = 3) -> dict[str, float]:
    for k in range(warmup):
        call(k)
    samples = []
    for k in range(runs):
        t0 = time.perf_counter()
        call(k)
        samples.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(samples), 3), "max_ms": round(max(samples), 3), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    started = time.monotonic()
    prepared = sqlite_catalog(args.records, regenerate=False)
    catalog = Catalog(prepared.url)
    catalog.migrate()
    repo = AssetRepo(catalog)
    service = AssetService(repo, OrgCache())
    runs = args.runs

    def search(k: int, query: dict[str, Any] | None = None) -> list[Any]:
        q = query or three_filter_query(k)
        return service.search(SCOPE, "images", q, size=50, sort_field="timestamp", sort_order="desc")

    def in_request(k: int, query: dict[str, Any] | None = None, cold: bool = False) -> list[str]:
        if cold:
            service.written(SCOPE, "images")
        with request_warnings.collecting() as box:
            search(k, query)
        return box

    misspelt = {"filters": [{"field": "sensr", "values": ["cam_front"]}, {"field": "aux.weather", "values": ["rain"]}]}
    assert in_request(0, misspelt) == ["no images asset has a field 'sensr'; closest known fields: 'sensor'"]
    rows = {
        "field_names (uncached)": _ms(lambda k: repo.field_names(SCOPE, "images"), runs),
        "field_statistics (uncached)": _ms(lambda k: repo.field_statistics(SCOPE, "images"), max(3, runs // 10), 1),
        "3-filter search, outside a request": _ms(search, runs),
        "3-filter search, in a request, names cached": _ms(in_request, runs),
        "3-filter search, in a request, after a write": _ms(lambda k: in_request(k, cold=True), runs),
        "misspelt-field search, in a request, names cached": _ms(lambda k: in_request(k, misspelt), runs),
    }
    catalog.dispose()
    print(f"\n{args.records:,} images, SQLite, in-process ({machine().get('cpus')} CPUs)")
    for name, row in rows.items():
        print(f"  {name:<52} median {row['median_ms']:>9.2f} ms   max {row['max_ms']:>9.2f} ms   ({row['runs']} runs)")
    report = {
        "date": dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "records": args.records,
        "fields": len(AssetRepo(Catalog(prepared.url)).field_names(SCOPE, "images")),
        "timings": rows,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    write_report(HERE / "results" / "search_warnings.json", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
