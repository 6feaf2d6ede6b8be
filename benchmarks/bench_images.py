"""Image ingestion (``add_images``) and ``zip_set`` throughput of ``scenebase serve`` on loopback (issue 3).

    python benchmarks/bench_images.py [--images 2000] [--repeat 3] [--backends sqlite,postgres]

Generates ``--images`` 640x480 JPEGs up front, in memory (a textured background and three filled rectangles
each, the rectangles also given as a ``BoundingBoxAnnotation`` of three boxes per image, added by ``add_images``
after the images and linked to them), then per backend starts ``scenebase serve`` (defaults: 2 job workers, blobs
in the data folder; SQLite is the embedded catalog, PostgreSQL a throwaway cluster from ``tests/servers.py`` as
``SCENEBASE_CATALOG_URL``) and, ``--repeat`` times, each time into a new set:

* ``client.add_images(images, set_id)``: images/s from the call to its return (100 images per request, 4 in
  flight, as the client does; then their annotations, 500 per request);
* ``client.zip_set(set_id)`` and polling the job every 20 ms until it finishes: seconds from the call to the
  observed end, with the server's own queue wait and run time from the job document. The zip is then
  downloaded (not timed) and its entries counted.

Prints a table and writes ``benchmarks/results/images.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import io
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

from PIL import Image as PILImage  # noqa: E402
from PIL import ImageDraw  # noqa: E402

from run import TOKEN, machine, serve_process, with_postgres, write_report  # noqa: E402
from scenebase.clients.scene_engine_client import SceneEngineClient  # noqa: E402
from scenebase.models.annotation import BoundingBox, BoundingBoxAnnotation  # noqa: E402
from scenebase.models.assets import Image  # noqa: E402

RESULTS = HERE / "results"
WIDTH, HEIGHT = 640, 480
SEED = 3
LABELS = ["car", "truck", "pedestrian", "cyclist", "bus", "traffic_sign"]
SENSORS = ["cam_front", "cam_front_left", "cam_front_right", "cam_rear"]
INGEST_TARGET = 1000.0  # images/s
ZIP_TARGET_S = 3.0
JOB_TIMEOUT_S = 300.0


# ---- the images ---------------------------------------------------------------------------------------


def _backgrounds(rng: random.Random, n: int) -> list[PILImage.Image]:
    """``n`` textured 640x480 backgrounds (gradients plus sensor-like noise): realistic JPEG sizes."""
    out = []
    for _ in range(n):
        grad = PILImage.linear_gradient("L").resize((WIDTH, HEIGHT)).rotate(rng.choice([0, 90, 180, 270]))
        grad = grad.resize((WIDTH, HEIGHT))
        noise = PILImage.effect_noise((WIDTH, HEIGHT), rng.uniform(20, 40))
        r = PILImage.blend(grad, noise, 0.35)
        g = PILImage.blend(grad.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT), noise, 0.25)
        b = PILImage.blend(grad.transpose(PILImage.Transpose.FLIP_TOP_BOTTOM), noise, 0.3)
        out.append(PILImage.merge("RGB", (r, g, b)))
    return out


def _aux_box(b: BoundingBox) -> dict[str, Any]:
    return {"label": b.label, "x": b.x_min, "y": b.y_min, "w": b.x_max - b.x_min, "h": b.y_max - b.y_min}


def make_images(n: int, run: int, aux_boxes: bool = False) -> tuple[list[Image], int]:
    """``n`` images (JPEG bytes in memory, three boxes each) with ids unique to ``run``; and their total bytes.
    ``aux_boxes``: the boxes as ``aux.boxes`` metadata instead of annotations (the issue-3 workload, to compare)."""
    rng = random.Random(SEED * 1000 + run)
    backgrounds = _backgrounds(rng, 16)
    base = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
    images: list[Image] = []
    total = 0
    for i in range(n):
        img = backgrounds[i % len(backgrounds)].copy()
        draw = ImageDraw.Draw(img)
        boxes = []
        for _ in range(3):
            w, h = rng.randint(40, 220), rng.randint(30, 160)
            x, y = rng.randint(0, WIDTH - w - 1), rng.randint(0, HEIGHT - h - 1)
            color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            draw.rectangle((x, y, x + w, y + h), fill=color, outline=(255, 255, 255), width=3)
            boxes.append(BoundingBox(label=rng.choice(LABELS), x_min=x, x_max=x + w, y_min=y, y_max=y + h))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        data = buf.getvalue()
        total += len(data)
        image_id = f"bench-{run}-{i:05d}"
        images.append(
            Image(
                id=image_id,
                image_bytes=data,
                sensor=rng.choice(SENSORS),
                timestamp=base + dt.timedelta(seconds=i / 10),
                aux_metadata={
                    "weather": rng.choice(["clear", "rain", "fog"]),
                    "frame": i,
                    **({"boxes": [_aux_box(b) for b in boxes]} if aux_boxes else {}),
                },
                tags=["benchmark"],
                annotations=None if aux_boxes else [BoundingBoxAnnotation(boxes, image_id=image_id, provider="bench")],
            )
        )
    return images, total


# ---- the measurements ---------------------------------------------------------------------------------


@dataclass
class Run:
    backend: str
    run: int
    images: int
    mib: float
    ingest_s: float
    images_per_s: float
    mib_per_s: float
    zip_s: float
    zip_queue_s: float | None
    zip_job_s: float | None
    zip_mib: float
    zip_entries: int


def _wait_job(client: SceneEngineClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        doc = client._request("GET", f"/v1/jobs/{job_id}")
        if doc.get("status") in ("finished", "aborted"):
            if doc["status"] != "finished":
                raise RuntimeError(f"job {job_id} ended {doc['status']}: {doc.get('notes')}")
            return dict(doc)
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not finish in {JOB_TIMEOUT_S} s")


def _job_seconds(doc: dict[str, Any]) -> tuple[float | None, float | None]:
    """(queue wait, run time) from the job document's times (epochs or ISO strings)."""
    from scenebase.domain.timeutil import to_epoch

    def t(key: str) -> float | None:
        value = doc.get(key)
        return None if value is None else to_epoch(value)

    created, started, finished = t("created_at"), t("started_at"), t("finished_at")
    queue = None if created is None or started is None else round(started - created, 3)
    work = None if started is None or finished is None else round(finished - started, 3)
    return queue, work


def bench_backend(
    backend: str, extra_env: dict[str, str], batches: list[tuple[list[Image], int]], tmp: Path, processes: int = 1
) -> list[Run]:
    out: list[Run] = []
    workdir = tmp / backend
    workdir.mkdir()
    env = {"SCENEBASE_WORKERS": "2", "SCENEBASE_PROCESSES": str(processes), **extra_env}
    with serve_process(workdir / "data", env) as (url, _proc):
        client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
        client.whoami()  # version check and keep-alive connection, not timed
        for run, (images, nbytes) in enumerate(batches):
            set_id = client.create_set(f"bench images {run}", "images")
            t0 = time.perf_counter()
            ids = client.add_images(images, set_id)
            ingest_s = time.perf_counter() - t0
            if len(ids) != len(images) or client.last_errors:
                raise SystemExit(f"{backend}: {len(ids)} of {len(images)} ingested: {client.last_errors[:3]}")
            count = client.get_set_status(set_id)["count"]
            if count != len(images):
                raise SystemExit(f"{backend}: the set holds {count} images, expected {len(images)}")

            t0 = time.perf_counter()
            job_id, zip_id = client.zip_set(set_id)
            job = _wait_job(client, job_id)
            zip_s = time.perf_counter() - t0
            queue_s, job_s = _job_seconds(job)
            buf = client.download_zipfile(zip_id)
            assert isinstance(buf, io.BytesIO)
            zip_bytes = len(buf.getbuffer())
            with zipfile.ZipFile(buf) as zf:
                names = zf.namelist()
            n_files = sum(1 for n in names if "/assets/" in n)
            if n_files != len(images):
                raise SystemExit(f"{backend}: the zip holds {n_files} image files, expected {len(images)}")
            mib = nbytes / 2**20
            r = Run(backend, run, len(images), round(mib, 1), round(ingest_s, 3), round(len(images) / ingest_s, 1),
                    round(mib / ingest_s, 1), round(zip_s, 3), queue_s, job_s, round(zip_bytes / 2**20, 1),
                    len(names))  # fmt: skip
            print(f"  {backend:<9} run {run}: add_images {r.images_per_s:,.0f} img/s ({ingest_s:.2f} s), "
                  f"zip_set {zip_s:.2f} s", flush=True)  # fmt: skip
            out.append(r)
    return out


# ---- report -------------------------------------------------------------------------------------------


def table(runs: list[Run]) -> str:
    head = ("backend", "run", "images", "MiB", "ingest s", "images/s", "MiB/s", "zip s", "zip queue s", "zip job s",
            "zip MiB")  # fmt: skip
    rows = [(r.backend, str(r.run), str(r.images), f"{r.mib:.1f}", f"{r.ingest_s:.2f}", f"{r.images_per_s:,.0f}",
             f"{r.mib_per_s:.1f}", f"{r.zip_s:.2f}", f"{r.zip_queue_s}", f"{r.zip_job_s}", f"{r.zip_mib:.1f}")
            for r in runs]  # fmt: skip
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 1 else c.rjust(w) for i, (c, w) in cells)

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    out = []
    for backend in dict.fromkeys(r.backend for r in runs):
        rs = [r for r in runs if r.backend == backend]
        ips = statistics.median(r.images_per_s for r in rs)
        zs = statistics.median(r.zip_s for r in rs)
        out.append({
            "backend": backend, "runs": len(rs),
            "ingest_images_per_s_median": round(ips, 1), "ingest_images_per_s_best": max(r.images_per_s for r in rs),
            "ingest_target_images_per_s": INGEST_TARGET, "ingest_met": ips >= INGEST_TARGET,
            "zip_s_median": round(zs, 3), "zip_s_best": min(r.zip_s for r in rs),
            "zip_target_s": ZIP_TARGET_S, "zip_met": zs <= ZIP_TARGET_S,
        })  # fmt: skip
    return out


@contextlib.contextmanager
def _backends(names: list[str], tmp: Path) -> Iterator[list[tuple[str, dict[str, str]]]]:
    with contextlib.ExitStack() as stack:
        out: list[tuple[str, dict[str, str]]] = []
        for name in names:
            if name == "sqlite":
                out.append(("sqlite", {}))
            else:
                url = stack.enter_context(with_postgres(tmp))
                out.append(("postgres", {"SCENEBASE_CATALOG_URL": url}))
        yield out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="images per add_images call (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="add_images + zip_set runs per backend (default 3)")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--output", type=Path, default=RESULTS / "images.json", help="results JSON")
    parser.add_argument("--processes", type=int, default=1, help="scenebase serve processes (default 1)")
    parser.add_argument(
        "--aux-boxes", action="store_true", help="boxes as aux metadata, no annotations (the issue-3 workload)"
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite and/or postgres")
    if not 1 <= args.images <= 100_000 or not 1 <= args.repeat <= 20:
        parser.error("--images in [1, 100000], --repeat in [1, 20]")

    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    t0 = time.monotonic()
    batches = [make_images(args.images, run, args.aux_boxes) for run in range(args.repeat)]
    gen_s = time.monotonic() - t0
    avg_kib = sum(n for _, n in batches) / (args.images * args.repeat) / 1024
    print(f"scenebase images benchmark: {args.repeat} x {args.images} JPEGs {WIDTH}x{HEIGHT}, {avg_kib:.0f} KiB "
          f"on average, generated in {gen_s:.1f} s", flush=True)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-images-"))
    runs: list[Run] = []
    try:
        with _backends(backends, tmp) as servers:
            for name, env in servers:
                runs += bench_backend(name, env, batches, tmp, args.processes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary = summarize(runs)
    print()
    print(table(runs))
    print()
    for s in summary:
        print(
            f"{s['backend']}: add_images median {s['ingest_images_per_s_median']:,.0f} images/s "
            f"(target >= {INGEST_TARGET:,.0f}: {'met' if s['ingest_met'] else 'MISSED'}), zip_set median "
            f"{s['zip_s_median']:.2f} s (target <= {ZIP_TARGET_S:.0f} s: {'met' if s['zip_met'] else 'MISSED'})"
        )
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "load_average_at_start_1_5_15_min": load_at_start,
        "load_average_at_end_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "settings": {"images": args.images, "repeat": args.repeat, "backends": backends, "width": WIDTH,
                     "height": HEIGHT, "average_jpeg_kib": round(avg_kib, 1), "server_workers": 2,
                     "server_processes": args.processes},
        "summary": summary,
        "runs": [asdict(r) for r in runs],
        "wall_seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
