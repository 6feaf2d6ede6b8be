"""Videos: writing H.264 MP4 files - from frames, as smaller renditions, and by concatenation (part of
:mod:`scenebase.media.video`).

Every file written here is an MP4 with its index at the front (``movflags=+faststart``), so browsers can start
playing and seeking before the download ends. New video streams are H.264 (libx264), yuv420p, with even width and
height (4:2:0 chroma needs them). Audio is never written: renditions and concatenations are silent (perception
data is about the pictures, and mixing audio tracks of different inputs is out of scope). Each function returns
the :class:`~scenebase.media.video.VideoInfo` of the file it wrote, probed like any upload. On failure the partly
written output file is removed.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.error
import av.video.frame
import av.video.stream
import numpy as np
from PIL import Image

from scenebase.media.images import fit_within
from scenebase.media.video_base import (
    VideoDecodeError,
    VideoInfo,
    describe_error,
    open_input,
    source_name,
    video_stream,
)
from scenebase.media.video_probe import VideoScan, probe_video, scan_video

__all__ = [
    "REMUX_CODECS",
    "RENDITION_PRESETS",
    "X264_CRF",
    "X264_PRESET",
    "concatenate_videos",
    "encode_video",
    "make_rendition",
]

RENDITION_PRESETS: dict[str, tuple[int, int] | None] = {"tiny": (320, 320), "small": (640, 640), "full_size": None}
"""compress_videos preset -> (max width, max height) of the H.264 rendition, aspect ratio kept; None = source size.
'tiny' is a hover preview for grid cells, 'small' the inline player, 'full_size' a browser-playable copy of
sources in codecs browsers lack (MPEG-4 Part 2, HEVC, ...)."""

X264_PRESET = "veryfast"
"""libx264 speed preset: encoding runs inside ingest jobs on few cores, so speed wins over the last few percent."""
X264_CRF = 23
"""libx264 constant rate factor (its default quality)."""

REMUX_CODECS: frozenset[str] = frozenset({"h264", "vp9", "av1"})
"""Codecs :func:`concatenate_videos` copies into MP4 without re-encoding (the ones browsers play from MP4)."""

_TIME_BASE = Fraction(1, 90000)  # output timestamps for re-encoded inputs with their own (variable) timing
_BLACK_YUV = (16, 128, 128)  # limited-range black


# --------------------------------------------------------------------------------------------------------------------
# output


def _even(value: int) -> int:
    return max(2, value - value % 2)


@contextlib.contextmanager
def _output(out_path: str | os.PathLike[str]) -> Iterator[av.container.OutputContainer]:
    path = Path(out_path)
    try:
        with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            yield container
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _h264_stream(
    container: av.container.OutputContainer, width: int, height: int, rate: Fraction, time_base: Fraction
) -> av.video.stream.VideoStream:
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = time_base
    stream.options = {"preset": X264_PRESET, "crf": str(X264_CRF)}
    return stream


def _encode(container: av.container.OutputContainer, stream: av.video.stream.VideoStream, frame: object) -> None:
    assert frame is None or isinstance(frame, av.video.frame.VideoFrame)
    for packet in stream.encode(frame):
        container.mux(packet)


def _rate(fps: float) -> Fraction:
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    rate = Fraction(fps).limit_denominator(1001 * 1000)
    return rate if rate > 0 else Fraction(1, 1001 * 1000)


# --------------------------------------------------------------------------------------------------------------------
# encode_video


def _to_video_frame(item: object, index: int) -> av.video.frame.VideoFrame:
    if isinstance(item, Image.Image):
        image = item if item.mode == "RGB" else item.convert("RGB")
        return av.VideoFrame.from_image(image)
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise ValueError(f"frame {index}: arrays must be uint8, got {item.dtype}")
        if item.ndim == 2:
            return av.VideoFrame.from_ndarray(np.ascontiguousarray(item), format="gray")
        if item.ndim == 3 and item.shape[2] in (3, 4):
            fmt = "rgb24" if item.shape[2] == 3 else "rgba"
            return av.VideoFrame.from_ndarray(np.ascontiguousarray(item), format=fmt)
        raise ValueError(f"frame {index}: array shape must be (h, w), (h, w, 3) or (h, w, 4), got {item.shape}")
    raise TypeError(f"frame {index}: expected a numpy array or a PIL image, got {type(item).__name__}")


def encode_video(
    frames: Iterable[np.ndarray | Image.Image],
    out_path: str | os.PathLike[str],
    fps: float,
    width: int,
    height: int,
) -> VideoInfo:
    """Encode frames into an H.264 MP4 at a constant ``fps``; return the written file's info.

    Frames are RGB (h, w, 3), RGBA (alpha dropped) or grayscale (h, w) uint8 arrays, or PIL images; each is
    resized to width x height (plain scaling, as the caller chose the size) when it differs. Odd dimensions are
    rounded down to even ones. No frames, or a frame of the wrong type or shape, raises ValueError/TypeError naming
    the frame's position, and no file is left behind.
    """
    for value, what in ((width, "width"), (height, "height")):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{what} must be a positive integer, got {value!r}")
    rate = _rate(fps)
    out_width, out_height = _even(width), _even(height)
    count = 0
    with _output(out_path) as container:
        stream = _h264_stream(container, out_width, out_height, rate, 1 / rate)
        for index, item in enumerate(frames):
            frame = _to_video_frame(item, index)
            frame = frame.reformat(width=out_width, height=out_height, format="yuv420p")
            frame.pts, frame.time_base = index, 1 / rate
            _encode(container, stream, frame)
            count += 1
        if count == 0:
            raise ValueError("no frames to encode")
        _encode(container, stream, None)
    return probe_video(out_path)


# --------------------------------------------------------------------------------------------------------------------
# renditions


def _decoded(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, name: str | None
) -> Iterator[av.video.frame.VideoFrame]:
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(
                f"cannot decode the video at timestamp {packet.pts} ({describe_error(exc)})", name=name
            ) from exc
        for frame in frames:
            assert isinstance(frame, av.video.frame.VideoFrame)
            yield frame


def _place(frame: av.video.frame.VideoFrame, width: int, height: int) -> av.video.frame.VideoFrame:
    """Scale to fit inside width x height keeping the aspect ratio, centred on black (letterbox/pillarbox)."""
    fitted = fit_within((frame.width, frame.height), (width, height))
    if fitted[0] < width and fitted[1] < height:  # smaller on both sides: scale up to touch one side
        scale = min(width / frame.width, height / frame.height)
        fitted = (min(width, round(frame.width * scale)), min(height, round(frame.height * scale)))
    inner_w, inner_h = _even(fitted[0]), _even(fitted[1])
    scaled = frame.reformat(width=inner_w, height=inner_h, format="yuv420p")
    if (inner_w, inner_h) == (width, height):
        return scaled
    planes = scaled.to_ndarray()
    luma = planes[:inner_h]
    chroma = planes[inner_h:].reshape(2, inner_h // 2, inner_w // 2)
    left, top = (width - inner_w) // 4 * 2, (height - inner_h) // 4 * 2
    canvas_y = np.full((height, width), _BLACK_YUV[0], np.uint8)
    canvas_uv = np.full((2, height // 2, width // 2), _BLACK_YUV[1], np.uint8)
    canvas_y[top : top + inner_h, left : left + inner_w] = luma
    canvas_uv[:, top // 2 : top // 2 + inner_h // 2, left // 2 : left // 2 + inner_w // 2] = chroma
    stacked = np.concatenate([canvas_y.ravel(), canvas_uv.ravel()]).reshape(height * 3 // 2, width)
    return av.VideoFrame.from_ndarray(stacked, format="yuv420p")


def _reencode(
    out: av.container.OutputContainer,
    out_stream: av.video.stream.VideoStream,
    src: str | os.PathLike[str],
    scan: VideoScan,
    name: str | None,
    offset: float,
    letterbox: bool,
    last_pts: int = -1,
) -> int:
    """Decode ``src`` and encode its frames into ``out_stream`` starting at ``offset`` seconds, after the frame at
    ``last_pts`` already written; return the last timestamp written.

    Each frame keeps its own timing: its time after the input's first frame, plus ``offset`` (kept above the
    previous frame's, as the encoder requires); the last frame lasts until the input's video end, so durations add
    up."""
    width, height = out_stream.width, out_stream.height
    tb = out_stream.codec_context.time_base
    assert tb is not None
    end_pts = round((offset + scan.video_duration) / tb)
    count = 0
    pending: av.video.frame.VideoFrame | None = None
    with open_input(src, name) as (container, _size, _header):
        stream = video_stream(container, name)
        stream.thread_type = "AUTO"
        for frame in _decoded(container, stream, name):
            seconds = frame.time - scan.stream_start if frame.time is not None else count / (scan.info.fps or 25)
            pts = max(last_pts + 1, round((offset + seconds) / tb))
            if letterbox:
                out_frame = _place(frame, width, height)
            else:
                out_frame = frame.reformat(width=width, height=height, format="yuv420p")
            out_frame.pts, out_frame.time_base = pts, tb
            if pending is not None:
                pending.duration = pts - pending.pts if pending.pts is not None else 0
                _encode(out, out_stream, pending)
            pending, last_pts = out_frame, pts
            count += 1
    if pending is not None:
        pending.duration = max(1, end_pts - last_pts)  # the last frame lasts until the input's video end
        _encode(out, out_stream, pending)
    return last_pts


def make_rendition(
    src: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    max_size: tuple[int, int] | None = (640, 640),
    name: str | None = None,
) -> VideoInfo:
    """A smaller H.264 MP4 of ``src`` for web playback; return the rendition's info.

    The picture is scaled to fit within ``max_size`` (max width, max height; None = the source size), keeping the
    aspect ratio, never enlarging, with even dimensions (each rounded down). Every frame is kept with its
    timestamp (variable frame rates stay variable). Audio is dropped. Presets: :data:`RENDITION_PRESETS`.
    The source is probed first, so a bad source raises :class:`VideoDecodeError` before anything is written.
    """
    name = source_name(src, name)
    scan = scan_video(src, name)
    info = scan.info
    size = (info.width, info.height) if max_size is None else fit_within((info.width, info.height), max_size)
    width, height = _even(size[0]), _even(size[1])
    rate = Fraction(info.fps).limit_denominator(1001 * 1000) if info.fps > 0 else Fraction(25)
    with _output(out_path) as out:
        out_stream = _h264_stream(out, width, height, rate, _TIME_BASE)
        _reencode(out, out_stream, src, scan, name, 0.0, letterbox=False)
        _encode(out, out_stream, None)
    return probe_video(out_path)


# --------------------------------------------------------------------------------------------------------------------
# concatenation


class _RemuxConflict(Exception):
    """Copying the packets does not work out (timestamps of consecutive inputs overlap after shifting, or the
    muxer rejects a packet): the inputs are re-encoded instead."""


def _can_remux(scans: list[VideoScan]) -> bool:
    first = scans[0]
    if first.info.codec not in REMUX_CODECS:
        return False

    def setup(scan: VideoScan) -> tuple[object, ...]:
        info = scan.info
        return info.codec, info.width, info.height, info.pixel_format, scan.extradata

    return all(setup(scan) == setup(first) for scan in scans)


def _remux(
    srcs: Sequence[str | os.PathLike[str]],
    scans: list[VideoScan],
    names: list[str | None],
    out_path: str | os.PathLike[str],
) -> None:
    with _output(out_path) as out:
        out_stream: av.video.stream.VideoStream | None = None
        offset = 0.0
        last_dts: float | None = None
        for src, scan, name in zip(srcs, scans, names, strict=True):
            with open_input(src, name) as (container, _size, _header):
                stream = video_stream(container, name)
                if out_stream is None:
                    template = out.add_stream_from_template(stream)
                    assert isinstance(template, av.video.stream.VideoStream)
                    out_stream = template
                tb = stream.time_base
                assert tb is not None
                shift = round(offset / tb) - round(scan.stream_start / tb)
                for packet in container.demux(stream):
                    if packet.size == 0 or packet.is_discard or packet.pts is None:
                        continue
                    packet.pts += shift
                    packet.dts = packet.pts if packet.dts is None else packet.dts + shift
                    dts_seconds = float(packet.dts * tb)
                    if last_dts is not None and dts_seconds <= last_dts:
                        raise _RemuxConflict
                    last_dts = dts_seconds
                    packet.stream = out_stream
                    try:
                        out.mux(packet)
                    except av.error.FFmpegError as exc:  # e.g. timestamps the MP4 muxer rejects
                        raise _RemuxConflict from exc
            offset += scan.video_duration


def concatenate_videos(
    srcs: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    names: Sequence[str | None] | None = None,
) -> VideoInfo:
    """Join videos in the given order into one MP4; return its info.

    Every input is probed first (a bad one raises :class:`VideoDecodeError` naming it, before anything is
    written). When all inputs share codec, size, pixel format and codec setup (extradata) and the codec is in
    :data:`REMUX_CODECS`, packets are copied with shifted timestamps (fast, lossless). Otherwise every input is
    decoded and re-encoded to H.264 at the first input's size (even dimensions); inputs of another size are scaled
    to fit with their aspect ratio kept and centred on black bars. Each input's frames keep their timing, so the
    output has the sum of the inputs' frame counts and the sum of their video durations (audio, which may make a
    container longer than its video, is dropped). ``names`` (one per input) are used in error messages.
    """
    if not srcs:
        raise ValueError("no videos to concatenate")
    name_list = list(names) if names is not None else [None] * len(srcs)
    if len(name_list) != len(srcs):
        raise ValueError(f"got {len(name_list)} names for {len(srcs)} videos")
    name_list = [source_name(src, n) for src, n in zip(srcs, name_list, strict=True)]
    scans = [scan_video(src, n) for src, n in zip(srcs, name_list, strict=True)]
    infos = [scan.info for scan in scans]

    remux = _can_remux(scans)
    if remux:
        try:
            _remux(srcs, scans, name_list, out_path)
            return probe_video(out_path)
        except _RemuxConflict:
            pass  # fall through to re-encoding

    first = infos[0]
    width, height = _even(first.width), _even(first.height)
    rate = Fraction(first.fps).limit_denominator(1001 * 1000) if first.fps > 0 else Fraction(25)
    with _output(out_path) as out:
        out_stream = _h264_stream(out, width, height, rate, _TIME_BASE)
        offset, last_pts = 0.0, -1
        for src, scan, n in zip(srcs, scans, name_list, strict=True):
            last_pts = _reencode(out, out_stream, src, scan, n, offset, letterbox=True, last_pts=last_pts)
            offset += scan.video_duration
        _encode(out, out_stream, None)
    return probe_video(out_path)
