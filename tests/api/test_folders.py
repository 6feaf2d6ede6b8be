"""Ingesting real dataset folders (issue 7): recursive ``add_images_from_folder`` with ids from relative paths and
folder-level sensor/aux/timestamp, relative paths kept and used as zip names, and duplicate content reported (not
refused) by its sha256, within a batch and against the organization's assets, for uploads and references.

Every folder is generated in tmp_path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from scenebase.clients import SceneEngineClient
from scenebase.errors import AssetError, InvalidArgumentsError
from scenebase.models.assets import Image
from scenebase.testing import InProcessServer

from .conftest import World


def encode(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (48, 32)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def metas(client: SceneEngineClient, set_id: str) -> dict[str, dict[str, Any]]:
    """The set's images by relative path."""
    docs = client.search_meta("images", {"filters": [{"field": "sets", "values": [set_id]}]}, scan=True)
    return {d["object_access"]["relative_path"]: d for d in docs}


def zip_of(client: SceneEngineClient, set_id: str) -> zipfile.ZipFile:
    data = client.zip_set_and_download(set_id)
    assert isinstance(data, io.BytesIO)
    return zipfile.ZipFile(data)


@pytest.fixture
def image_set(admin: SceneEngineClient) -> str:
    return admin.create_set("folders", "images")


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A camera dataset: two cameras with the same frame names, a nested folder, a hidden folder and a text file."""
    root = tmp_path / "drive"
    files = {
        "top.tiff": encode(1, "TIFF"),
        "cam0/0001.jpg": encode(2),
        "cam0/0002.jpg": encode(3),
        "cam1/0001.jpg": encode(4),
        "cam1/night/0001.png": encode(5, "PNG"),
    }
    write(root, files)
    write(root, {".cache/thumb.jpg": encode(6), "cam0/notes.txt": b"not an image"})
    return root, files


# --------------------------------------------------------------------------------------------------- the folder walk


def test_recursive_folder_keeps_relative_paths_and_applies_folder_metadata(
    admin: SceneEngineClient, image_set: str, dataset: tuple[Path, dict[str, bytes]]
) -> None:
    root, files = dataset
    when = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    admin.add_images_from_folder(str(root), image_set, recursive=True, sensor="front", aux_metadata={"drive": "d1"},
                                 timestamp=when)  # fmt: skip
    assert admin.last_errors == [] and admin.last_duplicates == []
    found = metas(admin, image_set)
    assert sorted(found) == sorted(files)  # neither the hidden folder nor the text file
    for rel, data in files.items():
        meta = found[rel]
        assert meta["object_access"]["filename"] == Path(rel).name
        assert (meta["sensor"], meta["aux"]) == ("front", {"drive": "d1"})
        assert dt.datetime.fromisoformat(meta["timestamp"]) == when
        assert meta["content_hash"] == sha(data)
        assert admin.get_image_bytes(meta["id"]) == data
    # relative paths are metadata, the ids are generated
    assert all(len(m["id"]) == 36 for m in found.values())


def test_default_stays_flat(admin: SceneEngineClient, image_set: str, dataset: tuple[Path, dict[str, bytes]]) -> None:
    root, _files = dataset
    admin.add_images_from_folder(str(root), image_set)
    assert sorted(metas(admin, image_set)) == ["top.tiff"]
    empty = root.parent / "empty_tree"
    (empty / "a" / "b").mkdir(parents=True)
    (empty / ".hidden").mkdir()
    (empty / ".hidden" / "x.jpg").write_bytes(encode(9))
    with pytest.raises(InvalidArgumentsError, match="or its subfolders holds no JPEG, PNG or TIFF"):
        admin.add_images_from_folder(str(empty), image_set, recursive=True)


def test_ids_from_relative_paths_with_map_overrides_and_time_function(
    admin: SceneEngineClient, image_set: str, dataset: tuple[Path, dict[str, bytes]]
) -> None:
    root, files = dataset
    id_map = {"cam1/0001.jpg": "Left Camera First", "top.tiff": "overview"}  # a relative path and a bare name

    def frame_time(rel: str) -> dt.datetime | None:
        stem = Path(rel).stem
        return dt.datetime(2026, 5, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=int(stem)) if stem.isdigit() else None

    admin.add_images_from_folder(str(root), image_set, filename_image_id_map=id_map, recursive=True,
                                 id_from_relative_path=True, timestamp=frame_time)  # fmt: skip
    found = metas(admin, image_set)
    assert {rel: m["id"] for rel, m in found.items()} == {
        "top.tiff": "overview",
        "cam0/0001.jpg": "cam0_0001.jpg",
        "cam0/0002.jpg": "cam0_0002.jpg",
        "cam1/0001.jpg": "left_camera_first",
        "cam1/night/0001.png": "cam1_night_0001.png",
    }
    assert dt.datetime.fromisoformat(found["cam0/0002.jpg"]["timestamp"]) == dt.datetime(
        2026, 5, 1, 0, 0, 2, tzinfo=dt.UTC
    )

    def broken(rel: str) -> str:
        raise ValueError("no time in this name")

    with pytest.raises(InvalidArgumentsError, match=r"timestamp\('cam0/0001.jpg'\) failed: no time in this name"):
        admin.add_images_from_folder(str(root), image_set, recursive=True, timestamp=broken)
    assert admin.get_image_bytes("cam1/night/0001.png") == files["cam1/night/0001.png"]  # the raw path finds it


def test_files_that_would_share_an_id_are_refused_before_any_upload(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, tmp_path: Path
) -> None:
    root = tmp_path / "clash"
    write(root, {"a/b.jpg": encode(1), "a_b.jpg": encode(2), "c.jpg": encode(3)})
    with pytest.raises(InvalidArgumentsError, match=r"'a/b.jpg' and 'a_b.jpg' would both get the id 'a_b.jpg'"):
        admin.add_images_from_folder(str(root), image_set, recursive=True, id_from_relative_path=True)
    with pytest.raises(InvalidArgumentsError, match="would both get the id 'same'"):
        admin.add_images_from_folder(str(root), image_set, filename_image_id_map={"a_b.jpg": "same", "c.jpg": "SAME"})
    assert list(server.runtime.blobs.list("")) == []


def test_refused_files_in_subfolders_are_named_by_their_paths(
    admin: SceneEngineClient, image_set: str, tmp_path: Path
) -> None:
    good = encode(1)
    root = tmp_path / "mixed"
    write(root, {"cam0/0001.jpg": good, "cam0/0002.jpg": good[: len(good) // 2], "cam1/0002.jpg": b"\xff\xd8\xffjunk"})
    admin.add_images_from_folder(str(root), image_set, recursive=True)
    assert sorted(metas(admin, image_set)) == ["cam0/0001.jpg"]
    assert [(e["name"], e["code"]) for e in admin.last_errors] == [
        ("cam0/0002.jpg", "unsupported_media"),
        ("cam1/0002.jpg", "unsupported_media"),
    ]


# --------------------------------------------------------------------------------------------------------------- zips


def test_zip_names_folder_files_by_relative_path_and_others_by_id(
    admin: SceneEngineClient, image_set: str, dataset: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, files = dataset
    admin.add_images_from_folder(str(root), image_set, recursive=True)
    # a second folder ingestion with a path the zip already has, in another case
    write(tmp_path / "again", {"CAM0/0001.JPG": encode(20)})
    admin.add_images_from_folder(str(tmp_path / "again"), image_set, recursive=True)
    assert admin.last_duplicates == []
    second = metas(admin, image_set)["CAM0/0001.JPG"]["id"]
    # uploads named by id: no doubled extension, whatever spelling of it the id has
    admin.add_image(image_bytes=encode(21), id="x.jpg", set_id=image_set)
    admin.add_image(image_bytes=encode(22), id="y.JPEG", set_id=image_set)
    admin.add_image(image_bytes=encode(23, "PNG"), id="z.jpg", set_id=image_set)  # a PNG behind a .jpg id

    with zip_of(admin, image_set) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        by_id = {e["id"]: e["file"] for e in manifest["assets"]}
        assert "relative path" in manifest["naming"]
        for rel, data in files.items():
            assert zf.read(f"folders/assets/{rel}") == data
        assert by_id[second] == f"folders/assets/{second}.jpg"  # CAM0/0001.JPG clashes with cam0/0001.jpg
        assert zf.read(by_id[second]) == encode(20)
        assert (by_id["x.jpg"], by_id["y.jpeg"], by_id["z.jpg"]) == (
            "folders/assets/x.jpg",
            "folders/assets/y.jpeg",
            "folders/assets/z.jpg.png",
        )
        assets = [n for n in zf.namelist() if "/assets/" in n]
        assert len(assets) == len(set(assets)) == len(files) + 4


def test_member_names_stay_unique() -> None:
    from scenebase.services.zips import MemberNames

    names = MemberNames()
    assert names.name("a/b.jpg", "id1.jpg") == "a/b.jpg"
    assert names.name("A/B.JPG", "id2.jpg") == "id2.jpg"  # same name on a case-insensitive disk
    assert names.name("a", "id3.jpg") == "id3.jpg"  # 'a' is a folder in the zip
    assert names.name("a/b.jpg/c.jpg", "id4.jpg") == "id4.jpg"  # 'a/b.jpg' is a file in the zip
    assert names.name(None, "id2.jpg") == "id2~2.jpg"
    assert names.name("id2~2.jpg", "id2.jpg") == "id2~3.jpg"
    assert names.name(None, "noext") == "noext"
    assert names.name(None, "noext") == "noext~2"


# --------------------------------------------------------------------------------------------------------- duplicates


def test_duplicates_in_a_folder_and_against_the_organization_are_reported_and_ingested(
    admin: SceneEngineClient, image_set: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frame, other = encode(1), encode(2)
    root = tmp_path / "dups"
    write(root, {"a.jpg": frame, "b.jpg": other, "c.jpg": frame, "d/e.jpg": frame})
    with caplog.at_level(logging.WARNING, logger="scenebase.client"):
        admin.add_images_from_folder(str(root), image_set, recursive=True, id_from_relative_path=True)
    assert sorted(metas(admin, image_set)) == ["a.jpg", "b.jpg", "c.jpg", "d/e.jpg"]  # all ingested
    assert admin.last_errors == []
    dups = {d["name"]: d for d in admin.last_duplicates}
    assert sorted(dups) == ["c.jpg", "d/e.jpg"]  # named by their paths in the folder
    assert dups["c.jpg"]["duplicate_of"] == ["a.jpg"]
    assert dups["d/e.jpg"]["duplicate_of"] == ["a.jpg", "c.jpg"]
    assert dups["d/e.jpg"]["id"] == "d_e.jpg" and dups["d/e.jpg"]["content_hash"] == sha(frame)
    assert dups["d/e.jpg"]["code"] == "duplicate_content" and dups["d/e.jpg"]["index"] == 3
    assert "same content as a.jpg, c.jpg" in caplog.text

    # the same bytes again under a new id, by add_image: a duplicate of all three
    admin.add_image(image_bytes=frame, id="again")
    assert admin.last_duplicates[0]["duplicate_of"] == ["a.jpg", "c.jpg", "d_e.jpg"]
    # re-uploading an asset under its own id is not a duplicate of itself
    admin.add_image(image_bytes=other, id="b.jpg")
    assert admin.last_duplicates == []
    admin.add_images([Image(id="new", image_bytes=encode(3))], image_set)
    assert admin.last_duplicates == []

    # every copy is found by its hash
    copies = admin.search_assets("images", {"filters": [{"field": "content_hash", "values": [sha(frame)]}]}, scan=True)
    assert sorted(copies) == ["a.jpg", "again", "c.jpg", "d_e.jpg"]


def test_duplicate_of_a_referenced_file(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    root.mkdir()
    data = encode(7)
    (root / "frame.jpg").write_bytes(data)
    with InProcessServer(tmp_path / "rooted", allowed_file_roots=f"default={root}") as srv:
        client = srv.client()
        client.add_image(image_uri=(root / "frame.jpg").as_uri(), id="ref")
        assert client.get_metadata("ref", "images")["content_hash"] == sha(data)
        client.add_image(image_bytes=data, id="upload")
        assert [(d["id"], d["duplicate_of"]) for d in client.last_duplicates] == [("upload", ["ref"])]


def test_duplicates_are_per_organization(admin: SceneEngineClient, world: World) -> None:
    data = encode(8)
    a = world.client(world.a.tokens["data_provider"])
    b = world.client(world.b.tokens["data_provider"])
    a.add_image(image_bytes=data, id="mine")
    b.add_image(image_bytes=data, id="theirs")
    assert b.last_duplicates == []
    admin.add_ownership(world.a.id, world.b.id)  # b may now read a's images: still not b's own
    copies = b.search_assets("images", {"filters": [{"field": "content_hash", "values": [sha(data)]}]})
    assert sorted(copies) == ["mine", "theirs"]
    b.add_image(image_bytes=data, id="theirs too")
    assert [d["duplicate_of"] for d in b.last_duplicates] == [["theirs"]]
    a.add_image(image_bytes=data, id="mine again")
    assert [d["duplicate_of"] for d in a.last_duplicates] == [["mine"]]


def test_more_than_ten_copies_are_counted(admin: SceneEngineClient) -> None:
    data = encode(9)
    admin.add_images([Image(id=f"copy{i:02d}", image_bytes=data) for i in range(12)], [])
    last = admin.last_duplicates[-1]
    assert (last["id"], last["duplicates"], len(last["duplicate_of"])) == ("copy11", 11, 10)
    assert last["warning"].endswith("and 1 more")


def test_a_failed_duplicate_check_costs_the_warnings_not_the_batch(
    server: InProcessServer, admin: SceneEngineClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("catalog hiccup")

    admin.add_image(image_bytes=encode(1), id="first")
    monkeypatch.setattr(server.runtime.assets.repo, "count_strings", broken)
    assert admin.add_images([Image(id="second", image_bytes=encode(1))], []) == ["second"]
    assert admin.last_errors == [] and admin.last_duplicates == []
    assert admin.get_metadata("second", "images")["content_hash"] == sha(encode(1))


@pytest.mark.s3
def test_blobs_in_s3_are_hashed_while_written(seaweedfs_server: Any, tmp_path: Path) -> None:
    """The hash comes from the stream the S3 upload reads (no second read), and zips name files as on disk."""
    bucket = f"folders-{uuid.uuid4().hex[:12]}"
    s3 = seaweedfs_server.client()
    s3.create_bucket(Bucket=bucket)
    files = {"cam0/0001.jpg": encode(1), "cam1/0001.jpg": encode(2), "cam1/0002.jpg": encode(1)}
    write(tmp_path / "drive", files)
    try:
        with InProcessServer(tmp_path / "srv", blob_url=seaweedfs_server.blob_url(bucket)) as srv:
            client = srv.client()
            set_id = client.create_set("s3drive", "images")
            client.add_images_from_folder(str(tmp_path / "drive"), set_id, recursive=True)
            found = metas(client, set_id)
            assert {rel: m["content_hash"] for rel, m in found.items()} == {r: sha(d) for r, d in files.items()}
            assert [d["name"] for d in client.last_duplicates] == ["cam1/0002.jpg"]
            with zip_of(client, set_id) as zf:
                assert {rel: zf.read(f"s3drive/assets/{rel}") for rel in files} == files
    finally:
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
        s3.close()


# --------------------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def raw_post(server: InProcessServer, admin: SceneEngineClient) -> Iterator[Any]:
    http = server.http()

    def post(items: list[dict[str, Any]], files: dict[str, bytes]) -> Any:
        parts: list[Any] = [("manifest", (None, json.dumps({"items": items, "set_ids": []}), "application/json"))]
        parts += [(key, (key, data, "application/octet-stream")) for key, data in files.items()]
        return http.post("/v1/images/add/", params={"token": admin.auth_token}, files=parts)

    yield post


@pytest.mark.parametrize("bad", ["/etc/x.jpg", "../x.jpg", "a/../x.jpg", "a//x.jpg", "./x.jpg", "a\\x.jpg", "x\n.jpg",
                                 "", 7])  # fmt: skip
def test_bad_relative_paths_are_refused_per_item(raw_post: Any, bad: Any) -> None:
    items = [{"file": "f0", "name": "good.jpg", "relative_path": "ok/good.jpg", "metadata": {"id": "good"}},
             {"file": "f1", "name": "bad.jpg", "relative_path": bad, "metadata": {"id": "bad"}}]  # fmt: skip
    resp = raw_post(items, {"f0": encode(1), "f1": encode(2)})
    assert resp.status_code == 207, resp.text
    body = resp.json()
    assert body["ids"] == ["good", None]
    [err] = body["errors"]
    assert (err["index"], err["name"], err["code"]) == (1, "bad.jpg", "invalid_argument")
    assert "relative_path" in err["error"]


def test_content_hash_cannot_be_sent(admin: SceneEngineClient, raw_post: Any) -> None:
    resp = raw_post([{"file": "f0", "name": "a.jpg", "metadata": {"content_hash": "sha256:00"}}], {"f0": encode(1)})
    assert resp.status_code == 400
    assert "computed by the server" in resp.json()["error"]["message"]
    resp = raw_post([{"file": "f0", "name": "a.jpg", "metadata": {"id": "a"}},
                     {"file": "f1", "name": "b.jpg", "metadata": {"id": "b"}}],
                    {"f0": encode(1), "f1": encode(1)})  # fmt: skip
    assert resp.status_code == 200
    assert [(w["index"], w["duplicate_of"]) for w in resp.json()["warnings"]] == [(1, ["a"])]
    with pytest.raises(AssetError):
        admin.add_image(image_bytes=b"", id="empty")
    assert admin.last_duplicates == []
