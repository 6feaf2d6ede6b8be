"""Videos: what every video module shares - the error, :class:`VideoInfo`, the accepted containers, and opening
and recognizing a file (part of :mod:`scenebase.media.video`; import the public names from there).

A plain library on top of PyAV (FFmpeg): paths or file objects in, values out. It knows nothing of the catalog,
HTTP or settings.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import av.error
import av.stream
import av.video.frame
import av.video.stream

from scenebase.media.errors import MediaDecodeError

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "MAX_PIXELS",
    "VideoDecodeError",
    "VideoInfo",
    "VideoSource",
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
# FFmpeg may only pick one of these demuxers: the supported containers, plus self-contained formats that are only
# recognized to say what an upload is instead (images, audio, other video containers). Playlist and concat
# demuxers (hls, concat, image2 sequences, ...) would open further files or URLs named inside an upload.
_FORMAT_WHITELIST = ",".join(
    [
        "mov,mp4,m4a,3gp,3g2,mj2",
        "matroska,webm",
        "avi",
        *("png_pipe", "jpeg_pipe", "gif", "apng", "webp_pipe", "bmp_pipe", "tiff_pipe", "jpegxl_pipe"),
        *("mp3", "wav", "ogg", "flac", "aac"),
        *("mpegts", "mpeg", "flv", "asf", "mxf", "ivf", "h264", "hevc", "m4v"),
    ]
)
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = b"\x42\x82"
_HEADER_BYTES = 64


class VideoDecodeError(MediaDecodeError):
    """The file is not a usable video.

    ``problem`` says exactly what is wrong ("empty file (0 bytes)", "no video stream (1 audio stream)", "truncated:
    only 30 of the 60 frames listed in the index are present", "frame 250 is past the end (the video has 132
    frames, 0..131)", ...); ``name`` is the file name given by the caller (or the path's file name), if any.
    """


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
    options = {"format_whitelist": _FORMAT_WHITELIST}
    target: str | BinaryIO
    if isinstance(src, str | os.PathLike):
        target = os.fspath(src)
        options["protocol_whitelist"] = "file"
    else:
        target = src
    try:
        container = av.open(target, mode="r", options=options)
    except av.error.FFmpegError as exc:
        # InvalidDataError: nothing recognized it; ArgumentError: a demuxer that is not whitelisted did
        raise VideoDecodeError(
            f"not a video (unrecognized content, starts with {header[:8]!r}; supported: {SUPPORTED_TEXT})", name=name
        ) from exc
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
