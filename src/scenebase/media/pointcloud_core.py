"""Shared parts of the point-cloud library: the error, the result types, reading a source and the statistics.

The public entry points live in :mod:`scenebase.media.pointcloud`, which re-exports what is public here.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from scenebase.media.errors import MediaDecodeError

__all__ = [
    "COLOR_FIELDS",
    "INTENSITY_FIELDS",
    "Columns",
    "PointCloud",
    "PointCloudDecodeError",
    "PointCloudInfo",
    "Source",
    "assemble",
    "color_field",
    "describe",
    "intensity_field",
    "load_source",
    "statistics",
]

Source = str | Path | BinaryIO | bytes | bytearray | memoryview
"""Where a point cloud comes from: a file path, an open binary file or the file's bytes."""

INTENSITY_FIELDS: tuple[str, ...] = ("intensity", "i", "reflectance")
"""Field names taken as the intensity of a point, first match wins."""

COLOR_FIELDS: tuple[str, ...] = ("rgb", "rgba")
"""Field names of a 4-byte packed colour (PCL convention: 0xAARRGGBB in the bits of a float32 or uint32)."""

Columns = Mapping[str, npt.NDArray[Any]]


class PointCloudDecodeError(MediaDecodeError):
    """The bytes are not a usable point cloud of the requested format.

    ``problem`` says what is wrong ("header says 1000 points but the data holds 213", "not a PCD file ...",
    "buffer of 1000 bytes is not a multiple of 4 x num_fields = 16"); ``name`` is the file name given by the
    caller (or the path's name), if any; ``format`` is the point-cloud format that was being decoded.
    """

    def __init__(self, problem: str, *, name: str | None = None, format: str | None = None) -> None:
        super().__init__(problem, name=name)
        self.format = format


@dataclass(frozen=True, slots=True)
class PointCloudInfo:
    """What :func:`~scenebase.media.pointcloud.probe_pointcloud` learns about a point cloud.

    ``fields`` are the columns of the decoded structured array, in file order: a PCD field with COUNT n > 1 becomes
    n columns ``name__0000`` ... (pypcd4's naming), PCD padding fields named ``_`` are left out. ``field_types``
    are the matching numpy dtype strings ('<f4', '<u4', ...).
    """

    format: str
    """'pcd', 'numpy', 'binary' or 'kitti'."""
    num_points: int
    fields: tuple[str, ...]
    field_types: tuple[str, ...]
    width: int
    """Points per row of an organized cloud; ``num_points`` for an unorganized one."""
    height: int
    """Rows of an organized cloud; 1 for an unorganized one."""
    pcd_version: str | None
    """'0.7', '0.5', ... as the header says (a leading '.' is written '0.'); None when not PCD or not stated."""
    pcd_encoding: str | None
    """'ascii', 'binary' or 'binary_compressed' for PCD; None otherwise."""
    bounds: dict[str, list[float]] | None
    """``{"min": [x, y, z], "max": [x, y, z]}`` over the finite points; None when there is none."""
    intensity_range: list[float] | None
    """[min, max] of the finite intensities of the finite points (see :data:`INTENSITY_FIELDS`); None if none."""
    finite_points: int
    """Points whose x, y and z are all finite (organized clouds mark missing points with NaN)."""
    viewpoint: tuple[float, ...] | None = None
    """PCD VIEWPOINT: translation tx ty tz then quaternion qw qx qy qz; None when not PCD."""

    @property
    def organized(self) -> bool:
        return self.height > 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists instead of tuples)."""
        return {
            "format": self.format,
            "num_points": self.num_points,
            "fields": list(self.fields),
            "field_types": list(self.field_types),
            "width": self.width,
            "height": self.height,
            "pcd_version": self.pcd_version,
            "pcd_encoding": self.pcd_encoding,
            "bounds": self.bounds,
            "intensity_range": self.intensity_range,
            "finite_points": self.finite_points,
            "viewpoint": list(self.viewpoint) if self.viewpoint is not None else None,
        }


@dataclass(frozen=True, slots=True, eq=False)  # numpy arrays have no plain ==
class PointCloud:
    """Every point of a cloud: ``points`` is a 1-D structured array (one field per column of ``info.fields``, in
    row-major order for organized clouds, i.e. index = row * width + column) and ``info`` its probe result."""

    points: npt.NDArray[np.void]
    info: PointCloudInfo

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def xyz(self) -> npt.NDArray[np.float64]:
        """(n, 3) float64 copy of the positions, non-finite points included."""
        out = np.empty((len(self), 3), dtype=np.float64)
        for i, axis in enumerate("xyz"):
            out[:, i] = self.points[axis]
        return out

    def organized(self) -> npt.NDArray[np.void]:
        """The points as a (height, width) array (a view); unorganized clouds give shape (1, n)."""
        return self.points.reshape(self.info.height, self.info.width)


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a format decoder hands back: one 1-D array (often a view into the input) per column, plus layout."""

    format: str
    columns: dict[str, npt.NDArray[Any]]
    num_points: int
    width: int
    height: int
    pcd_version: str | None = None
    pcd_encoding: str | None = None
    viewpoint: tuple[float, ...] | None = None
    rows: npt.NDArray[np.void] | None = field(default=None)
    """The points as stored, when the format stores them row by row (a structured view, possibly with padding)."""


def load_source(src: Source, name: str | None) -> tuple[bytes | bytearray | memoryview, str | None]:
    """The whole content of ``src`` and the name to use in errors (the path's file name when none is given)."""
    if isinstance(src, bytes | bytearray | memoryview):
        return src, name
    if isinstance(src, str | Path):
        path = Path(src)
        return path.read_bytes(), name if name is not None else path.name
    if isinstance(src, io.IOBase) or hasattr(src, "read"):
        data = src.read()
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"point-cloud source {name or src!r} must be opened in binary mode")
        if name is None:
            source_name = getattr(src, "name", None)
            name = Path(source_name).name if isinstance(source_name, str) else None
        return data, name
    raise TypeError(f"unsupported point-cloud source type {type(src).__name__} (want a path, binary file or bytes)")


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def intensity_field(fields: Mapping[str, object] | tuple[str, ...]) -> str | None:
    return next((name for name in INTENSITY_FIELDS if name in fields), None)


def color_field(columns: Columns) -> str | None:
    return next((name for name in COLOR_FIELDS if name in columns and columns[name].dtype.itemsize == 4), None)


def _finite_mask(columns: Columns) -> npt.NDArray[np.bool_] | None:
    """Points whose x, y, z are all finite; None when every point is (integer coordinates, or no NaN/inf)."""
    mask: npt.NDArray[np.bool_] | None = None
    for axis in "xyz":
        column = columns[axis]
        if column.dtype.kind != "f":
            continue
        finite = np.isfinite(column)
        mask = finite if mask is None else np.logical_and(mask, finite, out=mask)
    if mask is not None and mask.all():
        return None
    return mask


def statistics(columns: Columns) -> tuple[int, dict[str, list[float]] | None, list[float] | None]:
    """(finite point count, bounds, intensity range) of decoded columns; see :class:`PointCloudInfo`."""
    count = len(columns["x"])
    mask = _finite_mask(columns)
    finite = count if mask is None else int(np.count_nonzero(mask))
    if finite == 0:
        return 0, None, None

    def selected(column: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return column if mask is None else column[mask]

    lows: list[float] = []
    highs: list[float] = []
    for axis in "xyz":
        values = selected(columns[axis])
        lows.append(float(values.min()))
        highs.append(float(values.max()))
    intensity_range: list[float] | None = None
    name = intensity_field(columns)
    if name is not None:
        values = selected(columns[name])
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        if values.size:
            intensity_range = [float(values.min()), float(values.max())]
    return finite, {"min": lows, "max": highs}, intensity_range


def assemble(decoded: Decoded) -> npt.NDArray[np.void]:
    """A new, writable, packed structured array holding every column of ``decoded``."""
    dtype = np.dtype([(name, column.dtype) for name, column in decoded.columns.items()])
    if decoded.rows is not None and decoded.rows.dtype == dtype:
        return decoded.rows.copy()
    out = np.empty(decoded.num_points, dtype=dtype)
    for name, column in decoded.columns.items():
        out[name] = column
    return out


def info_from(decoded: Decoded) -> PointCloudInfo:
    finite, bounds, intensity_range = statistics(decoded.columns)
    return PointCloudInfo(
        format=decoded.format,
        num_points=decoded.num_points,
        fields=tuple(decoded.columns),
        field_types=tuple(column.dtype.str for column in decoded.columns.values()),
        width=decoded.width,
        height=decoded.height,
        pcd_version=decoded.pcd_version,
        pcd_encoding=decoded.pcd_encoding,
        bounds=bounds,
        intensity_range=intensity_range,
        finite_points=finite,
        viewpoint=decoded.viewpoint,
    )
