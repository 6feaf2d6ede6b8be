"""The web app's decimated point cloud ("rendition"), one per skip factor (FACTS 10.2).

Layout (all little-endian), gzip-compressed as a whole when asked::

    offset  size  field
    0       4     magic b"SBPC"
    4       1     version (1)
    5       1     column 4 kind: 0 = none (zeros), 1 = intensity, 2 = packed colour
    6       2     reserved (0)
    8       4     point count n (uint32)
    12      4     skip factor s (uint32)
    16      16n   n points of float32 x, y, z, c

The points are the finite ones (x, y and z all finite) of the cloud, in file order, keeping every s-th of them:
``finite[::s]``. Positions are cast to float32 (a float64 cloud loses precision beyond ~7 digits, which a viewer
does not need). Column 4 is the intensity (see ``INTENSITY_FIELDS``) cast to float32 when the cloud has one;
otherwise, for a cloud with a 4-byte ``rgb``/``rgba`` field, the packed colour's 32 bits unchanged (PCL's
0xAARRGGBB; read it with ``column.view(np.uint32)``); otherwise zeros. Intensity wins over colour because LIDAR
viewers colour by intensity.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scenebase.media.pointcloud_core import Columns, PointCloudDecodeError, color_field, intensity_field

__all__ = [
    "COLUMN4_COLOR",
    "COLUMN4_INTENSITY",
    "COLUMN4_NONE",
    "RENDITION_CONTENT_TYPE",
    "RENDITION_MAGIC",
    "RENDITION_VERSION",
    "RenditionHeader",
    "decode_rendition",
    "read_rendition_header",
    "render",
]

RENDITION_MAGIC = b"SBPC"
RENDITION_VERSION = 1
RENDITION_CONTENT_TYPE = "application/octet-stream"
"""Content type of a stored rendition; a gzip-compressed one is additionally served with Content-Encoding gzip."""
GZIP_LEVEL = 1
"""zlib level. On a LIDAR-like scan (100k points, cm-rounded) level 1 gives 51 % of the raw size, level 6 gives
46 % at 2.4 times the CPU time; renditions are made on a shared job worker, so the cheap level wins."""

COLUMN4_NONE, COLUMN4_INTENSITY, COLUMN4_COLOR = 0, 1, 2
_COLUMN4_NAMES = {COLUMN4_NONE: "none", COLUMN4_INTENSITY: "intensity", COLUMN4_COLOR: "rgb"}
_HEADER = struct.Struct("<4sBBHII")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class RenditionHeader:
    version: int
    column4: str
    """'intensity', 'rgb' (packed colour bits) or 'none' (zeros)."""
    num_points: int
    skip_factor: int


def _skip_factor(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"skip_factor must be a positive integer, got {value!r}")
    return int(value)


def render(columns: Columns, skip_factor: int, gzip_compress: bool = True) -> bytes:
    """The rendition of a cloud given as its columns (x, y, z at least); see the module docstring for the layout."""
    step = _skip_factor(skip_factor)
    mask: npt.NDArray[np.bool_] | None = None
    for axis in "xyz":
        if columns[axis].dtype.kind == "f":
            finite = np.isfinite(columns[axis])
            mask = finite if mask is None else np.logical_and(mask, finite, out=mask)
    index: npt.NDArray[np.intp] | slice
    index = slice(None, None, step) if mask is None or mask.all() else np.flatnonzero(mask)[::step]
    count = len(range(len(columns["x"]))[index]) if isinstance(index, slice) else len(index)
    table = np.empty((count, 4), dtype="<f4")
    for i, axis in enumerate("xyz"):
        table[:, i] = columns[axis][index]
    kind = COLUMN4_NONE
    intensity = intensity_field(columns)
    color = color_field(columns)
    if intensity is not None:
        kind = COLUMN4_INTENSITY
        table[:, 3] = columns[intensity][index]
    elif color is not None:
        kind = COLUMN4_COLOR
        table[:, 3] = np.ascontiguousarray(columns[color][index]).view("<f4")
    else:
        table[:, 3] = 0.0
    payload = _HEADER.pack(RENDITION_MAGIC, RENDITION_VERSION, kind, 0, count, step) + table.tobytes()
    return gzip.compress(payload, compresslevel=GZIP_LEVEL, mtime=0) if gzip_compress else payload


def _plain(data: bytes) -> bytes:
    if data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise PointCloudDecodeError(f"corrupt gzip-compressed rendition ({exc})", format="rendition") from exc
    return data


def _header(plain: bytes) -> RenditionHeader:
    if len(plain) < _HEADER.size or plain[:4] != RENDITION_MAGIC:
        raise PointCloudDecodeError(
            f"not a point-cloud rendition (starts with {plain[:8]!r}, want {RENDITION_MAGIC!r})", format="rendition"
        )
    _magic, version, kind, _reserved, count, step = _HEADER.unpack_from(plain)
    if version != RENDITION_VERSION or kind not in _COLUMN4_NAMES:
        raise PointCloudDecodeError(
            f"unsupported rendition version {version} / column-4 kind {kind}", format="rendition"
        )
    if len(plain) != _HEADER.size + 16 * count:
        raise PointCloudDecodeError(
            f"rendition says {count} points ({16 * count} bytes) but holds {len(plain) - _HEADER.size} bytes",
            format="rendition",
        )
    return RenditionHeader(version=version, column4=_COLUMN4_NAMES[kind], num_points=count, skip_factor=step)


def read_rendition_header(data: bytes) -> RenditionHeader:
    """The header of a rendition (gzip-compressed or not)."""
    return _header(_plain(data))


def decode_rendition(data: bytes) -> npt.NDArray[np.float32]:
    """The (n, 4) float32 points of a rendition (gzip-compressed or not); see :func:`read_rendition_header`."""
    plain = _plain(data)
    header = _header(plain)
    return np.frombuffer(plain, dtype="<f4", offset=_HEADER.size).reshape(header.num_points, 4).copy()
