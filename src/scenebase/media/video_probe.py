"""Videos: opening, recognizing and probing a video file (the first half of :mod:`scenebase.media.video`).

A plain library on top of PyAV (FFmpeg): paths or file objects in, values out. It knows nothing of the catalog,
HTTP or settings. The public names are re-exported by :mod:`scenebase.media.video`; import them from there.

:func:`probe_video` reads the whole file once without decoding it (demuxing only: packets are read, not
decompressed) and decodes exactly one frame. That single pass gives an exact frame count, a duration also for files
whose header has none, and the checks for truncation described in :func:`probe_video`.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import av.error
import av.stream
import av.video.frame
import av.video.stream

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "MAX_PIXELS",
    "VideoDecodeError",
    "VideoInfo",
    "VideoSource",
    "probe_video",
]

VideoSource = str | os.PathLike[str] | BinaryIO
"""A local path, or a seekable binary file object holding the whole video (read from offset 0)."""

EXTENSIONS: tuple[str, ...] = ("mp4", "mov", "webm", "mkv", "avi")
"""Accepted upload file extensions (lower case, no dot), one per supported container."""

CONTENT_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
}
"""Container (= canonical extension) -> MIME type. The values are the accepted upload content types."""

MAX_PIXELS: int = 100_000_000
"""Videos whose frames have more pixels than this (width * height) are rejected before any frame is decoded."""

SUPPORTED_TEXT = "MP4, MOV, WebM, MKV, AVI"

# FFmpeg demuxer names of the supported containers; MP4/MOV and WebM/MKV share a demuxer and are told apart below
_MOV_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"
_MATROSKA_DEMUXER = "matroska,webm"
_AVI_DEMUXER = "avi"
_IMAGE_DEMUXERS = {"image2": "image", "gif": "GIF", "apng": "APNG", "webp_pipe": "WebP"}
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = b"\x42\x82"
_HEADER_BYTES = 64

# a container whose header states a duration must hold packets up to that time, within half a frame plus the
# rounding of millisecond timestamps (Matroska); anything shorter was cut off
_DURATION_ROUNDING_S = 0.002


class VideoDecodeError(ValueError):
    """The file is not a usable video.

    ``problem`` says exactly what is wrong ("empty file (0 bytes)", "no video stream (1 audio stream)", "truncated:
    only 30 of the 60 frames listed in the index are present", "frame 250 is past the end (the video has 132
    frames, 0..131)", ...); ``name`` is the file name given by the caller (or the path's file name), if any.
    """

    def __init__(self, problem: str, *, name: str | None = None) -> None:
        self.problem = problem
        self.name = name
        super().__init__(f"{name!r}: {problem}" if name else problem)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What :func:`probe_video` finds out about a video. Sizes are as stored (see ``rotation``)."""

    width: int
    height: int
    fps: float
    """Average frame rate of the video stream (the container's, else frame_count / video duration)."""
    duration: float
    """Seconds: the container's duration (which includes audio), else the measured span of all packets."""
    frame_count: int
    """Exact number of video frames, counted packet by packet (packets an edit list discards are not counted)."""
    codec: str
    """FFmpeg codec name of the video stream, e.g. 'h264', 'hevc', 'vp8', 'vp9', 'av1', 'mpeg4'."""
    container: str
    """One of :data:`EXTENSIONS`: 'mp4', 'mov', 'webm', 'mkv' or 'avi'."""
    has_audio: bool
    pixel_format: str
    """FFmpeg pixel format of the decoded frames, e.g. 'yuv420p'."""
    bit_rate: int | None
    """Overall bits per second (the container's, else file size * 8 / duration); None when unknown."""
    rotation: int
    """Display rotation from the stream's display matrix in degrees counter-clockwise: 0, 90, 180 or 270.
    Frames are decoded, extracted and thumbnailed as stored; players apply the rotation."""

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.container]

    @property
    def extension(self) -> str:
        return self.container


@dataclass(frozen=True, slots=True)
class VideoScan:
    """:class:`VideoInfo` plus the frame timeline that frame extraction needs (internal to the video modules)."""

    info: VideoInfo
    frame_pts: tuple[int, ...] | None
    """Presentation timestamps of the frames in display order (frame n has ``frame_pts[n]``), in ``time_base``
    units; None when the stream's timestamps are missing or repeat, so frames can only be counted from the start."""
    keyframes: tuple[int, ...]
    """Frame numbers of the keyframes, ascending (empty when ``frame_pts`` is None)."""
    time_base: Fraction
    stream_start: float
    """Seconds of the first video frame's timestamp (not always 0)."""
    video_duration: float
    """Seconds from the first video frame's start to the last one's end (audio not included)."""


# --------------------------------------------------------------------------------------------------------------------
# opening


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def source_name(src: VideoSource, name: str | None) -> str | None:
    """The name for error messages: the caller's, else a path's file name."""
    if name is not None:
        return name
    if isinstance(src, str | os.PathLike):
        return Path(src).name
    return None


def _source_size_and_header(src: VideoSource) -> tuple[int, bytes]:
    if isinstance(src, str | os.PathLike):
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"video file not found: {path}")
        with path.open("rb") as fh:
            return path.stat().st_size, fh.read(_HEADER_BYTES)
    if not src.seekable():
        raise ValueError("the video file object must be seekable")
    size = src.seek(0, os.SEEK_END)
    src.seek(0)
    header = src.read(_HEADER_BYTES)
    src.seek(0)
    return size, header


@contextlib.contextmanager
def open_input(src: VideoSource, name: str | None) -> Iterator[tuple[av.container.InputContainer, int, bytes]]:
    """Open ``src`` for demuxing; yield (container, file size, first bytes). Unreadable content raises
    :class:`VideoDecodeError` ("empty file", "not a video ..."); a missing path raises FileNotFoundError."""
    size, header = _source_size_and_header(src)
    if size == 0:
        raise VideoDecodeError("empty file (0 bytes), not a video", name=name)
    target: str | BinaryIO = os.fspath(src) if isinstance(src, str | os.PathLike) else src
    try:
        container = av.open(target, mode="r")
    except av.error.InvalidDataError as exc:
        raise VideoDecodeError(
            f"not a video (unrecognized content, starts with {header[:8]!r}; supported: {SUPPORTED_TEXT})", name=name
        ) from exc
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"cannot open the file as a video ({type(exc).__name__})", name=name) from exc
    try:
        yield container, size, header
    finally:
        container.close()


def _ebml_doctype(header: bytes) -> str | None:
    """The DocType string ('webm' or 'matroska') from the EBML header at the start of a Matroska file."""
    if not header.startswith(_EBML_MAGIC):
        return None
    at = header.find(_EBML_DOCTYPE_ID, len(_EBML_MAGIC))
    if at < 0 or at + 3 > len(header):
        return None
    first = header[at + 2]
    width = 1
    while width <= 8 and not first & (0x80 >> (width - 1)):
        width += 1
    if width > 8:
        return None
    length = first & (0xFF >> width)
    for byte in header[at + 3 : at + 2 + width]:
        length = (length << 8) | byte
    start = at + 2 + width
    return header[start : start + length].decode("ascii", "replace").rstrip("\x00")


def container_kind(container: av.container.InputContainer, header: bytes, name: str | None) -> str:
    """One of :data:`EXTENSIONS` for a supported container, else :class:`VideoDecodeError` naming what it is."""
    demuxer = container.format.name
    if demuxer == _MOV_DEMUXER:
        # QuickTime files declare the brand 'qt  '; everything else with this demuxer (isom, mp42, 3gp4, ...) is MP4
        return "mov" if container.metadata.get("major_brand", "").strip() == "qt" else "mp4"
    if demuxer == _MATROSKA_DEMUXER:
        return "webm" if _ebml_doctype(header) == "webm" else "mkv"
    if demuxer == _AVI_DEMUXER:
        return "avi"
    raise VideoDecodeError(
        f"unsupported container {demuxer!r} ({container.format.long_name}; supported: {SUPPORTED_TEXT})", name=name
    )


def video_stream(container: av.container.InputContainer, name: str | None) -> av.video.stream.VideoStream:
    """The first real video stream (not a still such as embedded cover art); else a precise error."""
    demuxer = container.format.name
    if demuxer in _IMAGE_DEMUXERS or demuxer.endswith("_pipe"):
        kind = _IMAGE_DEMUXERS.get(demuxer) or demuxer.removesuffix("_pipe").upper()
        raise VideoDecodeError(f"an image ({kind}), not a video (supported: {SUPPORTED_TEXT})", name=name)
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        counts: dict[str, int] = {}
        for stream in container.streams:
            kind = "cover picture" if stream.type == "video" else stream.type
            counts[kind] = counts.get(kind, 0) + 1
        found = ", ".join(f"{n} {kind} stream{'s' if n != 1 else ''}" for kind, n in counts.items()) or "no streams"
        raise VideoDecodeError(f"no video stream ({found})", name=name)
    stream = videos[0]
    if stream.codec_context is None:
        raise VideoDecodeError(f"no decoder for the video codec of stream {stream.index}", name=name)
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_PIXELS:
        raise VideoDecodeError(
            f"frames too large: {width}x{height} = {width * height / 1e6:.1f} megapixels exceeds the limit of "
            f"{MAX_PIXELS / 1e6:g} megapixels",
            name=name,
        )
    return stream


# --------------------------------------------------------------------------------------------------------------------
# the scan


class _StreamSpan:
    """First start and last end (seconds) of one stream's packets; a packet without a duration is taken to last as
    long as the gap before it."""

    __slots__ = ("end", "last_delta", "last_pts", "start", "time_base")

    def __init__(self, time_base: Fraction) -> None:
        self.time_base = float(time_base)
        self.start = float("inf")
        self.end = float("-inf")
        self.last_pts: int | None = None
        self.last_delta = 0

    def add(self, pts: int, duration: int) -> None:
        if self.last_pts is not None and pts > self.last_pts:
            self.last_delta = pts - self.last_pts
        self.last_pts = pts
        self.start = min(self.start, pts * self.time_base)
        self.end = max(self.end, (pts + (duration or self.last_delta)) * self.time_base)


def _rotation(frame: av.video.frame.VideoFrame) -> int:
    degrees = frame.rotation
    return (round(degrees / 90) * 90) % 360 if degrees else 0


def _decode_first(
    stream: av.video.stream.VideoStream, packet: av.Packet | None, name: str | None
) -> av.video.frame.VideoFrame | None:
    try:
        frames = stream.codec_context.decode(packet)
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(
            f"cannot decode the first frame ({stream.codec_context.name}: {describe_error(exc)})", name=name
        ) from exc
    return frames[0] if frames else None


def scan_video(src: VideoSource, name: str | None = None, *, decode_first_frame: bool = True) -> VideoScan:
    """Demux every packet once (and decode the first frame unless told not to); see :func:`probe_video`."""
    name = source_name(src, name)
    with open_input(src, name) as (container, size, header):
        stream = video_stream(container, name)
        kind = container_kind(container, header, name)
        video_index = stream.index
        spans: dict[int, _StreamSpan] = {}
        frame_pts: list[int] = []
        key_pts: list[int] = []
        pts_missing = False
        packets = 0  # video packets including those an edit list discards, to compare with the index
        first: av.video.frame.VideoFrame | None = None
        try:
            for packet in container.demux():
                if packet.size == 0:
                    continue  # the end-of-stream marker PyAV yields per stream
                index = packet.stream_index
                if packet.is_corrupt:
                    raise VideoDecodeError(
                        f"truncated or corrupt {kind} data: packet of stream {index} at byte {packet.pos} is "
                        f"incomplete (the file has {size} bytes)",
                        name=name,
                    )
                pts = packet.pts
                if index == video_index:
                    packets += 1
                if packet.is_discard:
                    continue  # an edit list cuts it: not shown, not counted
                if pts is not None:
                    span = spans.get(index)
                    if span is None:
                        span = spans[index] = _StreamSpan(packet.time_base)
                    span.add(pts, packet.duration or 0)
                if index != video_index:
                    continue
                if pts is None:
                    pts_missing = True
                else:
                    frame_pts.append(pts)
                    if packet.is_keyframe:
                        key_pts.append(pts)
                if first is None and decode_first_frame:
                    first = _decode_first(stream, packet, name)
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(
                f"corrupt or truncated {kind} data after {packets} video packets ({describe_error(exc)})", name=name
            ) from exc
        frame_count = len(frame_pts) + (packets - len(frame_pts) if pts_missing else 0)
        if frame_count == 0:
            raise VideoDecodeError(f"the video stream has no frames ({kind}, {size} bytes)", name=name)
        if decode_first_frame and first is None:
            first = _decode_first(stream, None, name)  # flush: frame-threaded decoders hold frames back
            if first is None:
                raise VideoDecodeError(
                    f"no decodable frame: the {stream.codec_context.name} decoder produced no picture from "
                    f"{packets} packets",
                    name=name,
                )
        listed = stream.frames
        if listed > 0 and packets < listed:
            raise VideoDecodeError(
                f"truncated: only {packets} of the {listed} video frames listed in the {kind} index are present "
                f"({size} bytes)",
                name=name,
            )
        return _finish(container, stream, kind, size, name, spans, frame_pts, key_pts, pts_missing, frame_count, first)


def _finish(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    kind: str,
    size: int,
    name: str | None,
    spans: dict[int, _StreamSpan],
    frame_pts: list[int],
    key_pts: list[int],
    pts_missing: bool,
    frame_count: int,
    first: av.video.frame.VideoFrame | None,
) -> VideoScan:
    measured_start = min((s.start for s in spans.values()), default=0.0)
    measured_end = max((s.end for s in spans.values()), default=0.0)
    video_span = spans.get(stream.index)
    video_start = video_span.start if video_span else 0.0
    video_duration = max(0.0, video_span.end - video_span.start) if video_span else 0.0

    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate and rate > 0 else (frame_count / video_duration if video_duration > 0 else 0.0)

    span = max(0.0, measured_end - measured_start)
    duration = span
    if container.duration is not None and container.duration > 0:
        duration = container.duration / av.time_base
        tolerance = (0.5 / fps if fps > 0 else 0.0) + _DURATION_ROUNDING_S
        if span < duration - tolerance:
            if measured_end >= duration - tolerance:
                # FFmpeg's Matroska muxer stores the last timestamp as the duration: with a start offset it is
                # the end, not the length
                duration = span
            elif stream.frames <= 0:
                # no frame count in the header (Matroska): the packets must reach the stated duration
                raise VideoDecodeError(
                    f"truncated: the {kind} header says {duration:.3f} s but the packets end at {span:.3f} s "
                    f"({size} bytes)",
                    name=name,
                )

    context = stream.codec_context
    width = context.width or (first.width if first is not None else 0)
    height = context.height or (first.height if first is not None else 0)
    pixel_format = context.pix_fmt or (first.format.name if first is not None else "")
    bit_rate = container.bit_rate or (round(size * 8 / duration) if duration > 0 else None)
    info = VideoInfo(
        width=width,
        height=height,
        fps=fps,
        duration=duration,
        frame_count=frame_count,
        codec=context.name,
        container=kind,
        has_audio=any(s.type == "audio" for s in container.streams),
        pixel_format=pixel_format,
        bit_rate=bit_rate or None,
        rotation=_rotation(first) if first is not None else 0,
    )

    timeline: tuple[int, ...] | None = None
    keyframes: tuple[int, ...] = ()
    if not pts_missing:
        ordered = sorted(frame_pts)
        if len(set(ordered)) == len(ordered):  # repeated timestamps cannot identify frames
            timeline = tuple(ordered)
            keyframes = tuple(sorted(bisect.bisect_left(ordered, pts) for pts in key_pts))
    return VideoScan(
        info=info,
        frame_pts=timeline,
        keyframes=keyframes,
        time_base=stream.time_base or Fraction(1, 1),
        stream_start=video_start if video_start != float("inf") else 0.0,
        video_duration=video_duration,
    )


def probe_video(src: VideoSource, name: str | None = None) -> VideoInfo:
    """Size, frame rate, duration, exact frame count, codec and container of a video file.

    ``src`` is a local path or a seekable binary file object (read from offset 0). ``name`` is only used in error
    messages; for a path it defaults to the file's name.

    The file is read once: every packet of every stream is demuxed (read, not decoded), and the first video frame
    is decoded to prove the codec works. Problems raise :class:`VideoDecodeError` with a precise ``problem``:

    * empty file; content FFmpeg does not recognize; an image (PNG, JPEG, GIF, ...); a container other than
      MP4/MOV, WebM/MKV or AVI; no video stream (the message counts the streams there are, e.g. "no video stream
      (1 audio stream)"; cover art in an audio file is not a video); frames over :data:`MAX_PIXELS`;
    * truncation: a packet cut short at the end of the file (FFmpeg marks it corrupt); fewer packets than the
      index lists (MP4/MOV sample tables, AVI headers) - an MP4 whose index is at its end cannot even be opened
      once cut; and, for containers without a frame count (WebM/MKV), packets that end before the duration the
      header states (tolerance: half a frame plus 2 ms). Garbage that stops the demuxer early is caught the same
      way;
    * a demuxing error, a first frame that cannot be decoded, or a stream without frames.

    Not detected: damage inside the compressed data of frames after the first one (bytes overwritten in place, the
    packet structure intact), and a WebM/MKV cut after its last complete frame when the header has no duration.
    Such damage shows when those frames are decoded (:func:`~scenebase.media.video.extract_frames`), where the
    decoder conceals it or fails.

    ``frame_count`` counts video packets, which equals the number of decoded frames for the supported codecs
    (one frame per packet; packets an MP4 edit list discards are not counted). ``duration`` is the container's
    when it has one (for files with audio it may exceed the video's own span); otherwise it is measured from the
    packets' timestamps (first start to last end over all streams).
    """
    return scan_video(src, name).info
