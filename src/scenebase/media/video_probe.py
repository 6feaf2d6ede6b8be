"""Videos: probing - one demuxing pass over the whole file (part of :mod:`scenebase.media.video`).

:func:`probe_video` reads every packet without decoding it (demuxing only: packets are read, not decompressed) and
decodes exactly one frame. That single pass gives an exact frame count, a duration also for files whose header has
none, the checks for truncation described in :func:`probe_video`, and the frame timeline that frame extraction
needs (:class:`VideoScan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import av.container
import av.error
import av.video.frame
import av.video.stream
import numpy as np
import numpy.typing as npt

from scenebase.media.video_base import (
    VideoDecodeError,
    VideoInfo,
    VideoSource,
    container_kind,
    describe_error,
    open_input,
    source_name,
    video_stream,
)

__all__ = ["FrameTimeline", "VideoScan", "probe_video", "scan_video"]

# a container whose header states a duration must hold packets up to that time, within half a frame plus the
# rounding of millisecond timestamps (Matroska); anything shorter was cut off
_DURATION_ROUNDING_S = 0.002


IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class FrameTimeline:
    """Which packet each frame number is: frame n is the packet with the n-th smallest presentation timestamp.

    Arrays rather than dicts keep long videos cheap (a 2-hour 60 fps video has 432,000 frames)."""

    pts: IntArray
    """Presentation timestamps in display order (frame n has ``pts[n]``), in the stream's time base; unique."""
    decode_position: IntArray
    """Frame n's position in the stored (decode) order of the packets."""
    keyframes: IntArray
    """Frame numbers of the keyframes, ascending."""

    def __len__(self) -> int:
        return len(self.pts)

    def number(self, pts: int | None) -> int | None:
        """The frame number of a timestamp; None when no frame has it."""
        if pts is None:
            return None
        at = int(np.searchsorted(self.pts, pts))
        return at if at < len(self.pts) and int(self.pts[at]) == pts else None

    def keyframe_before(self, number: int) -> int:
        """The last keyframe at or before frame ``number`` (0 when there is none)."""
        at = int(np.searchsorted(self.keyframes, number, side="right")) - 1
        return int(self.keyframes[at]) if at >= 0 else 0

    @classmethod
    def build(cls, stored_pts: list[int], key_pts: list[int]) -> FrameTimeline | None:
        """From the timestamps in stored order; None when some repeat (they cannot identify frames then)."""
        stored = np.asarray(stored_pts, dtype=np.int64)
        order = np.argsort(stored, kind="stable")
        ordered = stored[order]
        if len(ordered) > 1 and not bool(np.all(ordered[1:] > ordered[:-1])):
            return None
        keyframes = np.unique(np.searchsorted(ordered, np.asarray(key_pts, dtype=np.int64)))
        return cls(pts=ordered, decode_position=order.astype(np.int64), keyframes=keyframes.astype(np.int64))


@dataclass(frozen=True, slots=True)
class VideoScan:
    """:class:`VideoInfo` plus the frame timeline that frame extraction needs (internal to the video modules)."""

    info: VideoInfo
    timeline: FrameTimeline | None
    """None when the stream's timestamps are missing or repeat, so frames can only be counted from the start."""
    stream_start: float
    """Seconds of the first video frame's timestamp (not always 0)."""
    video_duration: float
    """Seconds from the first video frame's start to the last one's end (audio not included)."""
    extradata: bytes | None
    """The codec's global setup (e.g. H.264 SPS/PPS): packets of streams whose setup differs cannot be mixed."""


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


class _Demuxed:
    """What one pass over the packets collects."""

    def __init__(self, video_index: int) -> None:
        self.video_index = video_index
        self.counts: dict[int, int] = {}  # packets per stream, including those an edit list discards
        self.spans: dict[int, _StreamSpan] = {}  # shown packets only
        self.frame_pts: list[int] = []
        self.key_pts: list[int] = []
        self.pts_missing = 0
        self.first: av.video.frame.VideoFrame | None = None

    @property
    def video_packets(self) -> int:
        return self.counts.get(self.video_index, 0)

    @property
    def frame_count(self) -> int:
        return len(self.frame_pts) + self.pts_missing


def _demux(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    kind: str,
    size: int,
    name: str | None,
    decode_first_frame: bool,
) -> _Demuxed:
    seen = _Demuxed(stream.index)
    counts, spans = seen.counts, seen.spans
    video_index = stream.index
    try:
        for packet in container.demux():
            if packet.size == 0:
                continue  # the end-of-stream marker PyAV yields per stream
            index = packet.stream_index
            if packet.is_corrupt:
                raise VideoDecodeError(
                    f"truncated or corrupt {kind} data: packet of stream {index} at byte {packet.pos} is incomplete "
                    f"(the file has {size} bytes)",
                    name=name,
                )
            counts[index] = counts.get(index, 0) + 1
            if packet.is_discard:
                continue  # an edit list cuts it: not shown, not counted
            pts = packet.pts
            if pts is not None:
                span = spans.get(index)
                if span is None:
                    span = spans[index] = _StreamSpan(packet.time_base)
                span.add(pts, packet.duration or 0)
            if index != video_index:
                continue
            if pts is None:
                seen.pts_missing += 1
            else:
                seen.frame_pts.append(pts)
                if packet.is_keyframe:
                    seen.key_pts.append(pts)
            if seen.first is None and decode_first_frame:
                seen.first = _decode_first(stream, packet, name)
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(
            f"corrupt or truncated {kind} data after {seen.video_packets} video packets ({describe_error(exc)})",
            name=name,
        ) from exc
    return seen


def _check_counts(
    container: av.container.InputContainer, seen: _Demuxed, kind: str, size: int, name: str | None
) -> None:
    """Fewer packets than the index lists means the file was cut. MP4/MOV sample tables list every stream's
    packets; of an AVI header only the video count is comparable (audio lengths there are in samples or bytes)."""
    for stream in container.streams:
        listed = stream.frames
        if listed <= 0 or (stream.index != seen.video_index and kind not in ("mp4", "mov")):
            continue
        present = seen.counts.get(stream.index, 0)
        if present < listed:
            what = "video frames" if stream.index == seen.video_index else f"{stream.type} packets"
            raise VideoDecodeError(
                f"truncated: only {present} of the {listed} {what} listed in the {kind} index are present "
                f"({size} bytes)",
                name=name,
            )


def scan_video(src: VideoSource, name: str | None = None, *, decode_first_frame: bool = True) -> VideoScan:
    """Demux every packet once (and decode the first frame unless told not to); see :func:`probe_video`."""
    name = source_name(src, name)
    with open_input(src, name) as (container, size, header):
        stream = video_stream(container, name)
        kind = container_kind(container, header, name)
        seen = _demux(container, stream, kind, size, name, decode_first_frame)
        if seen.frame_count == 0:
            raise VideoDecodeError(f"the video stream has no frames ({kind}, {size} bytes)", name=name)
        if decode_first_frame and seen.first is None:
            seen.first = _decode_first(stream, None, name)  # flush: frame-threaded decoders hold frames back
            if seen.first is None:
                raise VideoDecodeError(
                    f"no decodable frame: the {stream.codec_context.name} decoder produced no picture from "
                    f"{seen.video_packets} packets",
                    name=name,
                )
        _check_counts(container, seen, kind, size, name)
        return _finish(container, stream, kind, size, name, seen)


def _finish(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    kind: str,
    size: int,
    name: str | None,
    seen: _Demuxed,
) -> VideoScan:
    spans, first, frame_count = seen.spans, seen.first, seen.frame_count
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
    bit_rate = container.bit_rate or (round(size * 8 / duration) if duration > 0 else None)
    info = VideoInfo(
        width=context.width or (first.width if first is not None else 0),
        height=context.height or (first.height if first is not None else 0),
        fps=fps,
        duration=duration,
        frame_count=frame_count,
        codec=context.name,
        container=kind,
        has_audio=any(s.type == "audio" for s in container.streams),
        pixel_format=context.pix_fmt or (first.format.name if first is not None else ""),
        bit_rate=bit_rate or None,
        rotation=_rotation(first) if first is not None else 0,
    )

    timeline = None if seen.pts_missing else FrameTimeline.build(seen.frame_pts, seen.key_pts)
    return VideoScan(
        info=info,
        timeline=timeline,
        stream_start=video_start if video_start != float("inf") else 0.0,
        video_duration=video_duration,
        extradata=context.extradata,
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
      index lists (MP4/MOV sample tables, for every stream; AVI headers, for the video) - an MP4 whose index is at
      its end cannot even be opened once cut; and, for containers without a frame count (WebM/MKV), packets that
      end before the duration the header states (tolerance: half a frame plus 2 ms). Garbage that stops the
      demuxer early is caught the same way;
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
