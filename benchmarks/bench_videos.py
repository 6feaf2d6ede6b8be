"""Videos through ``scenebase serve`` on loopback (issue 6): ingest speed against a plain file copy, frame
thumbnail extraction through the API job, and the server's memory while a ~2 GB video is uploaded.

    python benchmarks/bench_videos.py [--repeat 3] [--seconds 10] [--copies 4] [--big-gb 2.0] [--skip-big]
    python benchmarks/run.py video [...]

Starts ``scenebase serve`` as a subprocess (fresh data folder, 2 job workers) and measures, through the client:

* ``add_videos`` of the real sample videos (``../shared/data/video``; skipped when absent) into a new set,
  ``--repeat`` times (median), without poster thumbnails: MB/s of video ingested, against a plain file copy of the
  same files (``shutil.copyfile``) and ``probe_video`` of them in this process (the probe the server runs);
* ``add_video`` of a generated 1080p H.264 file (``--copies`` x a ``--seconds`` segment, about 20 Mbit/s, made as in
  ``bench_video_media.py``): the same three figures on a file large enough for throughput to show;
* ``extract_frame_thumbnails`` of 100 frames spread over a 1080p video (the real ``moviepy_smpte-2997.mp4``, 10 s,
  when present, else the generated segment): seconds from the request to the finished job as the client sees it,
  and the job's own run time, with the ``small`` tag only and with the default tags (``small`` +
  ``full_size_png``, a full-size PNG per frame);
* ``add_video`` of a generated ~``--big-gb`` GB MP4 (MPEG-4 Part 2 at a very high bit rate: quick to make, still a
  real video the server probes packet by packet) while a thread samples the server process's ``VmRSS`` from
  ``/proc/<pid>/status`` every 0.2 s: the baseline before the upload, the peak during it, and the seconds taken.

Prints the figures and writes ``benchmarks/results/videos.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

import av  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench_video_media import make_segment, spread  # noqa: E402
from run import TOKEN, machine, serve_process, write_report  # noqa: E402
from scenebase.clients.scene_engine_client import SceneEngineClient  # noqa: E402
from scenebase.media.video import concatenate_videos, probe_video  # noqa: E402
from scenebase.models.assets import Video  # noqa: E402

RESULTS = HERE / "results"
VIDEO_DATA = ROOT.parent / "shared" / "data" / "video"
MB = 1e6
EXTRACT_FRAMES = 100
EXTRACT_TARGET_S = 3.0
RSS_INTERVAL_S = 0.2
JOB_TIMEOUT_S = 600.0


def median_time(repeat: int, work: Callable[[int], object]) -> float:
    times = []
    for run in range(repeat):
        started = time.perf_counter()
        work(run)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class RssSampler:
    """Samples a process's resident memory every RSS_INTERVAL_S seconds in a thread: (seconds, MiB) pairs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((round(time.monotonic() - self._t0, 2), round(rss_mib(self.pid), 1)))
            self._stop.wait(RSS_INTERVAL_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def make_big(path: Path, target_bytes: int) -> float:
    """An MPEG-4 Part 2 MP4 of 1080p noise at qscale 1 (~2.5 MB a frame) of about ``target_bytes``."""
    rng = np.random.default_rng(9)
    pictures = [rng.integers(0, 256, (1080, 1920, 3), np.uint8) for _ in range(8)]
    started = time.perf_counter()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"qscale": "1"}
        written, index = 0, 0
        while written < target_bytes and index < 100_000:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pictures[index % len(pictures)], format="rgb24")):
                written += packet.size
                container.mux(packet)
            index += 1
        for packet in stream.encode():
            container.mux(packet)
    return time.perf_counter() - started


def wait_job(client: SceneEngineClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        doc = client.get_job(job_id).document
        if doc["status"] in ("finished", "aborted"):
            if doc["status"] == "aborted":
                raise SystemExit(f"job {job_id} aborted: {doc.get('notes')}")
            return dict(doc)
        time.sleep(0.02)
    raise SystemExit(f"job {job_id} did not finish in {JOB_TIMEOUT_S} s")


def job_run_seconds(doc: dict[str, Any]) -> float:
    started = dt.datetime.fromisoformat(doc["started_at"])
    finished = dt.datetime.fromisoformat(doc["finished_at"])
    return (finished - started).total_seconds()


def ingest_figures(client: SceneEngineClient, files: list[Path], repeat: int, tmp: Path) -> dict[str, Any]:
    """add_videos vs copying vs probing the same files; medians of ``repeat`` runs."""
    total = sum(p.stat().st_size for p in files) / MB

    def ingest(run: int) -> None:
        set_id = client.create_set(f"ingest {run} {time.monotonic_ns()}", "videos")
        videos = [Video(id=f"r{run}-{time.monotonic_ns()}-{p.name}", path=p) for p in files]
        ids = client.add_videos(videos, set_id, compress_videos=False)
        if len(ids) != len(files):
            raise SystemExit(f"ingest refused files: {client.last_errors}")

    def copy(_run: int) -> None:
        for p in files:
            shutil.copyfile(p, tmp / f"copy-{p.name}")
            (tmp / f"copy-{p.name}").unlink()

    ingest_s = median_time(repeat, ingest)
    copy_s = median_time(repeat, copy)
    probe_s = median_time(repeat, lambda _run: [probe_video(p) for p in files])
    return {"files": len(files), "mb": round(total, 2), "ingest_s": round(ingest_s, 3),
            "ingest_mb_per_s": round(total / ingest_s, 1), "copy_s": round(copy_s, 4),
            "copy_mb_per_s": round(total / copy_s, 1), "probe_s": round(probe_s, 3),
            "probe_mb_per_s": round(total / probe_s, 1),
            # what is neither the probe nor the server's one copy into the blob store: the HTTP transfer with
            # multipart parsing (and spooling) of the upload, the catalog transaction, the client
            "rest_s": round(max(0.0, ingest_s - probe_s - copy_s), 3)}  # fmt: skip


SINK_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def sink(request):
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
    return JSONResponse({"received": received})


app = Starlette(routes=[Route("/sink", sink, methods=["POST"])])
"""


def upload_files(path: Path) -> list[Any]:
    """The multipart parts the client sends for one video (manifest + file part), for raw requests."""
    manifest = {"items": [{"name": path.name, "file": "f0", "metadata": {}}], "set_ids": [], "compress_videos": False}
    return [("manifest", (None, json.dumps(manifest).encode(), "application/json")),
            ("f0", (path.name, path.open("rb"), "application/octet-stream"))]  # fmt: skip


def server_stages(url: str, path: Path, repeat: int) -> dict[str, float]:
    """The server's own account of an upload of ``path`` (its ``Server-Timing`` header: receive, probe, store,
    catalog), medians of ``repeat`` uploads, in seconds."""
    stages: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http:
        for _ in range(repeat):
            files = upload_files(path)
            try:
                resp = http.post("/v1/videos/add/", files=files)
            finally:
                files[1][1][1].close()
            resp.raise_for_status()
            for part in resp.headers["server-timing"].split(","):
                name, _, dur = part.strip().partition(";dur=")
                stages.setdefault(name, []).append(float(dur) / 1000)
    return {name: round(statistics.median(v), 4) for name, v in stages.items()}


def transport_floor(path: Path, repeat: int, tmp: Path) -> float:
    """Seconds to POST the same multipart upload to a bare Starlette app under the same uvicorn (loopback) that only
    reads the body: what moving the bytes over HTTP costs before any ingest work (median of ``repeat``)."""
    (tmp / "sink_app.py").write_text(SINK_APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "uvicorn", "sink_app:app", "--app-dir", str(tmp), "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.post("/sink", content=b"")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the sink server did not start") from None
                    time.sleep(0.1)

            def post(_run: int) -> None:
                files = upload_files(path)
                try:
                    http.post("/sink", files=files).raise_for_status()
                finally:
                    files[1][1][1].close()

            return median_time(repeat, post)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def show_ingest(label: str, r: dict[str, Any]) -> None:
    print(f"  {label}: {r['files']} files, {r['mb']:.1f} MB: add_videos {r['ingest_s']:.3f} s = "
          f"{r['ingest_mb_per_s']:.0f} MB/s; probe alone {r['probe_s']:.3f} s = {r['probe_mb_per_s']:.0f} MB/s; "
          f"plain copy {r['copy_s']:.4f} s = {r['copy_mb_per_s']:.0f} MB/s; rest (HTTP, multipart, catalog) "
          f"{r['rest_s']:.3f} s", flush=True)  # fmt: skip


def extract_figures(client: SceneEngineClient, path: Path, repeat: int) -> list[dict[str, Any]]:
    set_id = client.create_set(f"extract {time.monotonic_ns()}", "videos")
    video_id = client.add_video(set_id, video_path=str(path), compress_video=False)
    info = probe_video(path)
    frames = spread(info.frame_count, EXTRACT_FRAMES)
    out = []
    for tags in (["small"], ["small", "full_size_png"]):
        walls, runs = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            doc = wait_job(client, client.extract_frame_thumbnails([video_id], frames, tags))
            walls.append(time.perf_counter() - started)
            runs.append(job_run_seconds(doc))
        wall, run = statistics.median(walls), statistics.median(runs)
        out.append({"file": path.name, "frames": len(frames), "tags": tags, "request_to_done_s": round(wall, 3),
                    "job_run_s": round(run, 3), "target_s": EXTRACT_TARGET_S,
                    "target_met": wall <= EXTRACT_TARGET_S})  # fmt: skip
        print(
            f"  {len(frames)} frames of {path.name} as {tags}: {wall:.2f} s request to done (job ran {run:.2f} s)"
            f" - target {EXTRACT_TARGET_S:.0f} s {'met' if wall <= EXTRACT_TARGET_S else 'MISSED'}",
            flush=True,
        )
    return out


def big_upload(client: SceneEngineClient, pid: int, path: Path) -> dict[str, Any]:
    set_id = client.create_set(f"big {time.monotonic_ns()}", "videos")
    size_mb = path.stat().st_size / MB
    baseline = statistics.median(rss_mib(pid) for _ in range(5))
    with RssSampler(pid) as sampler:
        started = time.perf_counter()
        client.add_video(set_id, video_path=str(path), id="big", compress_video=False)
        seconds = time.perf_counter() - started
    peak = max(mib for _, mib in sampler.samples)
    meta = client.get_metadata("big", "videos")
    print(f"  {size_mb:.0f} MB ({meta['frame_count']} frames, {meta['codec']}): {seconds:.1f} s = "
          f"{size_mb / seconds:.0f} MB/s; server RSS baseline {baseline:.0f} MiB, peak {peak:.0f} MiB "
          f"(+{peak - baseline:.0f} MiB) over {len(sampler.samples)} samples", flush=True)  # fmt: skip
    return {"mb": round(size_mb, 1), "frames": meta["frame_count"], "seconds": round(seconds, 2),
            "mb_per_s": round(size_mb / seconds, 1), "rss_baseline_mib": round(baseline, 1),
            "rss_peak_mib": round(peak, 1), "rss_growth_mib": round(peak - baseline, 1),
            "rss_samples_s_mib": sampler.samples}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is kept (default 3)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the generated 1080p segment (default 10)")
    parser.add_argument("--copies", type=int, default=4, help="segments in the generated H.264 file (default 4)")
    parser.add_argument("--big-gb", type=float, default=2.0, help="size of the memory-test video in GB (default 2)")
    parser.add_argument("--skip-big", action="store_true", help="leave out the large upload")
    parser.add_argument("--output", type=Path, default=RESULTS / "videos.json", help="results JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 20 or not 1 <= args.seconds <= 120 or not 1 <= args.copies <= 50:
        parser.error("--repeat in [1, 20], --seconds in [1, 120], --copies in [1, 50]")
    if not 0.01 <= args.big_gb <= 16:
        parser.error("--big-gb in [0.01, 16]")

    started = time.monotonic()
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "machine": machine(),
                              "load_average_at_start_1_5_15_min": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-videos-"))
    try:
        segment = tmp / "segment.mp4"
        encode_s = make_segment(segment, args.seconds)
        h264 = tmp / "h264_1080p.mp4"
        concatenate_videos([segment] * args.copies, h264)
        print(f"generated {h264.name}: {h264.stat().st_size / MB:.0f} MB ({encode_s:.0f} s to encode the segment)")
        big = tmp / "big.mp4"
        if not args.skip_big:
            make_s = make_big(big, int(args.big_gb * 1e9))
            print(f"generated {big.name}: {big.stat().st_size / MB:.0f} MB in {make_s:.0f} s", flush=True)

        (tmp / "work").mkdir()
        with serve_process(tmp / "data", {"SCENEBASE_WORKERS": "2"}) as (url, proc):
            client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
            logging.getLogger("scenebase.client").setLevel(logging.ERROR)  # each run re-adds the same bytes
            print("\ningest (add_videos through the server) vs probe alone vs plain file copy:")
            real = sorted(VIDEO_DATA.iterdir()) if VIDEO_DATA.is_dir() else []
            if real:
                report["ingest_real"] = ingest_figures(client, real, args.repeat, tmp / "work")
                show_ingest("real sample videos", report["ingest_real"])
            else:
                print(f"  real sample videos: skipped, {VIDEO_DATA} not found")
            report["ingest_h264_1080p"] = ingest_figures(client, [h264], args.repeat, tmp / "work")
            show_ingest("generated 1080p H.264", report["ingest_h264_1080p"])
            stages = server_stages(url, h264, args.repeat)
            floor = transport_floor(h264, args.repeat, tmp)
            report["ingest_h264_1080p"].update(server_stages_s=stages, http_transport_floor_s=round(floor, 3))
            print("  the same upload as the server timed it (Server-Timing, median): "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in stages.items())
                  + f"; the same bytes POSTed to a bare Starlette app that only reads them: {floor:.3f} s",
                  flush=True)  # fmt: skip

            print("\nframe thumbnails through the API job:")
            smpte = VIDEO_DATA / "moviepy_smpte-2997.mp4"
            report["extract"] = extract_figures(client, smpte if smpte.is_file() else segment, args.repeat)

            if not args.skip_big:
                print("\nlarge upload, server memory (VmRSS of the serve process):")
                report["big_upload"] = big_upload(client, proc.pid, big)
            client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report["load_average_at_end_1_5_15_min"] = [round(x, 2) for x in os.getloadavg()]
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
