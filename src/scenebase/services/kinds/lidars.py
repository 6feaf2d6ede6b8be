"""LIDAR point clouds (FACTS 2.3, 10.2, 10.5): PCD (ascii, binary, binary_compressed, legacy headers), the seed's
``numpy`` and ``binary`` layouts and KITTI ``.bin`` scans, probed completely at ingest (point count, fields,
bounds, intensity range) and served to the web app as decimated renditions ``thumbnails.skip_<s>``.

A rendition is the layout of :mod:`scenebase.media.pointcloud_rendition` (a 16-byte ``SBPC`` header, then float32
x, y, z and intensity/colour per point), gzip-compressed unless asked otherwise, stored as
``application/octet-stream`` and served with ``Content-Encoding: gzip`` so that a browser's ``fetch`` inflates it.

Headerless clouds (KITTI, raw numpy, binary) larger than :data:`PIECEWISE_FROM_BYTES` are probed and rendered in
pieces of whole points, so a multi-gigabyte scan never sits in memory; PCD and ``.npy`` files are decoded whole
(the server's ``max_file_bytes`` bounds them).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

import numpy as np
from isal import igzip

from scenebase.media.pointcloud import (
    CONTENT_TYPES,
    EXTENSIONS,
    FORMATS,
    RENDITION_CONTENT_TYPE,
    PointCloud,
    PointCloudDecodeError,
    PointCloudInfo,
    binary_dtype,
    content_type_for,
    extension_for,
    probe_pointcloud,
    read_points,
    rendition,
)
from scenebase.media.pointcloud_raw import NPY_MAGIC
from scenebase.services.errors import InvalidArgument
from scenebase.services.kinds.base import AssetKind, Media, MediaError, PostIngestJob, Probed, Rendition

#: FACTS 10.5: every ingest starts a compression with these skip factors
DEFAULT_SKIP_FACTORS = (1, 10, 100)
#: a rendition holding more points than this is refused (a viewer draws a few million; use a larger skip factor)
MAX_RENDITION_POINTS = 10_000_000
MAX_SKIP_FACTOR = 1_000_000
#: headerless clouds above this size are read in pieces of about PIECE_BYTES (whole points)
PIECEWISE_FROM_BYTES = 64 * 1024 * 1024
PIECE_BYTES = 16 * 1024 * 1024
RENDITION_TAG = re.compile(r"skip_([1-9][0-9]*)")
#: ISA-L level 2 compresses float32 points as small as zlib level 1 (the library's) in about a quarter of the time
GZIP_LEVEL = 2
_GZIP_MAGIC = b"\x1f\x8b"
_RAW_FORMATS = ("kitti", "numpy", "binary")


def rendition_tag(skip_factor: int) -> str:
    return f"skip_{skip_factor}"


def skip_factors_of(values: Any, what: str = "skip_factors") -> list[int]:
    """Positive integer skip factors (duplicates dropped, order kept); InvalidArgument naming the bad value."""
    if not isinstance(values, list | tuple) or not values:
        raise InvalidArgument(f"{what} must be a non-empty list of positive integers, got {values!r}")
    out: list[int] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SKIP_FACTOR:
            raise InvalidArgument(f"{what}: {v!r} is not an integer between 1 and {MAX_SKIP_FACTOR}")
        if v not in out:
            out.append(v)
    return out


def rendition_points(doc: dict[str, Any], skip_factor: int) -> int:
    """Points in the ``skip_factor`` rendition of an ingested cloud: every s-th of its finite points."""
    return -(-int(doc.get("finite_points") or 0) // skip_factor)


def rendition_problem(doc: dict[str, Any], skip_factor: int) -> str | None:
    """Why the ``skip_factor`` rendition of ``doc`` is not made (too many points), or None."""
    count = rendition_points(doc, skip_factor)
    if count <= MAX_RENDITION_POINTS:
        return None
    least = -(-int(doc.get("finite_points") or 0) // MAX_RENDITION_POINTS)
    return (f"skip_{skip_factor} would hold {count:,} points, more than the {MAX_RENDITION_POINTS:,} a rendition "
            f"may hold; use a skip factor of at least {least}")  # fmt: skip


class LidarKind(AssetKind):
    asset_type = "lidars"
    media_type = "lidar"
    noun = "LIDAR"
    derived = frozenset(
        {"num_points", "fields", "field_types", "width", "height", "pcd_version", "pcd_encoding", "bounds",
         "intensity_range", "finite_points", "viewpoint"}
    )  # fmt: skip
    accepted = frozenset({"format", "binary_format", "num_fields", "related_images"})
    # a sensor pose (7 numbers) is shown, never searched
    never_indexed = frozenset({"viewpoint"})
    string_lists = ("tags", "sets", "related_images")
    strings = ("sensor", "session_uid", "format", "binary_format")
    id_lists = ("sets", "related_images")
    references: ClassVar[dict[str, str]] = {"related_images": "images"}
    merge_on_no_overwrite = ("sets", "aux", "related_images", "annotations", "annotations_meta")
    extensions = tuple(sorted({e.lstrip(".") for exts in EXTENSIONS.values() for e in exts}))
    content_types = tuple(sorted({*CONTENT_TYPES.values(), "application/x-npy"}))
    job_types = ("lidar_compression",)
    thumbnail_presets: ClassVar[dict[str, str]] = {
        rendition_tag(s): f"one finite point in {s}, gzip-compressed SBPC rendition" for s in DEFAULT_SKIP_FACTORS
    }

    def validate_kind(self, meta: dict[str, Any]) -> dict[str, Any]:
        fmt = str(meta.get("format") or "pcd").strip().lower()
        if fmt not in FORMATS:
            raise InvalidArgument(f"format {meta.get('format')!r} is not one of {list(FORMATS)}")
        meta["format"] = fmt
        num_fields = meta.get("num_fields")
        if num_fields is not None and (isinstance(num_fields, bool) or not isinstance(num_fields, int)):
            raise InvalidArgument(f"num_fields must be an integer, got {num_fields!r}")
        if num_fields is not None and num_fields < 3:
            raise InvalidArgument(f"num_fields must be at least 3 (x, y, z), got {num_fields}")
        if fmt == "binary":
            if not meta.get("binary_format"):
                raise InvalidArgument("format 'binary' needs binary_format (a struct format of one point)")
            try:
                binary_dtype(meta["binary_format"])
            except PointCloudDecodeError as e:
                raise InvalidArgument(e.problem) from None
        return meta

    # ---- files ------------------------------------------------------------------------------------------------

    def probe(self, media: Media, meta: dict[str, Any]) -> Probed:
        fmt = str(meta.get("format") or "pcd")
        params = (fmt, meta.get("num_fields"), meta.get("binary_format"), media.name)
        data = media.buffer()
        try:
            if data is not None:  # an upload held in memory
                head = data[: len(NPY_MAGIC)]
                info = probe_pointcloud(data, *params)
            else:
                with media.open() as fh:
                    head = fh.read(len(NPY_MAGIC))
                    fh.seek(0)
                    piecewise = _piecewise(fmt, media.size, head)
                    info = _probe_pieces(fh, media, meta) if piecewise else probe_pointcloud(fh, *params)
        except PointCloudDecodeError as e:
            raise MediaError(e.problem) from None
        fields = info.as_dict()
        del fields["format"]  # the client's own (normalized) field
        return Probed(fields, content_type_for(fmt, head), extension_for(fmt, head).lstrip("."))

    def thumbnail(self, media: Media, doc: dict[str, Any], tag: str, shape: tuple[int, ...] | None) -> Rendition:
        match = RENDITION_TAG.fullmatch(tag)
        if shape is not None or match is None:
            raise MediaError(f"LIDAR renditions are named skip_<n> (every n-th point), not {tag!r}")
        return self.renditions(media, doc, [int(match.group(1))], gzip_compress=True)[tag]

    def renditions(
        self, media: Media, doc: dict[str, Any], skip_factors: list[int], gzip_compress: bool = True
    ) -> dict[str, Rendition]:
        """The ``skip_<s>`` renditions of one cloud, decoding it once. Raises MediaError (also for a factor whose
        rendition would be too large: see :func:`rendition_problem`)."""
        for s in skip_factors:
            problem = rendition_problem(doc, s)
            if problem:
                raise MediaError(problem)
        fmt = str(doc.get("format") or "pcd")
        try:
            with media.open() as fh:
                head = fh.read(len(NPY_MAGIC))
                fh.seek(0)
                if _piecewise(fmt, media.size, head):
                    blobs = _render_pieces(fh, media, doc, skip_factors, gzip_compress)
                else:
                    cloud = read_points(fh, fmt, doc.get("num_fields"), doc.get("binary_format"), media.name)
                    blobs = {s: _gzip(rendition(cloud, s, gzip_compress=False), gzip_compress) for s in skip_factors}
        except PointCloudDecodeError as e:
            raise MediaError(e.problem) from None
        ext = "sbpc.gz" if gzip_compress else "sbpc"
        return {
            rendition_tag(s): Rendition(data, "sbpc", RENDITION_CONTENT_TYPE, ext, extra={
                "skip_factor": s, "num_points": rendition_points(doc, s), "gzip": gzip_compress})
            for s, data in blobs.items()
        }  # fmt: skip

    def thumbnail_encoding(self, data: bytes) -> str | None:
        return "gzip" if data[:2] == _GZIP_MAGIC else None

    def after_ingest(self, docs: list[dict[str, Any]], options: dict[str, Any]) -> list[PostIngestJob]:
        if not docs:
            return []
        params = {"ids": [d["id"] for d in docs], "skip_factors": list(DEFAULT_SKIP_FACTORS), "gzip_compress": True}
        return [PostIngestJob("lidar_compression", params, f"LIDAR renditions of {len(docs)} point clouds")]


def _gzip(plain: bytes, compress: bool) -> bytes:
    return igzip.compress(plain, GZIP_LEVEL, mtime=0) if compress else plain


# ---- headerless clouds in pieces --------------------------------------------------------------------------------


def _piecewise(fmt: str, size: int, head: bytes) -> bool:
    return fmt in _RAW_FORMATS and size > PIECEWISE_FROM_BYTES and not (fmt == "numpy" and head == NPY_MAGIC)


def _point_size(meta: dict[str, Any], name: str) -> int:
    fmt = meta["format"]
    if fmt == "kitti":
        return 16
    if fmt == "binary":
        return int(binary_dtype(str(meta.get("binary_format")), name).itemsize)
    if meta.get("num_fields") is None:
        raise PointCloudDecodeError("num_fields is required for a raw numpy buffer (the data is not a .npy file)")
    return 4 * int(meta["num_fields"])


def _pieces(fh: BinaryIO, media: Media, meta: dict[str, Any]) -> Iterator[bytes]:
    """The cloud's bytes in pieces of whole points; the same size check as decoding it whole."""
    point = _point_size(meta, media.name)
    if media.size % point:
        raise PointCloudDecodeError(
            f"data of {media.size} bytes is not a multiple of the {point}-byte point of format {meta['format']!r}"
        )
    step = max(1, PIECE_BYTES // point) * point
    while piece := fh.read(step):
        yield piece


def _probe_pieces(fh: BinaryIO, media: Media, meta: dict[str, Any]) -> PointCloudInfo:
    """probe_pointcloud of a large headerless cloud, piece by piece, with the statistics merged."""
    total = finite = 0
    first: PointCloudInfo | None = None
    lows: list[float] = []
    highs: list[float] = []
    intensity: list[float] = []
    for piece in _pieces(fh, media, meta):
        info = probe_pointcloud(piece, meta["format"], meta.get("num_fields"), meta.get("binary_format"), media.name)
        first = first or info
        total += info.num_points
        finite += info.finite_points
        if info.bounds is not None:
            lows = [min(a, b) for a, b in zip(lows or info.bounds["min"], info.bounds["min"], strict=True)]
            highs = [max(a, b) for a, b in zip(highs or info.bounds["max"], info.bounds["max"], strict=True)]
        if info.intensity_range is not None:
            lo, hi = info.intensity_range
            intensity = [min(lo, intensity[0]), max(hi, intensity[1])] if intensity else [lo, hi]
    assert first is not None  # media.size > PIECEWISE_FROM_BYTES: at least one piece
    return PointCloudInfo(
        format=first.format, num_points=total, fields=first.fields, field_types=first.field_types, width=total,
        height=1, pcd_version=None, pcd_encoding=None, bounds={"min": lows, "max": highs} if lows else None,
        intensity_range=intensity or None, finite_points=finite,
    )  # fmt: skip


def _render_pieces(
    fh: BinaryIO, media: Media, doc: dict[str, Any], skip_factors: list[int], gzip_compress: bool
) -> dict[int, bytes]:
    """The renditions of a large headerless cloud: each piece's finite points whose ordinal among all finite
    points is a multiple of s, rendered (skip 1) piece by piece and joined under one header."""
    header: bytes | None = None
    tables: dict[int, list[bytes]] = {s: [] for s in skip_factors}
    counts = dict.fromkeys(skip_factors, 0)
    seen = 0  # finite points before this piece
    for piece in _pieces(fh, media, doc):
        cloud = read_points(piece, doc["format"], doc.get("num_fields"), doc.get("binary_format"), media.name)
        points = cloud.points
        finite = np.ones(len(points), dtype=bool)
        for axis in "xyz":
            if points.dtype[axis].kind == "f":
                finite &= np.isfinite(points[axis])
        index = np.flatnonzero(finite)
        ordinals = seen + np.arange(len(index))
        seen += len(index)
        for s in skip_factors:
            chosen = points[index[ordinals % s == 0]]
            part = rendition(PointCloud(chosen, cloud.info), 1, gzip_compress=False)
            header = header or part[:16]
            tables[s].append(part[16:])
            counts[s] += len(chosen)
    assert header is not None
    out: dict[int, bytes] = {}
    for s in skip_factors:
        head = bytearray(header)
        struct.pack_into("<II", head, 8, counts[s], s)  # point count and skip factor (documented layout)
        plain = bytes(head) + b"".join(tables[s])
        out[s] = _gzip(plain, gzip_compress)
    return out
