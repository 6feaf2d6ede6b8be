"""Images through the client against an in-process server: ingestion (paths, bytes, URLs, URIs), probing, ids,
overwrite semantics, bad input, thumbnails, compression, image properties and roles (issue 3).

Real images come from ../shared/data (read in place, or copied into tmp_path when a test needs them mixed with
generated files); corrupt files are generated here.
"""

from __future__ import annotations

import functools
import http.server
import io
import logging
import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import numpy as np
import pytest
from PIL import Image as PILImage

from sample_data import SHARED_DATA, needs_shared_data
from scenebase.clients import SceneEngineClient
from scenebase.errors import (
    AssetError,
    InvalidArgumentsError,
    JobError,
    MetadataNotFoundError,
    SceneBaseError,
    SetsError,
)
from scenebase.media.images import PROPERTY_NAMES, image_properties
from scenebase.models.assets import Image
from scenebase.storage.asset_repo import PLAN_ATTEMPTS
from scenebase.testing import InProcessServer

from .conftest import World, before_each_unlocked_plan

DATA = SHARED_DATA  # tests reading it are marked @needs_shared_data: they skip on a clone without ../shared
PANOPTIC_DIR = DATA / "coco" / "panopticapi" / "panoptic_examples"  # two RGB PNGs, 640x427 and 640x360
KITTI_DIR = DATA / "pointcloud" / "datumaro_kitti_raw" / "IMAGE_00" / "data"  # three RGBA PNGs (two identical)
COCO_A = DATA / "coco" / "datumaro" / "coco_instances" / "images" / "train" / "a.jpg"  # JPEG 10x5
COCO_B = DATA / "coco" / "datumaro" / "coco_instances" / "images" / "val" / "b.jpg"  # JPEG 5x10
PREVIEW = DATA / "timeseries" / "comma2k19_segment" / "preview.png"  # PNG 1164x874
KITTI_3D = DATA / "pointcloud" / "datumaro_kitti_3d" / "image_2" / "000001.png"  # PNG 10x10


# ------------------------------------------------------------------------------------------------------------ helpers


def pillow_info(data: bytes) -> tuple[int, int, str]:
    with PILImage.open(io.BytesIO(data)) as im:
        return im.width, im.height, str(im.format)


def encode(width: int, height: int, fmt: str = "JPEG", seed: int = 0, level: int | None = None) -> bytes:
    """A noisy image (deterministic per seed); ``level`` shifts the mean brightness."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(height, width, 3), dtype=np.int64)
    if level is not None:
        base = np.clip(level + (base - 128) // 8, 0, 255)
    buf = io.BytesIO()
    PILImage.fromarray(base.astype(np.uint8), "RGB").save(buf, fmt)
    return buf.getvalue()


def gif_bytes() -> bytes:
    buf = io.BytesIO()
    PILImage.new("P", (16, 16), 3).save(buf, "GIF")
    return buf.getvalue()


def bmp_bytes() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (16, 16), (1, 2, 3)).save(buf, "BMP")
    return buf.getvalue()


def random_bytes(n: int = 4096) -> bytes:
    return b"\x00\x13" + random.Random(1234).randbytes(n)  # no known magic number at the start


def blob_keys(server: InProcessServer, prefix: str = "") -> list[str]:
    return sorted(server.runtime.blobs.list(prefix))


def blob_contents(server: InProcessServer, prefix: str = "") -> list[bytes]:
    return sorted(server.runtime.blobs.get(k) for k in blob_keys(server, prefix))


def all_image_ids(client: SceneEngineClient) -> list[str]:
    return sorted(client.search_assets("images", {}, scan=True))


def wait(client: SceneEngineClient, job_id: str) -> Any:
    return client.get_job(job_id).wait(timeout=60, show_progress=False)


def assert_nothing_stored(server: InProcessServer, client: SceneEngineClient) -> None:
    assert blob_keys(server) == []
    assert all_image_ids(client) == []


@pytest.fixture
def image_set(admin: SceneEngineClient) -> str:
    return admin.create_set("images under test", "images")


@pytest.fixture
def big_jpeg() -> bytes:
    return encode(1280, 960, seed=1)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain HTTP server on 127.0.0.1 serving a tmp folder: (folder, base URL)."""
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


@pytest.fixture
def file_root(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    return root


@pytest.fixture
def rooted_server(tmp_path: Path, file_root: Path) -> Iterator[InProcessServer]:
    """A server whose ``default`` organization may read ``file://`` URIs under ``file_root`` only."""
    with InProcessServer(tmp_path / "rooted", allowed_file_roots=f"default={file_root}") as srv:
        yield srv


# ---------------------------------------------------------------------------------------------------------- real data


@needs_shared_data
@pytest.mark.parametrize("folder", [PANOPTIC_DIR, KITTI_DIR], ids=["coco-panoptic-png", "kitti-rgba-png"])
def test_real_folder_ingested_with_id_map_and_probed_like_pillow(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, folder: Path
) -> None:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert len(files) >= 2
    id_map = {p.name: f"Real {folder.name}-{p.stem}" for p in files}
    assert admin.add_images_from_folder(str(folder), image_set, filename_image_id_map=id_map) is None
    assert admin.last_errors == []

    expected_ids = sorted(f"real_{folder.name}_{p.stem}".lower() for p in files)
    assert sorted(admin.assets_in_set(image_set)) == expected_ids
    for path in files:
        data = path.read_bytes()
        meta = admin.get_metadata(id_map[path.name], "images")  # the raw id is standardized on lookup
        assert meta["id"] == f"real_{folder.name}_{path.stem}".lower()
        assert (meta["width"], meta["height"], meta["format"]) == pillow_info(data)
        assert meta["media_type"] == "image"
        assert meta["sets"] == [image_set]
        assert meta["object_access"]["filename"] == path.name
        assert admin.get_image_bytes(meta["id"]) == data
    # one blob per image, byte for byte the originals (identical files are still separate images)
    assert blob_contents(server) == sorted(p.read_bytes() for p in files)


@needs_shared_data
def test_real_jpegs_and_pngs_via_add_images_paths(
    server: InProcessServer, admin: SceneEngineClient, image_set: str
) -> None:
    paths = [COCO_A, COCO_B, PREVIEW, KITTI_3D]
    images = [Image(id=f"real-{i}", image_path=str(p), sensor="cam") for i, p in enumerate(paths)]
    ids = admin.add_images(images, image_set)
    assert ids == [f"real_{i}" for i in range(len(paths))]
    assert admin.last_errors == []
    for image_id, path in zip(ids, paths, strict=True):
        meta = admin.get_metadata(image_id, "images")
        data = path.read_bytes()
        assert (meta["width"], meta["height"], meta["format"]) == pillow_info(data)
        assert meta["sensor"] == "cam"
    metas = {m["id"]: m for m in admin.search_meta("images", {"format": ["JPEG"]}, scan=True)}
    assert sorted(metas) == ["real_0", "real_1"]
    assert (metas["real_0"]["width"], metas["real_0"]["height"]) == (10, 5)
    assert (metas["real_1"]["width"], metas["real_1"]["height"]) == (5, 10)


def test_tiff_is_accepted_and_thumbnailed(admin: SceneEngineClient) -> None:
    tiff = encode(40, 30, "TIFF", seed=4)
    image_id = admin.add_image(image_bytes=tiff, id="scan")
    meta = admin.get_metadata(image_id, "images")
    assert (meta["width"], meta["height"], meta["format"]) == (40, 30, "TIFF")
    assert admin.get_image_bytes(image_id) == tiff
    assert pillow_info(admin.get_image_bytes(image_id, "small")) == (40, 30, "JPEG")  # never upscaled


# ---------------------------------------------------------------------------------------------------------- bad files


def bad_files() -> dict[str, bytes]:
    truncated = encode(1280, 960, seed=2)
    png = encode(200, 100, "PNG", seed=3)
    return {
        "truncated.jpg": truncated[: len(truncated) // 2],
        "cut.png": png[: len(png) * 2 // 3],
        "random.jpg": random_bytes(),
        "anim.jpg": gif_bytes(),  # a GIF behind a JPEG extension
        "empty.jpg": b"",
    }


#: what the reason of each refused file must say
BAD_REASONS = {
    "truncated.jpg": "truncated jpeg",
    "cut.png": "png",
    "random.jpg": "not an image",
    "anim.jpg": "gif",
    "empty.jpg": "empty",
}


@needs_shared_data
def test_mixed_folder_good_files_ingested_bad_files_reported_by_name(
    server: InProcessServer,
    admin: SceneEngineClient,
    image_set: str,
    tmp_path: Path,
    big_jpeg: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = {
        "coco_a.jpg": COCO_A.read_bytes(),
        "coco_b.JPG": COCO_B.read_bytes(),
        "panoptic.png": (PANOPTIC_DIR / "000000142238.png").read_bytes(),
        "camera.jpeg": big_jpeg,
    }
    for name, data in {**good, **bad_files()}.items():
        (folder / name).write_bytes(data)
    # not JPEG/PNG/TIFF by content or extension: skipped by the client, neither ingested nor reported
    (folder / "real.gif").write_bytes(gif_bytes())
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.jpg").write_bytes(big_jpeg)

    id_map = {name: f"Good {Path(name).stem}" for name in good}
    id_map.update({name: f"bad {Path(name).stem}" for name in BAD_REASONS})
    with caplog.at_level(logging.WARNING, logger="scenebase.client"):
        admin.add_images_from_folder(str(folder), image_set, filename_image_id_map=id_map)

    good_ids = sorted(f"good_{Path(n).stem}".lower() for n in good)
    assert sorted(admin.assets_in_set(image_set)) == good_ids
    assert all_image_ids(admin) == good_ids  # no catalog row for a refused file
    for name, data in good.items():
        meta = admin.get_metadata(id_map[name], "images")
        assert (meta["width"], meta["height"], meta["format"]) == pillow_info(data)

    errors = {e["name"]: e for e in admin.last_errors}
    assert sorted(errors) == sorted(BAD_REASONS)
    for name, needle in BAD_REASONS.items():
        err = errors[name]
        assert needle in err["error"].lower(), err
        assert err["code"] == "unsupported_media" and err["status"] == 415, err
        assert name in caplog.text  # logged with its name
    # the blob store holds exactly the good files, nothing of the refused ones
    assert blob_contents(server) == sorted(good.values())


def test_folder_of_only_bad_files_ingests_nothing_and_reports_all(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, data in bad_files().items():
        (folder / name).write_bytes(data)
    admin.add_images_from_folder(str(folder), image_set)
    assert sorted(e["name"] for e in admin.last_errors) == sorted(BAD_REASONS)
    assert admin.assets_in_set(image_set) == []
    assert_nothing_stored(server, admin)


def test_folders_without_images_are_refused(admin: SceneEngineClient, image_set: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgumentsError, match="no JPEG, PNG or TIFF") as info:
        admin.add_images_from_folder(str(empty), image_set)
    assert isinstance(info.value, ValueError)

    others = tmp_path / "others"
    others.mkdir()
    (others / "clip.gif").write_bytes(gif_bytes())
    (others / "readme.txt").write_text("hello")
    with pytest.raises(InvalidArgumentsError, match="no JPEG, PNG or TIFF"):
        admin.add_images_from_folder(str(others), image_set)

    with pytest.raises(InvalidArgumentsError, match="not a folder"):
        admin.add_images_from_folder(str(tmp_path / "missing"), image_set)
    with pytest.raises(InvalidArgumentsError, match="not a folder"):
        admin.add_images_from_folder(str(COCO_A), image_set)
    assert admin.assets_in_set(image_set) == []


@pytest.mark.parametrize("name", sorted(BAD_REASONS))
def test_add_image_of_a_corrupt_file_raises_415_and_writes_nothing(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(bad_files()[name])
    with pytest.raises(AssetError) as info:
        admin.add_image(image_path=str(path), id="broken", set_id=image_set)
    err = info.value
    assert err.status_code == 415 and err.code == "unsupported_media"
    assert name in err.message and BAD_REASONS[name] in err.message.lower()
    with pytest.raises(AssetError) as info:
        admin.add_image(image_bytes=bad_files()[name], id="broken bytes")
    assert info.value.status_code == 415
    assert_nothing_stored(server, admin)
    with pytest.raises(MetadataNotFoundError):
        admin.get_metadata("broken", "images")


@pytest.mark.parametrize(("data", "fmt"), [(gif_bytes(), "GIF"), (bmp_bytes(), "BMP")], ids=["gif", "bmp"])
def test_unsupported_formats_are_named(
    server: InProcessServer, admin: SceneEngineClient, data: bytes, fmt: str
) -> None:
    with pytest.raises(AssetError) as info:
        admin.add_image(image_bytes=data, id="other format")
    assert info.value.status_code == 415
    assert f"unsupported image format {fmt!r}" in info.value.message
    assert_nothing_stored(server, admin)


def test_add_images_batch_keeps_good_items_and_reports_bad_ones_by_index_and_name(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, tmp_path: Path
) -> None:
    good_path = tmp_path / "good.png"
    good_path.write_bytes(encode(30, 20, "PNG", seed=5))
    bad_path = tmp_path / "bad.jpg"
    bad_path.write_bytes(random_bytes())
    images = [
        Image(id="one", image_bytes=encode(20, 10, seed=6)),
        Image(id="two", image_path=str(bad_path)),
        Image(id="three", image_path=str(good_path)),
        Image(id="four", image_bytes=gif_bytes()),
    ]
    assert admin.add_images(images, image_set) == ["one", "three"]
    assert [(e["index"], e["name"]) for e in admin.last_errors] == [(1, "bad.jpg"), (3, "four")]
    assert all_image_ids(admin) == ["one", "three"]
    assert len(blob_keys(server)) == 2


def test_errors_of_a_second_upload_chunk_keep_their_input_index(
    server: InProcessServer, admin: SceneEngineClient, image_set: str
) -> None:
    tiny = encode(4, 4, seed=7)
    images = [Image(id=f"img {i:03d}", image_bytes=tiny) for i in range(130)]  # two chunks of 100 and 30
    images[17] = Image(id="bad early", image_bytes=random_bytes())
    images[121] = Image(id="bad late", image_bytes=b"")
    ids = admin.add_images(images, image_set)
    assert len(ids) == 128 and "img_017" not in ids and "img_121" not in ids
    assert sorted((e["index"], e["name"]) for e in admin.last_errors) == [(17, "bad early"), (121, "bad late")]
    assert len(admin.assets_in_set(image_set)) == 128
    assert len(blob_keys(server)) == 128


@needs_shared_data
def test_unreadable_local_file_is_reported_as_unreadable_not_as_empty(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, tmp_path: Path
) -> None:
    missing = tmp_path / "vanished.jpg"
    missing.write_bytes(COCO_A.read_bytes())
    gone = Image(id="gone", path=str(missing))  # the model checks the path exists (FACTS 2.13) ...
    missing.unlink()  # ... and the file vanishes before the upload reads it
    ids = admin.add_images([gone, Image(id="ok", image_path=str(COCO_A))], image_set)
    assert ids == ["ok"]
    [err] = admin.last_errors
    assert (err["index"], err["name"], err["code"]) == (0, "vanished.jpg", "unreadable_file")
    assert "cannot read file" in err["error"] and "No such file" in err["error"]
    with pytest.raises(InvalidArgumentsError, match=r"vanished\.jpg.* does not exist"):
        admin.add_image(image_path=str(missing), id="gone")
    assert all_image_ids(admin) == ["ok"]
    assert blob_contents(server) == [COCO_A.read_bytes()]


# ------------------------------------------------------------------------------------------------------------ sources


def test_zero_or_several_sources_are_invalid_arguments(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, big_jpeg: bytes
) -> None:
    with pytest.raises(InvalidArgumentsError, match="give one of") as info:
        admin.add_image(id="nothing")
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidArgumentsError, match="only one of") as info:
        admin.add_image(image_path=str(COCO_A), image_bytes=big_jpeg)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="only one of"):
        admin.add_image(image_url="http://127.0.0.1:9/a.jpg", image_uri="s3://bucket/a.jpg")
    with pytest.raises(InvalidArgumentsError):
        admin.add_images([Image(id="ok", image_bytes=big_jpeg), Image(id="none")], image_set)
    assert_nothing_stored(server, admin)  # the batch is refused before anything is uploaded


def test_unsupported_reference_scheme(server: InProcessServer, admin: SceneEngineClient) -> None:
    with pytest.raises(AssetError) as info:
        admin.add_image(image_uri="ftp://example.org/a.jpg")
    assert info.value.status_code == 400 and "ftp://example.org/a.jpg" in info.value.message
    assert_nothing_stored(server, admin)


def test_url_is_referenced_not_copied_and_read_when_needed(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, web_folder: tuple[Path, str], big_jpeg: bytes
) -> None:
    folder, base = web_folder
    (folder / "camera.jpg").write_bytes(big_jpeg)
    url = f"{base}/camera.jpg"
    image_id = admin.add_image(image_url=url, id="Remote Camera", set_id=image_set)
    assert image_id == "remote_camera"
    meta = admin.get_metadata(image_id, "images")
    assert meta["object_access"]["url"] == url
    assert "key" not in meta["object_access"]
    assert (meta["width"], meta["height"], meta["format"]) == (1280, 960, "JPEG")
    assert blob_keys(server) == []  # nothing copied
    assert admin.get_image_bytes(image_id) == big_jpeg

    # the server reads the URL each time it needs the bytes: a changed file is seen
    replacement = encode(1280, 960, seed=99)
    (folder / "camera.jpg").write_bytes(replacement)
    assert admin.get_image_bytes(image_id) == replacement
    assert pillow_info(admin.get_image_bytes(image_id, "small")) == (300, 225, "JPEG")
    assert blob_keys(server, "images/") == []  # only the cached thumbnail is stored
    assert len(blob_keys(server, "thumbnails/")) == 1

    # properties are computed from the referenced bytes too
    wait(admin, admin.image_properties_enrichment(ids=[image_id]))
    aux = admin.get_metadata(image_id, "images")["aux"]
    assert aux == pytest.approx(image_properties(replacement, PROPERTY_NAMES))


def test_missing_url_is_an_error_naming_it(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, web_folder: tuple[Path, str]
) -> None:
    folder, base = web_folder
    (folder / "ok.png").write_bytes(encode(32, 16, "PNG", seed=8))
    missing = f"{base}/missing.jpg"
    with pytest.raises(AssetError) as info:
        admin.add_image(image_url=missing, id="missing")
    assert info.value.status_code == 404 and missing in info.value.message
    assert_nothing_stored(server, admin)

    ids = admin.add_images([Image(id="ok", image_url=f"{base}/ok.png"), Image(id="gone", image_url=missing)], image_set)
    assert ids == ["ok"]
    assert [(e["name"], e["status"]) for e in admin.last_errors] == [(missing, 404)]
    assert admin.assets_in_set(image_set) == ["ok"]
    assert blob_keys(server) == []


def test_file_uri_under_an_allowed_root(rooted_server: InProcessServer, file_root: Path, big_jpeg: bytes) -> None:
    client = rooted_server.client()
    nested = file_root / "day 1"
    nested.mkdir()
    path = nested / "frame.jpg"
    path.write_bytes(big_jpeg)
    image_id = client.add_image(image_uri=path.as_uri(), id="frame")
    meta = client.get_metadata(image_id, "images")
    assert meta["object_access"]["uri"] == path.as_uri()
    assert meta["object_access"]["filename"] == "frame.jpg"
    assert (meta["width"], meta["height"]) == (1280, 960)
    assert blob_keys(rooted_server) == []
    assert client.get_image_bytes(image_id) == big_jpeg
    assert pillow_info(client.get_image_bytes(image_id, "tiny")) == (100, 75, "JPEG")

    with pytest.raises(AssetError) as info:
        client.add_image(image_uri=(file_root / "absent.jpg").as_uri())
    assert info.value.status_code == 404 and "absent.jpg" in info.value.message


def test_file_uri_outside_the_allowed_roots_is_forbidden(
    rooted_server: InProcessServer, file_root: Path, tmp_path: Path, big_jpeg: bytes
) -> None:
    client = rooted_server.client()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.jpg"
    secret.write_bytes(big_jpeg)
    (file_root / "link.jpg").symlink_to(secret)  # symlinks are resolved before the check
    sibling = tmp_path / (file_root.name + "-sibling")  # a prefix of the root's name is not the root
    sibling.mkdir()
    (sibling / "x.jpg").write_bytes(big_jpeg)
    for uri in (
        secret.as_uri(),
        f"{file_root.as_uri()}/../outside/secret.jpg",
        (file_root / "link.jpg").as_uri(),
        (sibling / "x.jpg").as_uri(),
    ):
        with pytest.raises(AssetError) as info:
            client.add_image(image_uri=uri)
        err = info.value
        # a refused reference is a 403 AssetError (the server read nothing), not a client-side argument error
        assert not isinstance(err, InvalidArgumentsError)
        assert err.status_code == 403 and err.code == "forbidden", uri
        assert "SCENEBASE_ALLOWED_FILE_ROOTS" in err.message
    assert_nothing_stored(rooted_server, client)


def test_file_uris_are_forbidden_without_configured_roots(
    server: InProcessServer, admin: SceneEngineClient, tmp_path: Path, big_jpeg: bytes
) -> None:
    path = tmp_path / "img.jpg"
    path.write_bytes(big_jpeg)
    with pytest.raises(AssetError) as info:
        admin.add_image(image_uri=path.as_uri())
    assert info.value.status_code == 403
    assert_nothing_stored(server, admin)


@needs_shared_data
@pytest.mark.s3
def test_s3_uri_is_referenced_and_read_from_the_store(
    seaweedfs_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", seaweedfs_server.region)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = seaweedfs_server.client()
    bucket = f"images-{uuid.uuid4().hex[:12]}"
    png = PREVIEW.read_bytes()
    try:
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="drive/preview.png", Body=png)
        with InProcessServer(
            tmp_path / "s3srv", s3_endpoint=seaweedfs_server.endpoint, allowed_s3_buckets=f"default={bucket}"
        ) as srv:
            client = srv.client()
            uri = f"s3://{bucket}/drive/preview.png"
            image_id = client.add_image(image_uri=uri, id="Preview")
            meta = client.get_metadata(image_id, "images")
            assert meta["object_access"]["uri"] == uri and "key" not in meta["object_access"]
            assert (meta["width"], meta["height"], meta["format"]) == pillow_info(png)
            assert blob_keys(srv) == []
            assert client.get_image_bytes(image_id) == png
            assert pillow_info(client.get_image_bytes(image_id, "small")) == (300, 225, "JPEG")

            with pytest.raises(AssetError) as info:
                client.add_image(image_uri=f"s3://{bucket}/drive/absent.png")
            assert info.value.status_code == 404 and "absent.png" in info.value.message
            assert all_image_ids(client) == ["preview"]
    finally:
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
        s3.close()


# --------------------------------------------------------------------------------------------------------------- sets


def test_unknown_set_is_a_sets_error_404(
    server: InProcessServer, admin: SceneEngineClient, tmp_path: Path, big_jpeg: bytes
) -> None:
    with pytest.raises(SetsError) as info:
        admin.add_image(image_bytes=big_jpeg, set_id="No Such Set")
    assert info.value.status_code == 404
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(big_jpeg)
    with pytest.raises(SetsError) as info:
        admin.add_images_from_folder(str(folder), "no-such-set")
    assert info.value.status_code == 404
    assert_nothing_stored(server, admin)


def test_set_of_another_asset_type_is_refused(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, big_jpeg: bytes
) -> None:
    videos = admin.create_set("v", "videos")
    with pytest.raises(SetsError, match="videos") as info:
        admin.add_image(image_bytes=big_jpeg, set_id=videos)
    assert 400 <= (info.value.status_code or 0) < 500
    with pytest.raises(SetsError):
        admin.add_images([Image(image_bytes=big_jpeg)], [image_set, videos])
    assert_nothing_stored(server, admin)


def test_locked_set_refuses_images_until_unlocked(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, big_jpeg: bytes
) -> None:
    admin.set_lock(image_set)
    with pytest.raises(SetsError, match="locked") as info:
        admin.add_image(image_bytes=big_jpeg, id="x", set_id=image_set)
    assert info.value.status_code == 423
    with pytest.raises(SetsError) as info:
        admin.add_images([Image(id="y", image_bytes=big_jpeg)], image_set)
    assert info.value.status_code == 423
    assert_nothing_stored(server, admin)
    admin.set_unlock(image_set)
    assert admin.add_image(image_bytes=big_jpeg, id="x", set_id=image_set) == "x"
    assert admin.assets_in_set(image_set) == ["x"]


# ------------------------------------------------------------------------------------------------------ ids, metadata


def test_ids_are_standardized_on_write_and_lookup(admin: SceneEngineClient, big_jpeg: bytes) -> None:
    assert admin.add_image(image_bytes=big_jpeg, id="My Image-1") == "my_image_1"
    by_raw = admin.get_metadata("My Image-1", "images")
    assert by_raw == admin.get_metadata("my_image_1", "images")
    assert by_raw["id"] == "my_image_1"
    assert admin.get_image_bytes("My Image-1") == big_jpeg
    assert pillow_info(admin.get_image_bytes("MY IMAGE-1", "tiny"))[:2] == (100, 75)
    # dots, "~", "@", "#", "!" survive; "/", "?", "+", ":" become "_"
    assert admin.add_image(image_bytes=big_jpeg, id="Cam.A~@#!") == "cam.a~@#!"
    assert admin.get_image_bytes("Cam.A~@#!") == big_jpeg
    assert admin.add_image(image_bytes=big_jpeg, id="run/1?x+y:z") == "run_1_x_y_z"
    assert admin.get_image_bytes("run/1?x+y:z") == big_jpeg


def test_generated_ids_and_stored_fields(admin: SceneEngineClient, image_set: str, big_jpeg: bytes) -> None:
    image_id = admin.add_image(
        image_bytes=big_jpeg, sensor="front", timestamp="2021-03-04T05:06:07+00:00", set_id=image_set,
        aux_metadata={"weather": "rain", "speed": 3.5},
    )  # fmt: skip
    assert len(image_id) == 36 and "-" not in image_id
    meta = admin.get_metadata(image_id, "images")
    assert meta["sensor"] == "front"
    assert meta["timestamp"].startswith("2021-03-04T05:06:07")
    assert meta["aux"] == {"weather": "rain", "speed": 3.5}
    assert meta["sets"] == [image_set]


def test_unknown_metadata_is_metadata_not_found(admin: SceneEngineClient) -> None:
    with pytest.raises(MetadataNotFoundError) as info:
        admin.get_metadata("no such image", "images")
    assert info.value.status_code == 404
    assert isinstance(info.value, AssetError)
    with pytest.raises(AssetError) as err:
        admin.get_image_bytes("no such image")
    assert err.value.status_code == 404


def test_overwrite_true_replaces_metadata_and_file_but_keeps_sets(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, big_jpeg: bytes
) -> None:
    other_set = admin.create_set("second", "images")
    admin.add_image(image_bytes=big_jpeg, id="cam", sensor="one", aux_metadata={"a": 1}, set_id=image_set)
    admin.get_image_bytes("cam", "small")
    assert len(blob_keys(server)) == 2  # original + cached thumbnail

    replacement = encode(640, 480, "PNG", seed=11)
    assert admin.add_image(image_bytes=replacement, id="cam", sensor="two", aux_metadata={"b": 2},
                           set_id=other_set, overwrite=True) == "cam"  # fmt: skip
    meta = admin.get_metadata("cam", "images")
    assert meta["sensor"] == "two"
    assert meta["aux"] == {"b": 2}
    assert (meta["width"], meta["height"], meta["format"]) == (640, 480, "PNG")
    assert sorted(meta["sets"]) == sorted([image_set, other_set])
    assert meta["thumbnails"] == {}
    assert sorted(admin.assets_in_set(image_set)) == ["cam"]
    # the old original and its thumbnail are gone: only the new file is stored
    assert blob_contents(server) == [replacement]
    assert admin.get_image_bytes("cam") == replacement
    assert pillow_info(admin.get_image_bytes("cam", "small")) == (300, 225, "JPEG")


def test_overwrite_false_only_merges_sets_aux_and_preprocesses(
    server: InProcessServer, admin: SceneEngineClient, image_set: str, big_jpeg: bytes
) -> None:
    other_set = admin.create_set("second", "images")
    admin.add_image(image_bytes=big_jpeg, id="Cam", sensor="one", aux_metadata={"a": 1}, set_id=image_set)
    before = admin.get_metadata("cam", "images")

    other = encode(64, 32, "PNG", seed=12)
    assert admin.add_image(image_bytes=other, id="CAM", sensor="two", aux_metadata={"b": 2}, set_id=other_set,
                           preprocesses=["normalize_thumbnail_colors"], overwrite=False) == "cam"  # fmt: skip
    meta = admin.get_metadata("cam", "images")
    assert meta["sensor"] == "one"  # primary fields kept
    assert (meta["width"], meta["height"], meta["format"]) == (1280, 960, "JPEG")
    assert meta["object_access"] == before["object_access"]
    assert meta["aux"] == {"a": 1, "b": 2}
    assert sorted(meta["sets"]) == sorted([image_set, other_set])
    assert meta["preprocesses"] == ["normalize_thumbnail_colors"]
    assert blob_contents(server) == [big_jpeg]  # the new bytes were not stored
    assert admin.get_image_bytes("cam") == big_jpeg
    assert admin.assets_in_set(other_set) == ["cam"]

    # a new id with overwrite=False is an ordinary ingestion
    assert admin.add_image(image_bytes=other, id="fresh", overwrite=False) == "fresh"
    assert admin.get_metadata("fresh", "images")["width"] == 64


def test_server_derived_fields_cannot_be_sent(server: InProcessServer, admin: SceneEngineClient) -> None:
    image = Image(id="forged", image_bytes=encode(8, 8, seed=13), extra={"width": 1})
    assert admin.add_images([image], []) == []
    assert admin.last_errors[0]["code"] == "invalid_argument" and "width" in admin.last_errors[0]["error"]
    assert_nothing_stored(server, admin)


# --------------------------------------------------------------------------------------------------------- thumbnails


def test_thumbnails_are_made_on_first_request_and_cached(
    server: InProcessServer, admin: SceneEngineClient, big_jpeg: bytes
) -> None:
    image_id = admin.add_image(image_bytes=big_jpeg, id="big")
    assert admin.get_metadata(image_id, "images")["thumbnails"] == {}
    assert len(blob_keys(server)) == 1

    small = admin.get_image_bytes(image_id, "small")
    width, height, fmt = pillow_info(small)
    assert width <= 300 and height <= 300 and fmt == "JPEG"
    assert (width, height) == (300, 225)  # aspect ratio kept
    cached = blob_keys(server, "thumbnails/")
    assert len(cached) == 1
    assert admin.get_metadata(image_id, "images")["thumbnails"]["small"]["key"] == cached[0]
    assert admin.get_image_bytes(image_id, "small") == small  # served from the cache, not made again
    assert blob_keys(server, "thumbnails/") == cached
    assert admin.get_metadata(image_id, "images")["thumbnails"]["small"]["key"] == cached[0]

    tiny = pillow_info(admin.get_image_bytes(image_id, "tiny"))
    assert tiny[0] <= 100 and tiny[1] <= 100 and tiny[2] == "JPEG"
    full = admin.get_image_bytes(image_id, "full_size_png")
    assert pillow_info(full) == (1280, 960, "PNG")
    with PILImage.open(io.BytesIO(full)) as png, PILImage.open(io.BytesIO(big_jpeg)) as original:
        assert np.array_equal(np.asarray(png.convert("RGB")), np.asarray(original.convert("RGB")))
    admin.get_image_bytes(image_id, "tiny")
    admin.get_image_bytes(image_id, "full_size_png")
    assert len(blob_keys(server, "thumbnails/")) == 3

    thumbs = admin.get_metadata(image_id, "images")["thumbnails"]
    assert sorted(thumbs) == ["full_size_png", "small", "tiny"]
    assert thumbs["small"]["resolution"] == {"width": 300, "height": 225}
    assert thumbs["full_size_png"]["resolution"] == {"width": 1280, "height": 960}

    with pytest.raises(AssetError) as info:
        admin.get_image_bytes(image_id, "huge")
    assert info.value.status_code == 404 and "huge" in info.value.message
    assert len(blob_keys(server, "thumbnails/")) == 3


def test_concurrent_first_requests_make_one_thumbnail(
    server: InProcessServer, admin: SceneEngineClient, big_jpeg: bytes
) -> None:
    image_id = admin.add_image(image_bytes=big_jpeg, id="popular")
    clients = [server.client() for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    results: list[bytes] = []
    failures: list[BaseException] = []

    def fetch(client: SceneEngineClient) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(client.get_image_bytes(image_id, "small"))
        except BaseException as e:  # reported below, on the test's thread
            failures.append(e)

    threads = [threading.Thread(target=fetch, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    assert len(results) == len(clients) and len(set(results)) == 1
    # one stored thumbnail, the one the metadata points at: no orphan blobs from racing requests
    [key] = blob_keys(server, "thumbnails/")
    assert admin.get_metadata(image_id, "images")["thumbnails"]["small"]["key"] == key
    assert server.runtime.blobs.get(key) == results[0]


def test_normalize_thumbnail_colors_preprocess_stretches_the_thumbnail(admin: SceneEngineClient) -> None:
    dull = encode(64, 48, "PNG", seed=40, level=120)  # values within about 104..136
    plain = admin.add_image(image_bytes=dull, id="plain")
    stretched = admin.add_image(image_bytes=dull, id="stretched", preprocesses=["normalize_thumbnail_colors"])
    assert admin.get_metadata(stretched, "images")["preprocesses"] == ["normalize_thumbnail_colors"]
    with PILImage.open(io.BytesIO(admin.get_image_bytes(plain, "full_size_png"))) as im:
        flat = np.asarray(im.convert("RGB"))
    with PILImage.open(io.BytesIO(admin.get_image_bytes(stretched, "full_size_png"))) as im:
        full = np.asarray(im.convert("RGB"))
    assert flat.min() > 90 and flat.max() < 150
    for channel in range(3):
        assert full[..., channel].min() == 0 and full[..., channel].max() == 255
    with pytest.raises(AssetError) as info:
        admin.add_image(image_bytes=dull, preprocesses=["sharpen"])
    assert "sharpen" in info.value.message


@needs_shared_data
def test_thumbnails_of_real_images_never_upscale(admin: SceneEngineClient, image_set: str) -> None:
    ids = admin.add_images([Image(id="a", image_path=str(COCO_A)), Image(id="p", image_path=str(PREVIEW)),
                            Image(id="k", image_path=str(KITTI_DIR / "0000000002.png"))], image_set)  # fmt: skip
    assert ids == ["a", "p", "k"]
    assert pillow_info(admin.get_image_bytes("a", "small")) == (10, 5, "JPEG")
    assert pillow_info(admin.get_image_bytes("p", "small")) == (300, 225, "JPEG")
    assert pillow_info(admin.get_image_bytes("k", "tiny"))[:2] == (100, 56)  # RGBA flattened into a JPEG
    assert pillow_info(admin.get_image_bytes("k", "full_size_png")) == (912, 514, "PNG")


@needs_shared_data
def test_compress_images_custom_shape_and_presets(
    server: InProcessServer, admin: SceneEngineClient, big_jpeg: bytes
) -> None:
    big = admin.add_image(image_bytes=big_jpeg, id="big")
    small = admin.add_image(image_path=str(COCO_B), id="small one")
    job = wait(admin, admin.compress_images([big, "Small One"], desired_shape=(60, 80), thumbnail_tag="custom"))
    assert job.result == {"thumbnailed": 2, "failed": []}
    thumb = admin.get_image_bytes(big, "custom")
    width, height, _ = pillow_info(thumb)
    assert width <= 80 and height <= 60
    assert (width, height) == (80, 60)
    assert pillow_info(admin.get_image_bytes(small, "custom"))[:2] == (5, 10)  # never upscaled
    meta = admin.get_metadata(big, "images")
    assert meta["thumbnails"]["custom"]["resolution"] == {"width": 80, "height": 60}
    assert len(blob_keys(server, "thumbnails/")) == 2
    assert admin.get_image_bytes(big, "custom") == thumb  # cached, not recomputed

    # a preset wins over shape and tag
    wait(admin, admin.compress_images([big], desired_shape=(10, 10), thumbnail_tag="ignored", use_preset="tiny"))
    thumbs = admin.get_metadata(big, "images")["thumbnails"]
    assert sorted(thumbs) == ["custom", "tiny"]
    assert thumbs["tiny"]["resolution"] == {"width": 100, "height": 75}

    # recomputing a tag replaces its blob instead of leaking the old one
    wait(admin, admin.compress_images([big], desired_shape=(30, 40), thumbnail_tag="custom"))
    assert pillow_info(admin.get_image_bytes(big, "custom"))[:2] == (40, 30)
    assert len(blob_keys(server, "thumbnails/")) == 3

    # unknown ids are reported by the job, not silently thumbnailed
    job = wait(admin, admin.compress_images(["ghost"], use_preset="small"))
    assert job.result == {"thumbnailed": 0, "failed": ["ghost"], "failures": [{"id": "ghost", "error": ANY}]}
    assert job.document["partial"] is True and job.status == "finished"


def test_compress_images_bad_arguments(admin: SceneEngineClient, big_jpeg: bytes) -> None:
    image_id = admin.add_image(image_bytes=big_jpeg, id="big")
    with pytest.raises(InvalidArgumentsError):
        admin.compress_images([])
    with pytest.raises(InvalidArgumentsError):
        admin.compress_images([image_id], desired_shape=(60, 80))
    with pytest.raises(AssetError) as info:
        admin.compress_images([image_id], use_preset="huge")
    assert info.value.status_code == 400 and "huge" in info.value.message
    with pytest.raises(AssetError) as info:
        admin.compress_images([image_id], desired_shape=(0, 80), thumbnail_tag="zero")
    assert info.value.status_code == 400


@needs_shared_data
def test_thumbnailize_at_ingest(server: InProcessServer, admin: SceneEngineClient, image_set: str) -> None:
    data = encode(800, 600, seed=14)
    image_id = admin.add_image(image_bytes=data, id="eager", thumbnailize_at_ingest=True)
    thumbs = admin.get_metadata(image_id, "images")["thumbnails"]
    assert sorted(thumbs) == ["full_size_png", "small", "tiny"]
    assert thumbs["small"]["resolution"] == {"width": 300, "height": 225}
    assert thumbs["tiny"]["resolution"] == {"width": 100, "height": 75}
    assert thumbs["full_size_png"]["resolution"] == {"width": 800, "height": 600}
    assert len(blob_keys(server, "thumbnails/")) == 3
    made = blob_keys(server, "thumbnails/")
    assert pillow_info(admin.get_image_bytes(image_id, "small")) == (300, 225, "JPEG")
    assert blob_keys(server, "thumbnails/") == made  # served from what ingest made

    # the bulk path makes only "small" (FACTS 10.1)
    ids = admin.add_images([Image(id="bulk", image_path=str(PREVIEW))], image_set, thumbnailize_at_ingest=True)
    assert ids == ["bulk"]
    assert sorted(admin.get_metadata("bulk", "images")["thumbnails"]) == ["small"]


# --------------------------------------------------------------------------------------------------------- properties


@needs_shared_data
def test_image_properties_enrichment_matches_the_library_and_is_range_searchable(
    admin: SceneEngineClient, image_set: str
) -> None:
    sources: dict[str, bytes] = {
        f"gray {level}": encode(64, 48, seed=level, level=level) for level in (30, 90, 150, 210)
    }
    sources["coco a"] = COCO_A.read_bytes()
    sources["panoptic"] = (PANOPTIC_DIR / "000000439180.png").read_bytes()
    sources["kitti"] = (KITTI_DIR / "0000000002.png").read_bytes()
    ids = admin.add_images([Image(id=k, image_bytes=v) for k, v in sources.items()], image_set)
    assert len(ids) == len(sources)
    expected = {
        image_id: image_properties(data, PROPERTY_NAMES) for image_id, data in zip(ids, sources.values(), strict=True)
    }

    job_id = admin.image_properties_enrichment(ids=ids, wait_for_completion=True)
    assert admin.get_job(job_id).result["enriched"] == len(ids)
    for image_id, values in expected.items():
        aux = admin.get_metadata(image_id, "images")["aux"]
        assert set(aux) == set(PROPERTY_NAMES)
        for name in PROPERTY_NAMES:
            assert aux[name] == pytest.approx(values[name], rel=1e-9, abs=1e-9), (image_id, name)

    brightness = sorted(v["mean_brightness"] for v in expected.values())
    low, high = (brightness[1] + brightness[2]) / 2, (brightness[-2] + brightness[-1]) / 2
    in_range = sorted(i for i, v in expected.items() if low <= v["mean_brightness"] <= high)
    assert 1 < len(in_range) < len(ids)
    query = {"ranges": [{"field": "aux.mean_brightness", "min": low, "max": high}]}
    assert sorted(admin.search_assets("images", query, size=100)) == in_range
    out = {"ranges": [{"field": "aux.mean_brightness", "min": low, "max": high, "filter_out": True}]}
    assert sorted(admin.search_assets("images", out, size=100)) == sorted(set(ids) - set(in_range))
    sharp = sorted(i for i, v in expected.items() if v["variance_of_laplacian"] >= 1000)
    assert sharp == ["panoptic"]  # the real photo-like PNG; the noise images and flat JPEG are below
    query = {"ranges": [{"field": "aux.variance_of_laplacian", "min": 1000}]}
    assert sorted(admin.search_assets("images", query, size=100)) == sharp


def test_image_properties_enrichment_over_several_batches_reports_failures_and_keeps_aux(
    server: InProcessServer, admin: SceneEngineClient, image_set: str
) -> None:
    """Batches computed on the pool while the previous one is written: every image gets its own values, an image
    whose file is gone and an unknown id are listed as failed (with a note), and existing aux keys survive."""
    sources = {f"frame {i:03d}": encode(40 + i % 7, 30, seed=100 + i) for i in range(23)}
    images = [Image(id=k, image_bytes=v, aux_metadata={"frame": n}) for n, (k, v) in enumerate(sources.items())]
    ids = admin.add_images(images, image_set)
    lost = ids[11]
    server.runtime.blobs.delete(admin.get_metadata(lost, "images")["object_access"]["key"])

    job_id = admin.image_properties_enrichment(
        ids=[*ids, "nobody"], additional_params={"batch_size": 5}, wait_for_completion=True
    )
    job = admin.get_job(job_id)
    assert job.result["enriched"] == len(ids) - 1
    assert sorted(job.result["failed"]) == sorted([lost, "nobody"])
    notes = " ".join(str(n) for n in admin._request("GET", f"/v1/jobs/{job_id}").get("notes") or [])
    assert "missing from the blob store" in notes and "nobody: no images with this id" in notes
    for n, (image_id, data) in enumerate(zip(ids, sources.values(), strict=True)):
        aux = admin.get_metadata(image_id, "images")["aux"]
        if image_id == lost:
            assert aux == {"frame": n}
            continue
        assert aux == pytest.approx({"frame": n, **image_properties(data, PROPERTY_NAMES)}, rel=1e-12)


def test_image_properties_enrichment_by_search_and_subset(admin: SceneEngineClient, image_set: str) -> None:
    other_set = admin.create_set("others", "images")
    admin.add_images([Image(id="in", image_bytes=encode(20, 20, seed=21))], image_set)
    admin.add_images([Image(id="out", image_bytes=encode(20, 20, seed=22))], other_set)
    search = {"filters": [{"field": "sets", "values": [image_set]}]}
    admin.image_properties_enrichment(search=search, properties=["rms_contrast"], wait_for_completion=True)
    assert set(admin.get_metadata("in", "images")["aux"]) == {"rms_contrast"}
    assert "aux" not in admin.get_metadata("out", "images") or not admin.get_metadata("out", "images")["aux"]

    with pytest.raises(InvalidArgumentsError):
        admin.image_properties_enrichment()
    with pytest.raises(JobError) as info:
        admin.image_properties_enrichment(ids=["in"], properties=["sharpness"])
    assert info.value.status_code == 400 and "sharpness" in info.value.message


# -------------------------------------------------------------------------------------------------------------- roles


def test_roles_data_user_reads_but_cannot_add_public_user_reads_metadata(world: World, big_jpeg: bytes) -> None:
    provider = world.client(world.a.tokens["data_provider"])
    data_user = world.client(world.a.tokens["data_user"])
    public = world.client(world.a.tokens["public_user"])
    outsider = world.client(world.b.tokens["data_user"])

    image_set = provider.create_set("org a images", "images")
    image_id = provider.add_image(image_bytes=big_jpeg, id="Shared", set_id=image_set)
    blobs_before = blob_keys(world.server)

    for client in (data_user, public):
        with pytest.raises(SceneBaseError) as info:
            client.add_image(image_bytes=encode(10, 10, seed=30), id="sneaky")
        assert info.value.status_code == 403
        with pytest.raises(SceneBaseError) as info:
            client.compress_images([image_id], use_preset="small")
        assert info.value.status_code == 403
    assert blob_keys(world.server) == blobs_before
    with pytest.raises(MetadataNotFoundError):
        provider.get_metadata("sneaky", "images")

    assert data_user.get_metadata("shared", "images")["width"] == 1280
    assert data_user.get_image_bytes("Shared") == big_jpeg
    assert pillow_info(data_user.get_image_bytes(image_id, "small"))[:2] == (300, 225)
    meta = public.get_metadata("Shared", "images")
    assert meta["id"] == "shared" and meta["sets"] == [image_set]
    assert public.get_image_bytes(image_id, "tiny")

    # another organization sees nothing of it
    with pytest.raises(MetadataNotFoundError):
        outsider.get_metadata(image_id, "images")
    with pytest.raises(AssetError) as info:
        outsider.get_image_bytes(image_id)
    assert info.value.status_code == 404


def test_a_reupload_planned_before_a_concurrent_change_loses_nothing(
    admin: SceneEngineClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingestion plans its write from what it read before the transaction; an image that another request changes
    in between (here: added to a set, a list an overwrite keeps) is written again from the locked row, so the
    re-upload neither drops the set nor is lost itself."""
    first = admin.create_set("first", "images")
    admin.add_images([Image(id="frame", bytes=encode(40, 30, seed=1), sensor="cam_a")], first)
    second = admin.create_set("second", "images")
    service = world.server.runtime.ingest.assets
    plan = service.plan
    calls: list[int] = []

    def plan_then_a_concurrent_write(*args: Any, **kwargs: Any) -> Any:
        out = plan(*args, **kwargs)
        if not calls:
            calls.append(1)
            admin.add_assets_to_set(second, ids=["frame"], wait_for_completion=True)
        return out

    monkeypatch.setattr(service, "plan", plan_then_a_concurrent_write)
    admin.add_images([Image(id="frame", bytes=encode(40, 30, seed=2), sensor="cam_b")], first)
    assert calls == [1]
    doc = admin.get_metadata("frame", "images")
    assert doc["sensor"] == "cam_b"
    assert sorted(doc["sets"]) == sorted([first, second])
    assert admin.search_assets("images", {"sensor": ["cam_b"], "sets": [second]}) == ["frame"]


def test_overwrite_false_keeps_an_image_created_while_the_batch_was_planned(
    server: InProcessServer, admin: SceneEngineClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """overwrite=False keeps an image that exists when the batch is written, even one another request created
    after the batch read that it did not exist: the batch is decided again, and its stored upload removed."""
    first = encode(40, 30, seed=1)
    service = world.server.runtime.ingest.assets
    calls = before_each_unlocked_plan(
        monkeypatch, service, "plan", 1, lambda _n: admin.add_image(image_bytes=first, id="cam", sensor="one")
    )
    assert admin.add_image(image_bytes=encode(64, 32, "PNG", seed=2), id="cam", sensor="two", overwrite=False) == "cam"
    assert calls == [0, 0]
    meta = admin.get_metadata("cam", "images")
    assert meta["sensor"] == "one" and admin.get_image_bytes("cam") == first
    assert len(blob_keys(server, "images/")) == 1, "the refused upload's blob was left behind"


def test_overwrite_false_merge_keeps_the_time_of_a_concurrent_reupload(
    admin: SceneEngineClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin.add_image(image_bytes=encode(40, 30, seed=1), id="cam", sensor="one", timestamp="2024-01-01T00:00:00")
    service = world.server.runtime.ingest.assets

    def reupload(_n: int) -> None:
        admin.add_image(image_bytes=encode(40, 30, seed=3), id="cam", sensor="new", timestamp="2025-06-01T00:00:00")

    calls = before_each_unlocked_plan(monkeypatch, service, "plan", 1, reupload)
    admin.add_image(image_bytes=encode(64, 32, "PNG", seed=2), id="cam", aux_metadata={"b": 2}, overwrite=False)
    assert calls == [0, 0]
    meta = admin.get_metadata("cam", "images")
    assert (meta["sensor"], meta["timestamp"][:10], meta["aux"].get("b")) == ("new", "2025-06-01", 2)


def test_a_batch_that_keeps_losing_the_race_is_decided_inside_its_transaction(
    server: InProcessServer, admin: SceneEngineClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each snapshot goes stale before its transaction (another request re-uploads the image every time): after
    PLAN_ATTEMPTS the batch is decided from the rows read under its transaction's lock, and its upload wins with
    the sets of every concurrent write kept."""
    set_ids = [admin.create_set(f"s{n}", "images") for n in range(PLAN_ATTEMPTS + 1)]
    admin.add_images([Image(id="frame", bytes=encode(40, 30, seed=0), sensor="start")], set_ids[0])
    service = world.server.runtime.ingest.assets

    def reupload(n: int) -> None:
        admin.add_images([Image(id="frame", bytes=encode(40, 30, seed=n), sensor=f"other{n}")], set_ids[n])

    calls = before_each_unlocked_plan(monkeypatch, service, "plan", PLAN_ATTEMPTS, reupload)
    mine = encode(48, 36, seed=99)
    admin.add_images([Image(id="frame", bytes=mine, sensor="mine")], set_ids[0])
    assert calls == [0] * PLAN_ATTEMPTS + [1]
    doc = admin.get_metadata("frame", "images")
    assert doc["sensor"] == "mine" and admin.get_image_bytes("frame") == mine
    assert sorted(doc["sets"]) == sorted(set_ids)
    assert len(blob_keys(server, "images/")) == 1, "replaced uploads were left behind"
