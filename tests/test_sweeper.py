"""The sweeper (issue 8 item 17): what a killed ingest, download or zip left behind is removed after the grace
period, and nothing a document points at, nor anything younger than the grace period, is ever removed.

A ``kill -9`` is reproduced by its leftovers: a blob written by an ingest whose transaction never committed, a
half-written ``.tmp-*`` blob file, a download in ``data_dir/tmp``, a zip folder in the system temp folder. Ages are
set with ``os.utime``; the sweep is run with an explicit ``now``, so nothing here waits or depends on speed."""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage

from scenebase.clients import SceneEngineClient
from scenebase.models.assets import Image
from scenebase.services.sweeper import Sweeper, referenced_keys
from scenebase.storage.blobs import LocalBlobStore
from scenebase.testing import InProcessServer

HOUR = 3600.0


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (16, 12), (seed, 40, 90)).save(buf, "PNG")
    return buf.getvalue()


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    with InProcessServer(tmp_path / "data", workers=1) as srv:
        yield srv


@pytest.fixture
def system_temp(tmp_path: Path) -> Path:
    # never the real system temp folder: other processes on this machine keep their own scenebase-* files there
    folder = tmp_path / "systemp"
    folder.mkdir()
    return folder


def sweeper(server: InProcessServer, system_temp: Path, grace: float = HOUR) -> Sweeper:
    rt = server.runtime
    return Sweeper(rt.catalog, rt.blobs, rt.settings.data_dir, grace, 0, system_temp=system_temp)


def blob_path(server: InProcessServer, key: str) -> Path:
    store = server.runtime.blobs
    assert isinstance(store, LocalBlobStore)
    return store.root.joinpath(*key.split("/"))


def everything_referenced(admin: SceneEngineClient) -> tuple[str, str]:
    """A set of two images with thumbnails and a zip: originals, renditions and the zip are all referenced."""
    set_id = admin.create_set("kept", "images")
    ids = admin.add_images([Image(id=f"img-{i}", image_bytes=png(i)) for i in range(2)], set_id,
                           thumbnailize_at_ingest=True)  # fmt: skip
    assert len(ids) == 2
    job_id, zip_id = admin.zip_set(set_id)
    admin.get_job(job_id).wait(show_progress=False)
    return set_id, zip_id


def test_killed_ingest_blob_is_removed_and_referenced_blobs_stay(server: InProcessServer, system_temp: Path) -> None:
    admin = server.client()
    _set_id, zip_id = everything_referenced(admin)
    stored = sorted(server.runtime.blobs.list())
    assert any(k.startswith("thumbnails/") for k in stored) and any(k.startswith("zipfiles/") for k in stored)
    # an ingest killed between writing its blob and committing its documents
    server.runtime.blobs.put("images/orphan.png", png(9), "image/png")
    for key in [*stored, "images/orphan.png"]:
        age(blob_path(server, key), 2 * HOUR)

    report = sweeper(server, system_temp).sweep()

    assert report.blobs_removed == ["images/orphan.png"]
    assert sorted(server.runtime.blobs.list()) == stored
    http = server.http()
    auth = {"Authorization": "Bearer default-admin-testtoken"}
    for image_id in ("img-0", "img-1"):
        assert http.get(f"/v1/images/{image_id}/file", headers=auth).status_code == 200
        assert http.get(f"/v1/images/{image_id}/thumbnail/small", headers=auth).status_code == 200
    assert http.get(f"/v1/zipfiles/{zip_id}/file", headers=auth).status_code == 200


def test_young_unreferenced_blob_is_kept_for_an_ingest_in_flight(server: InProcessServer, system_temp: Path) -> None:
    server.runtime.blobs.put("images/in-flight.png", png(1), "image/png")
    age(blob_path(server, "images/in-flight.png"), HOUR - 60)

    report = sweeper(server, system_temp).sweep()

    assert report.blobs_removed == [] and report.blobs_kept_young == 1
    assert server.runtime.blobs.exists("images/in-flight.png")
    # the same blob once the grace period has passed (the ingest died)
    report = sweeper(server, system_temp).sweep(now=time.time() + 120)
    assert report.blobs_removed == ["images/in-flight.png"]


def test_blobs_outside_the_servers_prefixes_are_never_touched(server: InProcessServer, system_temp: Path) -> None:
    server.runtime.blobs.put("backups/someone-elses.bin", b"x")
    age(blob_path(server, "backups/someone-elses.bin"), 10 * HOUR)
    assert sweeper(server, system_temp).sweep().blobs_removed == []
    assert server.runtime.blobs.exists("backups/someone-elses.bin")


def test_stale_temporary_files_are_removed_fresh_ones_kept(server: InProcessServer, system_temp: Path) -> None:
    data_tmp = server.runtime.settings.data_dir / "tmp"
    data_tmp.mkdir(exist_ok=True)
    stale_download, fresh_download = data_tmp / "fetch-stale", data_tmp / "fetch-fresh"
    stale_download.write_bytes(b"partial download")
    fresh_download.write_bytes(b"download in progress")
    age(stale_download, 2 * HOUR)

    half_blob = blob_path(server, "images/x.png").parent / ".tmp-abc123"
    half_blob.parent.mkdir(parents=True, exist_ok=True)
    half_blob.write_bytes(b"half a blob")
    age(half_blob, 2 * HOUR)

    stale_zip = system_temp / "scenebase-zip-dead"
    stale_zip.mkdir()
    (stale_zip / "set.zip").write_bytes(b"PK")
    age(stale_zip / "set.zip", 2 * HOUR)
    age(stale_zip, 2 * HOUR)
    growing_zip = system_temp / "scenebase-zip-alive"
    growing_zip.mkdir()
    (growing_zip / "set.zip").write_bytes(b"PK")  # being written now
    age(growing_zip, 2 * HOUR)  # the folder is old, its content is not
    foreign = system_temp / "not-ours"
    foreign.write_bytes(b"x")
    age(foreign, 10 * HOUR)

    report = sweeper(server, system_temp).sweep()

    assert sorted(report.temp_removed) == sorted(map(str, [stale_download, half_blob, stale_zip]))
    assert not stale_download.exists() and not half_blob.exists() and not stale_zip.exists()
    assert fresh_download.exists() and growing_zip.exists() and foreign.exists()


def test_the_runtime_sweeps_in_the_background(
    tmp_path: Path, system_temp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))  # the server's sweeper must not touch the real one
    with InProcessServer(tmp_path / "data", workers=0, sweep_interval_seconds=0.05, sweep_grace_seconds=60) as srv:
        assert srv.runtime.sweeper.system_temp == system_temp
        srv.runtime.blobs.put("images/orphan.png", png(1))
        age(blob_path(srv, "images/orphan.png"), HOUR)
        deadline = time.monotonic() + 60
        while srv.runtime.blobs.exists("images/orphan.png") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not srv.runtime.blobs.exists("images/orphan.png")


def test_references_are_found_anywhere_in_a_document() -> None:
    docs = [
        {"object_access": {"key": "images/a.png"}, "thumbnails": {"tiny": {"key": "thumbnails/t.jpg"}}},
        {"renditions": [{"parts": [{"key": "videos/seg.ts"}]}], "aux": {"key": 5}},
    ]
    assert referenced_keys(docs) == {"images/a.png", "thumbnails/t.jpg", "videos/seg.ts"}
