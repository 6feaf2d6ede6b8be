"""A large upload is written to disk once: spooled to a named file in the data folder, hashed as it arrives, and
moved (not copied) into a folder blob store; nothing is left in the spool folder, whatever the item's fate."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scenebase.clients import SceneEngineClient
from scenebase.models.assets import Lidar
from scenebase.storage.blobs import LocalBlobStore
from scenebase.testing import InProcessServer

MIB = 1024 * 1024


def kitti(points: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 20, size=(points, 4)).astype(np.float32).tobytes()


def spool_leftovers(server: InProcessServer) -> list[Path]:
    return sorted((server.settings.data_dir / "tmp").glob("scenebase-upload-*"))


def test_a_large_upload_is_moved_into_the_store_and_hashed_on_arrival(
    server: InProcessServer, admin: SceneEngineClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved: list[tuple[str, bool]] = []
    original = LocalBlobStore.put_file

    def recording(self: LocalBlobStore, key: str, path: Path, content_type: Any = None, move: bool = False) -> None:
        moved.append((path.name, move))
        original(self, key, path, content_type, move)

    monkeypatch.setattr(LocalBlobStore, "put_file", recording)
    data = kitti(1_500_000, 1)  # 24 MB: above the 16 MiB kept in memory, so spooled to a named file
    big = tmp_path / "scan.bin"
    big.write_bytes(data)
    set_id = admin.create_set("scans", "lidars")
    [lidar_id] = admin.add_lidars([Lidar(id="big", path=big, format="kitti")], set_id)
    assert [m for m in moved if m[0].startswith("scenebase-upload-")] == [(moved[0][0], True)]
    doc = admin.get_metadata(lidar_id, "lidars")
    assert doc["content_hash"] == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert doc["num_points"] == 1_500_000
    assert admin.get_asset_manager("lidars").get_file(lidar_id) == data
    assert spool_leftovers(server) == []


def test_spooled_uploads_that_fail_leave_nothing_behind(
    server: InProcessServer, admin: SceneEngineClient, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(kitti(1_200_000, 2) + b"xyz")  # 19 MB, not a multiple of 16 bytes: refused by the probe
    good = tmp_path / "good.bin"
    good.write_bytes(kitti(1_100_000, 3))
    set_id = admin.create_set("scans", "lidars")
    ids = admin.add_lidars([Lidar(id="bad", path=bad, format="kitti"), Lidar(id="good", path=good, format="kitti")],
                           set_id)  # fmt: skip
    assert ids == ["good"] and admin.last_errors[0]["name"] == "bad.bin"
    assert spool_leftovers(server) == []
    blobs = [p for p in (server.settings.data_dir / "blobs").rglob("*") if p.is_file()]
    assert sorted(p.stat().st_size for p in blobs if "lidars" in p.parts) == [good.stat().st_size]
    assert good.stat().st_size > MIB


def test_an_upload_answers_with_the_server_timing_of_its_stages(server: InProcessServer, tmp_path: Path) -> None:
    """The ``Server-Timing`` header says where an upload's time went (benchmarks/bench_videos.py reads it)."""
    http = server.http()
    manifest = '{"items": [{"name": "a.bin", "file": "f0", "metadata": {"format": "kitti"}}], "set_ids": []}'
    files = [("manifest", (None, manifest.encode(), "application/json")),
             ("f0", ("a.bin", kitti(10_000, 4), "application/octet-stream"))]  # fmt: skip
    resp = http.post("/v1/lidars/add/", files=files, headers={"Authorization": "Bearer default-admin-testtoken"})
    assert resp.status_code == 200, resp.text
    stages = dict(part.strip().split(";dur=") for part in resp.headers["server-timing"].split(","))
    assert list(stages) == ["receive", "probe", "store", "catalog"]
    assert all(float(ms) >= 0 for ms in stages.values())
    assert float(stages["probe"]) > 0  # the point cloud was read
