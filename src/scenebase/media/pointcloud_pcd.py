"""PCD (PCL's Point Cloud Data format): header parser and the ascii, binary and binary_compressed decoders.

Our own reader rather than pypcd4's: pypcd4 rejects headers PCL accepts (legacy ``VERSION .5``, missing VERSION),
reads binary data without checking its size, and builds a copy of every point even when only the bounds are
wanted. The binary_compressed block is decompressed with ``lzf`` (python-neo-lzf, pypcd4's own dependency).

Tolerances (what PCL writes or reads, plus keywords in any case):

* header keys in any order; VERSION optional; HEIGHT defaults to 1, COUNT to all 1s, POINTS to WIDTH x HEIGHT;
  files older than 0.7 may omit SIZE and TYPE together (then every field is float32); COLUMNS is read as FIELDS;
* zero bytes after the point data of binary and binary_compressed files (PCL pads those files to whole 4 KiB
  pages); any other byte there means the header's POINTS is wrong and is an error;
* blank lines in ascii data; ascii data with or without values for padding (``_``) fields (PCL's writer leaves
  them out, its reader expects them; the first data line decides).

A binary_compressed block that would have to expand more than :data:`MAX_LZF_RATIO` times is rejected before it
is decompressed, so a forged size header cannot make the reader allocate gigabytes.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from typing import Any

import lzf
import numpy as np
import numpy.typing as npt

from scenebase.media.budget import DECODE_BUDGET, DecodeTooLarge
from scenebase.media.pointcloud_core import Decoded, PointCloudDecodeError, describe

__all__ = ["MAX_HEADER_BYTES", "MAX_LZF_RATIO", "PCD_ENCODINGS", "PcdHeader", "decode_pcd", "parse_pcd_header"]

MAX_HEADER_BYTES = 64 * 1024
"""A PCD header longer than this (without its DATA line) is rejected."""

PCD_ENCODINGS: tuple[str, ...] = ("ascii", "binary", "binary_compressed")

MAX_LZF_RATIO = 100
"""LZF expands at most ~88 times (a 3-byte back reference copies up to 264 bytes)."""

_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")
_KEY_ALIASES = {"COLUMNS": "FIELDS"}
_ENCODING_ALIASES = {"binaryscompressed": "binary_compressed"}
_TYPE_SIZES = {"F": (4, 8), "I": (1, 2, 4, 8), "U": (1, 2, 4, 8)}
_NUMPY_KIND = {"F": "f", "I": "i", "U": "u"}
_DEFAULT_VIEWPOINT: tuple[float, ...] = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
_PADDING = "_"
_LOADTXT_COLUMNS = re.compile(r"requires (\d+) columns but (\d+) were found at row (\d+)")

ByteData = bytes | bytearray


@dataclass(frozen=True, slots=True)
class PcdHeader:
    """A validated PCD header; ``fields``/``sizes``/``types``/``counts`` include padding fields named ``_``."""

    version: str | None
    fields: tuple[str, ...]
    sizes: tuple[int, ...]
    types: tuple[str, ...]
    counts: tuple[int, ...]
    width: int
    height: int
    points: int
    viewpoint: tuple[float, ...]
    encoding: str
    data_offset: int
    """Index of the first data byte (just after the DATA line)."""

    @property
    def point_size(self) -> int:
        return sum(size * count for size, count in zip(self.sizes, self.counts, strict=True))

    def columns(self, padding: bool = False) -> list[tuple[str, str, int]]:
        """(column name, numpy dtype string, byte offset in a binary point) of every non-padding column; with
        ``padding`` also of the padding values, named ``__pad<n>``."""
        out: list[tuple[str, str, int]] = []
        offset = 0
        for name, size, type_, count in zip(self.fields, self.sizes, self.types, self.counts, strict=True):
            dtype = f"<{_NUMPY_KIND[type_]}{size}"
            for i in range(count):
                if name != _PADDING:
                    out.append((name if count == 1 else f"{name}__{i:04d}", dtype, offset + i * size))
                elif padding:
                    out.append((f"__pad{len(out)}", dtype, offset + i * size))
            offset += size * count
        return out


def _fail(problem: str, name: str | None) -> PointCloudDecodeError:
    return PointCloudDecodeError(problem, name=name, format="pcd")


def _ints(key: str, values: list[str], name: str | None, minimum: int) -> tuple[int, ...]:
    try:
        numbers = tuple(int(v) for v in values)
    except ValueError:
        raise _fail(f"PCD header {key} must hold integers, got {' '.join(values)!r}", name) from None
    if any(n < minimum for n in numbers):
        raise _fail(f"PCD header {key} values must be >= {minimum}, got {' '.join(values)!r}", name)
    return numbers


def _one_int(key: str, values: list[str], name: str | None) -> int:
    if len(values) != 1:
        raise _fail(f"PCD header {key} must hold one integer, got {' '.join(values)!r}", name)
    return _ints(key, values, name, 0)[0]


def _version(values: list[str]) -> str:
    text = values[0] if values else ""
    return "0" + text if text.startswith(".") else text


def _header_lines(data: ByteData, name: str | None) -> tuple[dict[str, list[str]], int]:
    """Key -> values of every header line up to and including DATA, and the offset just after the DATA line."""
    if len(data) == 0:
        raise _fail("empty file (0 bytes), not a PCD file", name)
    found: dict[str, list[str]] = {}
    position = 0
    line_number = 0
    limit = min(len(data), MAX_HEADER_BYTES)
    while True:
        if position >= limit:
            where = "the file ends" if position >= len(data) else f"the first {MAX_HEADER_BYTES} bytes end"
            if not found:
                raise _fail(f"not a PCD file: {where} before any PCD header line", name)
            missing = [key for key in ("FIELDS", "WIDTH", "DATA") if key not in found]
            raise _fail(f"PCD header incomplete: {where} without {', '.join(missing)}", name)
        stop = data.find(b"\n", position, limit)
        if stop < 0:
            if limit < len(data):
                raise _fail(f"PCD header incomplete: no DATA line within the first {MAX_HEADER_BYTES} bytes", name)
            stop = len(data)
        raw = bytes(data[position:stop])
        line_number += 1
        position = stop + 1
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            start = bytes(data[:16])
            raise _fail(
                f"not a PCD file: header line {line_number} is not text (file starts with {start!r})", name
            ) from None
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        key = _KEY_ALIASES.get(key.upper(), key.upper())
        if key not in _KEYS:
            if not found:
                raise _fail(f"not a PCD file: line {line_number} is {line[:40]!r}, not a PCD header line", name)
            raise _fail(f"unknown PCD header line {line_number}: {line[:60]!r}", name)
        if key in found:
            raise _fail(f"PCD header line {key} appears twice", name)
        found[key] = values
        if key == "DATA":
            return found, min(position, len(data))


def _before_0_7(version: str | None) -> bool:
    if version is None:
        return True
    try:
        return float(version) < 0.7
    except ValueError:
        return False


def parse_pcd_header(data: ByteData, name: str | None = None) -> PcdHeader:
    """Parse and check a PCD header (everything up to the DATA line); raises :class:`PointCloudDecodeError`."""
    lines, data_offset = _header_lines(data, name)
    missing = [key for key in ("FIELDS", "WIDTH") if key not in lines]
    if missing:
        raise _fail(f"PCD header has no {' or '.join(missing)} line", name)
    version = _version(lines["VERSION"]) if "VERSION" in lines else None
    fields = tuple(lines["FIELDS"])
    if not fields:
        raise _fail("PCD header FIELDS is empty", name)
    n = len(fields)

    if "SIZE" not in lines and "TYPE" not in lines and _before_0_7(version):
        sizes, types = (4,) * n, ("F",) * n  # pre-0.7 files: plain float32 fields
    else:
        for key in ("SIZE", "TYPE"):
            if key not in lines:
                raise _fail(f"PCD header has no {key} line", name)
        sizes = _ints("SIZE", lines["SIZE"], name, 1)
        types = tuple(t.upper() for t in lines["TYPE"])
    counts = _ints("COUNT", lines["COUNT"], name, 1) if "COUNT" in lines else (1,) * n
    for key, values in (("SIZE", sizes), ("TYPE", types), ("COUNT", counts)):
        if len(values) != n:
            raise _fail(f"PCD header lists {n} FIELDS but {len(values)} {key} values", name)
    for field, size, type_ in zip(fields, sizes, types, strict=True):
        if type_ not in _TYPE_SIZES:
            raise _fail(f"PCD field {field!r} has TYPE {type_!r} (allowed: F, I, U)", name)
        if size not in _TYPE_SIZES[type_]:
            allowed = ", ".join(str(s) for s in _TYPE_SIZES[type_])
            raise _fail(f"PCD field {field!r} has TYPE {type_} with SIZE {size} (allowed sizes: {allowed})", name)

    width = _one_int("WIDTH", lines["WIDTH"], name)
    height = _one_int("HEIGHT", lines["HEIGHT"], name) if "HEIGHT" in lines else 1
    points = _one_int("POINTS", lines["POINTS"], name) if "POINTS" in lines else width * height
    if points != width * height:
        raise _fail(
            f"header says {points} points but WIDTH x HEIGHT = {width} x {height} = {width * height}",
            name,
        )
    viewpoint = _DEFAULT_VIEWPOINT
    if "VIEWPOINT" in lines:
        try:
            viewpoint = tuple(float(v) for v in lines["VIEWPOINT"])
        except ValueError:
            viewpoint = ()
        if len(viewpoint) != 7:
            raise _fail(f"PCD header VIEWPOINT must hold 7 numbers, got {' '.join(lines['VIEWPOINT'])!r}", name)
    encoding_values = lines["DATA"]
    encoding = encoding_values[0].lower() if len(encoding_values) == 1 else ""
    encoding = _ENCODING_ALIASES.get(encoding, encoding)
    if encoding not in PCD_ENCODINGS:
        raise _fail(
            f"PCD header DATA is {' '.join(encoding_values)!r} (allowed: {', '.join(PCD_ENCODINGS)})",
            name,
        )
    header = PcdHeader(version, fields, sizes, types, counts, width, height, points, viewpoint, encoding, data_offset)
    columns = [column for column, _dtype, _offset in header.columns()]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise _fail(f"PCD header names field(s) {', '.join(duplicates)} more than once", name)
    absent = [axis for axis in "xyz" if axis not in columns]
    if absent:
        raise _fail(
            f"PCD has no {', '.join(absent)} field (fields: {' '.join(fields)}); a point cloud needs x, y and z",
            name,
        )
    return header


def _points_in(size: int, point_size: int) -> str:
    if size % point_size == 0:
        return f"{size // point_size}"
    return f"{size} bytes, not a whole number of {point_size}-byte points"


def _check_padding(data: ByteData, start: int, expected_end: str, name: str | None, what: str) -> None:
    """Raise unless every byte of ``data`` from ``start`` on is zero (PCL's page padding)."""
    if start >= len(data):
        return
    tail = np.frombuffer(data, dtype=np.uint8, offset=start)
    if tail.any():
        raise _fail(f"{what} ({len(tail)} bytes after {expected_end} are not padding)", name)


def _decode_binary(data: ByteData, header: PcdHeader, name: str | None) -> Decoded:
    point_size = header.point_size
    expected = header.points * point_size
    available = len(data) - header.data_offset
    if available < expected:
        raise _fail(
            f"header says {header.points} points ({expected} bytes) but the data holds "
            f"{_points_in(available, point_size)}",
            name,
        )
    if available > expected:
        _check_padding(
            data,
            header.data_offset + expected,
            f"the {header.points} declared points",
            name,
            f"header says {header.points} points but the data holds {_points_in(available, point_size)}",
        )
    columns = header.columns()
    dtype = np.dtype(
        {
            "names": [c[0] for c in columns],
            "formats": [c[1] for c in columns],
            "offsets": [c[2] for c in columns],
            "itemsize": point_size,
        }
    )
    rows = np.frombuffer(data, dtype=dtype, count=header.points, offset=header.data_offset)
    return _decoded(header, {c[0]: rows[c[0]] for c in columns}, rows)


def _decode_compressed(data: ByteData, header: PcdHeader, name: str | None) -> Decoded:
    start = header.data_offset
    expected = header.points * header.point_size
    if len(data) - start < 8:
        if header.points == 0 and not bytes(data[start:]).strip(b"\0"):
            return _decoded(header, {c[0]: np.empty(0, c[1]) for c in header.columns()}, None)
        raise _fail(
            f"binary_compressed data is truncated: {len(data) - start} bytes where an 8-byte size header is due", name
        )
    compressed_size, uncompressed_size = struct.unpack_from("<II", data, start)
    if uncompressed_size != expected:
        raise _fail(
            f"header says {header.points} points ({expected} bytes) but the compressed block holds "
            f"{_points_in(uncompressed_size, header.point_size)}",
            name,
        )
    block_end = start + 8 + compressed_size
    if block_end > len(data):
        raise _fail(
            f"binary_compressed data is truncated: the block says {compressed_size} compressed bytes but only "
            f"{len(data) - start - 8} follow",
            name,
        )
    _check_padding(data, block_end, "the compressed block", name, "unexpected data after the compressed block")
    if expected > MAX_LZF_RATIO * compressed_size + 1024:
        raise _fail(
            f"corrupt binary_compressed data: {compressed_size} compressed bytes cannot expand to the {expected} "
            f"bytes of {header.points} points",
            name,
        )
    try:  # the process's decode budget bounds what one block may expand to (media/budget.py)
        DECODE_BUDGET.check(expected, f"a binary_compressed block of {header.points} points")
    except DecodeTooLarge as e:
        raise _fail(f"too large to decode: {e.problem}", name) from None
    if expected == 0:
        raw: bytes | None = b""
    else:
        try:
            raw = lzf.decompress(bytes(memoryview(data)[start + 8 : block_end]), expected)
        except ValueError as exc:
            raise _fail(f"corrupt binary_compressed data ({describe(exc)})", name) from exc
    if raw is None or len(raw) != expected:
        got = "more" if raw is None else f"{len(raw)}"
        raise _fail(f"corrupt binary_compressed data: it decompresses to {got} bytes, not {expected}", name)

    # field by field, each field's values for all points in a row (and a COUNT > 1 field point by point)
    columns: dict[str, npt.NDArray[Any]] = {}
    offset = 0
    for field, size, type_, count in zip(header.fields, header.sizes, header.types, header.counts, strict=True):
        block = np.frombuffer(raw, dtype=f"<{_NUMPY_KIND[type_]}{size}", count=header.points * count, offset=offset)
        offset += block.nbytes
        if field == _PADDING:
            continue
        if count == 1:
            columns[field] = block
        else:
            table = block.reshape(header.points, count)
            for i in range(count):
                columns[f"{field}__{i:04d}"] = table[:, i]
    return _decoded(header, columns, None)


def _parse_ascii(text: bytes, dtype: np.dtype[Any]) -> npt.NDArray[np.void]:
    return np.loadtxt(io.BytesIO(text), dtype=dtype, comments=None, ndmin=1, encoding=None)


def _decode_ascii(data: ByteData, header: PcdHeader, name: str | None) -> Decoded:
    text = bytes(memoryview(data)[header.data_offset :])
    columns = header.columns()
    blank = not text.strip()
    if _PADDING in header.fields and not blank:
        # PCL's writer leaves padding values out of ascii data but its reader expects them: take what line 1 has
        first = text.lstrip().split(b"\n", 1)[0]
        with_padding = header.columns(padding=True)
        if len(first.split()) == len(with_padding):
            columns = with_padding
    dtype = np.dtype([(c[0], c[1]) for c in columns])
    if blank:
        rows = np.empty(0, dtype=dtype)
    else:
        try:
            rows = _parse_ascii(text, dtype)
        except ValueError as exc:
            rows = _parse_ascii_leniently(text, dtype, exc, name)
    if rows.shape[0] != header.points:
        raise _fail(f"header says {header.points} points but the data holds {rows.shape[0]}", name)
    kept = {c[0]: rows[c[0]] for c in columns if not c[0].startswith("__pad")}
    return _decoded(header, kept, rows if len(kept) == len(columns) else None)


def _ascii_problem(exc: ValueError) -> str:
    """numpy's loadtxt message, reworded where it speaks of dtypes and usecols."""
    counts = _LOADTXT_COLUMNS.search(str(exc))
    if counts:
        wanted, found, row = counts.groups()
        return f"ascii data does not match the header: data row {int(row)} has {found} values, the fields need {wanted}"
    return f"ascii data does not match the header ({describe(exc)})"


def _parse_ascii_leniently(
    text: bytes, dtype: np.dtype[Any], first_error: ValueError, name: str | None
) -> npt.NDArray[np.void]:
    """Integer fields written as floats ('4.2108e+06') are accepted when the values are whole numbers in range."""
    assert dtype.names is not None
    floats = np.dtype([(n, "<f8") for n in dtype.names])
    try:
        wide = _parse_ascii(text, floats)
    except ValueError:
        raise _fail(_ascii_problem(first_error), name) from first_error
    out = np.empty(wide.shape[0], dtype=dtype)
    for field in dtype.names:
        target = dtype[field]
        values = wide[field]
        if target.kind in "iu":
            limits = np.iinfo(target)
            bad = ~np.isfinite(values) | (values != np.round(values)) | (values < limits.min) | (values > limits.max)
            if bad.any():
                row = int(np.argmax(bad))
                raise _fail(
                    f"ascii data does not match the header: field {field!r} is {target.name} but data row {row + 1} "
                    f"holds {float(values[row])!r}",
                    name,
                ) from first_error
        out[field] = values
    return out


def _decoded(header: PcdHeader, columns: dict[str, npt.NDArray[Any]], rows: npt.NDArray[np.void] | None) -> Decoded:
    return Decoded(
        format="pcd",
        columns=columns,
        num_points=header.points,
        width=header.width,
        height=header.height,
        pcd_version=header.version,
        pcd_encoding=header.encoding,
        viewpoint=header.viewpoint,
        rows=rows,
    )


def decode_pcd(data: ByteData, name: str | None = None) -> Decoded:
    """Parse the header, check the data against it and give every column (views into ``data`` where possible)."""
    header = parse_pcd_header(data, name)
    if header.encoding == "binary":
        return _decode_binary(data, header, name)
    if header.encoding == "binary_compressed":
        return _decode_compressed(data, header, name)
    return _decode_ascii(data, header, name)
