"""The video media library (``scenebase.media.video``, issue 6) on its own: no server, no catalog.

    python benchmarks/bench_video_media.py [--seconds 10] [--copies 8] [--repeat 3]

Measures, each ``--repeat`` times (the median is reported):

* ``probe_video`` on every real sample video in ``../shared/data/video`` (skipped when the folder is absent);
* ``probe_video`` throughput in MB/s on a generated 1080p H.264 MP4 of about 200 MB, against a plain file copy of
  the same file (``shutil.copyfile``; both read from the page cache, as an upload just written would be);
* ``extract_frames``: 100 frames spread evenly over the 1080p video (the real ``moviepy_smpte-2997.mp4``, 10 s,
  when present; a generated 10 s segment; and the ~200 MB file) - the target is <= 3 s for a 10 s clip;
* ``concatenate_videos`` of ``--copies`` copies of the generated segment (same codec: remux), which is also how
  the ~200 MB file is made;
* ``make_rendition`` of the generated segment to the 'small' preset (re-encode).

The segment is ``--seconds`` of 1920x1080 at 25 fps, libx264 preset veryfast, crf 18, a keyframe every 50 frames
(2 s, as cameras and streaming encoders commonly use) and B-frames: a moving texture with per-frame sensor-like
noise, about 20 Mbit/s (2.5 MB per second of video, a dashcam's rate; decoding cost grows with the bit rate).
Prints the figures and writes ``benchmarks/results/video_media.json``. Every loop is bounded.
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

import av  # noqa: E402
import numpy as np  # noqa: E402

from run import machine, write_report  # noqa: E402
from scenebase.media.video import (  # noqa: E402
    RENDITION_PRESETS,
    concatenate_videos,
    extract_frames,
    make_rendition,
    probe_video,
)

RESULTS = HERE / "results"
VIDEO_DATA = ROOT.parent / "shared" / "data" / "video"
WIDTH, HEIGHT, FPS = 1920, 1080, 25
EXTRACT_FRAMES = 100
EXTRACT_TARGET_S = 3.0
MB = 1e6


def median_time(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def make_segment(path: Path, seconds: int) -> float:
    """Encode the 1080p test segment; return the encoding time."""
    rng = np.random.default_rng(6)
    texture = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8 + 1, 3), np.uint8).repeat(8, 0).repeat(8, 1)
    noise = [rng.integers(-8, 9, (HEIGHT, WIDTH, 1), np.int16) for _ in range(5)]
    started = time.perf_counter()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18", "g": "50"}
        for index in range(seconds * FPS):
            picture = np.roll(texture, index * 6, axis=1)[:, :WIDTH]
            picture = np.clip(picture.astype(np.int16) + noise[index % len(noise)], 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return time.perf_counter() - started


def spread(frame_count: int, wanted: int) -> list[int]:
    return sorted({round(i * (frame_count - 1) / (wanted - 1)) for i in range(wanted)})


def bench_extract(path: Path, repeat: int) -> dict[str, Any]:
    info = probe_video(path)
    frames = spread(info.frame_count, EXTRACT_FRAMES)
    seconds = median_time(repeat, lambda: sum(1 for _ in extract_frames(path, frames)))
    return {"file": path.name, "frames_in_video": info.frame_count, "frames_extracted": len(frames),
            "seconds": round(seconds, 3), "frames_per_s": round(len(frames) / seconds, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of the generated 1080p segment (default 10)")
    parser.add_argument("--copies", type=int, default=8, help="segments joined into the large file (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is kept (default 3)")
    parser.add_argument("--output", type=Path, default=RESULTS / "video_media.json", help="results JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 120 or not 1 <= args.copies <= 50 or not 1 <= args.repeat <= 20:
        parser.error("--seconds in [1, 120], --copies in [1, 50], --repeat in [1, 20]")

    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "machine": machine(),
                              "load_average_at_start_1_5_15_min": load_at_start}  # fmt: skip

    print("probe_video on the real sample videos:")
    real: list[dict[str, Any]] = []
    if VIDEO_DATA.is_dir():
        for path in sorted(VIDEO_DATA.iterdir()):
            info = probe_video(path)
            seconds = median_time(args.repeat, lambda path=path: probe_video(path))
            real.append({"file": path.name, "bytes": path.stat().st_size, "frames": info.frame_count,
                         "ms": round(seconds * 1000, 2)})  # fmt: skip
            print(f"  {path.name:<40} {path.stat().st_size / MB:6.2f} MB {info.frame_count:4d} frames "
                  f"{info.width}x{info.height} {info.codec:<6} {seconds * 1000:7.2f} ms")  # fmt: skip
    else:
        print(f"  skipped: {VIDEO_DATA} not found")
    report["probe_real"] = real

    tmp = Path(tempfile.mkdtemp(prefix="scenebase-bench-video-"))
    try:
        segment = tmp / "segment.mp4"
        encode_s = make_segment(segment, args.seconds)
        seg_info = probe_video(segment)
        print(f"\ngenerated {segment.name}: {seg_info.width}x{seg_info.height} {seg_info.frame_count} frames, "
              f"{segment.stat().st_size / MB:.1f} MB, encoded in {encode_s:.1f} s")  # fmt: skip

        big = tmp / "big.mp4"
        concat_s = median_time(args.repeat, lambda: concatenate_videos([segment] * args.copies, big))
        big_info = probe_video(big)
        big_mb = big.stat().st_size / MB
        print(f"concatenate_videos (remux) of {args.copies} x {segment.name}: {concat_s:.2f} s -> {big_mb:.0f} MB, "
              f"{big_info.frame_count} frames, {big_info.duration:.1f} s ({big_mb / concat_s:.0f} MB/s)")  # fmt: skip

        probe_s = median_time(args.repeat, lambda: probe_video(big))
        copy_s = median_time(args.repeat, lambda: shutil.copyfile(big, tmp / "copy.mp4"))
        (tmp / "copy.mp4").unlink()
        print(f"probe_video on {big_mb:.0f} MB: {probe_s:.3f} s = {big_mb / probe_s:.0f} MB/s; "
              f"plain file copy: {copy_s:.3f} s = {big_mb / copy_s:.0f} MB/s")  # fmt: skip

        extracts = []
        smpte = VIDEO_DATA / "moviepy_smpte-2997.mp4"
        for path in ([smpte] if smpte.is_file() else []) + [segment, big]:
            result = bench_extract(path, args.repeat)
            extracts.append(result)
            print(f"extract_frames {result['frames_extracted']} spread over {result['frames_in_video']} frames of "
                  f"{path.name}: {result['seconds']:.2f} s ({result['frames_per_s']:.0f} frames/s)")  # fmt: skip

        rendition_s = median_time(1, lambda: make_rendition(segment, tmp / "small.mp4", RENDITION_PRESETS["small"]))
        small = probe_video(tmp / "small.mp4")
        print(f"make_rendition 'small' of {segment.name}: {rendition_s:.2f} s -> {small.width}x{small.height} "
              f"({seg_info.frame_count / rendition_s:.0f} frames/s)")  # fmt: skip

        print()
        for result in extracts:
            if result["frames_in_video"] <= 12 * FPS:  # the target is stated for clips of about 10 s
                result["target_met"] = result["seconds"] <= EXTRACT_TARGET_S
                print(f"extract target (100 frames of a ~10 s 1080p clip in <= {EXTRACT_TARGET_S:.0f} s), "
                      f"{result['file']}: {'met' if result['target_met'] else 'MISSED'}")  # fmt: skip
        report.update({
            "segment": {"seconds": args.seconds, "frames": seg_info.frame_count,
                        "mb": round(segment.stat().st_size / MB, 1), "encode_s": round(encode_s, 1)},
            "large_file": {"copies": args.copies, "mb": round(big_mb, 1), "frames": big_info.frame_count,
                           "duration_s": round(big_info.duration, 2)},
            "concatenate_remux_s": round(concat_s, 3),
            "probe_large_s": round(probe_s, 3), "probe_mb_per_s": round(big_mb / probe_s, 1),
            "file_copy_s": round(copy_s, 3), "file_copy_mb_per_s": round(big_mb / copy_s, 1),
            "extract": extracts, "extract_target_s": EXTRACT_TARGET_S,
            "rendition_small_s": round(rendition_s, 2),
        })  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report["load_average_at_end_1_5_15_min"] = [round(x, 2) for x in os.getloadavg()]
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
