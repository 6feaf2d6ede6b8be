"""Headerless point-cloud formats: numpy (raw float32 or .npy), binary (a ``struct`` format per point) and KITTI.

* ``numpy`` (the seed's ``format="numpy"``): little-endian float32 values, ``num_fields`` per point, reshaped to
  (-1, num_fields); or a ``.npy`` file (magic ``\\x93NUMPY``) holding a 2-D float array, one row per point.
  Columns are named x, y, z, intensity, then f4, f5, ... by position.
* ``binary`` (the seed's experimental ``format="binary"``): points back to back, each decoded by the Python
  ``struct`` format ``binary_format``; the numbers it yields are named x, y, z, intensity, epoch, then f5, f6, ...
  Decoding goes through a numpy dtype with the same layout (byte order, sizes and, for native '@' formats, the
  alignment padding), never through a Python loop.
* ``kitti`` (KITTI velodyne ``.bin``): float32 x, y, z, intensity.
"""

from __future__ import annotations

import io
import re
import struct
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from scenebase.media.pointcloud_core import Decoded, PointCloudDecodeError, describe

__all__ = ["NPY_MAGIC", "binary_dtype", "decode_binary", "decode_kitti", "decode_numpy"]

NPY_MAGIC = b"\x93NUMPY"

_NUMPY_NAMES = ("x", "y", "z", "intensity")
_BINARY_NAMES = ("x", "y", "z", "intensity", "epoch")
_STRUCT_ITEM = re.compile(r"\s*(\d*)([a-zA-Z?])")
# struct code -> numpy kind; the size always comes from struct.calcsize, so native and standard sizes both work
_STRUCT_KINDS = {
    "b": "i", "B": "u", "?": "b", "h": "i", "H": "u", "i": "i", "I": "u", "l": "i", "L": "u",
    "q": "i", "Q": "u", "n": "i", "N": "u", "e": "f", "f": "f", "d": "f", "P": "u",
}  # fmt: skip
_NOT_NUMBERS = {"c": "a bytes value", "s": "a bytes string", "p": "a Pascal string"}
ByteData = bytes | bytearray


def _names(count: int, first: tuple[str, ...]) -> list[str]:
    return [first[i] if i < len(first) else f"f{i}" for i in range(count)]


def _empty(data: ByteData, format: str, name: str | None) -> None:
    if len(data) == 0:
        raise PointCloudDecodeError(f"empty file (0 bytes), no {format} point cloud", name=name, format=format)


def _unorganized(format: str, columns: dict[str, npt.NDArray[Any]], rows: npt.NDArray[np.void] | None) -> Decoded:
    count = len(columns["x"])
    return Decoded(format=format, columns=columns, num_points=count, width=count, height=1, rows=rows)


def _table_columns(table: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
    return {field: table[:, i] for i, field in enumerate(_names(table.shape[1], _NUMPY_NAMES))}


def decode_numpy(data: ByteData, num_fields: int | None, name: str | None = None) -> Decoded:
    """A raw float32 buffer with ``num_fields`` values per point, or a ``.npy`` file of a 2-D float array."""
    _empty(data, "numpy", name)

    def fail(problem: str) -> PointCloudDecodeError:
        return PointCloudDecodeError(problem, name=name, format="numpy")

    if num_fields is not None and (isinstance(num_fields, bool) or not isinstance(num_fields, int | np.integer)):
        raise fail(f"num_fields must be an integer, got {num_fields!r}")
    if num_fields is not None and num_fields < 3:
        raise fail(f"num_fields must be at least 3 (x, y, z), got {num_fields}")
    if bytes(data[: len(NPY_MAGIC)]) == NPY_MAGIC:
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:  # numpy raises ValueError, EOFError, OSError ... on broken .npy files
            raise fail(f"corrupt .npy file ({describe(exc)})") from exc
        if array.dtype.kind != "f":
            raise fail(f".npy array has dtype {array.dtype}, not a float array")
        if array.ndim == 1 and num_fields is not None:
            if array.size % num_fields:
                raise fail(f".npy array of {array.size} values is not a multiple of num_fields = {num_fields}")
            array = array.reshape(-1, num_fields)
        if array.ndim != 2:
            raise fail(f".npy array has shape {array.shape}; want 2-D (points, fields)")
        if array.shape[1] < 3:
            raise fail(f".npy array has {array.shape[1]} columns; a point cloud needs at least 3 (x, y, z)")
        if num_fields is not None and array.shape[1] != num_fields:
            raise fail(f".npy array has {array.shape[1]} columns but num_fields is {num_fields}")
        return _unorganized("numpy", _table_columns(array), None)

    if num_fields is None:
        raise fail("num_fields is required for a raw numpy buffer (the data is not a .npy file)")
    width = 4 * int(num_fields)
    if len(data) % width:
        raise fail(
            f"buffer of {len(data)} bytes is not a multiple of 4 x num_fields = {width} bytes "
            f"(float32 values, num_fields = {num_fields})"
        )
    table = np.frombuffer(data, dtype="<f4").reshape(-1, int(num_fields))
    return _unorganized("numpy", _table_columns(table), None)


def binary_dtype(binary_format: str, name: str | None = None) -> np.dtype[np.void]:
    """The numpy structured dtype laid out exactly like the ``struct`` format ``binary_format``.

    Raises :class:`PointCloudDecodeError` for an invalid format, one with bytes items (c, s, p) or one that
    yields fewer than three numbers.
    """

    def fail(problem: str) -> PointCloudDecodeError:
        return PointCloudDecodeError(f"binary_format {binary_format!r}: {problem}", name=name, format="binary")

    if not isinstance(binary_format, str):
        raise PointCloudDecodeError(
            f"binary_format must be a struct format string, got {binary_format!r}", name=name, format="binary"
        )
    try:
        itemsize = struct.calcsize(binary_format)
    except struct.error as exc:
        raise fail(f"not a valid struct format ({exc})") from exc
    prefix, body = "@", binary_format
    if body[:1] in "@=<>!" and body:
        prefix, body = body[0], body[1:]
    order = ">" if prefix in ">!" or (prefix in "@=" and sys.byteorder == "big") else "<"

    codes: list[str] = []
    position = 0
    while position < len(body):
        match = _STRUCT_ITEM.match(body, position)
        if match is None:
            if body[position:].strip():
                raise fail(f"cannot read it at {body[position:]!r}")
            break
        repeat, code = match.groups()
        position = match.end()
        if code in _NOT_NUMBERS:
            raise fail(f"'{code}' yields {_NOT_NUMBERS[code]}; a point may only hold numbers")
        codes.extend([code] * (int(repeat) if repeat else 1))

    names: list[str] = []
    formats: list[str] = []
    offsets: list[int] = []
    numbers = [code for code in codes if code != "x"]
    field_names = _names(len(numbers), _BINARY_NAMES)
    so_far = ""
    for code in codes:
        so_far += code
        end = struct.calcsize(prefix + so_far)  # struct adds no trailing padding, so this ends the item just added
        if code == "x":
            continue
        size = struct.calcsize(prefix + code)
        kind = _STRUCT_KINDS[code]
        names.append(field_names[len(names)])
        formats.append("?" if kind == "b" else f"{order}{kind}{size}")
        offsets.append(end - size)
    if len(numbers) < 3:
        raise fail(f"it yields {len(numbers)} number(s) per point; x, y and z need at least 3")
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})


def decode_binary(data: ByteData, binary_format: str | None, name: str | None = None) -> Decoded:
    """Points back to back, each laid out as the ``struct`` format ``binary_format``."""
    if binary_format is None:
        raise PointCloudDecodeError("binary_format is required for format 'binary'", name=name, format="binary")
    dtype = binary_dtype(binary_format, name)
    _empty(data, "binary", name)
    if len(data) % dtype.itemsize:
        raise PointCloudDecodeError(
            f"data of {len(data)} bytes is not a multiple of the {dtype.itemsize}-byte point of binary_format "
            f"{binary_format!r}",
            name=name,
            format="binary",
        )
    rows = np.frombuffer(data, dtype=dtype)
    assert dtype.names is not None
    return _unorganized("binary", {field: rows[field] for field in dtype.names}, rows)


def decode_kitti(data: ByteData, name: str | None = None) -> Decoded:
    """KITTI velodyne scan: little-endian float32 x, y, z, intensity per point."""
    _empty(data, "kitti", name)
    if len(data) % 16:
        raise PointCloudDecodeError(
            f"data of {len(data)} bytes is not a multiple of 16 (KITTI points are 4 float32: x, y, z, intensity)",
            name=name,
            format="kitti",
        )
    table = np.frombuffer(data, dtype="<f4").reshape(-1, 4)
    return _unorganized("kitti", _table_columns(table), None)
