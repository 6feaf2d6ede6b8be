"""scenebase.media.pointcloud on PCD: the real sample files, pypcd4 as the reference, and header/data lies.

Real files are read from ../shared/data/pointcloud (see its MANIFEST.md); everything else is made in memory.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import lzf
import numpy as np
import numpy.typing as npt
import pypcd4
import pytest

from scenebase.media.pointcloud import (
    PointCloudDecodeError,
    parse_pcd_header,
    probe_pointcloud,
    read_points,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
POINTCLOUDS = DATA / "pointcloud"
needs_data = pytest.mark.skipif(not POINTCLOUDS.is_dir(), reason=f"sample point clouds not found at {POINTCLOUDS}")

XYZ = ("x", "y", "z")
XYZ_RGB = (*XYZ, "rgb")
XYZ_RGBA = (*XYZ, "rgba")
XYZ_I = (*XYZ, "intensity")
# path under pointcloud/ -> (points, fields, width, height, encoding) as MANIFEST.md lists them, or the error text
REAL_FILES: dict[str, tuple[int, tuple[str, ...], int, int, str | None] | str] = {
    "pcl/bunny.pcd": (397, XYZ, 397, 1, "ascii"),
    "pcl/car6.pcd": (10031, XYZ, 10031, 1, "binary_compressed"),
    "pcl/colored_cloud.pcd": (
        1000,
        ("x", "y", "z", "rgb", "normal_x", "normal_y", "normal_z", "curvature"),
        1,
        1000,
        "binary",
    ),
    "pcl/five_people.pcd": (307200, XYZ_RGBA, 640, 480, "binary_compressed"),
    "pcl/table_scene_mug_stereo_textured.pcd": (307200, XYZ_RGBA, 640, 480, "binary_compressed"),
    "pcl/milk_color.pcd": (13704, XYZ_RGBA, 13704, 1, "binary_compressed"),
    "pcl/cturtle.pcd": (167198, XYZ_I, 167198, 1, "binary_compressed"),
    "pypcd4/ascii.pcd": (213, XYZ_RGB, 213, 1, "ascii"),
    "pypcd4/binary.pcd": (213, XYZ_RGB, 213, 1, "binary"),
    "pypcd4/binary_compressed.pcd": (213, XYZ_RGB, 213, 1, "binary_compressed"),
    "pypcd4/binary_compressed_organized.pcd": (8, XYZ_I, 4, 2, "binary_compressed"),
    "pypcd4/ascii_organized.pcd": (8, XYZ_I, 4, 2, "ascii"),
    "pypcd4/ascii_multi_count.pcd": (8, (*XYZ, *(f"intensity__{i:04d}" for i in range(4))), 8, 1, "ascii"),
    "pypcd4/ascii_with_empty_points.pcd": (0, XYZ_RGB, 0, 0, "ascii"),
    "pypcd4/ascii_invalid_header.pcd": "unknown PCD header line 3: 'FIEL'",
    "pypcd4/ascii_empty.pcd": "empty file (0 bytes)",
    "datumaro_kitti_raw/velodyne_points/data/0000000000.pcd": (100, XYZ, 100, 1, "ascii"),
    "datumaro_kitti_raw/velodyne_points/data/0000000001.pcd": (200, XYZ, 200, 1, "binary"),
    "datumaro_kitti_raw/velodyne_points/data/0000000002.pcd": (100, XYZ, 100, 1, "ascii"),
    "datumaro_supervisely_pointcloud/ds0/pointcloud/frame1.pcd": (100, XYZ, 100, 1, "ascii"),
    "datumaro_supervisely_pointcloud/ds0/pointcloud/frame2.pcd": (200, XYZ, 200, 1, "binary"),
    "datumaro_kitti_3d/velodyne/000001.bin": (18630, XYZ_I, 18630, 1, None),
}
PYPCD4_REJECTS = {"pcl/bunny.pcd", "pypcd4/ascii_invalid_header.pcd", "pypcd4/ascii_empty.pcd"}


def real_files() -> list[str]:
    if not POINTCLOUDS.is_dir():
        return ["(no sample data)"]  # one placeholder, so that the test is skipped with needs_data's reason
    found = [p for p in POINTCLOUDS.rglob("*") if p.is_file() and p.suffix.lower() in (".pcd", ".bin")]
    return sorted(p.relative_to(POINTCLOUDS).as_posix() for p in found)


def expected_bounds(points: npt.NDArray[np.void]) -> dict[str, list[float]] | None:
    xyz = np.stack([points[a].astype(np.float64) for a in XYZ], axis=1)
    finite = xyz[np.isfinite(xyz).all(axis=1)]
    if not len(finite):
        return None
    return {"min": finite.min(axis=0).tolist(), "max": finite.max(axis=0).tolist()}


@needs_data
@pytest.mark.parametrize("relative", real_files())
def test_every_real_point_cloud_is_read_or_rejected_as_the_manifest_says(relative: str) -> None:
    assert relative in REAL_FILES, f"{relative} is new in {POINTCLOUDS}: add what MANIFEST.md says about it"
    path = POINTCLOUDS / relative
    fmt = "kitti" if path.suffix == ".bin" else "pcd"
    expected = REAL_FILES[relative]
    if isinstance(expected, str):
        with pytest.raises(PointCloudDecodeError) as caught:
            probe_pointcloud(path, format=fmt)
        assert expected in caught.value.problem
        assert caught.value.name == path.name
        return

    points, fields, width, height, encoding = expected
    info = probe_pointcloud(path, format=fmt)
    assert (info.num_points, info.fields, info.width, info.height) == (points, fields, width, height)
    assert info.pcd_encoding == encoding
    cloud = read_points(path, format=fmt)
    assert cloud.info == info
    assert cloud.points.shape == (points,)
    assert cloud.points.dtype.names == fields
    assert info.field_types == tuple(cloud.points.dtype[f].str for f in fields)
    assert info.bounds == expected_bounds(cloud.points)
    assert info.finite_points == int(np.isfinite(cloud.xyz()).all(axis=1).sum())

    if fmt == "pcd" and relative not in PYPCD4_REJECTS:
        reference = pypcd4.PointCloud.from_path(path)
        assert reference.fields == info.fields
        assert reference.points == info.num_points
        assert (reference.metadata.width, reference.metadata.height) == (info.width, info.height)
        assert reference.metadata.viewpoint == info.viewpoint
        for field in fields:
            assert reference.pc_data[field].dtype == cloud.points[field].dtype
            np.testing.assert_array_equal(reference.pc_data[field], cloud.points[field], err_msg=field)


@needs_data
def test_bunny_legacy_header_that_pypcd4_rejects() -> None:
    path = POINTCLOUDS / "pcl" / "bunny.pcd"
    with pytest.raises(ValueError):  # pydantic's ValidationError: the quirk MANIFEST.md records
        pypcd4.PointCloud.from_path(path)
    cloud = read_points(path)
    assert cloud.info.pcd_version == "0.5"
    assert cloud.info.viewpoint == (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)  # no VIEWPOINT line: the default
    text = path.read_bytes().split(b"DATA ascii\n", 1)[1]
    np.testing.assert_array_equal(cloud.xyz(), np.loadtxt(io.BytesIO(text), dtype=np.float32).astype(np.float64))


@needs_data
def test_organized_kinect_cloud_keeps_nan_points_and_bounds_ignore_them() -> None:
    cloud = read_points(POINTCLOUDS / "pcl" / "five_people.pcd")
    info = cloud.info
    assert info.organized and cloud.organized().shape == (480, 640)
    assert 0 < info.finite_points < info.num_points
    assert np.isnan(cloud.points["x"]).sum() == info.num_points - info.finite_points
    assert info.bounds is not None and all(np.isfinite(info.bounds["min"] + info.bounds["max"]))
    assert info.intensity_range is None  # rgba, no intensity


@needs_data
def test_kitti_scan_matches_the_manifest_range() -> None:
    path = POINTCLOUDS / "datumaro_kitti_3d" / "velodyne" / "000001.bin"
    info = probe_pointcloud(path, format="kitti")
    assert info.num_points == 18630 == info.finite_points
    assert (info.pcd_version, info.pcd_encoding, info.viewpoint) == (None, None, None)
    # MANIFEST.md prints the range of the values rounded to 0.1
    assert info.bounds is not None
    np.testing.assert_allclose(info.bounds["min"], [5.1, -15.8, -2.1], atol=0.051)
    np.testing.assert_allclose(info.bounds["max"], [77.0, 32.3, 2.1], atol=0.051)
    table = np.fromfile(path, dtype="<f4").reshape(-1, 4)
    assert info.bounds == {"min": table[:, :3].min(axis=0).tolist(), "max": table[:, :3].max(axis=0).tolist()}
    assert info.intensity_range == [float(table[:, 3].min()), float(table[:, 3].max())]


@needs_data
def test_sources_path_str_file_and_bytes_agree() -> None:
    path = POINTCLOUDS / "pypcd4" / "binary_compressed.pcd"
    by_path = probe_pointcloud(path)
    assert probe_pointcloud(str(path)) == by_path
    assert probe_pointcloud(path.read_bytes()) == by_path
    assert probe_pointcloud(memoryview(path.read_bytes())) == by_path
    with path.open("rb") as fp:
        assert probe_pointcloud(fp) == by_path


# --------------------------------------------------------------------------------------------------------------------
# synthetic PCDs


def header(
    fields: str = "x y z intensity",
    size: str | None = "4 4 4 4",
    type_: str | None = "F F F F",
    count: str | None = "1 1 1 1",
    width: int = 5,
    height: int = 1,
    points: int | None = None,
    data: str = "binary",
    version: str | None = "0.7",
    viewpoint: str | None = "0 0 0 1 0 0 0",
) -> bytes:
    lines = ["# .PCD v0.7 - Point Cloud Data file format"]
    lines += [f"VERSION {version}"] if version is not None else []
    lines += [f"FIELDS {fields}"]
    lines += [f"SIZE {size}"] if size is not None else []
    lines += [f"TYPE {type_}"] if type_ is not None else []
    lines += [f"COUNT {count}"] if count is not None else []
    lines += [f"WIDTH {width}", f"HEIGHT {height}"]
    lines += [f"VIEWPOINT {viewpoint}"] if viewpoint is not None else []
    lines += [f"POINTS {width * height if points is None else points}", f"DATA {data}"]
    return ("\n".join(lines) + "\n").encode()


def xyzi(count: int, seed: int = 0) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).uniform(-50, 50, size=(count, 4)).astype(np.float32)


def compressed_block(columns: list[npt.NDArray[np.generic]]) -> bytes:
    raw = b"".join(np.ascontiguousarray(c).tobytes() for c in columns)
    packed = lzf.compress(raw, len(raw) + len(raw) // 16 + 64)  # room for incompressible (random) data
    return struct.pack("<II", len(packed), len(raw)) + packed


def pypcd4_file(points: npt.NDArray[np.float32], encoding: str) -> bytes:
    out = io.BytesIO()
    pypcd4.PointCloud.from_xyzi_points(points).save(out, encoding=pypcd4.Encoding(encoding))
    return out.getvalue()


def problem(data: bytes) -> str:
    with pytest.raises(PointCloudDecodeError) as caught:
        probe_pointcloud(data, name="scan.pcd")
    assert caught.value.name == "scan.pcd" and caught.value.format == "pcd"
    assert str(caught.value).startswith("'scan.pcd': ")
    return caught.value.problem


@pytest.mark.parametrize("encoding", ["ascii", "binary", "binary_compressed"])
def test_pypcd4_written_files_read_back_exactly(encoding: str) -> None:
    points = np.round(xyzi(300), 2)  # rounded so that binary_compressed really compresses
    points[7, 0] = np.nan
    points[8, 3] = np.nan
    cloud = read_points(pypcd4_file(points, encoding))
    assert cloud.info.pcd_encoding == encoding
    assert (cloud.info.num_points, cloud.info.finite_points) == (300, 299)
    for i, field in enumerate(XYZ_I):
        np.testing.assert_array_equal(cloud.points[field], points[:, i])
    finite = np.delete(points, 7, axis=0)
    assert cloud.info.bounds == {"min": finite[:, :3].min(0).tolist(), "max": finite[:, :3].max(0).tolist()}
    intensities = np.delete(finite[:, 3], 7)  # row 8 of the original, NaN intensity
    assert cloud.info.intensity_range == [float(intensities.min()), float(intensities.max())]
    cloud.points["x"][0] = 1.0  # read_points gives a writable copy


def test_header_says_more_points_than_the_data_holds() -> None:
    body = xyzi(213).tobytes()
    assert problem(header(width=1000) + body) == "header says 1000 points (16000 bytes) but the data holds 213"
    text = "\n".join(" ".join(str(v) for v in row) for row in xyzi(213)).encode() + b"\n"
    assert problem(header(width=1000, data="ascii") + text) == "header says 1000 points but the data holds 213"


def test_header_says_fewer_points_than_the_data_holds() -> None:
    body = xyzi(213).tobytes()
    assert problem(header(width=100) + body).startswith("header says 100 points but the data holds 213 (")
    rows = xyzi(213)
    text = "\n".join(" ".join(str(v) for v in row) for row in rows).encode() + b"\n"
    assert problem(header(width=100, data="ascii") + text) == "header says 100 points but the data holds 213"
    packed = compressed_block([xyzi(213)[:, i] for i in range(4)])
    assert problem(header(width=100, data="binary_compressed") + packed) == (
        "header says 100 points (1600 bytes) but the compressed block holds 213"
    )


def test_points_must_equal_width_times_height() -> None:
    assert problem(header(width=4, height=2, points=10) + xyzi(10).tobytes()) == (
        "header says 10 points but WIDTH x HEIGHT = 4 x 2 = 8"
    )


def test_truncated_binary_data() -> None:
    body = xyzi(5).tobytes()[:-3]
    assert problem(header() + body) == (
        "header says 5 points (80 bytes) but the data holds 77 bytes, not a whole number of 16-byte points"
    )


def test_zero_padding_after_binary_data_is_tolerated_like_pcl_pages() -> None:
    points = xyzi(5)
    cloud = read_points(header() + points.tobytes() + bytes(4000))
    np.testing.assert_array_equal(cloud.points["z"], points[:, 2])
    packed = compressed_block([points[:, i] for i in range(4)])
    assert probe_pointcloud(header(data="binary_compressed") + packed + bytes(3000)).num_points == 5
    assert "not padding" in problem(header(data="binary_compressed") + packed + b"\x00junk")


def test_corrupt_binary_compressed() -> None:
    points = np.round(xyzi(400), 1)
    good = pypcd4_file(points, "binary_compressed")
    start = good.index(b"DATA binary_compressed\n") + len("DATA binary_compressed\n")
    assert read_points(good).info.num_points == 400
    garbled = bytearray(good)
    garbled[start + 8 : start + 40] = b"\xff" * 32
    assert problem(bytes(garbled)).startswith("corrupt binary_compressed data")
    assert problem(good[: start + 100]).startswith("binary_compressed data is truncated: the block says")
    assert problem(good[: start + 5]).startswith("binary_compressed data is truncated: 5 bytes")
    # a size header that promises the right size but a stream that decompresses to less
    compressed_size, _ = struct.unpack_from("<II", good, start)
    short = lzf.compress(points[:, :3].T.tobytes())
    forged = good[:start] + struct.pack("<II", len(short), 400 * 16) + short
    assert problem(forged).startswith("corrupt binary_compressed data")
    assert compressed_size > 0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty file (0 bytes), not a PCD file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a PCD file: header line 1 is not text"),
        (b"hello world\n1 2 3\n", "not a PCD file: line 1 is 'hello world', not a PCD header line"),
        (b"# only a comment\n", "not a PCD file: the file ends before any PCD header line"),
        (header().split(b"DATA")[0], "PCD header incomplete: the file ends without DATA"),
        (b"VERSION 0.7\nFIELDS x y z\n" + b"#" * 70000, "no DATA line within the first 65536 bytes"),
        (header().replace(b"WIDTH 5\n", b""), "PCD header has no WIDTH line"),
        (header(data="zip"), "PCD header DATA is 'zip' (allowed: ascii, binary, binary_compressed)"),
        (header(width=5).replace(b"HEIGHT 1", b"HEIGHT 1\nHEIGHT 1"), "PCD header line HEIGHT appears twice"),
        (header(type_="F F F X"), "PCD field 'intensity' has TYPE 'X' (allowed: F, I, U)"),
        (header(size="4 4 4 2"), "PCD field 'intensity' has TYPE F with SIZE 2 (allowed sizes: 4, 8)"),
        (header(size="4 4 4 4", type_="F F F U", count="1 1 1 1").replace(b"4 4 4 4", b"4 4 4 3"), "SIZE 3"),
        (header(size="4 4 4"), "PCD header lists 4 FIELDS but 3 SIZE values"),
        (header(count="1 1 1 0"), "PCD header COUNT values must be >= 1"),
        (header(fields="a b c d"), "PCD has no x, y, z field"),
        (header(fields="x y z x"), "names field(s) x more than once"),
        (header(viewpoint="0 0 0"), "VIEWPOINT must hold 7 numbers"),
        (header(size=None), "PCD header has no SIZE line"),
        (header().replace(b"WIDTH 5", b"WIDTH five"), "PCD header WIDTH must hold integers, got 'five'"),
        (header().replace(b"POINTS 5", b"POINTS -5"), "PCD header POINTS values must be >= 0"),
    ],
)
def test_bad_headers(data: bytes, expected: str) -> None:
    assert expected in problem(data)


def test_legacy_and_lenient_headers() -> None:
    points = xyzi(5)[:, :3].copy()
    legacy = header(fields="x y z", size=None, type_=None, count=None, version=".5", viewpoint=None)
    cloud = read_points(legacy + points.tobytes())
    assert cloud.info.pcd_version == "0.5"
    assert cloud.info.field_types == ("<f4", "<f4", "<f4")
    np.testing.assert_array_equal(cloud.xyz(), points.astype(np.float64))
    unversioned = header(fields="x y z", size="4 4 4", type_="F F F", count=None, version=None)
    assert probe_pointcloud(unversioned + points.tobytes()).pcd_version is None
    # CRLF line ends, lower-case keys, COLUMNS for FIELDS, no HEIGHT and no POINTS line
    crlf = b"columns x y z\r\nsize 4 4 4\r\ntype f f f\r\nwidth 5\r\ndata binary\r\n" + points.tobytes()
    info = probe_pointcloud(crlf)
    assert (info.num_points, info.width, info.height, info.fields) == (5, 5, 1, XYZ)


def test_types_counts_and_padding_fields_in_all_encodings() -> None:
    rng = np.random.default_rng(3)
    count = 6
    x, y = rng.normal(size=count).astype("<f8"), rng.normal(size=count).astype("<f4")
    z = rng.integers(-(2**15), 2**15, size=count).astype("<i2")
    label = rng.integers(0, 2**64 - 1, size=count, dtype=np.uint64)
    ring = rng.integers(0, 255, size=(count, 3)).astype("<u1")
    pad = np.zeros(count, "<u4")
    fields, sizes, types, counts = "x y _ z label ring", "8 4 4 2 8 1", "F F U I U U", "1 1 1 1 1 3"
    rows = np.zeros(count, dtype=[("x", "<f8"), ("y", "<f4"), ("_", "<u4"), ("z", "<i2"), ("l", "<u8"), ("r", "u1", 3)])
    rows["x"], rows["y"], rows["z"], rows["l"], rows["r"] = x, y, z, label, ring
    binary = header(fields=fields, size=sizes, type_=types, count=counts, width=count) + rows.tobytes()
    packed = compressed_block([x, y, pad, z, label, ring])
    compressed = header(fields=fields, size=sizes, type_=types, count=counts, width=count, data="binary_compressed")
    lines = [f"{x[i]} {y[i]} {z[i]} {label[i]} {' '.join(str(v) for v in ring[i])}" for i in range(count)]
    ascii_ = header(fields=fields, size=sizes, type_=types, count=counts, width=count, data="ascii")
    # ascii carries no padding column (PCL's writer skips '_' fields)
    expected_fields = ("x", "y", "z", "label", "ring__0000", "ring__0001", "ring__0002")
    for data in (binary, compressed + packed, ascii_ + "\n".join(lines).encode() + b"\n\n\n"):
        cloud = read_points(data)
        assert cloud.info.fields == expected_fields
        assert cloud.info.field_types == ("<f8", "<f4", "<i2", "<u8", "|u1", "|u1", "|u1")
        np.testing.assert_array_equal(cloud.points["x"], x)
        np.testing.assert_array_equal(cloud.points["y"], y)
        np.testing.assert_array_equal(cloud.points["z"], z)
        np.testing.assert_array_equal(cloud.points["label"], label)
        for i in range(3):
            np.testing.assert_array_equal(cloud.points[f"ring__{i:04d}"], ring[:, i])
        assert cloud.info.bounds == expected_bounds(cloud.points)


def test_ascii_data_checks() -> None:
    body = b"1 2 3 4\n5 6 7 8\n\n  \n"
    assert probe_pointcloud(header(width=2, data="ascii") + body).num_points == 2  # trailing blank lines
    assert problem(header(width=2, data="ascii") + b"1 2 3 4\n5 6 7\n") == (
        "ascii data does not match the header: data row 2 has 3 values, the fields need 4"
    )
    assert "could not convert" in problem(header(width=2, data="ascii") + b"1 2 3 4\n5 6 x 8\n")
    # an unsigned field written as a float, the way some tools write rgb
    as_float = header(width=2, data="ascii", type_="F F F U") + b"1 2 3 4.2108e+06\n5 6 7 8\n"
    assert read_points(as_float).points["intensity"].tolist() == [4210800, 8]
    fractional = header(width=2, data="ascii", type_="F F F U") + b"1 2 3 4.5\n5 6 7 8\n"
    assert "field 'intensity' is uint32 but data row 1 holds 4.5" in problem(fractional)
    nan_row = probe_pointcloud(header(width=2, data="ascii") + b"nan nan nan 0\n5 6 7 8\n")
    assert (nan_row.finite_points, nan_row.bounds) == (1, {"min": [5.0, 6.0, 7.0], "max": [5.0, 6.0, 7.0]})


def test_all_nan_organized_cloud_has_no_bounds() -> None:
    points = np.full((6, 4), np.nan, dtype=np.float32)
    info = probe_pointcloud(header(width=3, height=2) + points.tobytes())
    assert (info.finite_points, info.bounds, info.intensity_range, info.organized) == (0, None, None, True)


def test_parse_pcd_header_exposes_the_layout() -> None:
    parsed = parse_pcd_header(header(fields="x y z _ rgb", size="4 4 4 4 4", type_="F F F U U", count="1 1 1 1 1"))
    assert parsed.point_size == 20
    assert parsed.columns() == [("x", "<f4", 0), ("y", "<f4", 4), ("z", "<f4", 8), ("rgb", "<u4", 16)]
    assert parsed.viewpoint == (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


def test_ascii_padding_values_may_be_present_or_left_out() -> None:
    head = header(fields="x _ y z", size="4 4 4 4", type_="F F F F", count="1 2 1 1", width=2, data="ascii")
    without = read_points(head + b"1 2 3\n4 5 6\n")
    with_values = read_points(head + b"1 0 0 2 3\n4 0 0 5 6\n")
    for cloud in (without, with_values):
        assert cloud.info.fields == XYZ
        assert cloud.xyz().tolist() == [[1, 2, 3], [4, 5, 6]]


def test_forged_compressed_size_is_rejected_before_decompressing() -> None:
    points = 10_000_000
    head = header(width=points, data="binary_compressed")
    forged = head + struct.pack("<II", 10, points * 16) + bytes(10)
    assert problem(forged) == (
        "corrupt binary_compressed data: 10 compressed bytes cannot expand to the 160000000 bytes of 10000000 points"
    )


@pytest.mark.parametrize(("encoding", "body"), [("binary", b""), ("binary_compressed", b""), ("binary", bytes(64))])
def test_empty_clouds_in_binary_encodings(encoding: str, body: bytes) -> None:
    data = header(fields="x y z", size="4 4 4", type_="F F F", count=None, width=0, height=0, data=encoding) + body
    cloud = read_points(data)
    assert (cloud.info.num_points, cloud.info.finite_points, cloud.info.bounds, len(cloud)) == (0, 0, None, 0)
