"""Videos (FACTS 2.2, 10.2-10.3): MP4/MOV, WebM/MKV and AVI, probed with PyAV (no ``ffmpeg`` executable).

Three families of derived files live under ``thumbnails.<tag>`` of a video:

* poster thumbnails ``tiny``, ``small`` (JPEG) and ``full_size_png`` (PNG) of the first frame: the same tags and
  sizes as images, made on the first request (cheap: one frame is decoded) or at ingest when the client asks
  (``compress_video(s)=True``, the seed's default);
* frame thumbnails ``<tag>_frame_<n>`` (``tag`` one of the poster presets, ``n`` the 0-based frame number, FACTS
  10.2), made by ``extract_frame_thumbnails`` jobs only;
* video renditions: browser-friendly H.264 MP4 copies ``video_tiny`` / ``video_small`` / ``video_full_size`` (the
  ``RENDITION_PRESETS`` of the media library) or a custom shape under the client's tag, made by
  ``compress_videos`` jobs only, since re-encoding a long video takes minutes (never inside a request).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from scenebase.domain.timeutil import to_epoch, to_iso
from scenebase.media.video import CONTENT_TYPES, EXTENSIONS, RENDITION_PRESETS, VideoDecodeError, poster_frame
from scenebase.media.video import probe_video as probe_video_file
from scenebase.services.kinds.base import AssetKind, FileMedia, Media, MediaError, PostIngestJob, Probed, Rendition

#: poster and frame thumbnail presets: tag -> (max width/height or None for the full size, image format)
POSTER_PRESETS: dict[str, tuple[tuple[int, int] | None, str]] = {
    "tiny": ((100, 100), "JPEG"),
    "small": ((300, 300), "JPEG"),
    "full_size_png": (None, "PNG"),
}
#: what ``compress_videos=True`` makes at ingest (the seed's small + tiny, as posters: cheap, see module doc)
INGEST_POSTERS = ("small", "tiny")
#: the tag a rendition preset is stored under
RENDITION_TAG_PREFIX = "video_"
RENDITION_TAGS: dict[str, str] = {f"{RENDITION_TAG_PREFIX}{name}": name for name in RENDITION_PRESETS}
#: the default tags of extract_frame_thumbnails (FACTS 10.2)
DEFAULT_FRAME_TAGS = ("small", "full_size_png")

_FRAME_TAG = re.compile(r"^(?P<tag>.+)_frame_(?P<frame>\d+)$")


def frame_tag(tag: str, frame: int) -> str:
    """The thumbnail key of frame ``frame`` made with poster preset ``tag`` (FACTS 10.2, SEC:6092)."""
    return f"{tag}_frame_{frame}"


def is_reserved_tag(tag: str) -> bool:
    """Tags a custom rendition may not take: presets and the frame-thumbnail pattern."""
    return tag in POSTER_PRESETS or tag in RENDITION_TAGS or _FRAME_TAG.match(tag) is not None


def image_rendition(data: bytes, width: int, height: int, fmt: str, **extra: Any) -> Rendition:
    content_type, ext = ("image/png", "png") if fmt == "PNG" else ("image/jpeg", "jpg")
    return Rendition(data, fmt, content_type, ext, width, height, dict(extra))


@contextlib.contextmanager
def video_source(media: Media) -> Iterator[Path | BinaryIO]:
    """What PyAV reads: a local file in place, an upload from its spooled stream (never copied to a temp file)."""
    if isinstance(media, FileMedia):
        yield media.path
        return
    with media.open() as stream:
        yield stream


def _iso_bmff_damage(media: Media) -> str | None:
    """What is wrong with an MP4/MOV that FFmpeg cannot open at all: its top-level boxes are walked, so a file cut
    short (a box reaching past the end, no ``moov`` index) is called truncated instead of unrecognized."""
    with media.open() as fh:
        head = fh.read(12)
        if head[4:8] != b"ftyp":
            return None
        found: list[str] = []
        pos = 0
        while pos + 8 <= media.size and len(found) < 10_000:
            fh.seek(pos)
            header = fh.read(16)
            size, kind = int.from_bytes(header[:4], "big"), header[4:8].decode("latin-1")
            if size == 1 and len(header) == 16:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:
                size = media.size - pos  # the box runs to the end of the file
            if size < 8:
                return f"damaged MP4/MOV: box {kind!r} at byte {pos} has an invalid size {size}"
            if pos + size > media.size:
                return (f"truncated MP4/MOV: box {kind!r} at byte {pos} needs {size} bytes but the file ends after "
                        f"{media.size - pos} ({media.size} bytes in all; boxes before it: {found[-5:]})")  # fmt: skip
            found.append(kind)
            pos += size
    if "moov" not in found:
        return f"truncated or incomplete MP4/MOV: no index ('moov' box) in its {media.size} bytes (boxes: {found[:8]})"
    return None


class VideoKind(AssetKind):
    asset_type = "videos"
    media_type = "video"
    noun = "video"
    derived = frozenset(
        {"duration", "fps", "width", "height", "frame_count", "codec", "container", "has_audio", "pixel_format",
         "bit_rate", "rotation", "start_time", "end_time"}
    )  # fmt: skip
    extensions = EXTENSIONS
    content_types = tuple(CONTENT_TYPES.values())
    thumbnail_presets: ClassVar[dict[str, str]] = {
        "tiny": "JPEG of the first frame fitting in 100x100",
        "small": "JPEG of the first frame fitting in 300x300",
        "full_size_png": "PNG of the first frame at the video's size",
    }
    # a batch of videos may be gigabytes of spooled uploads: fewer per request than images
    max_batch = 100
    job_types = ("video_compression",)

    def probe(self, media: Media, meta: dict[str, Any]) -> Probed:
        try:
            with video_source(media) as src:
                info = probe_video_file(src, media.name)
        except VideoDecodeError as e:
            # FFmpeg calls an MP4 cut before its index "unrecognized": say what is wrong with it instead
            damage = _iso_bmff_damage(media) if e.problem.startswith("not a video") else None
            raise MediaError(damage or e.problem) from None
        start = to_epoch(meta["timestamp"]) if meta.get("timestamp") else None
        fields: dict[str, Any] = {
            "duration": info.duration,
            "fps": info.fps,
            "width": info.width,
            "height": info.height,
            "frame_count": info.frame_count,
            "codec": info.codec,
            "container": info.container,
            "has_audio": info.has_audio,
            "pixel_format": info.pixel_format,
            "bit_rate": info.bit_rate,
            "rotation": info.rotation,
        }
        if start is not None:  # FACTS 2.2: start_time = timestamp, end_time = start + duration
            fields["start_time"] = to_iso(start)
            fields["end_time"] = to_iso(start + info.duration)
        return Probed(fields=fields, content_type=info.content_type, extension=info.extension)

    def thumbnail(self, media: Media, doc: dict[str, Any], tag: str, shape: tuple[int, ...] | None) -> Rendition:
        """Poster thumbnails only (presets, or a custom (height, width) as JPEG). Frame thumbnails and video
        renditions are made by the jobs of ``services/videos.py``."""
        if shape is None:
            if tag not in POSTER_PRESETS:
                raise MediaError(f"unknown video thumbnail preset {tag!r}; presets: {sorted(POSTER_PRESETS)}")
            max_size, fmt = POSTER_PRESETS[tag]
        else:
            if len(shape) < 2 or shape[0] <= 0 or shape[1] <= 0:
                raise MediaError(f"a thumbnail shape is (height, width) with positive sizes, got {list(shape)}")
            max_size, fmt = (int(shape[1]), int(shape[0])), "JPEG"
        try:
            with video_source(media) as src:
                data, width, height, out_format = poster_frame(src, max_size, fmt, name=str(doc.get("id")))
        except VideoDecodeError as e:
            raise MediaError(e.problem) from None
        return image_rendition(data, width, height, out_format, frame=0)

    def zip_member_name(self, doc: dict[str, Any]) -> str:
        ext = str((doc.get("object_access") or {}).get("extension") or doc.get("container") or "mp4")
        return doc["id"] if doc["id"].endswith("." + ext) else f"{doc['id']}.{ext}"

    def after_ingest(self, docs: list[dict[str, Any]], options: dict[str, Any]) -> list[PostIngestJob]:
        if not options.get("compress_videos") or not docs:
            return []
        params = {"ids": [d["id"] for d in docs], "posters": list(INGEST_POSTERS)}
        return [PostIngestJob("video_compression", params, "poster thumbnails at ingest", wait=True)]
