"""scenebase.media.pointcloud: the numpy, binary (struct) and KITTI formats, renditions and the format helpers.

Everything is made in memory with numpy and struct.
"""

from __future__ import annotations

import gzip
import io
import struct

import numpy as np
import numpy.typing as npt
import pytest

from scenebase.media.pointcloud import (
    PointCloudDecodeError,
    binary_dtype,
    content_type_for,
    decode_rendition,
    extension_for,
    guess_format,
    probe_pointcloud,
    read_points,
    read_rendition_header,
    rendition,
)


def problem(data: bytes, format: str, **kwargs: object) -> str:
    with pytest.raises(PointCloudDecodeError) as caught:
        probe_pointcloud(data, format=format, name="scan.bin", **kwargs)  # type: ignore[arg-type]
    assert caught.value.name == "scan.bin"
    return caught.value.problem


def table(count: int, columns: int, seed: int = 0) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).uniform(-80, 80, size=(count, columns)).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------------
# numpy


def test_raw_numpy_buffer_is_reshaped_by_num_fields() -> None:
    values = table(50, 6)
    cloud = read_points(values.tobytes(), format="numpy", num_fields=6)
    assert cloud.info.fields == ("x", "y", "z", "intensity", "f4", "f5")
    assert cloud.info.field_types == ("<f4",) * 6
    assert (cloud.info.format, cloud.info.num_points, cloud.info.width, cloud.info.height) == ("numpy", 50, 50, 1)
    for i, field in enumerate(cloud.info.fields):
        np.testing.assert_array_equal(cloud.points[field], values[:, i])
    assert cloud.info.intensity_range == [float(values[:, 3].min()), float(values[:, 3].max())]
    three = probe_pointcloud(values[:, :3].tobytes(), format="numpy", num_fields=3)
    assert (three.fields, three.intensity_range) == (("x", "y", "z"), None)


def test_raw_numpy_buffer_errors() -> None:
    assert problem(bytes(1000), "numpy", num_fields=3) == (
        "buffer of 1000 bytes is not a multiple of 4 x num_fields = 12 bytes (float32 values, num_fields = 3)"
    )
    assert problem(bytes(16), "numpy", num_fields=2) == "num_fields must be at least 3 (x, y, z), got 2"
    assert problem(bytes(16), "numpy", num_fields=True) == "num_fields must be an integer, got True"
    assert "num_fields is required" in problem(bytes(16), "numpy")
    assert problem(b"", "numpy", num_fields=4) == "empty file (0 bytes), no numpy point cloud"


def npy(array: npt.NDArray[np.generic]) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize("dtype", ["<f4", "<f8", ">f8"])
def test_npy_file_of_a_2d_float_array(dtype: str) -> None:
    values = table(40, 5).astype(dtype)
    cloud = read_points(npy(values), format="numpy")
    assert cloud.info.fields == ("x", "y", "z", "intensity", "f4")
    assert cloud.info.field_types == (np.dtype(dtype).str,) * 5
    np.testing.assert_array_equal(cloud.xyz(), values[:, :3].astype(np.float64))
    assert probe_pointcloud(npy(values), format="numpy", num_fields=5).num_points == 40
    assert probe_pointcloud(npy(values.ravel()), format="numpy", num_fields=5).num_points == 40
    assert problem(npy(values), "numpy", num_fields=4) == ".npy array has 5 columns but num_fields is 4"


def test_npy_errors() -> None:
    assert problem(npy(np.zeros((4, 3), np.int32)), "numpy") == ".npy array has dtype int32, not a float array"
    assert problem(npy(np.zeros((4, 2), np.float32)), "numpy").startswith(".npy array has 2 columns")
    assert problem(npy(np.zeros(12, np.float32)), "numpy").startswith(".npy array has shape (12,)")
    assert problem(npy(np.zeros(10, np.float32)), "numpy", num_fields=3) == (
        ".npy array of 10 values is not a multiple of num_fields = 3"
    )
    assert problem(npy(np.zeros((4, 3), np.float32))[:-5], "numpy").startswith("corrupt .npy file")


# --------------------------------------------------------------------------------------------------------------------
# binary (struct format)


@pytest.mark.parametrize(
    ("fmt", "codes"),
    [
        ("<fffId", "fffId"),
        ("@fffId", "fffId"),  # native: 4 bytes of alignment padding before the double
        ("ffffd", "ffffd"),
        (">ffffd", "ffffd"),
        ("=3fHxxq", "fffHq"),
        ("!hhhBe", "hhhBe"),
        ("<dddf2xi", "dddfi"),
        ("@bhd", "bhd"),
    ],
)
def test_binary_format_decodes_like_struct(fmt: str, codes: str) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(25):
        row: list[float | int] = []
        for code in codes:
            if code in "fde":
                row.append(float(np.float16(rng.uniform(-100, 100))))  # exact in every float width
            elif code in "BHI":
                row.append(int(rng.integers(0, 200)))
            else:
                row.append(int(rng.integers(-100, 100)))
        rows.append(row)
    data = b"".join(struct.pack(fmt, *row) for row in rows)
    cloud = read_points(data, format="binary", binary_format=fmt)
    expected = list(struct.iter_unpack(fmt, data))
    names = ("x", "y", "z", "intensity", "epoch", "f5", "f6")[: len(codes)]
    assert cloud.info.fields == names
    for i, field in enumerate(names):
        assert cloud.points[field].tolist() == [row[i] for row in expected], field
    assert binary_dtype(fmt).itemsize == struct.calcsize(fmt)


def test_binary_extra_values_are_named_by_position() -> None:
    values = [(1.0, 2.0, 3.0, 0.5, 1e9, 7.0, 8)] * 3
    data = b"".join(struct.pack("<ffffdfi", *row) for row in values)
    info = probe_pointcloud(data, format="binary", binary_format="<ffffdfi")
    assert info.fields == ("x", "y", "z", "intensity", "epoch", "f5", "f6")
    assert info.field_types == ("<f4", "<f4", "<f4", "<f4", "<f8", "<f4", "<i4")
    assert info.intensity_range == [0.5, 0.5]


def test_binary_format_errors() -> None:
    assert problem(bytes(30), "binary", binary_format="<ffff") == (
        "data of 30 bytes is not a multiple of the 16-byte point of binary_format '<ffff'"
    )
    assert problem(bytes(16), "binary", binary_format="<zz").startswith(
        "binary_format '<zz': not a valid struct format ("
    )
    assert problem(bytes(16), "binary", binary_format="<ff") == (
        "binary_format '<ff': it yields 2 number(s) per point; x, y and z need at least 3"
    )
    assert problem(bytes(16), "binary", binary_format="<fff4s") == (
        "binary_format '<fff4s': 's' yields a bytes string; a point may only hold numbers"
    )
    assert problem(bytes(16), "binary") == "binary_format is required for format 'binary'"
    assert problem(b"", "binary", binary_format="<fff") == "empty file (0 bytes), no binary point cloud"
    assert problem(bytes(12), "binary", binary_format=12) == "binary_format must be a struct format string, got 12"


def test_binary_padding_only_format_with_three_numbers_is_fine() -> None:
    data = struct.pack("<fff4x", 1.0, 2.0, 3.0) * 2
    info = probe_pointcloud(data, format="binary", binary_format="<fff4x")
    assert (info.num_points, info.fields, info.bounds) == (2, ("x", "y", "z"), {"min": [1, 2, 3], "max": [1, 2, 3]})


# --------------------------------------------------------------------------------------------------------------------
# kitti and format names


def test_kitti_scan() -> None:
    values = table(30, 4)
    values[3, :3] = np.inf
    cloud = read_points(values.tobytes(), format="KITTI")
    assert (cloud.info.format, cloud.info.num_points, cloud.info.finite_points) == ("kitti", 30, 29)
    np.testing.assert_array_equal(cloud.points["intensity"], values[:, 3])
    assert problem(bytes(33), "kitti") == (
        "data of 33 bytes is not a multiple of 16 (KITTI points are 4 float32: x, y, z, intensity)"
    )
    assert problem(b"", "kitti") == "empty file (0 bytes), no kitti point cloud"


def test_unknown_format() -> None:
    assert problem(bytes(16), "las") == "unknown point-cloud format 'las' (supported: pcd, numpy, binary, kitti)"


def test_format_helpers() -> None:
    assert content_type_for("pcd") == "application/x-pcd"
    assert content_type_for("numpy", npy(np.zeros((1, 3), np.float32))) == "application/x-npy"
    assert content_type_for("numpy", bytes(12)) == "application/octet-stream"
    assert content_type_for("kitti") == "application/octet-stream"
    assert extension_for("numpy", bytes(12)) == ".bin"
    assert extension_for("numpy", npy(np.zeros((1, 3), np.float32))) == ".npy"
    assert extension_for("pcd") == ".pcd"
    assert [guess_format(n) for n in ("a.PCD", "b.npy", "000001.bin", "c.las")] == ["pcd", "numpy", "kitti", None]
    with pytest.raises(PointCloudDecodeError, match="unknown point-cloud format"):
        extension_for("ply")


# --------------------------------------------------------------------------------------------------------------------
# renditions


def kitti_with_holes(count: int = 1000) -> tuple[bytes, npt.NDArray[np.float32]]:
    values = table(count, 4, seed=5)
    values[::7, 0] = np.nan
    values[3::11, 2] = -np.inf
    values[5, 3] = np.nan  # a NaN intensity on a finite point stays in the rendition
    return values.tobytes(), values


@pytest.mark.parametrize("skip", [1, 3, 10, 100])
@pytest.mark.parametrize("compress", [True, False])
def test_rendition_keeps_every_sth_finite_point(skip: int, compress: bool) -> None:
    data, values = kitti_with_holes()
    encoded = rendition(data, skip, compress, format="kitti")
    assert (encoded[:2] == b"\x1f\x8b") is compress
    finite = values[np.isfinite(values[:, :3]).all(axis=1)]
    expected = finite[::skip]
    decoded = decode_rendition(encoded)
    assert decoded.dtype == np.float32 and decoded.shape == expected.shape
    np.testing.assert_array_equal(decoded, expected)
    header = read_rendition_header(encoded)
    assert (header.version, header.column4) == (1, "intensity")
    assert (header.num_points, header.skip_factor) == (len(expected), skip)
    cloud = read_points(data, format="kitti")
    assert rendition(cloud, skip, compress) == encoded


def test_rendition_of_a_float64_cloud_without_intensity_has_zeros() -> None:
    values = table(20, 3).astype(np.float64) * 1.000001
    encoded = rendition(npy(values), 1, format="numpy")
    decoded = decode_rendition(encoded)
    np.testing.assert_array_equal(decoded[:, :3], values.astype(np.float32))
    assert not decoded[:, 3].any()
    assert read_rendition_header(encoded).column4 == "none"


def test_rendition_carries_packed_colour_bits() -> None:
    rng = np.random.default_rng(2)
    count = 64
    xyz = rng.normal(size=(count, 3)).astype("<f4")
    rgb = rng.integers(0, 2**32, size=count, dtype=np.uint64).astype("<u4")
    rgb[:4] = [0xFFFFFFFF, 0x7FC00001, 0xFF800000, 0x00FF8800]  # NaN and inf bit patterns must survive unchanged
    rows = np.zeros(count, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    rows["x"], rows["y"], rows["z"], rows["rgb"] = xyz[:, 0], xyz[:, 1], xyz[:, 2], rgb
    head = (
        "VERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
        f"WIDTH {count}\nHEIGHT 1\nPOINTS {count}\nDATA binary\n"
    ).encode()
    encoded = rendition(head + rows.tobytes(), 2)
    assert read_rendition_header(encoded).column4 == "rgb"
    decoded = decode_rendition(encoded)
    np.testing.assert_array_equal(decoded[:, 3].view(np.uint32), rgb[::2])
    np.testing.assert_array_equal(decoded[:, :3], xyz[::2])


def test_rendition_of_an_all_nan_cloud_is_empty() -> None:
    values = np.full((10, 4), np.nan, dtype=np.float32)
    decoded = decode_rendition(rendition(values.tobytes(), 1, format="kitti"))
    assert decoded.shape == (0, 4)


@pytest.mark.parametrize("skip", [0, -1, 1.5, True, "10"])
def test_rendition_rejects_bad_skip_factors(skip: object) -> None:
    with pytest.raises(ValueError, match="skip_factor must be a positive integer"):
        rendition(bytes(16), skip, format="kitti")  # type: ignore[arg-type]


def test_decode_rendition_rejects_garbage() -> None:
    good = rendition(table(10, 4).tobytes(), 1, False, format="kitti")
    with pytest.raises(PointCloudDecodeError, match="not a point-cloud rendition"):
        decode_rendition(b"hello world, not a rendition")
    with pytest.raises(PointCloudDecodeError, match="rendition says 10 points"):
        decode_rendition(good[:-4])
    with pytest.raises(PointCloudDecodeError, match="corrupt gzip-compressed rendition"):
        decode_rendition(gzip.compress(good)[:-10])
    with pytest.raises(PointCloudDecodeError, match="unsupported rendition version 9"):
        decode_rendition(good[:4] + b"\x09" + good[5:])
