"""Decompression memory (issue 8 item 5): a 380 KB PNG of 14000x14000 16-bit pixels passes the pixel cap; its
decode is bounded by the decode budget, estimated from the header before any pixel is decoded.

The memory tests run the decode in a child process and compare its peak resident size (``ru_maxrss``) with the
estimate the budget reserves: the estimate must bound what the decode really uses."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import av
import numpy as np
import pypcd4
import pytest
from PIL import Image

from scenebase.media.budget import DECODE_BUDGET, DecodeBudget, DecodeBusy, DecodeTooLarge
from scenebase.media.images import (
    MAX_PIXELS,
    ImageDecodeError,
    decode_estimate,
    image_properties,
    make_thumbnail,
    probe_image,
)
from scenebase.media.pointcloud import read_points
from scenebase.media.pointcloud_core import PointCloudDecodeError
from scenebase.media.video_base import VideoDecodeError
from scenebase.media.video_frames import FRAME_DECODE_BYTES_PER_PIXEL, poster_frame

SRC = Path(__file__).resolve().parents[2] / "src"


def gray16_png(width: int, height: int, sample: bytes = b"\0\0") -> bytes:
    """A 16-bit grayscale PNG of one ``sample`` value, compressed row by row (never held decoded here). Black
    compresses best (the bomb); another value makes the decoder's memory real (pages of zeros may stay unmapped)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = b"\0" + sample * width  # filter byte, then the samples
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = gray16_png(14000, 14000)
    assert len(data) < 400_000 and MAX_PIXELS >= 14000 * 14000  # the attack: small, and within the pixel cap
    return data


def test_the_380kb_bomb_is_refused_from_its_header(bomb: bytes) -> None:
    budget = DecodeBudget(max_bytes=1 << 30)
    with pytest.raises(ImageDecodeError, match=r"too large to decode: bomb.png: a 14000x14000 I;16 PNG needs about"):
        probe_image(bomb, "bomb.png", budget=budget)
    for size in [(100, 100), None]:
        with pytest.raises(ImageDecodeError, match="too large to decode"):
            make_thumbnail(bomb, size, name="bomb.png", budget=budget)
    with pytest.raises(ImageDecodeError, match="too large to decode"):
        image_properties(bomb, ["mean_brightness"], budget=budget)
    assert budget.in_use == (0, 0)


def test_the_bombs_thumbnail_reserves_far_less_than_before(bomb: bytes) -> None:
    # 196 Mpx of 2-byte samples and one float32 working copy, with a quarter of margin: about 1.4 GB (it took
    # 5.4 GB before the working copy was made by Pillow and the samples released)
    estimate = decode_estimate(bomb, (100, 100))
    assert 14000 * 14000 * 6 < estimate < 14000 * 14000 * 8


def test_a_jpeg_thumbnail_reserves_its_reduced_decode_only() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (10, 20, 30)).save(buf, "JPEG")
    full = decode_estimate(buf.getvalue(), None, "PNG")
    tiny = decode_estimate(buf.getvalue(), (100, 100))
    assert tiny * 50 < full  # decoded at 1/8 scale: 500x375


# the high-water mark of this process's memory (VmHWM): ru_maxrss would carry over the parent's across exec
_MEASURE = """
import sys
from scenebase.media import images
def high_water():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
from scenebase.media.budget import DECODE_BUDGET
data = open(sys.argv[1], "rb").read()
size = None if sys.argv[2] == "full" else (int(sys.argv[2]), int(sys.argv[2]))
fmt, normalize = sys.argv[3], sys.argv[4] == "1"
DECODE_BUDGET.configure(1 << 40, 1, 1.0)
estimate = images.decode_estimate(data, size, fmt, normalize)
before = high_water()
images.make_thumbnail(data, size, fmt, normalize)
after = high_water()
print(estimate, after - before)
"""


def _noise(mode: str, width: int, height: int, fmt: str) -> bytes:
    channels = len(mode)
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, channels), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels if channels > 1 else pixels[..., 0], mode).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("case", "size", "fmt", "normalize"),
    [
        ("gray16", "100", "JPEG", False),
        ("gray16", "full", "PNG", True),
        ("rgba", "300", "JPEG", True),
        ("rgba", "full", "PNG", False),
        ("rgb", "full", "PNG", True),
        ("jpeg", "100", "JPEG", False),
    ],
)
def test_the_estimate_bounds_the_real_peak(tmp_path: Path, case: str, size: str, fmt: str, normalize: bool) -> None:
    data = {
        "gray16": lambda: gray16_png(3000, 3000, b"\x12\x34"),
        "rgba": lambda: _noise("RGBA", 2500, 2500, "PNG"),
        "rgb": lambda: _noise("RGB", 2500, 2500, "TIFF"),
        "jpeg": lambda: _noise("RGB", 3000, 3000, "JPEG"),
    }[case]()
    path = tmp_path / "image"
    path.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), size, fmt, "1" if normalize else "0"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SRC)},
    ).stdout.split()
    estimate, peak = int(out[0]), int(out[1])
    assert peak <= estimate, f"{case} {size}: used {peak / 2**20:.0f} MB, reserved {estimate / 2**20:.0f} MB"


# -------------------------------------------------------------------------------------------- the budget itself


def test_a_full_budget_makes_the_next_decode_wait_then_give_up() -> None:
    budget = DecodeBudget(max_bytes=1000, max_concurrent=4, wait_seconds=0.05)
    with budget.reserve(800, "first"), pytest.raises(DecodeBusy, match="retry later"), budget.reserve(300, "second"):
        pass
    with budget.reserve(1000, "alone"):  # released: the whole budget is free again
        assert budget.in_use == (1000, 1)


def test_a_waiting_decode_starts_when_room_is_freed() -> None:
    budget = DecodeBudget(max_bytes=1000, max_concurrent=1, wait_seconds=60)
    entered = threading.Event()

    def second() -> None:
        with budget.reserve(10, "second"):
            entered.set()

    with budget.reserve(10, "first"):
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not entered.wait(0.2)  # one decode at a time: the second one waits
    waiter.join(60)
    assert entered.is_set() and budget.in_use == (0, 0)


def test_a_decode_larger_than_the_budget_never_waits() -> None:
    budget = DecodeBudget(max_bytes=1000, max_concurrent=1, wait_seconds=60)
    with pytest.raises(DecodeTooLarge, match=r"needs about 1\.0 KB"), budget.reserve(1001 + 23, "huge"):
        pass


def test_failed_decodes_release_their_reservation() -> None:
    budget = DecodeBudget(max_bytes=1 << 30)
    with pytest.raises(ImageDecodeError):
        make_thumbnail(gray16_png(64, 64)[:-40] + b"\0" * 40, (10, 10), budget=budget)  # damaged IDAT/IEND
    assert budget.in_use == (0, 0)


# -------------------------------------------------------------------------------------- videos and point clouds


def _tiny_video(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_video_poster_frame_reserves_its_decode(tmp_path: Path) -> None:
    video = _tiny_video(tmp_path / "clip.mp4")
    needed = 64 * 48 * FRAME_DECODE_BYTES_PER_PIXEL
    with pytest.raises(VideoDecodeError, match="too large to decode: a 64x48 video needs about"):
        poster_frame(video, budget=DecodeBudget(max_bytes=needed - 1))
    busy = DecodeBudget(max_bytes=needed, wait_seconds=0.05)
    with busy.reserve(1, "another decode"), pytest.raises(DecodeBusy):
        poster_frame(video, budget=busy)
    data, width, height, _fmt = poster_frame(video, budget=busy)
    assert (width, height) == (64, 48) and data and busy.in_use == (0, 0)


def test_compressed_point_cloud_larger_than_the_budget_is_refused(tmp_path: Path) -> None:
    points = np.zeros((20_000, 3), dtype=np.float32)  # zeros: LZF expands them about 60 times
    path = tmp_path / "zeros.pcd"
    pypcd4.PointCloud.from_xyz_points(points).save(path, encoding=pypcd4.Encoding.BINARY_COMPRESSED)
    saved = (DECODE_BUDGET.max_bytes, DECODE_BUDGET.max_concurrent, DECODE_BUDGET.wait_seconds)
    try:
        DECODE_BUDGET.configure(100_000, 4, 1.0)  # less than the 240,000 bytes the block expands to
        with pytest.raises(PointCloudDecodeError, match="too large to decode"):
            read_points(path)
        DECODE_BUDGET.configure(1_000_000, 4, 1.0)
        assert len(read_points(path)) == 20_000
    finally:
        DECODE_BUDGET.configure(*saved)
