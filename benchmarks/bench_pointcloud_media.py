"""Cost of the point-cloud media library (scenebase.media.pointcloud) per file, in-process, no server.

    python benchmarks/bench_pointcloud_media.py [--points 100000] [--files 20] [--repeat 5]

Generates ``--files`` LIDAR-like scans of ``--points`` points each (rings of a spinning sensor around a smooth
scene, coordinates rounded to 1 cm, 8-bit intensities, so that binary_compressed really compresses) and writes
each as binary, binary_compressed and ascii PCD (with pypcd4), as a raw float32 numpy buffer, a ``.npy`` file and
a KITTI ``.bin`` into a temporary folder. Then, ``--repeat`` times over all files of a kind, from the path
(so the file read is included, from the page cache):

* ``probe_pointcloud``: ms per file (median and best of the repeats) and files/s;
* ``read_points``: ms per file;
* ``rendition`` of a binary PCD for skip factors 1, 10 and 100, gzip-compressed and not: ms and output size.

Prints a table and writes ``benchmarks/results/pointcloud_media.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

import pypcd4  # noqa: E402

from run import machine, write_report  # noqa: E402
from scenebase.media.pointcloud import probe_pointcloud, read_points, rendition  # noqa: E402

RESULTS = HERE / "results"
SKIP_FACTORS = (1, 10, 100)


def lidar_scan(points: int, seed: int) -> npt.NDArray[np.float32]:
    """(points, 4) float32 x, y, z, intensity of a 64-ring scan; rings * azimuths >= points, cut to ``points``."""
    rng = np.random.default_rng(seed)
    rings = 64
    azimuths = -(-points // rings)
    theta = np.linspace(-np.pi, np.pi, azimuths, endpoint=False)[None, :]
    elevation = np.linspace(-0.43, 0.03, rings)[:, None]
    distance = 12 + 6 * np.sin(3 * theta + seed) + rng.normal(0, 0.03, (rings, azimuths))
    x = distance * np.cos(elevation) * np.cos(theta)
    y = distance * np.cos(elevation) * np.sin(theta)
    z = np.broadcast_to(distance * np.sin(elevation), x.shape)
    intensity = rng.integers(0, 256, (rings, azimuths)) / 255
    table = np.stack([a.ravel() for a in (x, y, z, intensity)], axis=1)[:points]
    table[:, :3] = np.round(table[:, :3], 2)
    return table.astype(np.float32)


def write_files(folder: Path, points: int, files: int) -> dict[str, list[tuple[Path, dict[str, Any]]]]:
    kinds: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for i in range(files):
        scan = lidar_scan(points, seed=i)
        cloud = pypcd4.PointCloud.from_xyzi_points(scan)
        for encoding in ("binary", "binary_compressed", "ascii"):
            path = folder / f"{i:03d}_{encoding}.pcd"
            cloud.save(path, encoding=pypcd4.Encoding(encoding))
            kinds.setdefault(f"pcd {encoding}", []).append((path, {"format": "pcd"}))
        raw = folder / f"{i:03d}_raw.bin"
        raw.write_bytes(scan.tobytes())
        kinds.setdefault("numpy raw (num_fields=4)", []).append((raw, {"format": "numpy", "num_fields": 4}))
        npy = folder / f"{i:03d}.npy"
        np.save(npy, scan)
        kinds.setdefault("numpy .npy", []).append((npy, {"format": "numpy"}))
        kinds.setdefault("kitti .bin", []).append((raw, {"format": "kitti"}))
    return kinds


def per_file_ms(
    call: Callable[[Path, dict[str, Any]], object], items: list[tuple[Path, dict[str, Any]]], repeat: int
) -> list[float]:
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for path, kwargs in items:
            call(path, kwargs)
        rounds.append((time.perf_counter() - start) * 1000 / len(items))
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "pointcloud_media",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "points": args.points,
        "files": args.files,
        "repeat": args.repeat,
        "probe": [],
        "rendition": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-pointcloud-") as tmp:
        kinds = write_files(Path(tmp), args.points, args.files)
        print(f"{args.files} files of {args.points} points per kind; ms per file, median (best) of {args.repeat}\n")
        print(f"{'kind':28} {'size MB':>8} {'probe ms':>16} {'files/s':>8} {'read_points ms':>16}")
        for kind, items in kinds.items():
            items[0][0].read_bytes()  # warm the page cache and the code paths
            probe_pointcloud(items[0][0], **items[0][1])
            repeat = max(1, args.repeat // 5) if "ascii" in kind else args.repeat
            probe = per_file_ms(lambda p, kw: probe_pointcloud(p, **kw), items, repeat)
            read = per_file_ms(lambda p, kw: read_points(p, **kw), items, repeat)
            size_mb = items[0][0].stat().st_size / 1e6
            row = {
                "kind": kind,
                "size_mb": round(size_mb, 2),
                "probe_ms_median": round(statistics.median(probe), 3),
                "probe_ms_best": round(min(probe), 3),
                "probe_files_per_s": round(1000 / statistics.median(probe)),
                "read_points_ms_median": round(statistics.median(read), 3),
            }
            report["probe"].append(row)
            print(
                f"{kind:28} {size_mb:8.2f} {row['probe_ms_median']:8.2f} ({row['probe_ms_best']:5.2f}) "
                f"{row['probe_files_per_s']:8} {row['read_points_ms_median']:8.2f}"
            )

        print(f"\nrendition of a {args.points}-point binary PCD, from the path; ms median (best) of {args.repeat}\n")
        print(f"{'skip':>5} {'gzip':>5} {'ms':>16} {'bytes':>10}")
        path = kinds["pcd binary"][0][0]
        for skip in SKIP_FACTORS:
            for compress in (True, False):
                times = []
                size = 0
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    size = len(rendition(path, skip, compress))
                    times.append((time.perf_counter() - start) * 1000)
                row = {
                    "skip_factor": skip,
                    "gzip": compress,
                    "ms_median": round(statistics.median(times), 3),
                    "ms_best": round(min(times), 3),
                    "bytes": size,
                }
                report["rendition"].append(row)
                print(f"{skip:5} {compress!s:>5} {row['ms_median']:8.2f} ({row['ms_best']:5.2f}) {size:10}")
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_report(RESULTS / "pointcloud_media.json", report)


if __name__ == "__main__":
    main()
