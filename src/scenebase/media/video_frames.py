"""Videos: decoding frames by number, poster frames and frame thumbnails (part of :mod:`scenebase.media.video`).

Frame numbers are 0-based positions in display order, the same numbering as ``VideoInfo.frame_count``: frame n is
the video packet with the n-th smallest presentation timestamp, which is the n-th frame a decoder outputs when
decoding from the start. This holds for B-frames (decode order differs from display order), variable frame rates
and streams whose first timestamp is not 0, because frames are identified by their timestamps, not by time
arithmetic.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator, Sequence
from typing import Literal

import av
import av.container
import av.error
import av.video.frame
import av.video.stream
import numpy as np
from PIL import Image

from scenebase.media.budget import DECODE_BUDGET, DecodeBudget, DecodeTooLarge
from scenebase.media.images import JPEG_QUALITY, fit_within
from scenebase.media.video_base import (
    VideoDecodeError,
    VideoSource,
    container_kind,
    describe_error,
    open_input,
    source_name,
    video_stream,
)
from scenebase.media.video_probe import FrameTimeline, VideoScan, scan_video

__all__ = ["SEEK_GAP_FRAMES", "extract_frames", "frame_thumbnail", "poster_frame"]

SEEK_GAP_FRAMES: int = 16
""":func:`extract_frames` seeks to the keyframe before the next wanted frame only when that keyframe lies more than
this many frames after the last decoded one; closer targets are reached by decoding forward, which is cheaper than
a seek (a seek also drains the frame-threaded decoder's pipeline)."""

_FORMAT_ALIASES = {"JPG": "JPEG"}

_SkipMode = Literal["DEFAULT", "NONREF", "NONKEY"]


#: zlib level of full-size PNG frame thumbnails (speed over the last ~10 % of size)
PNG_COMPRESS_LEVEL = 1


def _rgb_image(frame: av.video.frame.VideoFrame) -> Image.Image:
    return frame.to_image()


def _frame_numbers(frames: Sequence[int]) -> list[int]:
    numbers: set[int] = set()
    for value in frames:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"frame numbers must be integers, got {value!r}")
        numbers.add(int(value))
    return sorted(numbers)


def _check_range(wanted: list[int], frame_count: int, name: str | None) -> None:
    negative = [n for n in wanted if n < 0]
    past = [n for n in wanted if n >= frame_count]
    if not negative and not past:
        return
    problems = []
    if negative:
        problems.append(f"frame{'s' if len(negative) > 1 else ''} {_listing(negative)} (frame numbers start at 0)")
    if past:
        problems.append(f"frame{'s' if len(past) > 1 else ''} {_listing(past)} past the end")
    raise VideoDecodeError(
        f"invalid {' and '.join(problems)}: the video has {frame_count} frames, numbered 0..{frame_count - 1}",
        name=name,
    )


def _listing(numbers: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


class _SkipPolicy:
    """How much of each packet the decoder needs, given the wanted frames (``AVCodecContext.skip_frame``).

    A wanted frame can only reference frames decoded after the keyframe before it (in display order) and before
    itself (in decode order, which for B-frames includes later-displayed anchors). So, packet by packet:

    * a wanted frame: decoded ('DEFAULT');
    * a packet inside such a span of a wanted frame: decoded only if other frames reference it ('NONREF':
      unreferenced B-frames are dropped);
    * any other packet (the rest of a group of pictures after its last wanted frame, gaps not worth a seek): only
      keyframes are decoded ('NONKEY'), which keeps the decoder's state valid at no more cost.

    FFmpeg copies ``skip_frame`` to its frame threads with every packet, so the mode may change between packets.
    """

    def __init__(self, timeline: FrameTimeline, wanted: list[int]) -> None:
        self.timeline = timeline
        self.wanted = frozenset(wanted)
        spans = sorted(
            (int(timeline.decode_position[timeline.keyframe_before(n)]), int(timeline.decode_position[n]))
            for n in wanted
        )
        merged: list[list[int]] = []
        for first, last in spans:
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self.span_starts = [first for first, _ in merged]
        self.span_ends = [last for _, last in merged]
        self.enabled = True

    def mode(self, pts: int | None) -> _SkipMode:
        number = self.timeline.number(pts) if self.enabled else None
        if number is None or number in self.wanted:
            return "DEFAULT"
        position = int(self.timeline.decode_position[number])
        at = bisect.bisect_right(self.span_starts, position) - 1
        return "NONREF" if at >= 0 and position <= self.span_ends[at] else "NONKEY"


def _decoded(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    name: str | None,
    policy: _SkipPolicy | None = None,
) -> Iterator[av.video.frame.VideoFrame]:
    """Frames from the current position to the end; the end-of-stream packet PyAV yields flushes the decoder."""
    context = stream.codec_context
    current: _SkipMode = "DEFAULT"
    context.skip_frame = current
    for packet in container.demux(stream):
        if policy is not None and packet.size:
            mode = policy.mode(packet.pts)
            if mode != current:
                context.skip_frame = current = mode
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(
                f"cannot decode the video at timestamp {packet.pts} ({stream.codec_context.name}: "
                f"{describe_error(exc)})",
                name=name,
            ) from exc
        for frame in frames:
            assert isinstance(frame, av.video.frame.VideoFrame)
            yield frame


def _from(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    pts: int | None,
    name: str | None,
    policy: _SkipPolicy | None = None,
) -> Iterator[av.video.frame.VideoFrame]:
    """Seek to the keyframe at or before ``pts`` (None: the start of the file) and decode from there."""
    try:
        if pts is None:
            container.seek(0, backward=True)
        else:
            container.seek(pts, stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"cannot seek to timestamp {pts} ({describe_error(exc)})", name=name) from exc
    return _decoded(container, stream, name, policy)


def _by_timestamp(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    scan: VideoScan,
    wanted: list[int],
    name: str | None,
) -> Iterator[tuple[int, Image.Image]]:
    timeline = scan.timeline
    assert timeline is not None
    policy = _SkipPolicy(timeline, wanted)
    frames = _decoded(container, stream, name, policy)
    position = -1  # number of the last decoded frame
    may_seek = True
    for target in wanted:
        key = timeline.keyframe_before(target)
        if may_seek and key - position > SEEK_GAP_FRAMES:
            frames = _from(container, stream, int(timeline.pts[key]), name, policy)
            position = -1
        while True:
            found = False
            for frame in frames:
                number = timeline.number(frame.pts)
                if number is None:
                    # the decoder re-timestamps frames: identify them by counting from the start instead
                    yield from _by_count(container, stream, [n for n in wanted if n >= target], name, restart=True)
                    return
                position = number
                if number >= target:
                    found = number == target
                    if found:
                        yield number, _rgb_image(frame)
                    break
            if found:
                break
            if position > target and may_seek:
                # the target never came out (the keyframe flags, the container's index or the stream's references
                # are not what they claim): decode everything from the start from now on
                may_seek = policy.enabled = False
                frames, position = _from(container, stream, None, name, policy), -1
                continue
            raise VideoDecodeError(
                f"frame {target} could not be decoded (the decoder's output "
                f"{'skipped it' if position > target else f'ended after frame {position}'})",
                name=name,
            )


def _by_count(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    wanted: list[int],
    name: str | None,
    restart: bool = False,
) -> Iterator[tuple[int, Image.Image]]:
    """For streams without usable timestamps: count decoded frames from the start (``restart``: seek there)."""
    targets = iter(wanted)
    target = next(targets)
    number = -1
    frames = _from(container, stream, None, name) if restart else _decoded(container, stream, name)
    for number, frame in enumerate(frames):
        if number == target:
            yield number, _rgb_image(frame)
            next_target = next(targets, None)
            if next_target is None:
                return
            target = next_target
    raise VideoDecodeError(
        f"frame {target} could not be decoded (the decoder's output ended after frame {number})", name=name
    )


def _extract(
    src: VideoSource, scan: VideoScan, wanted: list[int], name: str | None
) -> Iterator[tuple[int, Image.Image]]:
    with open_input(src, name) as (container, _size, _header):
        stream = video_stream(container, name)
        stream.thread_type = "AUTO"  # frame and slice threads
        if scan.timeline is None:
            yield from _by_count(container, stream, wanted, name)
        else:
            yield from _by_timestamp(container, stream, scan, wanted, name)


def extract_frames(
    src: VideoSource, frames: Sequence[int], name: str | None = None
) -> Iterator[tuple[int, Image.Image]]:
    """Decode the frames with the given 0-based numbers; yield (frame number, RGB image) in ascending frame order.

    Duplicates are yielded once. Numbers are checked against the exact frame count before anything is decoded (the
    file is demuxed once for that and for the frame timestamps): a number < 0 or >= ``frame_count`` raises
    :class:`VideoDecodeError` naming it and the frame count, at call time, not on first iteration. Non-integers
    raise TypeError.

    Decoding runs forward; it jumps (seeks to the keyframe before the next wanted frame) only when that keyframe
    is more than :data:`SEEK_GAP_FRAMES` frames ahead, and frames that no wanted frame depends on are skipped by
    the decoder (see :class:`_SkipPolicy`). Images are as stored (no rotation applied). A frame the
    decoder cannot produce (corrupt data) raises :class:`VideoDecodeError` when iteration reaches it.
    """
    name = source_name(src, name)
    wanted = _frame_numbers(frames)
    if not wanted:
        return iter(())
    scan = scan_video(src, name, decode_first_frame=False)
    _check_range(wanted, scan.info.frame_count, name)
    return _extract(src, scan, wanted, name)


# --------------------------------------------------------------------------------------------------------------------
# thumbnails


def _output_format(fmt: str) -> str:
    key = fmt.strip().upper()
    key = _FORMAT_ALIASES.get(key, key)
    if key not in ("JPEG", "PNG"):
        raise ValueError(f"unsupported thumbnail format {fmt!r} (supported: JPEG, PNG)")
    return key


def frame_thumbnail(
    image: Image.Image, max_size: tuple[int, int] | None, fmt: str = "JPEG"
) -> tuple[bytes, int, int, str]:
    """Encode a decoded frame as JPEG or PNG fitted within ``max_size`` = (max width, max height).

    The aspect ratio is kept and the frame is never enlarged (see :func:`scenebase.media.images.fit_within`);
    None keeps the full size. Returns (encoded bytes, width, height, format name 'JPEG' or 'PNG').
    """
    out_format = _output_format(fmt)
    if max_size is not None:
        if len(max_size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in max_size):
            raise ValueError(f"max_size must be (width, height) with positive integers, got {max_size!r}")
        target = fit_within(image.size, max_size)
        if target != image.size:
            image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    if out_format == "JPEG":
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    else:
        # zlib level 1: a 1080p frame in ~40 % less time than the default 6, for a file ~10 % larger (frames are
        # extracted by the hundred; a full-size PNG is the slow part of extract_frame_thumbnails)
        image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue(), image.width, image.height, out_format


def _frame_at(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    at_seconds: float | None,
    name: str | None,
) -> av.video.frame.VideoFrame:
    time_base = stream.time_base
    start = stream.start_time if stream.start_time is not None else 0
    frames: Iterator[av.video.frame.VideoFrame]
    if at_seconds is None or at_seconds == 0 or time_base is None:
        frames = _decoded(container, stream, name)
        target = None
    else:
        target = start + round(at_seconds / time_base)
        frames = _from(container, stream, target, name)
    shown: av.video.frame.VideoFrame | None = None  # the latest frame that starts at or before the target
    for frame in frames:
        if target is None or frame.pts is None:
            return frame
        if frame.pts > target:
            return shown if shown is not None else frame
        shown = frame
    if shown is None:
        raise VideoDecodeError("no decodable frame", name=name)
    return shown  # at_seconds lies in the last frame or past the end


#: peak bytes per pixel of decoding one frame into a thumbnail: the decoder's reference and threading frames, the
#: RGB copy and Pillow's image (about 27 measured for 4K H.264 and MPEG-4 on 2 cores), with margin
FRAME_DECODE_BYTES_PER_PIXEL = 40


def poster_frame(
    src: VideoSource,
    max_size: tuple[int, int] | None = (300, 300),
    fmt: str = "JPEG",
    at_seconds: float | None = None,
    name: str | None = None,
    budget: DecodeBudget = DECODE_BUDGET,
) -> tuple[bytes, int, int, str]:
    """A thumbnail of one frame; return (encoded bytes, width, height, format).

    By default the first frame (cheapest: nothing is read beyond it, so ingest stays dominated by
    :func:`~scenebase.media.video.probe_video`). With ``at_seconds`` (seconds after the first frame's timestamp)
    the frame on screen at that time: the last one starting at or before it (the last frame of the video when the
    time is past the end). Sizing and
    formats as in :func:`frame_thumbnail`. The decode reserves :data:`FRAME_DECODE_BYTES_PER_PIXEL` per pixel of
    the frame size from ``budget`` (see :mod:`scenebase.media.budget`): more than the whole budget is a
    :class:`VideoDecodeError`, a full budget is waited for, then ``DecodeBusy``.
    """
    if at_seconds is not None and not at_seconds >= 0:
        raise ValueError(f"at_seconds must be >= 0, got {at_seconds!r}")
    out_format = _output_format(fmt)
    name = source_name(src, name)
    with open_input(src, name) as (container, _size, header):
        stream = video_stream(container, name)
        container_kind(container, header, name)
        width, height = stream.codec_context.width, stream.codec_context.height
        try:
            reservation = budget.reserve(width * height * FRAME_DECODE_BYTES_PER_PIXEL, f"a {width}x{height} video")
            with reservation:
                image = _rgb_image(_frame_at(container, stream, at_seconds, name))
                return frame_thumbnail(image, max_size, out_format)
        except DecodeTooLarge as e:
            raise VideoDecodeError(f"frames too large to decode: {e.problem}", name=name) from None
