"""LIDARs through the client against an in-process server (issue 6): every sample point cloud, the seed's numpy and
binary layouts and KITTI scans, bad input per item, related images, renditions, compress_lidars, roles, tenancy.

Real clouds are read in place from ../shared/data/pointcloud; everything else is generated here with numpy.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image as PILImage

from sample_data import require_shared_data
from scenebase.clients import SceneEngineClient
from scenebase.errors import AssetError, InvalidArgumentsError, MetadataNotFoundError, SceneBaseError
from scenebase.media.pointcloud import decode_rendition, guess_format, read_points, read_rendition_header
from scenebase.models.assets import Lidar
from scenebase.services.kinds import BytesMedia, FileMedia
from scenebase.services.kinds import lidars as lidar_kind
from scenebase.testing import InProcessServer

from .conftest import World

#: MANIFEST.md's point counts of the sample clouds (file name -> points); PCD files are the pcd format, .bin KITTI
MANIFEST_POINTS = {
    "bunny.pcd": 397, "car6.pcd": 10031, "colored_cloud.pcd": 1000, "five_people.pcd": 307200,
    "table_scene_mug_stereo_textured.pcd": 307200, "milk_color.pcd": 13704, "cturtle.pcd": 167198,
    "ascii.pcd": 213, "binary.pcd": 213, "binary_compressed.pcd": 213, "binary_compressed_organized.pcd": 8,
    "ascii_organized.pcd": 8, "ascii_multi_count.pcd": 8, "ascii_with_empty_points.pcd": 0,
    "0000000000.pcd": 100, "0000000001.pcd": 200, "0000000002.pcd": 100, "frame1.pcd": 100, "frame2.pcd": 200,
    "000001.bin": 18630,
}  # fmt: skip
#: sample files that are not point clouds, or broken ones: what their error must say
REFUSED = {"ascii_empty.pcd": "empty file", "ascii_invalid_header.pcd": "unknown pcd header line"}
NOT_A_CLOUD = "not a pcd file"


# ------------------------------------------------------------------------------------------------------------ helpers


def scan(n: int, seed: int = 0, holes: int = 0) -> npt.NDArray[np.float32]:
    """(n, 4) float32 x, y, z, intensity of a LIDAR-like ring scan; every ``holes``-th point NaN when > 0."""
    rng = np.random.default_rng(seed)
    angle = np.linspace(0, 8 * np.pi, n)
    radius = 5 + 40 * rng.random(n)
    table = np.stack([radius * np.cos(angle), radius * np.sin(angle), rng.normal(0, 1, n), rng.integers(0, 255, n)])
    out = np.round(table.T, 2).astype("<f4")
    if holes:
        out[::holes, :3] = np.nan
    return out


def pcd_binary(points: npt.NDArray[np.float32], declared: int | None = None) -> bytes:
    n = len(points) if declared is None else declared
    header = (
        f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\n"
        f"TYPE F F F F\nCOUNT 1 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    return header.encode() + points.astype("<f4").tobytes()  # fmt: skip


def npy(points: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, points)
    return buf.getvalue()


def jpeg() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (16, 12), (10, 200, 10)).save(buf, "JPEG")
    return buf.getvalue()


def compressed(client: SceneEngineClient, result: Any) -> Any:
    """``result`` of an add_lidar(s) call, once the compression jobs it started have finished."""
    assert client.last_job_ids
    for job_id in client.last_job_ids:
        assert client.get_job(job_id).wait(timeout=60, show_progress=False).status == "finished"
    return result


def blob_keys(server: InProcessServer, prefix: str = "") -> list[str]:
    return sorted(server.runtime.blobs.list(prefix))


def finite_xyz(points: npt.NDArray[np.void]) -> npt.NDArray[np.bool_]:
    mask = np.ones(len(points), dtype=bool)
    for axis in "xyz":
        if points.dtype[axis].kind == "f":
            mask &= np.isfinite(points[axis])
    return mask


def assert_rendition(data: bytes, cloud_points: npt.NDArray[np.void], skip: int) -> None:
    """The rendition holds every ``skip``-th finite point: x, y, z and intensity (or packed colour, or zeros)."""
    header = read_rendition_header(data)
    got = decode_rendition(data)
    kept = cloud_points[finite_xyz(cloud_points)][::skip]
    assert header.skip_factor == skip and header.num_points == len(kept) == len(got)
    for i, axis in enumerate("xyz"):
        np.testing.assert_array_equal(got[:, i], kept[axis].astype("<f4"))
    names = cloud_points.dtype.names or ()
    if "intensity" in names:
        assert header.column4 == "intensity"
        np.testing.assert_array_equal(got[:, 3], kept["intensity"].astype("<f4"))
    elif "rgb" in names or "rgba" in names:
        assert header.column4 == "rgb"
        colour = np.ascontiguousarray(kept["rgb" if "rgb" in names else "rgba"]).view("<u4")
        np.testing.assert_array_equal(got[:, 3].view("<u4"), colour)
    else:
        assert header.column4 == "none" and not got[:, 3].any()


@pytest.fixture
def lidar_set(admin: SceneEngineClient) -> str:
    return admin.create_set("lidars under test", "lidars")


# ---------------------------------------------------------------------------------------------------------- real data


def test_every_sample_file_ingests_with_its_manifest_count_or_is_refused_clearly(
    server: InProcessServer, admin: SceneEngineClient, lidar_set: str
) -> None:
    folder = require_shared_data("pointcloud")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert len(files) >= 30
    lidars = [Lidar(id=str(p.relative_to(folder)), path=p, format=guess_format(p.name) or "pcd") for p in files]
    ids = compressed(admin, admin.add_lidars(lidars, lidar_set))

    errors = {e["index"]: e for e in admin.last_errors}
    for i, path in enumerate(files):
        if path.name in MANIFEST_POINTS:
            assert i not in errors, errors.get(i)
            meta = admin.get_metadata(lidars[i].id, "lidars")
            cloud = read_points(path, lidars[i].format)
            assert meta["num_points"] == MANIFEST_POINTS[path.name] == len(cloud)
            assert meta["fields"] == list(cloud.info.fields) and meta["finite_points"] == cloud.info.finite_points
            assert (meta["width"], meta["height"]) == (cloud.info.width, cloud.info.height)
            assert meta["bounds"] == cloud.info.bounds and meta["media_type"] == "lidar"
            assert admin.get_lidar_bytes(lidars[i].id) == path.read_bytes()
            assert sorted(meta["thumbnails"]) == ["skip_1", "skip_10", "skip_100"]
            assert_rendition(admin.get_lidar_bytes(lidars[i].id, "skip_10"), cloud.points, 10)
        else:
            err = errors[i]
            needle = REFUSED.get(path.name, NOT_A_CLOUD)
            assert (err["name"], err["status"], err["code"]) == (path.name, 415, "unsupported_media"), err
            assert needle in err["error"].lower(), err
    assert len(ids) == len(MANIFEST_POINTS)
    legacy = admin.get_metadata("pcl/bunny.pcd", "lidars")  # VERSION .5, which pypcd4 rejects
    assert (legacy["pcd_version"], legacy["pcd_encoding"], legacy["num_points"]) == ("0.5", "ascii", 397)
    assert admin.get_metadata("datumaro_kitti_3d/velodyne/000001.bin", "lidars")["format"] == "kitti"
    # one original per ingested cloud, three renditions each; nothing of the refused files
    assert len(blob_keys(server, "lidars/")) == len(MANIFEST_POINTS)
    assert len(blob_keys(server, "thumbnails/")) == 3 * len(MANIFEST_POINTS)


# ------------------------------------------------------------------------------------------ numpy, binary and KITTI


def test_numpy_npy_binary_and_kitti_layouts(server: InProcessServer, admin: SceneEngineClient, lidar_set: str) -> None:
    points = scan(5000, seed=1, holes=97)
    five = np.column_stack([points, np.arange(len(points), dtype="<f4")])  # x y z intensity + a fifth column
    packed = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("i", "<f4"), ("t", "<f8")])
    for j, name in enumerate(("x", "y", "z", "i")):
        packed[name] = points[:, j]
    packed["t"] = 1.7e9 + np.arange(len(points)) / 10
    lidars = [
        Lidar(id="raw", bytes=five.tobytes(), format="numpy", num_fields=5, sensor="top"),
        Lidar(id="npy", bytes=npy(points.astype("<f8")), format="numpy"),
        Lidar(id="packed", bytes=packed.tobytes(), format="binary", binary_format="<ffffd"),
        Lidar(id="velodyne", bytes=points.tobytes(), format="KITTI"),
    ]
    assert compressed(admin, admin.add_lidars(lidars, lidar_set)) == ["raw", "npy", "packed", "velodyne"]
    finite = points[np.isfinite(points[:, :3]).all(axis=1)]
    bounds = {
        "min": [float(v) for v in finite[:, :3].min(axis=0)],
        "max": [float(v) for v in finite[:, :3].max(axis=0)],
    }
    raw = ("bin", "application/octet-stream")
    stored = {"raw": raw, "npy": ("npy", "application/x-npy"), "packed": raw, "velodyne": raw}
    for lidar in lidars:
        meta = admin.get_metadata(lidar.id, "lidars")
        assert meta["num_points"] == 5000 and meta["finite_points"] == len(finite)
        assert meta["bounds"] == bounds  # float32 values, exactly (the .npy file holds them as float64)
        assert meta["intensity_range"] == [float(finite[:, 3].min()), float(finite[:, 3].max())]
        assert meta["format"] == lidar.format.lower()
        assert (meta["object_access"]["extension"], meta["object_access"]["content_type"]) == stored[lidar.id]
        assert admin.get_lidar_bytes(lidar.id) == lidar.bytes
        cloud = read_points(lidar.bytes or b"", meta["format"], lidar.num_fields, lidar.binary_format)
        assert_rendition(admin.get_lidar_bytes(lidar.id, "skip_100"), cloud.points, 100)
    assert admin.get_metadata("raw", "lidars")["fields"] == ["x", "y", "z", "intensity", "f4"]
    assert admin.get_metadata("packed", "lidars")["field_types"] == ["<f4"] * 4 + ["<f8"]
    assert admin.search_assets("lidars", {"format": ["kitti"]}) == ["velodyne"]
    with zipfile.ZipFile(admin.zip_set_and_download(lidar_set)) as zf:
        originals = {Path(n).name: zf.read(n) for n in zf.namelist() if "/assets/" in n}
    assert originals == {"raw.bin": lidars[0].bytes, "npy.npy": lidars[1].bytes, "packed.bin": lidars[2].bytes,
                         "velodyne.bin": lidars[3].bytes}  # fmt: skip
    assert sorted(admin.search_assets("lidars", {"sensor": ["top"]})) == ["raw"]


def test_large_headerless_clouds_are_probed_and_rendered_in_pieces(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Above PIECEWISE_FROM_BYTES a raw cloud in a file is read in pieces; the results equal reading it whole."""
    points = scan(10_007, seed=2, holes=13)
    kind = lidar_kind.LidarKind()
    cases = [({"format": "kitti"}, points.tobytes()),
             ({"format": "numpy", "num_fields": 4}, points.tobytes()),
             ({"format": "binary", "binary_format": "<4f"}, points.tobytes())]  # fmt: skip
    pieces_read: list[str] = []
    real_pieces = lidar_kind._pieces

    def counted(fh: Any, media: Any, meta: Any) -> Any:
        pieces_read.append(media.name)
        return real_pieces(fh, media, meta)

    for meta, data in cases:
        (tmp_path / "big.bin").write_bytes(data)
        media = FileMedia(tmp_path / "big.bin")  # not in memory: what a blob or a large upload is
        whole = kind.probe(media, meta)
        whole_renditions = kind.renditions(media, {**meta, **whole.fields}, [1, 7, 100], gzip_compress=False)
        with monkeypatch.context() as m:
            m.setattr(lidar_kind, "PIECEWISE_FROM_BYTES", 1000)
            m.setattr(lidar_kind, "PIECE_BYTES", 4096 + 8)  # pieces are whole points whatever the size asked
            pieces_read.clear()
            m.setattr(lidar_kind, "_pieces", counted)
            pieces = kind.probe(media, meta)
            doc = {**meta, **pieces.fields}
            assert pieces == whole, meta
            assert kind.renditions(media, doc, [1, 7, 100], gzip_compress=False) == whole_renditions
            zipped = kind.renditions(media, doc, [7])["skip_7"].data
            assert decode_rendition(zipped).tobytes() == decode_rendition(whole_renditions["skip_7"].data).tobytes()
            (tmp_path / "cut.bin").write_bytes(data + b"\0" * 3)
            with pytest.raises(lidar_kind.MediaError, match="not a multiple of the 16-byte point"):
                kind.probe(FileMedia(tmp_path / "cut.bin"), meta)
            assert len(pieces_read) == 4  # probe, renditions twice, the cut file
            assert kind.probe(BytesMedia(data, "in memory.bin"), meta) == whole  # held in memory: read whole
            assert len(pieces_read) == 4


# ---------------------------------------------------------------------------------------------------------- bad input


def test_bad_items_are_refused_by_name_and_the_rest_of_the_batch_is_ingested(
    server: InProcessServer, admin: SceneEngineClient, lidar_set: str
) -> None:
    good = scan(2001, seed=3)
    lidars = [
        Lidar(id="good pcd", bytes=pcd_binary(good)),
        Lidar(id="liar", bytes=pcd_binary(good, declared=2500)),  # the header lies about its point count
        Lidar(id="short", bytes=good.tobytes()[:-4], format="numpy", num_fields=4),  # not a multiple of 4 fields
        Lidar(id="good raw", bytes=good.tobytes(), format="numpy", num_fields=4),
        Lidar(id="mismatch", bytes=good.tobytes(), format="binary", binary_format="<fffd"),  # 20-byte points
        Lidar(id="empty", bytes=b"", format="kitti"),
    ]
    assert compressed(admin, admin.add_lidars(lidars, lidar_set)) == ["good_pcd", "good_raw"]
    errors = [(e["index"], e["name"], e["status"]) for e in admin.last_errors]
    assert errors == [(1, "liar", 415), (2, "short", 415), (4, "mismatch", 415), (5, "empty", 415)]
    messages = [e["error"] for e in admin.last_errors]
    assert "header says 2500 points" in messages[0] and "holds 2001" in messages[0]
    assert "not a multiple of 4 x num_fields = 16 bytes" in messages[1]
    assert "not a multiple of the 20-byte point of binary_format '<fffd'" in messages[2]
    assert "empty" in messages[3]
    assert sorted(admin.search_assets("lidars", {}, scan=True)) == ["good_pcd", "good_raw"]
    # the originals of the good ones and their renditions, nothing of the refused ones
    assert len(blob_keys(server, "lidars/")) == 2 and len(blob_keys(server, "thumbnails/")) == 6
    assert len(blob_keys(server)) == 8

    with pytest.raises(AssetError) as info:
        admin.add_lidar(lidar_set, lidar_bytes=pcd_binary(good, declared=10), id="liar two")
    assert info.value.status_code == 415 and "liar two: header says 10 points" in info.value.message
    with pytest.raises(MetadataNotFoundError):
        admin.get_metadata("liar_two", "lidars")
    assert len(blob_keys(server)) == 8


def test_bad_format_parameters_are_400s_naming_the_field(server: InProcessServer, admin: SceneEngineClient) -> None:
    http = server.http()
    data = scan(10).tobytes()
    cases = {
        "lasers": {"format": "lasers"},
        "fields": {"format": "numpy", "num_fields": 2},
        "text": {"format": "numpy", "num_fields": "4"},
        "no struct": {"format": "binary"},
        "bad struct": {"format": "binary", "binary_format": "<fz"},
        "bytes struct": {"format": "binary", "binary_format": "<fff10s"},
        "derived": {"num_points": 10},
    }
    for name, meta in cases.items():
        manifest = {"items": [{"file": "f0", "name": name, "metadata": {"id": name, **meta}}]}
        files = {"manifest": (None, json.dumps(manifest), "application/json"), "f0": (name, data)}
        resp = http.post("/v1/lidars/add/", files=files, headers={"Authorization": f"Bearer {admin.auth_token}"})
        assert resp.status_code == 400, (name, resp.text)
        assert resp.json()["error"]["message"].startswith(f"{name}: "), resp.text
    assert blob_keys(server) == []
    with pytest.raises(InvalidArgumentsError, match="num_fields"):
        Lidar(id="x", bytes=data, format="numpy")  # the model refuses it before anything is sent


# ----------------------------------------------------------------------------------------------------- related images


def test_related_images_must_exist_in_the_uploaders_organization(world: World) -> None:
    a = world.client(world.a.tokens["data_provider"])
    b = world.client(world.b.tokens["data_provider"])
    a.add_image(image_bytes=jpeg(), id="Front Cam 1")
    b.add_image(image_bytes=jpeg(), id="b image")
    a_set = a.create_set("a lidars", "lidars")
    cloud = pcd_binary(scan(100))
    lidars = [
        Lidar(id="linked", bytes=cloud, related_images=["FRONT CAM 1"]),
        Lidar(id="dangling", bytes=cloud, related_images=["front_cam_1", "rear cam"]),
        Lidar(id="foreign", bytes=cloud, related_images=["b_image"]),  # exists, but in organization B
    ]
    assert a.add_lidars(lidars, a_set) == ["linked"]
    assert [(e["name"], e["status"]) for e in a.last_errors] == [("dangling", 400), ("foreign", 400)]
    assert "related_images: 'rear_cam' not found" in a.last_errors[0]["error"]
    assert "'front_cam_1'" not in a.last_errors[0]["error"]
    assert "related_images: 'b_image' not found" in a.last_errors[1]["error"]
    assert a.get_metadata("linked", "lidars")["related_images"] == ["front_cam_1"]
    assert a.add_lidars([Lidar(id="single", bytes=cloud, related_images=["nope"])], a_set) == []
    assert a.last_errors[0]["status"] == 400 and "'nope'" in a.last_errors[0]["error"]


# ---------------------------------------------------------------------------------------------------------- renditions


def test_renditions_are_made_on_request_and_served_gzip_encoded(tmp_path: Path) -> None:
    points = scan(3000, seed=4, holes=11)
    with InProcessServer(tmp_path / "idle", workers=0) as srv:  # no worker: the compression job stays queued
        admin = srv.client()
        lidar_id = admin.add_lidar([], lidar_bytes=points.tobytes(), id="Scan", format="kitti")
        assert admin.get_metadata(lidar_id, "lidars")["thumbnails"] == {}
        http = srv.http()
        auth = {"Authorization": f"Bearer {admin.auth_token}"}
        resp = http.get(f"/v1/lidars/{lidar_id}/thumbnail/skip_10", headers=auth)
        assert resp.status_code == 200 and resp.headers["content-encoding"] == "gzip"
        assert resp.headers["content-type"] == "application/octet-stream"
        cloud = read_points(points.tobytes(), "kitti")
        assert_rendition(resp.content, cloud.points, 10)  # inflated by the HTTP client, as a browser does
        entry = admin.get_metadata(lidar_id, "lidars")["thumbnails"]["skip_10"]
        assert (entry["skip_factor"], entry["num_points"], entry["gzip"]) == (10, len(resp.content[16:]) // 16, True)
        assert len(blob_keys(srv, "thumbnails/")) == 1
        assert http.get(f"/v1/lidars/{lidar_id}/thumbnail/skip_10", headers=auth).content == resp.content  # cached
        assert len(blob_keys(srv, "thumbnails/")) == 1
        for tag in ("skip_7", "small", "skip_0"):  # not presets: made by compress_lidars only
            missing = http.get(f"/v1/lidars/{lidar_id}/thumbnail/{tag}", headers=auth)
            assert missing.status_code == 404 and "skip_10" in missing.json()["error"]["message"], tag


def test_compress_lidars_job(server: InProcessServer, admin: SceneEngineClient, lidar_set: str) -> None:
    points = scan(4000, seed=5, holes=9)
    compressed(admin, admin.add_lidar(lidar_set, lidar_bytes=pcd_binary(points), id="one"))
    before = set(blob_keys(server, "thumbnails/"))
    job = admin.compress_lidars(["One", "ghost"], skip_factors=[7, 10], gzip_compress=False)
    assert job["job_id"] == job["id"] and job["job_type"] == "lidar_compression" and job["status"] == "queued"
    done = admin.get_job(job["job_id"]).wait(timeout=60, show_progress=False)
    assert done.result == {"compressed": 1, "failed": ["ghost"], "refused": {}, "skip_factors": [7, 10],
                           "gzip_compress": False}  # fmt: skip
    thumbs = admin.get_metadata("one", "lidars")["thumbnails"]
    assert sorted(thumbs) == ["skip_1", "skip_10", "skip_100", "skip_7"]
    assert thumbs["skip_7"]["gzip"] is False and thumbs["skip_10"]["filename"] == "one_skip_10.sbpc"
    cloud = read_points(pcd_binary(points))
    for skip in (7, 10):
        resp = server.http().get(f"/v1/lidars/one/thumbnail/skip_{skip}", params={"token": admin.auth_token})
        assert "content-encoding" not in resp.headers
        assert_rendition(resp.content, cloud.points, skip)
    # the replaced skip_10 blob is gone; skip_1 and skip_100 are untouched
    after = set(blob_keys(server, "thumbnails/"))
    assert len(after) == 4 and len(after & before) == 2

    for bad in ([0], [-3], [True], [1.5], []):
        with pytest.raises(AssetError) as info:
            admin.compress_lidars(["one"], skip_factors=bad)  # type: ignore[arg-type]
        assert info.value.status_code in (400, 422), bad
    with pytest.raises(InvalidArgumentsError):
        admin.compress_lidars([])


def test_too_large_renditions_are_refused_and_the_others_made(
    server: InProcessServer, admin: SceneEngineClient, lidar_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    compressed(admin, admin.add_lidar(lidar_set, lidar_bytes=scan(1000).tobytes(), id="dense", format="kitti"))
    monkeypatch.setattr(lidar_kind, "MAX_RENDITION_POINTS", 150)
    job = admin.get_job(admin.compress_lidars(["dense"], [5, 10])["job_id"]).wait(timeout=60, show_progress=False)
    assert job.result["refused"] == {"dense": ["skip_5"]} and job.result["compressed"] == 1
    assert any("skip_5 would hold 200 points" in n and "at least 7" in n for n in job.notes)


def test_overwrite_replaces_the_cloud_and_drops_old_renditions(
    server: InProcessServer, admin: SceneEngineClient, lidar_set: str
) -> None:
    compressed(admin, admin.add_lidar(lidar_set, lidar_bytes=pcd_binary(scan(500, seed=6)), id="cloud"))
    old = set(blob_keys(server))
    assert len(old) == 4
    replacement = scan(800, seed=7)
    compressed(admin, admin.add_lidars([Lidar(id="cloud", bytes=replacement.tobytes(), format="kitti")], lidar_set))
    meta = admin.get_metadata("cloud", "lidars")
    assert (meta["num_points"], meta["format"], meta["pcd_version"]) == (800, "kitti", None)
    assert not old & set(blob_keys(server)) and len(blob_keys(server)) == 4
    assert_rendition(admin.get_lidar_bytes("cloud", "skip_1"), read_points(replacement.tobytes(), "kitti").points, 1)
    assert admin.assets_in_set(lidar_set) == ["cloud"]


# ------------------------------------------------------------------------------------------------ the upload route


def test_uploads_in_memory_and_spooled_to_disk_give_their_memory_back(
    server: InProcessServer, admin: SceneEngineClient, lidar_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenebase.api import uploads

    full = uploads.UPLOAD_MEMORY.available
    small, large = scan(100, seed=10), scan(5000, seed=11)  # 1.6 kB and 80 kB
    monkeypatch.setattr(uploads, "IN_MEMORY_PART_BYTES", 16_000)  # the large file rolls over to a temporary file
    lidars = [Lidar(id=f"s{i}", bytes=small.tobytes(), format="kitti") for i in range(5)]
    lidars.append(Lidar(id="large", bytes=large.tobytes(), format="kitti"))
    assert compressed(admin, admin.add_lidars(lidars, lidar_set)) == [*(f"s{i}" for i in range(5)), "large"]
    assert admin.get_lidar_bytes("large") == large.tobytes() and admin.get_lidar_bytes("s4") == small.tobytes()
    assert admin.get_metadata("large", "lidars")["num_points"] == 5000
    assert uploads.UPLOAD_MEMORY.available == full

    monkeypatch.setattr(uploads.UPLOAD_MEMORY, "available", 0)  # budget spent: every part goes to disk
    assert admin.add_lidars([Lidar(id="spooled", bytes=small.tobytes(), format="kitti")], lidar_set) == ["spooled"]
    assert uploads.UPLOAD_MEMORY.available == 0


def test_malformed_uploads_are_400s(server: InProcessServer, admin: SceneEngineClient) -> None:
    from scenebase.api import uploads

    full = uploads.UPLOAD_MEMORY.available
    http = server.http()
    auth = {"Authorization": f"Bearer {admin.auth_token}"}
    answers = [
        http.post("/v1/lidars/add/", json={"items": []}, headers=auth),
        http.post("/v1/lidars/add/", content=b"--x\r\nbroken", headers={**auth, "Content-Type": "multipart/form-data"}),
        http.post(
            "/v1/lidars/add/", content=b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
            headers={**auth, "Content-Type": "multipart/form-data; boundary=b"},
        ),
    ]  # fmt: skip
    assert answers[0].status_code == 415 and "multipart" in answers[0].json()["error"]["message"]  # not an upload
    for resp in answers[1:]:
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "invalid_argument"
    assert uploads.UPLOAD_MEMORY.available == full
    assert blob_keys(server) == []


# ------------------------------------------------------------------------------------------------------------ sources


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    folder = tmp_path / "web"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_url_reference_is_probed_and_rendered_without_a_copy(
    server: InProcessServer, admin: SceneEngineClient, lidar_set: str, web_folder: tuple[Path, str]
) -> None:
    folder, base = web_folder
    points = scan(1200, seed=8)
    (folder / "scan.bin").write_bytes(points.tobytes())
    lidar_id = compressed(admin, admin.add_lidar(lidar_set, lidar_url=f"{base}/scan.bin", format="kitti", id="remote"))
    meta = admin.get_metadata(lidar_id, "lidars")
    assert meta["object_access"]["url"] == f"{base}/scan.bin" and "key" not in meta["object_access"]
    assert meta["num_points"] == 1200
    assert blob_keys(server, "lidars/") == [] and len(blob_keys(server, "thumbnails/")) == 3
    assert admin.get_lidar_bytes(lidar_id) == points.tobytes()
    assert_rendition(admin.get_lidar_bytes(lidar_id, "skip_100"), read_points(points.tobytes(), "kitti").points, 100)


# -------------------------------------------------------------------------------------------------- models and client


def test_lidar_model_takes_the_seed_parameter_names() -> None:
    data = scan(10).tobytes()
    lidar = Lidar(id="A Scan", path=None, url=None, uri=None, bytes=data, sensor="top", timestamp=None,
                  session_uid="s1", aux_metadata={"ok": True}, format="numpy", binary_format=None,
                  related_images=["Cam 1"], num_fields=4)  # fmt: skip
    meta = lidar.metadata()
    assert (lidar.id, meta["format"], meta["num_fields"], meta["related_images"]) == ("a_scan", "numpy", 4, ["cam_1"])
    assert meta["aux"] == {"ok": "true"} and "annotations" not in meta
    assert Lidar(bytes=data).format == "pcd"
    assert Lidar(lidar_bytes=npy(scan(10)), format="numpy").num_fields is None  # a .npy file has its own shape
    with pytest.raises(InvalidArgumentsError, match="binary_format"):
        Lidar(bytes=data, format="binary")
    with pytest.raises(InvalidArgumentsError, match="las"):
        Lidar(bytes=data, format="las")
    with pytest.raises(InvalidArgumentsError, match="give one of"):
        Lidar(id="nothing")
    with pytest.raises(TypeError):
        Lidar(bytes=data, annotations=[])  # type: ignore[call-arg]


def test_add_to_session_is_not_built(admin: SceneEngineClient, lidar_set: str) -> None:
    with pytest.raises(NotImplementedError, match="sessions"):
        admin.add_lidar(lidar_set, lidar_bytes=scan(10).tobytes(), format="kitti", add_to_session=True)
    with pytest.raises(NotImplementedError, match="sessions"):
        admin.add_lidars([Lidar(bytes=scan(10).tobytes(), format="kitti")], lidar_set, add_to_session=True)
    assert admin.add_lidars([], lidar_set) == [] and admin.last_errors == []


# -------------------------------------------------------------------------------------------------- roles and tenancy


def test_roles_and_organizations(world: World) -> None:
    provider = world.client(world.a.tokens["data_provider"])
    data_user = world.client(world.a.tokens["data_user"])
    public = world.client(world.a.tokens["public_user"])
    outsider = world.client(world.b.tokens["admin"])
    a_set = provider.create_set("a lidars", "lidars")
    points = scan(300, seed=9)
    lidar_id = compressed(
        provider, provider.add_lidar(a_set, lidar_bytes=points.tobytes(), id="A Scan", format="kitti")
    )
    blobs = blob_keys(world.server)

    for client in (data_user, public):
        with pytest.raises(SceneBaseError) as info:
            client.add_lidar(a_set, lidar_bytes=points.tobytes(), id="sneaky", format="kitti")
        assert info.value.status_code == 403
        with pytest.raises(SceneBaseError) as info:
            client.compress_lidars([lidar_id])
        assert info.value.status_code == 403
    assert data_user.get_metadata(lidar_id, "lidars")["num_points"] == 300
    assert data_user.get_lidar_bytes(lidar_id) == points.tobytes()
    assert_rendition(public.get_lidar_bytes(lidar_id, "skip_10"), read_points(points.tobytes(), "kitti").points, 10)

    with pytest.raises(MetadataNotFoundError):
        outsider.get_metadata(lidar_id, "lidars")
    for tag in (None, "skip_10"):
        with pytest.raises(AssetError) as info:
            outsider.get_lidar_bytes(lidar_id, tag)
        assert info.value.status_code == 404
    job = outsider.get_job(outsider.compress_lidars([lidar_id], [3])["job_id"]).wait(timeout=60, show_progress=False)
    assert job.result["failed"] == [lidar_id] and job.result["compressed"] == 0
    assert blob_keys(world.server) == blobs
    assert sorted(provider.get_metadata(lidar_id, "lidars")["thumbnails"]) == ["skip_1", "skip_10", "skip_100"]
