"""Videos made from images (``make_video_from_image_uris``, FACTS 10.4): the ``timestamp,image_uri`` CSV, and
reading and encoding its images.

The CSV is checked whole when the request arrives (every row, every reference), so a bad row is a 400 naming its
line; the kept frames travel to the job in its parameters. Rows are sorted by timestamp and every
``image_skip_factor``-th one is kept; the video plays at the mean rate of the kept frames (``(n - 1) / (last -
first)``), so it starts at the first timestamp and its last frame starts at the last one (the video ends one mean
frame interval later). Timestamps are ISO-8601 (naive ones are UTC) or Unix epochs in seconds, milliseconds,
microseconds or nanoseconds, told apart by their magnitude.

Image references are what media URIs are everywhere (``http(s)://``, ``s3://``, ``file://``, read with the
caller's organization's rights), plus ``scenebase://images/<id>`` for an image already stored in scenebase. An
image that cannot be read or decoded is noted, listed in the job's ``failed``, and replaced by the previous frame
(the next one for leading frames), so the timing of the rest is kept; when none can be read the job fails.
"""

from __future__ import annotations

import csv
import io
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from scenebase.domain.ids import standardize_id
from scenebase.domain.timeutil import looks_like_iso, to_epoch, to_iso
from scenebase.media.images import ImageDecodeError, probe_image
from scenebase.media.video import MAX_PIXELS, encode_video
from scenebase.services.assets import AssetService
from scenebase.services.errors import InvalidArgument, ServiceError, UnsupportedMedia
from scenebase.services.fetch_policy import display_ref
from scenebase.services.jobs import JobContext
from scenebase.services.kinds.images import MAX_IMAGE_BYTES
from scenebase.services.media import MediaService
from scenebase.services.sources import SourceReader
from scenebase.storage.scope import Scope

#: the scheme of references to images stored in scenebase
STORED_IMAGE_PREFIX = "scenebase://images/"
#: most frames one video may be made of (after the skip factor): their list travels in the job's parameters
MAX_FRAMES = 50_000
IMAGE_FORMATS = ("png", "jpg", "jpeg", "tif", "tiff")
#: images read and decoded ahead of the encoder, and by how many threads (each read of a URL takes a fetch slot of
#: the organization, so few)
READ_AHEAD = 8
READ_THREADS = 2
#: failures written as job notes one by one; the rest are counted in one note
MAX_NOTES = 20


def _epoch(cell: str) -> float:
    text = cell.strip()
    try:
        value = float(text)
    except ValueError:
        return to_epoch(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a time: {text!r}")
    for limit, scale in ((1e11, 1.0), (1e14, 1e-3), (1e17, 1e-6)):
        if value < limit:
            return value * scale
    return value * 1e-9  # nanoseconds (cameras and ROS write these)


@dataclass
class FrameList:
    """The kept frames in display order: Unix times and image references, and the video's size and rate."""

    times: list[float]
    uris: list[str]
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.times)

    @property
    def fps(self) -> float:
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])

    @property
    def start_iso(self) -> str:
        return to_iso(self.times[0])

    def to_params(self) -> dict[str, Any]:
        return {"times": self.times, "uris": self.uris, "width": self.width, "height": self.height}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> FrameList:
        return cls([float(t) for t in params["times"]], [str(u) for u in params["uris"]], int(params["width"]),
                   int(params["height"]))  # fmt: skip


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidArgument(f"{what} must be a positive integer, got {value!r}")
    return value


def parse_frame_list(text: str, skip_factor: int, width: int, height: int, image_format: str) -> FrameList:
    """The frames of a ``timestamp,image_uri`` CSV (an optional header row first); InvalidArgument naming the line
    of the first bad row, or what else is wrong."""
    width, height = _positive_int(width, "width"), _positive_int(height, "height")
    if width * height > MAX_PIXELS:
        raise InvalidArgument(f"{width}x{height} is larger than the {MAX_PIXELS / 1e6:g} megapixels a video may have")
    skip_factor = _positive_int(skip_factor, "image_skip_factor")
    if not isinstance(image_format, str) or image_format.lower().lstrip(".") not in IMAGE_FORMATS:
        raise InvalidArgument(f"image_format must be one of {list(IMAGE_FORMATS)}, got {image_format!r}")
    rows: list[tuple[float, int, str]] = []
    header_seen = False
    for line, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not cells or all(not c.strip() for c in cells):
            continue
        first = cells[0].strip()
        if len(cells) < 2 or not cells[1].strip():
            raise InvalidArgument(f"CSV line {line}: expected 'timestamp,image_uri', got {','.join(cells)[:200]!r}")
        try:
            when = _epoch(first)
        except ValueError:
            if not rows and not header_seen and ":" not in cells[1]:
                header_seen = True  # a header row such as 'timestamp,image_uri'
                continue
            hint = "" if looks_like_iso(first) else " (ISO-8601 or a Unix epoch)"
            raise InvalidArgument(f"CSV line {line}: {first[:100]!r} is not a timestamp{hint}") from None
        rows.append((when, line, cells[1].strip()))
    if not rows:
        raise InvalidArgument("the CSV holds no 'timestamp,image_uri' rows")
    rows.sort()
    kept = rows[::skip_factor]
    if len(kept) > MAX_FRAMES:
        raise InvalidArgument(f"{len(kept)} frames after image_skip_factor {skip_factor}; at most {MAX_FRAMES} "
                              "make one video (raise image_skip_factor or split the CSV)")  # fmt: skip
    if len(kept) < 2 or kept[-1][0] <= kept[0][0]:
        raise InvalidArgument(
            f"a video needs at least 2 frames with different timestamps; the CSV keeps {len(kept)} "
            f"(image_skip_factor {skip_factor}) spanning {kept[-1][0] - kept[0][0]:g} s"
        )
    return FrameList([r[0] for r in kept], [r[2] for r in kept], width, height)


@dataclass
class Encoded:
    frames: int = 0
    failed: list[str] = field(default_factory=list)


class ImageFrames:
    """Reads the images of a frame list (references or stored images) and encodes them into an MP4."""

    def __init__(self, sources: SourceReader, assets: AssetService, media: MediaService) -> None:
        self.sources = sources
        self.assets = assets
        self.media = media

    def check(self, scope: Scope, uri: str) -> None:
        """Refuse a reference the caller may not read (scheme, allowed roots and buckets, address syntax)."""
        if uri.lower().startswith("scenebase:"):
            if not uri.startswith(STORED_IMAGE_PREFIX) or not uri[len(STORED_IMAGE_PREFIX) :].strip("/"):
                raise InvalidArgument(f"{uri[:200]!r}: a stored image is named {STORED_IMAGE_PREFIX}<image id>")
            return
        self.sources.check(scope, uri)

    def read(self, scope: Scope, uri: str) -> bytes:
        if uri.startswith(STORED_IMAGE_PREFIX):
            doc = self.assets.get(scope, "images", standardize_id(uri[len(STORED_IMAGE_PREFIX) :].strip("/")))
            with self.media.open_original("images", doc) as media:
                return media.read_bytes(MAX_IMAGE_BYTES)
        return self.sources.read(scope, uri, limit=MAX_IMAGE_BYTES)

    def load(self, scope: Scope, uri: str, size: tuple[int, int]) -> Image.Image:
        """One decoded RGB frame. Raises ServiceError or ImageDecodeError."""
        data = self.read(scope, uri)
        name = display_ref(uri)
        probe_image(data, name)  # format, pixel limit and truncation, before decoding
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "JPEG":
                im.draft("RGB", size)  # decode at a reduced scale when the video is much smaller
            return im.convert("RGB")

    def _loaded(self, ctx: JobContext, frame_list: FrameList) -> Iterator[Future[Image.Image]]:
        """Futures of the frames in order, at most READ_AHEAD read ahead of the consumer."""
        size = (frame_list.width, frame_list.height)
        with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="scenebase-frames") as pool:
            pending: deque[Future[Image.Image]] = deque()
            uris = iter(frame_list.uris)
            try:
                while True:
                    while len(pending) < READ_AHEAD and (uri := next(uris, None)) is not None:
                        pending.append(pool.submit(self.load, ctx.scope, uri, size))
                    if not pending:
                        return
                    yield pending.popleft()
            finally:
                for future in pending:
                    future.cancel()

    def encode(self, ctx: JobContext, frame_list: FrameList, out: Path) -> Encoded:
        """Encode the frames into ``out`` (H.264 MP4) at the list's mean rate; unreadable images are noted."""
        result = Encoded()
        total = len(frame_list)

        def frames() -> Iterator[Image.Image]:
            last: Image.Image | None = None
            leading = 0  # failed frames before the first good one: filled with it
            for i, future in enumerate(self._loaded(ctx, frame_list)):
                uri = frame_list.uris[i]
                try:
                    image = future.result()
                except (ServiceError, ImageDecodeError) as e:
                    result.failed.append(uri)
                    problem = e.message if isinstance(e, ServiceError) else e.problem
                    if len(result.failed) <= MAX_NOTES:
                        ctx.note(f"frame {i} ({display_ref(uri)}): {problem}")
                    if last is None:
                        leading += 1
                    else:
                        yield last
                    continue
                for _ in range(leading + 1):
                    yield image
                leading, last = 0, image
                ctx.progress(90.0 * (i + 1) / total)
            if last is None:
                raise UnsupportedMedia(f"none of the {total} images could be read", resource="videos")

        ctx.stage(f"encoding {total} images at {frame_list.fps:.3f} fps")
        info = encode_video(frames(), out, frame_list.fps, frame_list.width, frame_list.height)
        result.frames = info.frame_count
        if len(result.failed) > MAX_NOTES:
            ctx.note(f"{len(result.failed) - MAX_NOTES} more images could not be read (see the job's result)")
        return result
