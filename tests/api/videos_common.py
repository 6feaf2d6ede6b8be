"""Helpers of the video API tests: generated clips whose frames show their own number, and small utilities.

Each synthetic frame shows a number as a row of black/white stripes (bit b = stripe b), which survives lossy coding
and scaling, so a decoded frame or thumbnail tells which frame it is.
"""

from __future__ import annotations

import functools
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from scenebase.clients import SceneEngineClient
from scenebase.testing import ADMIN_TOKEN, InProcessServer

BITS = 8
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def pattern(number: int, width: int, height: int) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    stripe = width // BITS
    for bit in range(BITS):
        if number >> bit & 1:
            frame[:, bit * stripe : (bit + 1) * stripe] = 255
    return frame


def read_number(image: Image.Image) -> int:
    luma = np.asarray(image.convert("L"), dtype=np.float64)
    stripe = luma.shape[1] / BITS
    margin = stripe / 4
    bits = [luma[:, round(b * stripe + margin) : round((b + 1) * stripe - margin)].mean() > 128 for b in range(BITS)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def number_in(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return read_number(im)


def image_info(data: bytes) -> tuple[int, int, str]:
    with Image.open(io.BytesIO(data)) as im:
        return im.width, im.height, str(im.format)


def make_clip(
    path: Path,
    frames: int,
    *,
    first: int = 0,
    size: tuple[int, int] = (160, 120),
    rate: int = 25,
    codec: str = "libx264",
    noise: bool = False,
    audio: bool = False,
) -> Path:
    """``frames`` frames numbered ``first``, ``first + 1``, ...; ``noise`` makes packets realistically large."""
    width, height = size
    rng = np.random.default_rng(5)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if audio:
            sound = container.add_stream("aac", rate=48000)
            for index in range(frames * 48000 // rate // 1024):
                chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, index * 1024
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
        for n in range(frames):
            picture = pattern(first + n, width, height)
            if noise:
                picture[height // 2 :] = rng.integers(0, 256, (height - height // 2, width, 3), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        for index in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def png_bytes(number: int, size: tuple[int, int] = (160, 120)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pattern(number, *size)).save(buf, "PNG")
    return buf.getvalue()


def video_frames(data: bytes) -> list[int]:
    """The numbers shown by every frame of a video, decoded in order."""
    with av.open(io.BytesIO(data)) as container:
        return [read_number(f.to_image()) for f in container.decode(video=0)]


def blob_keys(server: InProcessServer, prefix: str = "") -> list[str]:
    return sorted(server.runtime.blobs.list(prefix))


def work_files(server: InProcessServer) -> list[Path]:
    """Files left in the server's work folder (downloads, job work files)."""
    tmp = server.runtime.settings.data_dir / "tmp"
    return sorted(p for p in tmp.rglob("*")) if tmp.exists() else []


def wait(client: SceneEngineClient, job_id: str) -> Any:
    return client.get_job(job_id).wait(timeout=120, show_progress=False)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain HTTP server on 127.0.0.1 serving a tmp folder: (folder, base URL). For a fixture."""
    folder = tmp_path / "web"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
