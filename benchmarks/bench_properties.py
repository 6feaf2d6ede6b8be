"""Image properties (mean_brightness, rms_contrast, variance_of_laplacian; FACTS 12) on 1280x720 JPEGs (issue 7).

    python benchmarks/bench_properties.py [--images 400] [--repeat 3] [--skip-job]

Generates ``--images`` 1280x720 JPEGs (quality 90, a road-scene-like gradient with texture, sensor noise and a few
boxes: about 200 KiB each, like camera frames) in memory, then measures, ``--repeat`` times each:

* the library, ``image_properties(data, all three)``: images/s in one thread and in one thread per core (the job's
  pool size), and, for comparison, the plain float64 numpy formulas (the implementation before issue 7) in one
  thread. The values of both are compared image by image (largest relative difference printed);
* the job, through ``scenebase serve`` (SQLite catalog, blobs in the data folder, one job worker): the images are
  ingested first (not timed), then ``client.image_properties_enrichment(ids=...)`` and polling the job every 20 ms
  (every 100 ms) until it finishes: images/s from the call to the observed end, and from the job's own run time
  (started to finished, as the server records them). The stored ``aux`` values are checked against the library's.

Every measurement also records CPU milliseconds per image (this process's threads for the library, the server
process for the job): on a machine shared with other work, images/s follow the load average, CPU time much less;
``cores * 1000 / CPU ms`` is the throughput the job reaches when its cores are its own.

Prints a table and writes ``benchmarks/results/properties.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
from PIL import Image as PILImage  # noqa: E402
from PIL import ImageDraw, ImageFilter  # noqa: E402

from bench_images import JOB_TIMEOUT_S, _job_seconds  # noqa: E402
from run import TOKEN, machine, serve_process, write_report  # noqa: E402
from scenebase.clients.scene_engine_client import SceneEngineClient  # noqa: E402
from scenebase.media.images import PROPERTY_NAMES, image_properties  # noqa: E402
from scenebase.models.assets import Image  # noqa: E402
from scenebase.services.images import PROPERTY_THREADS  # noqa: E402

RESULTS = HERE / "results"
WIDTH, HEIGHT = 1280, 720
SEED = 7
TARGET = 200.0  # images/s through the job
#: how often the job is polled: each poll is a request the server answers on the same two cores
POLL_S = 0.1


# ---- the images ---------------------------------------------------------------------------------------


def make_jpegs(n: int) -> list[bytes]:
    """``n`` distinct camera-like 1280x720 JPEGs: 8 textured scenes, each frame with its own boxes and noise."""
    rng = random.Random(SEED)
    scenes = []
    for _ in range(8):
        sky = PILImage.linear_gradient("L").resize((WIDTH, HEIGHT))
        texture = PILImage.effect_noise((WIDTH // 4, HEIGHT // 4), rng.uniform(40, 70)).resize((WIDTH, HEIGHT))
        texture = texture.filter(ImageFilter.GaussianBlur(1.5))
        r = PILImage.blend(sky, texture, 0.45)
        g = PILImage.blend(sky.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT), texture, 0.4)
        b = PILImage.blend(sky.transpose(PILImage.Transpose.FLIP_TOP_BOTTOM), texture, 0.5)
        scenes.append(PILImage.merge("RGB", (r, g, b)))
    out = []
    for i in range(n):
        img = scenes[i % len(scenes)].copy()
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            w, h = rng.randint(40, 300), rng.randint(30, 200)
            x, y = rng.randint(0, WIDTH - w - 1), rng.randint(0, HEIGHT - h - 1)
            draw.rectangle((x, y, x + w, y + h), fill=tuple(rng.randrange(256) for _ in range(3)))
        noise = PILImage.effect_noise((WIDTH, HEIGHT), 12).convert("RGB")
        img = PILImage.blend(img, noise, 0.08)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def plain_float64_properties(data: bytes) -> dict[str, float]:
    """The FACTS 12 formulas written plainly in float64 numpy, one pass per operation (the code before issue 7)."""
    with PILImage.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    y = 0.2989 * rgb[..., 0].astype(np.float64)
    y += 0.5870 * rgb[..., 1]
    y += 0.1140 * rgb[..., 2]
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]
    return {"mean_brightness": float(y.mean()), "rms_contrast": float((y / 255.0).std()),
            "variance_of_laplacian": float(lap.var())}  # fmt: skip


def max_relative_difference(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        for key in PROPERTY_NAMES:
            worst = max(worst, abs(x[key] - y[key]) / max(abs(y[key]), 1e-300))
    return worst


# ---- the measurements ---------------------------------------------------------------------------------


@dataclass
class Measure:
    what: str
    threads: int
    run: int
    images: int
    seconds: float
    images_per_s: float
    #: CPU time (all threads; for the job, the server process) per image: what other load on the machine cannot
    #: inflate much, unlike the wall clock
    cpu_ms_per_image: float
    job_run_s: float | None = None


def process_cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of this process (or ``pid``), all threads."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_library(jpegs: list[bytes], repeat: int) -> tuple[list[Measure], float]:
    out: list[Measure] = []

    def compute(data: bytes) -> dict[str, float]:
        return image_properties(data, PROPERTY_NAMES)

    fast = [compute(d) for d in jpegs]  # warm-up, and the values to compare
    plain = [plain_float64_properties(d) for d in jpegs[:50]]
    worst = max_relative_difference(fast[:50], plain)
    cases: list[tuple[str, int, Any]] = [("library", 1, compute), ("library", PROPERTY_THREADS, compute),
                                         ("plain float64", 1, plain_float64_properties)]  # fmt: skip
    for what, threads, fn in cases:
        for run in range(repeat):
            with ThreadPoolExecutor(threads) as pool:
                t0, cpu0 = time.perf_counter(), process_cpu_s()
                results = list(pool.map(fn, jpegs))
                seconds, cpu = time.perf_counter() - t0, process_cpu_s() - cpu0
            if len(results) != len(jpegs):
                raise SystemExit(f"{what}: {len(results)} results for {len(jpegs)} images")
            m = Measure(what, threads, run, len(jpegs), round(seconds, 3), round(len(jpegs) / seconds, 1),
                        round(1000 * cpu / len(jpegs), 2))  # fmt: skip
            print(f"  {what:<13} {threads} thread(s) run {run}: {m.images_per_s:,.0f} images/s, "
                  f"{m.cpu_ms_per_image:.1f} CPU ms/image", flush=True)  # fmt: skip
            out.append(m)
    return out, worst


def wait_job(client: SceneEngineClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        doc = client._request("GET", f"/v1/jobs/{job_id}")
        if doc.get("status") in ("finished", "aborted"):
            if doc["status"] != "finished":
                raise RuntimeError(f"job {job_id} ended {doc['status']}: {doc.get('notes')}")
            return dict(doc)
        time.sleep(POLL_S)
    raise TimeoutError(f"job {job_id} did not finish in {JOB_TIMEOUT_S} s")


def bench_job(jpegs: list[bytes], repeat: int, tmp: Path) -> list[Measure]:
    out: list[Measure] = []
    expected = {f"frame_{i:05d}": image_properties(d, PROPERTY_NAMES) for i, d in enumerate(jpegs)}
    with serve_process(tmp / "data", {"SCENEBASE_WORKERS": "1"}) as (url, proc):
        client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
        set_id = client.create_set("bench properties", "images")
        ids = client.add_images([Image(id=i, image_bytes=d) for i, d in zip(expected, jpegs, strict=True)], set_id)
        if len(ids) != len(jpegs):
            raise SystemExit(f"job: {len(ids)} of {len(jpegs)} ingested: {client.last_errors[:3]}")
        for run in range(repeat):
            t0, cpu0 = time.perf_counter(), process_cpu_s(proc.pid)
            job_id = client.image_properties_enrichment(ids=ids)
            job = wait_job(client, job_id)
            seconds, cpu = time.perf_counter() - t0, process_cpu_s(proc.pid) - cpu0
            result = job.get("result") or {}
            if result.get("enriched") != len(ids) or result.get("failed"):
                raise SystemExit(f"job: {result}")
            _queue, run_s = _job_seconds(job)
            m = Measure("job", PROPERTY_THREADS, run, len(ids), round(seconds, 3), round(len(ids) / seconds, 1),
                        round(1000 * cpu / len(ids), 2), run_s)  # fmt: skip
            print(f"  job           run {run}: {m.images_per_s:,.0f} images/s ({seconds:.2f} s, job ran {run_s} s), "
                  f"{m.cpu_ms_per_image:.1f} CPU ms/image in the server", flush=True)  # fmt: skip
            out.append(m)
        for image_id in ids[:: max(1, len(ids) // 20)]:
            aux = client.get_metadata(image_id, "images")["aux"]
            for key in PROPERTY_NAMES:
                if abs(aux[key] - expected[image_id][key]) > 1e-9 * abs(expected[image_id][key]):
                    raise SystemExit(f"job: {image_id} {key} = {aux[key]}, the library says {expected[image_id][key]}")
    return out


def table(measures: list[Measure]) -> str:
    head = ("what", "threads", "run", "images", "seconds", "images/s", "CPU ms/image", "job ran s")
    rows = [(m.what, str(m.threads), str(m.run), str(m.images), f"{m.seconds:.2f}", f"{m.images_per_s:,.0f}",
             f"{m.cpu_ms_per_image:.2f}", "" if m.job_run_s is None else f"{m.job_run_s:.2f}")
            for m in measures]  # fmt: skip
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [head, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400, help="JPEGs per run (default 400)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--skip-job", action="store_true", help="measure the library only (no server)")
    parser.add_argument("--output", type=Path, default=RESULTS / "properties.json", help="results JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.images <= 20_000 or not 1 <= args.repeat <= 20:
        parser.error("--images in [1, 20000], --repeat in [1, 20]")

    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other processes on the machine skew the numbers
    jpegs = make_jpegs(args.images)
    kib = sum(map(len, jpegs)) / len(jpegs) / 1024
    print(f"scenebase image properties benchmark: {args.repeat} x {args.images} JPEGs {WIDTH}x{HEIGHT}, "
          f"{kib:.0f} KiB on average, {PROPERTY_THREADS} threads per job", flush=True)  # fmt: skip
    measures, worst = bench_library(jpegs, args.repeat)
    if not args.skip_job:
        tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-properties-"))
        try:
            measures += bench_job(jpegs, args.repeat, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(table(measures))
    summary: dict[str, Any] = {"max_relative_difference_to_plain_float64": worst}
    for what, threads in dict.fromkeys((m.what, m.threads) for m in measures):
        same = [m for m in measures if (m.what, m.threads) == (what, threads)]
        summary[f"{what} x{threads} images/s median"] = round(statistics.median(m.images_per_s for m in same), 1)
        summary[f"{what} x{threads} CPU ms/image median"] = round(
            statistics.median(m.cpu_ms_per_image for m in same), 2
        )
    print()
    print(f"largest relative difference to the plain float64 formulas: {worst:.1e}")
    jobs = [m for m in measures if m.what == "job"]
    if jobs:
        wall = statistics.median(m.images_per_s for m in jobs)
        ran = statistics.median(m.images / m.job_run_s for m in jobs if m.job_run_s)
        met = ran >= TARGET
        summary.update(job_target_images_per_s=TARGET, job_images_per_s_by_its_run_time=round(ran, 1), job_met=met)
        verdict = "met" if met else "MISSED"
        print(
            f"job: median {ran:,.0f} images/s over its own run time (target >= {TARGET:.0f}: {verdict}), "
            f"{wall:,.0f} images/s from the call to the observed end"
        )
        cpu = statistics.median(m.cpu_ms_per_image for m in measures if m.what == "job")
        cores = PROPERTY_THREADS
        summary["job_images_per_s_if_the_cores_were_idle"] = round(cores * 1000 / cpu, 1)
        print(
            f"job: {cpu:.2f} CPU ms per image in the server, so {cores * 1000 / cpu:,.0f} images/s when its "
            f"{cores} cores are not shared (load average now {os.getloadavg()[0]:.2f})"
        )
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "load_average_at_start_1_5_15_min": load_at_start,
        "load_average_at_end_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "settings": {"images": args.images, "repeat": args.repeat, "width": WIDTH, "height": HEIGHT,
                     "average_jpeg_kib": round(kib, 1), "threads_per_job": PROPERTY_THREADS},
        "summary": summary,
        "measures": [asdict(m) for m in measures],
        "wall_seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
