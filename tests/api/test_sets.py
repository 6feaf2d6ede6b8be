"""Sets through the client (FACTS 5): creation, lock, membership, status, deletion, split, zip, tenancy, roles."""

from __future__ import annotations

import functools
import http.server
import io
import json
import logging
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage

from scenebase.clients import SceneEngineClient
from scenebase.domain.splits import split_ids, split_sizes
from scenebase.errors import InvalidArgumentsError, MetadataNotFoundError, SceneBaseError, SetsError
from scenebase.models.assets import Image
from scenebase.services.errors import NotFound
from scenebase.storage.scope import Scope
from scenebase.testing import InProcessServer

from .conftest import World


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (24, 16), ((37 * i) % 256, (11 * i) % 256, 200)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _add_images(
    client: SceneEngineClient, set_id: str, n: int, prefix: str = "img", start: int = 0
) -> dict[str, bytes]:
    """``n`` JPEGs in ``set_id``: odd ones from cam_a, even ones from cam_b. Returns {id: original bytes}."""
    originals = {f"{prefix}_{i:03d}": _jpeg(i) for i in range(start, start + n)}
    images = [
        Image(
            image_bytes=data,
            id=image_id,
            sensor="cam_a" if int(image_id.rsplit("_", 1)[1]) % 2 else "cam_b",
            aux_metadata={"index": int(image_id.rsplit("_", 1)[1])},
        )
        for image_id, data in originals.items()
    ]
    assert client.add_images(images, set_id) == list(originals)
    return originals


def _members(client: SceneEngineClient, set_id: str) -> set[str]:
    return set(client.assets_in_set(set_id))


CAM_A = {"filters": [{"field": "sensor", "values": ["cam_a"]}]}


# ---------------------------------------------------------------------------------------------- creation


def test_create_set_returns_an_id_and_reuses_a_name(admin: SceneEngineClient, caplog: pytest.LogCaptureFixture) -> None:
    set_id = admin.create_set("alpha", "images")
    assert isinstance(set_id, str) and set_id
    doc = admin.get_metadata(set_id, "sets")
    assert doc["id"] == set_id
    assert doc["name"] == "alpha"
    assert doc["assets_type"] == "images"
    assert doc["tags"] == []

    with caplog.at_level(logging.WARNING, logger="scenebase.client"):
        again = admin.create_set("alpha", "images")
    assert again == set_id
    assert any("alpha" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

    with pytest.raises(SetsError) as err:
        admin.create_set("alpha", "images", raise_if_set_exists=True)
    assert err.value.status_code == 409

    other = admin.create_set("beta", "images")
    assert other != set_id


def test_create_set_options(admin: SceneEngineClient) -> None:
    custom = admin.create_set("custom", "images", id="My Set 01")
    assert custom == "my_set_01"  # ids are standardized
    assert admin.get_metadata("my_set_01", "sets")["name"] == "custom"

    primary = admin.create_set(
        "primary-set",
        "images",
        description="front camera",
        expected_count=12,
        tags=["highway"],
        aux_metadata={"team": "perception", "version": 3},
        is_primary=True,
    )
    doc = admin.get_metadata(primary, "sets")
    assert doc["tags"] == ["highway", "primary"]
    assert doc["aux"] == {"team": "perception", "version": 3}
    assert doc["description"] == "front camera"
    assert doc["expected_count"] == 12
    assert doc["locked"] is False

    not_primary = admin.create_set("plain", "images", tags=["x"])
    assert admin.get_metadata(not_primary, "sets")["tags"] == ["x"]

    child = admin.create_set("child", "images", origin=primary)
    assert admin.get_metadata(child, "sets")["origin_set_id"] == primary


def test_create_set_errors(admin: SceneEngineClient) -> None:
    with pytest.raises(SetsError) as err:
        admin.create_set("pictures", "pictures")
    assert err.value.status_code == 400

    with pytest.raises(SetsError) as err:
        admin.create_set("orphan", "images", origin="no_such_set")
    assert err.value.status_code == 404

    admin.create_set("first", "images", id="taken_id")
    with pytest.raises(SetsError) as err:
        admin.create_set("second", "images", id="taken_id")
    assert err.value.status_code == 409
    # neither failure created anything
    with pytest.raises(SetsError):
        admin.create_set("orphan", "images", raise_if_set_exists=True, origin="no_such_set")
    assert admin.create_set("second", "images", raise_if_set_exists=True) != "taken_id"


def test_set_names_are_unique_per_organization(world: World) -> None:
    a = world.client(world.a.tokens["admin"])
    b = world.client(world.b.tokens["admin"])
    a_set = a.create_set("shared-name", "images", raise_if_set_exists=True)
    b_set = b.create_set("shared-name", "images", raise_if_set_exists=True)
    assert a_set != b_set
    assert a.create_set("shared-name", "images") == a_set
    assert b.create_set("shared-name", "images") == b_set
    assert a.get_set_status(a_set)["name"] == b.get_set_status(b_set)["name"] == "shared-name"


# ---------------------------------------------------------------------------------------------- lock and status


def test_lock_unlock_and_status(admin: SceneEngineClient) -> None:
    set_id = admin.create_set("lockable", "images", expected_count=5)
    originals = _add_images(admin, set_id, 3)
    assert admin.set_is_locked(set_id) is False

    status = admin.get_set_status(set_id)
    assert status["id"] == set_id
    assert status["name"] == "lockable"
    assert status["assets_type"] == "images"
    assert status["status"] == "ready"
    assert status["locked"] is False
    assert status["count"] == len(originals)
    assert status["expected_count"] == 5

    assert admin.set_lock(set_id) is True
    assert admin.set_is_locked(set_id) is True
    assert admin.get_set_status(set_id)["locked"] is True
    assert admin.set_lock(set_id) is True  # locking twice is fine
    assert admin.set_is_locked(set_id) is True

    assert admin.set_unlock(set_id) is True
    assert admin.set_is_locked(set_id) is False
    assert admin.get_set_status(set_id)["locked"] is False


def test_unknown_set(admin: SceneEngineClient) -> None:
    for call in (
        lambda: admin.get_set_status("no_such_set"),
        lambda: admin.set_lock("no_such_set"),
        lambda: admin.set_is_locked("no_such_set"),
        lambda: admin.assets_in_set("no_such_set"),
        lambda: admin.delete_set("no_such_set"),
    ):
        with pytest.raises(SetsError) as err:
            call()
        assert err.value.status_code == 404


def test_locked_set_refuses_changes(admin: SceneEngineClient) -> None:
    pool = admin.create_set("pool", "images")
    originals = _add_images(admin, pool, 4)
    ids = list(originals)
    set_id = admin.create_set("locked", "images")
    admin.add_assets_to_set(set_id, ids=ids[:2], wait_for_completion=True)
    admin.set_lock(set_id)

    with pytest.raises(SetsError):
        admin.add_assets_to_set(set_id, ids=ids[2:], wait_for_availability=False)
    with pytest.raises(SetsError):
        admin.add_assets_to_set(set_id, search=CAM_A, wait_for_availability=False)
    with pytest.raises(SetsError):
        admin.remove_assets_from_set(ids=ids[:1], set_id=set_id, wait_for_availability=False)
    with pytest.raises(TimeoutError):
        admin.add_assets_to_set(set_id, ids=ids[2:], wait_for_availability=True, timeout=1)
    with pytest.raises(TimeoutError):
        admin.remove_assets_from_set(ids=ids[:1], set_id=set_id, timeout=1)
    # the server refuses too, whatever the client checks
    with pytest.raises(SetsError) as err:
        admin.delete_set(set_id)
    assert err.value.status_code == 423
    with pytest.raises(SetsError) as err:
        admin.split_set(set_id, 2, ["locked_a", "locked_b"])
    assert err.value.status_code == 423
    # images cannot join a locked set at ingest either
    with pytest.raises(SetsError):
        admin.add_images([Image(image_bytes=_jpeg(99), id="late")], set_id)

    assert _members(admin, set_id) == set(ids[:2])
    assert admin.get_set_status(set_id)["locked"] is True

    admin.set_unlock(set_id)
    admin.add_assets_to_set(set_id, ids=ids[2:], wait_for_availability=False, wait_for_completion=True)
    assert _members(admin, set_id) == set(ids)


def test_add_waits_until_the_set_is_unlocked(server: InProcessServer, admin: SceneEngineClient) -> None:
    pool = admin.create_set("pool", "images")
    ids = list(_add_images(admin, pool, 3))
    set_id = admin.create_set("busy", "images")
    admin.set_lock(set_id)

    other = server.client()
    unlocker = threading.Timer(0.3, other.set_unlock, args=(set_id,))
    unlocker.start()
    try:
        job_id = admin.add_assets_to_set(set_id, ids=ids, wait_for_availability=True, timeout=30)
    finally:
        unlocker.join(timeout=30)
    assert not unlocker.is_alive()
    admin.get_job(job_id).wait(timeout=60)
    assert _members(admin, set_id) == set(ids)
    assert admin.set_is_locked(set_id) is False


# ---------------------------------------------------------------------------------------------- membership


def test_add_and_remove_need_ids_or_a_search(admin: SceneEngineClient) -> None:
    set_id = admin.create_set("empty", "images")
    with pytest.raises(SetsError):
        admin.add_assets_to_set(set_id)
    with pytest.raises(SetsError):
        admin.add_assets_to_set(set_id, ids=[])
    with pytest.raises(ValueError):
        admin.remove_assets_from_set(set_id=set_id)
    with pytest.raises(ValueError):
        admin.remove_assets_from_set(set_id=set_id, ids=[])
    with pytest.raises(ValueError):
        admin.remove_assets_from_set(ids=["x"])  # no set_id
    with pytest.raises(ValueError):
        admin.assets_in_set()


def test_add_by_ids(admin: SceneEngineClient) -> None:
    pool = admin.create_set("pool", "images")
    ids = list(_add_images(admin, pool, 5))
    set_id = admin.create_set("picked", "images")

    job_id = admin.add_assets_to_set(
        set_id, ids=[ids[0], ids[1].upper(), "missing_one", pool], wait_for_completion=True
    )
    assert _members(admin, set_id) == {ids[0], ids[1]}
    notes = " ".join(admin.get_job(job_id).notes)
    assert "missing_one" in notes
    assert pool in notes  # a set is not an image: noted, not added
    assert set(admin.get_metadata(ids[0], "images")["sets"]) == {pool, set_id}
    assert admin.get_metadata(ids[2], "images")["sets"] == [pool]

    # adding members again changes nothing
    admin.add_assets_to_set(set_id, ids=[ids[0], ids[2]], wait_for_completion=True)
    assert _members(admin, set_id) == {ids[0], ids[1], ids[2]}
    assert admin.get_metadata(ids[0], "images")["sets"].count(set_id) == 1
    assert admin.get_set_status(set_id)["count"] == 3


def test_add_by_search_and_limit(admin: SceneEngineClient) -> None:
    pool = admin.create_set("pool", "images")
    originals = _add_images(admin, pool, 10)
    cam_a = {i for i in originals if int(i.rsplit("_", 1)[1]) % 2}
    assert len(cam_a) == 5

    by_search = admin.create_set("cam_a", "images")
    admin.add_assets_to_set(by_search, search=CAM_A, wait_for_completion=True)
    assert _members(admin, by_search) == cam_a

    everything = admin.create_set("everything", "images")
    admin.add_assets_to_set(everything, search={}, wait_for_completion=True)
    assert _members(admin, everything) == set(originals)

    # limit: a seeded random sample of the matches, the same for the same matches
    samples = []
    for name in ("sample_1", "sample_2"):
        sample = admin.create_set(name, "images")
        admin.add_assets_to_set(sample, search=CAM_A, limit=3, wait_for_completion=True)
        samples.append(_members(admin, sample))
    assert len(samples[0]) == 3
    assert samples[0] <= cam_a
    assert samples[0] == samples[1]

    big_limit = admin.create_set("big_limit", "images")
    admin.add_assets_to_set(big_limit, search=CAM_A, limit=50, wait_for_completion=True)
    assert _members(admin, big_limit) == cam_a


def test_remove_by_ids_and_by_search(admin: SceneEngineClient) -> None:
    pool = admin.create_set("pool", "images")
    originals = _add_images(admin, pool, 10)
    ids = sorted(originals)
    set_id = admin.create_set("shrinking", "images")
    members = ids[:8]  # ids[8:] stay outside the set
    admin.add_assets_to_set(set_id, ids=members, wait_for_completion=True)

    job_id = admin.remove_assets_from_set(ids=[members[0], members[1], ids[9]], set_id=set_id, wait_for_completion=True)
    assert admin.get_job(job_id).status == "finished"
    assert _members(admin, set_id) == set(members[2:])
    assert admin.get_metadata(members[0], "images")["sets"] == [pool]

    # by search: only members are touched (ids[9] is cam_a but not in the set)
    remaining_cam_a = {i for i in members[2:] if int(i.rsplit("_", 1)[1]) % 2}
    job_id = admin.remove_assets_from_set(search=CAM_A, set_id=set_id, wait_for_completion=True)
    assert admin.get_job(job_id).result["removed"] == len(remaining_cam_a)
    assert _members(admin, set_id) == set(members[2:]) - remaining_cam_a
    assert _members(admin, pool) == set(ids)  # other sets keep their members
    for image_id in ids:
        assert admin.get_metadata(image_id, "images")["sets"][0] == pool


def test_assets_in_set_and_search_within_set(admin: SceneEngineClient) -> None:
    pool = admin.create_set("pool", "images")
    originals = _add_images(admin, pool, 8)
    ids = sorted(originals)
    set_id = admin.create_set("searchable", "images")
    members = ids[:5]
    admin.add_assets_to_set(set_id, ids=members, wait_for_completion=True)

    assert sorted(admin.assets_in_set(set_id)) == members
    cam_a_members = {i for i in members if int(i.rsplit("_", 1)[1]) % 2}

    found_ids = admin.search_within_set(set_id, CAM_A, show_meta=False)
    assert all(isinstance(i, str) for i in found_ids)
    assert set(found_ids) == cam_a_members  # cam_a images outside the set are not returned

    metas = admin.search_within_set(set_id, CAM_A, show_meta=True)
    assert {m["id"] for m in metas} == cam_a_members
    for meta in metas:
        assert meta["sensor"] == "cam_a"
        assert set_id in meta["sets"]
        assert meta["aux"] == {"index": int(meta["id"].rsplit("_", 1)[1])}

    assert {m["id"] for m in admin.search_within_set(set_id)} == set(members)
    assert set(admin.search_within_set(set_id, show_meta=False)) == set(members)
    nothing = {"filters": [{"field": "sensor", "values": ["no_such_sensor"]}]}
    assert admin.search_within_set(set_id, nothing, show_meta=False) == []
    assert admin.assets_in_set(admin.create_set("empty", "images")) == []


def test_a_set_holds_one_asset_type(admin: SceneEngineClient) -> None:
    videos = admin.create_set("videos", "videos")
    with pytest.raises(SetsError):
        admin.add_images([Image(image_bytes=_jpeg(1), id="not_a_video")], videos)
    with pytest.raises(MetadataNotFoundError):
        admin.get_metadata("not_a_video", "images")

    pool = admin.create_set("pool", "images")
    ids = list(_add_images(admin, pool, 2))
    # the video set looks for videos with these ids: there are none
    job_id = admin.add_assets_to_set(videos, ids=ids, wait_for_completion=True)
    assert admin.assets_in_set(videos) == []
    assert all(i in " ".join(admin.get_job(job_id).notes) for i in ids)
    assert admin.get_set_status(videos)["count"] == 0
    for image_id in ids:
        assert admin.get_metadata(image_id, "images")["sets"] == [pool]


# ---------------------------------------------------------------------------------------------- deletion


def test_delete_set_keeps_the_assets_and_frees_the_name(
    admin: SceneEngineClient, caplog: pytest.LogCaptureFixture
) -> None:
    pool = admin.create_set("pool", "images")
    ids = list(_add_images(admin, pool, 4))
    set_id = admin.create_set("doomed", "images")
    admin.add_assets_to_set(set_id, ids=ids[:3], wait_for_completion=True)

    job_id = admin.delete_set(set_id, wait_for_completion=True)
    assert admin.get_job(job_id).status == "finished"
    with pytest.raises(SetsError) as err:
        admin.get_set_status(set_id)
    assert err.value.status_code == 404
    with pytest.raises(MetadataNotFoundError):
        admin.get_metadata(set_id, "sets")
    for image_id in ids:
        assert admin.get_metadata(image_id, "images")["sets"] == [pool]
    assert _members(admin, pool) == set(ids)

    with caplog.at_level(logging.WARNING, logger="scenebase.client"):
        reborn = admin.create_set("doomed", "images", raise_if_set_exists=True)
    assert reborn != set_id
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert admin.assets_in_set(reborn) == []


# ---------------------------------------------------------------------------------------------- split


def _split_counts(client: SceneEngineClient, subset_ids: list[str]) -> list[int]:
    return [client.get_set_status(s)["count"] for s in subset_ids]


def _assert_partition(client: SceneEngineClient, parent: str, subset_ids: list[str]) -> list[set[str]]:
    parts = [_members(client, s) for s in subset_ids]
    union: set[str] = set()
    for part in parts:
        assert not part & union, "subsets overlap"
        union |= part
    assert union == _members(client, parent)
    return parts


def test_split_by_sections(admin: SceneEngineClient) -> None:
    parent = admin.create_set("eleven", "images")
    _add_images(admin, parent, 11)
    subset_ids = admin.split_set(parent, 3, ["eleven_a", "eleven_b", "eleven_c"], wait_for_completion=True)
    assert len(subset_ids) == 3
    assert _split_counts(admin, subset_ids) == [4, 4, 3] == split_sizes(11, 3)
    _assert_partition(admin, parent, subset_ids)
    for sid, name in zip(subset_ids, ["eleven_a", "eleven_b", "eleven_c"], strict=True):
        doc = admin.get_metadata(sid, "sets")
        assert doc["name"] == name
        assert doc["assets_type"] == "images"
        assert doc["origin_set_id"] == parent
    assert admin.get_set_status(parent)["count"] == 11  # the parent keeps its members
    # the subsets are ordinary sets: their names are taken
    with pytest.raises(SetsError):
        admin.create_set("eleven_b", "images", raise_if_set_exists=True)


def test_split_by_percentages(admin: SceneEngineClient) -> None:
    parent = admin.create_set("ten", "images")
    _add_images(admin, parent, 10)
    subset_ids = admin.split_set(parent, [0.5, 0.3], ["train", "val"], wait_for_completion=True)
    assert split_sizes(10, [0.5, 0.3]) == [6, 4]
    assert _split_counts(admin, subset_ids) == [6, 4]
    _assert_partition(admin, parent, subset_ids)

    subset_ids = admin.split_set(parent, [0.2, 0.3], None, random_seed=3, wait_for_completion=True)
    assert _split_counts(admin, subset_ids) == [5, 5] == split_sizes(10, [0.2, 0.3])
    assert [admin.get_set_status(s)["name"] for s in subset_ids] == ["ten_split_0", "ten_split_1"]
    _assert_partition(admin, parent, subset_ids)


def test_split_is_deterministic_for_a_seed(admin: SceneEngineClient) -> None:
    parent = admin.create_set("source", "images")
    members = list(_add_images(admin, parent, 11))
    first = admin.split_set(parent, 3, ["s1_a", "s1_b", "s1_c"], random_seed=7, wait_for_completion=True)
    second = admin.split_set(parent, 3, ["s2_a", "s2_b", "s2_c"], random_seed=7, wait_for_completion=True)
    other = admin.split_set(parent, 3, ["s3_a", "s3_b", "s3_c"], random_seed=8, wait_for_completion=True)
    parts_first = _assert_partition(admin, parent, first)
    assert _assert_partition(admin, parent, second) == parts_first
    # the documented rule: sort, shuffle with the seed, slice
    assert parts_first == [set(p) for p in split_ids(members, split_sizes(11, 3), 7)]
    assert _assert_partition(admin, parent, other) == [set(p) for p in split_ids(members, split_sizes(11, 3), 8)]
    assert _assert_partition(admin, parent, other) != parts_first


def test_split_errors(admin: SceneEngineClient) -> None:
    parent = admin.create_set("parent", "images")
    _add_images(admin, parent, 11)
    admin.create_set("exists", "images")

    with pytest.raises(SetsError) as err:
        admin.split_set(parent, 2, ["fresh", "exists"], wait_for_completion=True)
    assert err.value.status_code == 409
    assert admin.create_set("fresh", "images", raise_if_set_exists=True)  # nothing was created

    with pytest.raises(SetsError) as err:
        admin.split_set(parent, 2, ["same", "same"], wait_for_completion=True)
    assert err.value.status_code == 400
    with pytest.raises(SetsError) as err:
        admin.split_set(parent, 3, ["only_one"], wait_for_completion=True)
    assert err.value.status_code == 400
    with pytest.raises(SetsError) as err:
        admin.split_set(parent, [0.7, 0.6], ["p1", "p2"], wait_for_completion=True)
    assert err.value.status_code == 400
    with pytest.raises(SetsError) as err:
        admin.split_set(parent, 0, None, wait_for_completion=True)
    assert err.value.status_code == 400
    with pytest.raises(SetsError) as err:
        admin.split_set("no_such_set", 2, None, wait_for_completion=True)
    assert err.value.status_code == 404

    for bad in (True, 0.5, "2"):  # a bool, a bare fraction or a string is not a number of sections
        with pytest.raises(InvalidArgumentsError, match="integer or a list"):
            admin.split_set(parent, bad, None, wait_for_completion=True)  # type: ignore[arg-type]
    with pytest.raises(SetsError, match="exactly one of 'sections' and 'percentages'") as err:
        body = {"set_id": parent, "sections": 2, "percentages": [0.5]}
        admin._http.request("POST", "/v1/sets/split_sets/", json=body, error=SetsError)
    assert err.value.status_code == 400

    # more than 5 splits must wait for completion
    with pytest.raises(ValueError):
        admin.split_set(parent, 6, None, wait_for_completion=False)
    with pytest.raises(ValueError):
        admin.split_set(parent, [0.1] * 6, None, wait_for_completion=False)
    with pytest.raises(SetsError):
        admin.get_set_status("parent_split_0")  # nothing was started
    assert admin.create_set("parent_split_0", "images", raise_if_set_exists=True)

    six = admin.split_set(parent, 6, [f"six_{i}" for i in range(6)], wait_for_completion=True)
    assert _split_counts(admin, six) == [2, 2, 2, 2, 2, 1]
    _assert_partition(admin, parent, six)


def test_split_route_needs_sections_or_percentages(server: InProcessServer, admin: SceneEngineClient) -> None:
    parent = admin.create_set("parent", "images")
    resp = server.http().post("/v1/sets/split_sets/", params={"token": admin.auth_token}, json={"set_id": parent})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "invalid_argument"


# ---------------------------------------------------------------------------------------------- zip


def _check_zip(client: SceneEngineClient, data: io.BytesIO | str, set_id: str, originals: dict[str, bytes]) -> None:
    with zipfile.ZipFile(data) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["set_id"] == set_id
        assert manifest["name"] == "export"
        assert manifest["assets_type"] == "images"
        assert manifest["count"] == len(originals)
        for image_id, original in originals.items():
            assert zf.read(f"export/assets/{image_id}.jpg") == original
            assert json.loads(zf.read(f"export/metadata/{image_id}.json")) == client.get_metadata(image_id, "images")
        expected = {"manifest.json"} | {f"export/assets/{i}.jpg" for i in originals}
        expected |= {f"export/metadata/{i}.json" for i in originals}
        assert names == expected


def test_zip_set_and_download_into_memory(admin: SceneEngineClient) -> None:
    set_id = admin.create_set("export", "images")
    originals = _add_images(admin, set_id, 3)
    data = admin.zip_set_and_download(set_id)
    assert isinstance(data, io.BytesIO)
    _check_zip(admin, data, set_id, originals)

    job_id, zip_id = admin.zip_set(set_id)
    admin.get_job(job_id).wait(timeout=60)
    again = admin.download_zipfile(zip_id)
    assert isinstance(again, io.BytesIO)
    _check_zip(admin, again, set_id, originals)


def test_a_finished_zip_is_moved_into_the_store_and_leaves_no_temporary_folder(
    server: InProcessServer, admin: SceneEngineClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scenebase.storage.blobs import LocalBlobStore

    calls: list[tuple[Path, bool]] = []
    put_file = LocalBlobStore.put_file

    def recording(
        self: LocalBlobStore, key: str, path: Path, content_type: str | None = None, move: bool = False
    ) -> None:
        calls.append((path, move))
        put_file(self, key, path, content_type, move)

    monkeypatch.setattr(LocalBlobStore, "put_file", recording)
    set_id = admin.create_set("export", "images")
    originals = _add_images(admin, set_id, 2)
    job_id, zip_id = admin.zip_set(set_id)
    admin.get_job(job_id).wait(timeout=60)
    _check_zip(admin, admin.download_zipfile(zip_id), set_id, originals)
    # written in the data folder's tmp (the store's filesystem) and renamed into the store, not copied
    [(path, move)] = [c for c in calls if c[0].suffix == ".zip"]
    assert move and path.is_relative_to(tmp_path / "data" / "tmp") and not path.exists()
    assert not any(p.name.startswith("scenebase-zip-") for p in (tmp_path / "data" / "tmp").iterdir())
    stored = list((tmp_path / "data").rglob(f"{zip_id}.zip"))
    assert len(stored) == 1 and zipfile.is_zipfile(stored[0])


def test_zip_members_are_written_as_zipfile_writes_them(tmp_path: Path) -> None:
    from scenebase.services.zips import COPY_PIECE_BYTES, _write_member

    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (COPY_PIECE_BYTES // 256 * 3 + 7))  # several pieces and a part of one
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"a": list(range(500))}))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    members = [(big, "x/big.bin", zipfile.ZIP_STORED), (small, "x/small.json", zipfile.ZIP_DEFLATED),
               (empty, "x/empty.txt", zipfile.ZIP_DEFLATED)]  # fmt: skip
    ours, theirs = tmp_path / "ours.zip", tmp_path / "theirs.zip"
    with zipfile.ZipFile(ours, "w") as zf:
        for src, name, compress in members:
            _write_member(zf, src, name, compress)
    with zipfile.ZipFile(theirs, "w") as zf:
        for src, name, compress in members:
            zf.write(src, name, compress_type=compress)
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        assert a.testzip() is None
        for src, name, compress in members:
            x, y = a.getinfo(name), b.getinfo(name)
            assert (x.CRC, x.file_size, x.compress_size, x.compress_type, x.date_time, x.external_attr) == (
                y.CRC, y.file_size, y.compress_size, y.compress_type, y.date_time, y.external_attr)  # fmt: skip
            assert x.compress_type == compress
            assert a.read(name) == src.read_bytes()


def test_zip_set_and_download_to_a_file(admin: SceneEngineClient, tmp_path: Path) -> None:
    set_id = admin.create_set("export", "images")
    originals = _add_images(admin, set_id, 2)
    artifacts = tmp_path / "artifacts"
    admin.update_artifact_path(str(artifacts))

    path = admin.zip_set_and_download(set_id, "my_export")
    assert isinstance(path, str)
    assert Path(path) == artifacts / "my_export.zip"
    _check_zip(admin, path, set_id, originals)

    path = admin.zip_set_and_download(set_id, "named.zip")  # no second .zip
    assert Path(path) == artifacts / "named.zip"
    _check_zip(admin, path, set_id, originals)
    assert sorted(p.name for p in artifacts.iterdir()) == ["my_export.zip", "named.zip"]


def test_zip_of_an_empty_set(admin: SceneEngineClient) -> None:
    set_id = admin.create_set("export", "images")
    data = admin.zip_set_and_download(set_id)
    with zipfile.ZipFile(data) as zf:
        assert zf.namelist() == ["manifest.json"]
        assert json.loads(zf.read("manifest.json"))["count"] == 0


def test_zip_errors(admin: SceneEngineClient) -> None:
    with pytest.raises(SceneBaseError) as err:
        admin.download_zipfile("no_such_zip")
    assert err.value.status_code == 404
    with pytest.raises(ValueError):
        admin.zip_set("")
    with pytest.raises(ValueError):
        admin.zip_set_and_download()
    with pytest.raises(SetsError) as err:
        admin.zip_set("no_such_set")
    assert err.value.status_code == 404


# ---------------------------------------------------------------------------------------------- concurrency


def test_concurrent_membership_jobs_keep_every_membership(admin: SceneEngineClient) -> None:
    """Two add jobs (two workers) write the ``sets`` lists of the same assets at the same time: none may undo the
    other's writes. (Without the transactional read-modify-write, some rounds lose hundreds of memberships.)"""
    pool = admin.create_set("pool", "images")
    ids = list(_add_images(admin, pool, 700))  # more than one membership chunk
    targets: list[str] = []
    for round_ in range(4):
        pair = [admin.create_set(f"target_{round_}_{k}", "images") for k in range(2)]
        jobs = [admin.add_assets_to_set(s, ids=ids) for s in pair]
        for job_id in jobs:
            admin.get_job(job_id).wait(timeout=240)
        targets.extend(pair)
    assert [admin.get_set_status(s)["count"] for s in targets] == [700] * len(targets)
    assert admin.get_set_status(pool)["count"] == 700
    for image_id in ids[::97]:
        assert set(admin.get_metadata(image_id, "images")["sets"]) == {pool, *targets}


# ---------------------------------------------------------------------------------------------- tenancy and roles


def _a_set_with_images(world: World) -> tuple[str, list[str], str]:
    a = world.client(world.a.tokens["admin"])
    set_id = a.create_set("a-private", "images")
    ids = list(_add_images(a, set_id, 3, prefix="a_img"))
    job_id, zip_id = a.zip_set(set_id)
    a.get_job(job_id).wait(timeout=60)
    return set_id, ids, zip_id


def test_another_organization_cannot_touch_a_set(world: World) -> None:
    set_id, ids, zip_id = _a_set_with_images(world)
    a = world.client(world.a.tokens["admin"])
    b = world.client(world.b.tokens["admin"])
    b_set = b.create_set("b-own", "images")

    calls = {
        "status": lambda: b.get_set_status(set_id),
        "is_locked": lambda: b.set_is_locked(set_id),
        "lock": lambda: b.set_lock(set_id),
        "unlock": lambda: b.set_unlock(set_id),
        "add": lambda: b.add_assets_to_set(set_id, ids=ids, wait_for_availability=False),
        "add_search": lambda: b.add_assets_to_set(set_id, search={}, wait_for_availability=False),
        "remove": lambda: b.remove_assets_from_set(ids=ids, set_id=set_id, wait_for_availability=False),
        "list": lambda: b.assets_in_set(set_id),
        "search_within": lambda: b.search_within_set(set_id, show_meta=True),
        "delete": lambda: b.delete_set(set_id, wait_for_completion=True),
        "split": lambda: b.split_set(set_id, 2, ["b_1", "b_2"], wait_for_completion=True),
        "zip": lambda: b.zip_set(set_id),
        "download": lambda: b.download_zipfile(zip_id),
        "origin": lambda: b.create_set("b-child", "images", origin=set_id),
    }
    for what, call in calls.items():
        with pytest.raises(SceneBaseError) as err:
            call()
        assert err.value.status_code == 404, what

    # A's images cannot join B's set either
    job_id = b.add_assets_to_set(b_set, ids=ids, wait_for_completion=True)
    assert b.assets_in_set(b_set) == []
    assert all(i in " ".join(b.get_job(job_id).notes) for i in ids)

    # nothing changed on A's side
    status = a.get_set_status(set_id)
    assert status["locked"] is False
    assert status["count"] == 3
    assert _members(a, set_id) == set(ids)
    for image_id in ids:
        assert a.get_metadata(image_id, "images")["sets"] == [set_id]
    # the refused split created nothing on either side
    assert b.create_set("b_1", "images", raise_if_set_exists=True)
    assert a.create_set("b_1", "images", raise_if_set_exists=True)


def test_data_user_curates_but_cannot_delete(world: World) -> None:
    set_id, ids, _ = _a_set_with_images(world)
    user = world.client(world.a.tokens["data_user"])

    own = user.create_set("curated", "images")
    assert user.get_metadata(own, "sets")["user"] == world.a.usernames["data_user"]
    user.add_assets_to_set(own, ids=ids[:2], wait_for_completion=True)
    assert _members(user, own) == set(ids[:2])
    user.remove_assets_from_set(ids=ids[:1], set_id=own, wait_for_completion=True)
    assert _members(user, own) == {ids[1]}
    assert user.set_lock(own) is True
    assert user.set_unlock(own) is True

    data = user.zip_set_and_download(set_id)
    with zipfile.ZipFile(data) as zf:
        assert json.loads(zf.read("manifest.json"))["count"] == 3

    subsets = user.split_set(set_id, [0.5], ["curated_all"], wait_for_completion=True)
    assert _members(user, subsets[0]) == set(ids)

    for target in (own, set_id):
        with pytest.raises(SetsError) as err:
            user.delete_set(target)
        assert err.value.status_code == 403
    assert user.get_set_status(own)["count"] == 1

    provider = world.client(world.a.tokens["data_provider"])
    provider.delete_set(own, wait_for_completion=True)
    with pytest.raises(SetsError) as err:
        user.get_set_status(own)
    assert err.value.status_code == 404


def test_read_only_user_can_only_read(world: World) -> None:
    set_id, ids, zip_id = _a_set_with_images(world)
    reader = world.client(world.a.tokens["read_only_user"])

    assert reader.get_set_status(set_id)["count"] == 3
    assert _members(reader, set_id) == set(ids)
    assert reader.set_is_locked(set_id) is False
    assert isinstance(reader.download_zipfile(zip_id), io.BytesIO)

    calls = {
        "create": lambda: reader.create_set("nope", "images"),
        "lock": lambda: reader.set_lock(set_id),
        "unlock": lambda: reader.set_unlock(set_id),
        "add": lambda: reader.add_assets_to_set(set_id, ids=ids),
        "remove": lambda: reader.remove_assets_from_set(ids=ids, set_id=set_id),
        "split": lambda: reader.split_set(set_id, 2, ["r_1", "r_2"]),
        "zip": lambda: reader.zip_set(set_id),
        "zip_and_download": lambda: reader.zip_set_and_download(set_id),
        "delete": lambda: reader.delete_set(set_id),
    }
    for what, call in calls.items():
        with pytest.raises(SceneBaseError) as err:
            call()
        assert err.value.status_code == 403, what
    assert world.client(world.a.tokens["admin"]).get_set_status(set_id)["count"] == 3


# ---------------------------------------------------------------------------------------------- issues 7 and 8


def test_split_answers_ids_that_exist_before_the_job_runs(server: InProcessServer, admin: SceneEngineClient) -> None:
    """Issue 7: the subset ids used to be promises; with a taken name the job aborted and they pointed at
    nothing. Now the subsets exist when the call returns, and the job only fills them."""
    parent = admin.create_set("parent", "images")
    _add_images(admin, parent, 6)
    server.runtime.queue.stop_workers()
    subset_ids = admin.split_set(parent, [0.5, 0.5], ["half_a", "half_b"])
    for sid, name in zip(subset_ids, ["half_a", "half_b"], strict=True):
        status = admin.get_set_status(sid)
        assert (status["name"], status["count"], status["status"]) == (name, 0, "being populated")
    server.runtime.queue.start_workers(2)
    job_id = admin.get_set_status(subset_ids[0])["job_id"]
    admin.get_job(job_id).wait(timeout=60)
    assert _split_counts(admin, subset_ids) == [3, 3]
    assert [admin.get_set_status(s)["status"] for s in subset_ids] == ["ready", "ready"]


def test_split_with_a_taken_name_creates_nothing(server: InProcessServer, admin: SceneEngineClient) -> None:
    parent = admin.create_set("parent", "images")
    _add_images(admin, parent, 4)
    admin.create_set("taken", "images")
    jobs_before = len(server.runtime.jobs.repo.list_jobs(Scope.of("default")))
    with pytest.raises(SetsError, match="a set named 'taken' already exists") as err:
        admin.split_set(parent, 2, ["fresh", "taken"])
    assert err.value.status_code == 409
    assert admin.create_set("fresh", "images", raise_if_set_exists=True)  # its name was not kept
    assert len(server.runtime.jobs.repo.list_jobs(Scope.of("default"))) == jobs_before


def test_two_splits_with_default_names_at_once(server: InProcessServer, admin: SceneEngineClient) -> None:
    """Issue 8.21: both used to pass the name check, and one job aborted later. Now one call gets a 409."""
    parent = admin.create_set("parent", "images")
    _add_images(admin, parent, 4)
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def split() -> None:
        client = server.client()
        barrier.wait()
        try:
            outcomes.append(client.split_set(parent, 2, None))
        except SetsError as e:
            outcomes.append(e)

    threads = [threading.Thread(target=split) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [o for o in outcomes if isinstance(o, SetsError)]
    made = [o for o in outcomes if isinstance(o, list)]
    assert len(errors) == 1 and len(made) == 1, outcomes
    assert errors[0].status_code == 409 and "parent_split_" in errors[0].message
    for job in server.runtime.jobs.repo.list_jobs(Scope.of("default")):
        admin.get_job(job["id"]).wait(timeout=60)  # none aborts
    assert _split_counts(admin, made[0]) == [2, 2]


def test_split_is_bounded_by_the_set_size(server: InProcessServer, admin: SceneEngineClient) -> None:
    """Issue 8.8: sections=10,000,000 used to do a name lookup per section for minutes. Now the request is refused
    before any per-subset work: at most one subset per member, and at most 1000."""
    parent = admin.create_set("parent", "images")
    _add_images(admin, parent, 3)
    http = server.http()
    tok = {"token": admin.auth_token}
    for body, status, text in (
        ({"sections": 10_000_000}, 400, "at most 1000 subsets per split, not 10000000"),
        ({"sections": 4}, 400, "has 3 asset(s): it cannot be split into 4 subsets"),
        ({"percentages": [0.25] * 4}, 400, "cannot be split into 4 subsets"),
        ({"percentages": [1e-7] * 2000}, 422, "percentages"),
        ({"sections": 2, "subset_names": ["x"] * 2000}, 422, "subset_names"),
        ({"sections": 2, "subset_names": ["ok", "n" * 300]}, 400, "longer than 255 characters"),
    ):
        r = http.post("/v1/sets/split_sets/", params=tok, json={"set_id": parent, **body})
        assert r.status_code == status, (body, r.text)
        assert text in json.dumps(r.json()["error"]), r.text
    assert server.runtime.jobs.repo.list_jobs(Scope.of("default"), status="queued") == []
    empty = admin.create_set("empty", "images")
    assert len(admin.split_set(empty, 1, ["still_empty"], wait_for_completion=True)) == 1


def test_add_delete_add_cannot_resurrect_the_set(server: InProcessServer, admin: SceneEngineClient) -> None:
    """Issue 8.11: add, delete and add at once brought the set back as a broken document that every route
    answered with 500 and nothing could remove. Now the deletion marks the set first: the second add is refused,
    the first add (queued before) aborts with a clear note, and the set is gone for good."""
    pool = admin.create_set("pool", "images")
    ids = list(_add_images(admin, pool, 5))
    set_id = admin.create_set("doomed", "images")
    server.runtime.queue.stop_workers()
    first_add = admin.add_assets_to_set(set_id, ids=ids)
    deletion = admin.delete_set(set_id)
    assert admin.delete_set(set_id) == deletion  # a deletion under way answers its own job
    with pytest.raises(SetsError, match="being deleted") as err:
        admin.add_assets_to_set(set_id, ids=ids, wait_for_availability=False)
    assert err.value.status_code == 409
    with pytest.raises(SetsError, match="being deleted"):
        admin.zip_set(set_id)
    with pytest.raises(SetsError, match="being deleted"):
        admin.add_images([Image(image_bytes=_jpeg(50), id="late")], set_id)
    assert admin.get_set_status(set_id)["status"] == "being deleted"
    server.runtime.queue.start_workers(2)

    admin.get_job(deletion).wait(timeout=60)
    with pytest.raises(SceneBaseError) as aborted:
        admin.get_job(first_add).wait(timeout=60)
    # the first add ran after the deletion marked the set, or after the set was gone: either way a clear note
    message = aborted.value.message
    assert "being deleted" in message or "does not exist" in message or f"no set with id '{set_id}'" in message
    http = server.http()
    tok = {"token": admin.auth_token}
    for method, path in (("GET", f"/v1/sets/{set_id}/status/"), ("GET", f"/v1/sets/{set_id}/lock"),
                         ("PUT", f"/v1/sets/{set_id}/lock"), ("DELETE", f"/v1/sets/delete_set/{set_id}"),
                         ("POST", f"/v1/sets/{set_id}/list_assets/")):  # fmt: skip
        assert http.request(method, path, params=tok).status_code == 404, path
    assert server.runtime.assets.repo.get(Scope.of("default"), "sets", set_id) is None
    for image_id in ids:
        assert admin.get_metadata(image_id, "images")["sets"] == [pool]
    assert admin.create_set("doomed", "images", raise_if_set_exists=True) != set_id


def test_a_status_write_never_creates_a_set(server: InProcessServer, admin: SceneEngineClient) -> None:
    set_id = admin.create_set("short-lived", "images")
    admin.delete_set(set_id, wait_for_completion=True)
    with pytest.raises(NotFound, match="does not exist"):  # the service path every job uses to show its status
        server.runtime.sets._update(Scope.of("default", username="admin"), set_id, status="being populated")
    assert server.runtime.assets.repo.get(Scope.of("default"), "sets", set_id) is None


@pytest.fixture
def web_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain HTTP server on 127.0.0.1 serving a tmp folder: (folder, base URL)."""
    folder = tmp_path / "web"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_zip_of_unreachable_references_is_partial_and_agrees_with_its_manifest(
    admin: SceneEngineClient, web_folder: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 7: a zip of a set whose URLs are unreachable used to lack files while its manifest counted them, and
    the client said nothing. Now the manifest names them, the job ends partial, and the client warns or raises."""
    folder, base = web_folder
    set_id = admin.create_set("export", "images")
    for i in range(3):
        (folder / f"r{i}.jpg").write_bytes(_jpeg(i))
    assert admin.add_images([Image(image_url=f"{base}/r{i}.jpg", id=f"r{i}") for i in range(3)], set_id) == [
        "r0", "r1", "r2"
    ]  # fmt: skip
    (folder / "r1.jpg").unlink()  # gone from the web server since ingestion

    with caplog.at_level(logging.WARNING, logger="scenebase.client"):
        data = admin.zip_set_and_download(set_id)
    assert isinstance(data, io.BytesIO)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("(zipping) finished, but 1 item(s) failed: r1 (file not included: " in w for w in warnings)
    assert [e["id"] for e in admin.last_errors] == ["r1"]
    with zipfile.ZipFile(data) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        files = {n for n in zf.namelist() if n.startswith("export/assets/")}
    assert files == {"export/assets/r0.jpg", "export/assets/r2.jpg"}
    assert {e["file"] for e in manifest["assets"] if "file" in e} == files  # the manifest and the zip agree
    assert manifest["count"] == 3 and manifest["files"] == 2
    assert [m["id"] for m in manifest["missing_files"]] == ["r1"]

    job_id, zip_id = admin.zip_set(set_id)
    job = admin.get_job(job_id).wait(timeout=60, show_progress=False)
    assert job.status == "finished" and job.partial and job.failed == ["r1"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="scenebase.client"):
        admin.download_zipfile(zip_id)
    assert any(f"zip {zip_id} lacks the files of 1 of its 3 assets: r1 (" in r.getMessage() for r in caplog.records)
    assert [e["id"] for e in admin.last_errors] == ["r1"]

    admin.raise_on_partial_jobs = True
    with pytest.raises(SceneBaseError, match="lacks the files of 1 of its 3 assets"):
        admin.download_zipfile(zip_id)
    with pytest.raises(SceneBaseError, match=r"finished, but 1 item\(s\) failed"):
        admin.zip_set_and_download(set_id)


def test_a_broken_set_left_by_an_older_version_can_be_read_and_deleted(
    server: InProcessServer, admin: SceneEngineClient
) -> None:
    """Before the fix, a status write after a deletion left ``{id, status, job_id}`` behind: every route answered
    500 and nothing could remove it. Such documents now read (404-free) and delete like any set."""
    broken = {"id": "broken_set", "timestamp": "2024-01-01T00:00:00+00:00", "status": "being populated",
              "job_id": "gone"}  # fmt: skip
    server.runtime.assets.repo.upsert(Scope.of("default", username="admin"), "sets", [broken])
    status = admin.get_set_status("broken_set")
    assert (status["count"], status["name"], status["status"]) == (0, "", "being populated")
    admin.delete_set("broken_set", wait_for_completion=True)
    with pytest.raises(SetsError) as err:
        admin.get_set_status("broken_set")
    assert err.value.status_code == 404
