"""LIDAR point clouds: a full but cheap probe, every point as a numpy structured array, and web renditions.

A plain library on top of numpy: bytes (or a path, or a binary file) in, values out. It knows nothing of the
catalog, HTTP or settings. Formats (:data:`FORMATS`):

* ``pcd``: PCL's Point Cloud Data, ascii, binary and binary_compressed (:mod:`.pointcloud_pcd`; legacy headers
  that pypcd4 rejects are read too);
* ``numpy``: a raw little-endian float32 buffer with ``num_fields`` values per point, or a ``.npy`` 2-D float array;
* ``binary``: points laid out as the Python ``struct`` format ``binary_format`` (x, y, z, intensity, epoch, ...);
* ``kitti``: KITTI velodyne ``.bin``, float32 x, y, z, intensity.

The headerless formats are described in :mod:`.pointcloud_raw`, the rendition layout in
:mod:`.pointcloud_rendition`. ``num_fields`` only matters for ``numpy`` and ``binary_format`` only for ``binary``;
they are ignored for the other formats.

Every problem with the data raises :class:`PointCloudDecodeError` (a ``ValueError``) whose ``problem`` names what
is wrong and whose ``name`` is the file's name. Probing checks everything reading does (header, data size, line
count, decompressed size); it only skips building the copy of the points. Points whose x, y or z is NaN or
infinite are kept (organized clouds mark holes with them); the bounds and the renditions leave them out.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from scenebase.media.pointcloud_core import (
    COLOR_FIELDS,
    INTENSITY_FIELDS,
    Decoded,
    PointCloud,
    PointCloudDecodeError,
    PointCloudInfo,
    Source,
    assemble,
    info_from,
    load_source,
)
from scenebase.media.pointcloud_pcd import PCD_ENCODINGS, decode_pcd, parse_pcd_header
from scenebase.media.pointcloud_raw import NPY_MAGIC, binary_dtype, decode_binary, decode_kitti, decode_numpy
from scenebase.media.pointcloud_rendition import (
    RENDITION_CONTENT_TYPE,
    RenditionHeader,
    decode_rendition,
    read_rendition_header,
    render,
)

__all__ = [
    "COLOR_FIELDS",
    "CONTENT_TYPES",
    "EXTENSIONS",
    "FORMATS",
    "INTENSITY_FIELDS",
    "PCD_ENCODINGS",
    "RENDITION_CONTENT_TYPE",
    "PointCloud",
    "PointCloudDecodeError",
    "PointCloudInfo",
    "RenditionHeader",
    "binary_dtype",
    "content_type_for",
    "decode_rendition",
    "extension_for",
    "guess_format",
    "parse_pcd_header",
    "probe_pointcloud",
    "read_points",
    "read_rendition_header",
    "rendition",
]

FORMATS: tuple[str, ...] = ("pcd", "numpy", "binary", "kitti")
"""Point-cloud formats: the seed's three (pcd is its default) and KITTI velodyne scans."""

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "pcd": (".pcd",),
    "numpy": (".npy", ".bin"),
    "binary": (".bin",),
    "kitti": (".bin",),
}
"""Format -> file extensions it is stored under, canonical first. A raw numpy buffer (not ``.npy``) is a ``.bin``."""

CONTENT_TYPES: dict[str, str] = {
    "pcd": "application/x-pcd",
    "numpy": "application/octet-stream",
    "binary": "application/octet-stream",
    "kitti": "application/octet-stream",
}
"""Format -> content type of the stored original. PCD has no registered type; ``application/x-pcd`` is what PCL
tools and web viewers use. A ``.npy`` file is ``application/x-npy`` (see :func:`content_type_for`)."""

_NPY_CONTENT_TYPE = "application/x-npy"
_GUESSES = {".pcd": "pcd", ".npy": "numpy", ".bin": "kitti"}


def _format(format: str, name: str | None = None) -> str:
    key = format.strip().lower() if isinstance(format, str) else ""
    if key not in FORMATS:
        raise PointCloudDecodeError(
            f"unknown point-cloud format {format!r} (supported: {', '.join(FORMATS)})", name=name
        )
    return key


def _is_npy(data: bytes | bytearray | memoryview | None) -> bool:
    return data is not None and bytes(data[: len(NPY_MAGIC)]) == NPY_MAGIC


def content_type_for(format: str, data: bytes | None = None) -> str:
    """Content type of a stored point cloud of ``format``; pass ``data`` to tell a ``.npy`` file from a raw buffer."""
    key = _format(format)
    if key == "numpy" and _is_npy(data):
        return _NPY_CONTENT_TYPE
    return CONTENT_TYPES[key]


def extension_for(format: str, data: bytes | None = None) -> str:
    """File extension (with the dot) to store a point cloud of ``format`` under; '.npy' only for ``.npy`` data."""
    key = _format(format)
    if key == "numpy" and not _is_npy(data):
        return ".bin"
    return EXTENSIONS[key][0]


def guess_format(filename: str) -> str | None:
    """Format implied by a file name: '.pcd' -> pcd, '.npy' -> numpy, '.bin' -> kitti; None otherwise.

    A ``binary`` cloud cannot be recognized by name: it needs its ``binary_format`` anyway.
    """
    return _GUESSES.get(PurePath(filename).suffix.lower())


def _decode(src: Source, format: str, num_fields: int | None, binary_format: str | None, name: str | None) -> Decoded:
    data, name = load_source(src, name)
    key = _format(format, name)
    if isinstance(data, memoryview):
        data = data.tobytes()
    if key == "pcd":
        return decode_pcd(data, name)
    if key == "numpy":
        return decode_numpy(data, num_fields, name)
    if key == "binary":
        return decode_binary(data, binary_format, name)
    return decode_kitti(data, name)


def probe_pointcloud(
    src: Source,
    format: str = "pcd",
    num_fields: int | None = None,
    binary_format: str | None = None,
    name: str | None = None,
) -> PointCloudInfo:
    """Check a point cloud completely and describe it (:class:`PointCloudInfo`), without copying its points.

    ``src`` is a path, an open binary file or the bytes; ``name`` (defaults to the path's file name) is only used
    in error messages. Raises :class:`PointCloudDecodeError` for anything wrong with the data, ``OSError`` when a
    path cannot be read.
    """
    return info_from(_decode(src, format, num_fields, binary_format, name))


def read_points(
    src: Source,
    format: str = "pcd",
    num_fields: int | None = None,
    binary_format: str | None = None,
    name: str | None = None,
) -> PointCloud:
    """Every point of a cloud as a writable structured array (one field per column, see :class:`PointCloudInfo`),
    with the same checks and :class:`PointCloudInfo` as :func:`probe_pointcloud`."""
    decoded = _decode(src, format, num_fields, binary_format, name)
    return PointCloud(points=assemble(decoded), info=info_from(decoded))


def rendition(
    src_or_cloud: Source | PointCloud,
    skip_factor: int,
    gzip_compress: bool = True,
    *,
    format: str = "pcd",
    num_fields: int | None = None,
    binary_format: str | None = None,
    name: str | None = None,
) -> bytes:
    """The web app's decimated copy of a cloud: every ``skip_factor``-th finite point as float32 x, y, z and a fourth
    column (intensity, packed colour or zeros) behind a 16-byte header, gzip-compressed when ``gzip_compress``.

    The layout is documented in :mod:`scenebase.media.pointcloud_rendition`; :func:`decode_rendition` reads it back.
    ``format``, ``num_fields``, ``binary_format`` and ``name`` apply when ``src_or_cloud`` is not a
    :class:`PointCloud`.
    """
    columns: dict[str, Any]
    if isinstance(src_or_cloud, PointCloud):
        points = src_or_cloud.points
        columns = {field: points[field] for field in points.dtype.names or ()}
    else:
        columns = _decode(src_or_cloud, format, num_fields, binary_format, name).columns
    return render(columns, skip_factor, gzip_compress)
