"""What the limits cost: document checks per write, decode memory against its estimate, and one sweep.

    python benchmarks/bench_limits.py [--quick]

* ``check_document`` on a typical ingest document (40 metadata values) and on a 256 KiB one;
* peak memory of one thumbnail of a 16-bit grayscale PNG (the issue's decompression bomb, scaled down to
  4000x4000 so it runs anywhere), measured in a child process, next to the estimate the decode budget reserves;
* one sweep over a folder blob store of N blobs, half of them unreferenced and old.

Prints figures; nothing is asserted (timings belong here, not in tests).
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from scenebase.domain.metadata import check_document  # noqa: E402
from scenebase.storage.scope import Scope  # noqa: E402
from scenebase.testing import InProcessServer  # noqa: E402

# VmHWM, not ru_maxrss: a child started from a large process inherits its parent's ru_maxrss
_PEAK = """
import sys
from scenebase.media import images
def high_water():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
data = open(sys.argv[1], "rb").read()
estimate = images.decode_estimate(data, (300, 300))
before = high_water()
images.make_thumbnail(data, (300, 300))
print(estimate, high_water() - before)
"""


def bench_documents(rounds: int) -> None:
    typical = {"id": "img_1", "timestamp": "2024-01-01T00:00:00+00:00", "sensor": "cam", "tags": ["a", "b"],
               "aux": {f"k{i}": {"v": i, "s": f"value {i}"} for i in range(12)}, "sets": ["s1"]}  # fmt: skip
    large = {"aux": {f"k{i}": "x" * 240 for i in range(1000)}}
    for label, doc in (("typical (40 values)", typical), ("256 KiB (1,000 values)", large)):
        start = time.perf_counter()
        for _ in range(rounds):
            check_document(doc)
        per = (time.perf_counter() - start) / rounds
        print(f"check_document {label:24s} {per * 1e6:9.1f} us per document")


def gray16_png(width: int, height: int) -> bytes:
    """A uniform 16-bit grayscale PNG, compressed row by row (the shape of the issue's bomb; not black, so that the
    decoded pages are really written)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\0" + b"\x12\x34" * width) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bench_decode(side: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gray16.png"
        path.write_bytes(gray16_png(side, side))
        out = subprocess.run(
            [sys.executable, "-c", _PEAK, str(path)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        ).stdout.split()
        estimate, peak = int(out[0]), int(out[1])
        size = path.stat().st_size
    print(f"thumbnail of a {side}x{side} 16-bit PNG ({size / 1024:.0f} KiB): peak {peak / 2**20:.0f} MiB, "
          f"reserved {estimate / 2**20:.0f} MiB ({peak / (side * side):.1f} bytes per pixel)")  # fmt: skip


def bench_sweep(blobs: int) -> None:
    from scenebase.services.sweeper import Sweeper

    with tempfile.TemporaryDirectory() as tmp, InProcessServer(Path(tmp) / "data", workers=0) as server:
        rt = server.runtime
        docs = []
        for i in range(blobs):
            key = f"images/{i}.png"
            rt.blobs.put(key, b"x")
            if i % 2 == 0:
                docs.append({"id": f"img-{i}", "object_access": {"key": key}})
        scope = Scope.of("default", username="admin")
        for start in range(0, len(docs), 500):
            rt.assets.put(scope, "images", docs[start : start + 500])
        sweeper = Sweeper(rt.catalog, rt.blobs, rt.settings.data_dir, 3600, 0, system_temp=Path(tmp) / "none")
        began = time.perf_counter()
        report = sweeper.sweep(now=time.time() + 7200)
        took = time.perf_counter() - began
    print(f"sweep of {blobs} blobs ({len(docs)} referenced): removed {len(report.blobs_removed)} in {took:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, {sys.platform}, python {sys.version.split()[0]}")
    bench_documents(200 if args.quick else 2000)
    bench_decode(1500 if args.quick else 4000)
    bench_sweep(500 if args.quick else 10_000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
