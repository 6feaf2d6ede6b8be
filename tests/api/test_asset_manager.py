"""``get_asset_manager``: the low-level client of one asset type (search, count, exists, metadata get/update,
file put/get, delete) against an in-process server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from scenebase.clients import SceneEngineClient
from scenebase.clients.asset_manager import AssetManagerClient
from scenebase.errors import AssetError, InvalidArgumentsError, MetadataNotFoundError, SetsError
from scenebase.testing import InProcessServer

from .conftest import World


def jpeg(width: int = 16, height: int = 12, value: int = 90) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), (value, value, value)).save(buf, "JPEG")
    return buf.getvalue()


def blob_files(server: InProcessServer) -> list[Path]:
    root = server.settings.data_dir / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))


@pytest.fixture
def images(admin: SceneEngineClient) -> AssetManagerClient:
    return admin.get_asset_manager("images")


def test_one_cached_manager_per_type(admin: SceneEngineClient) -> None:
    assert admin.get_asset_manager("images") is admin.get_asset_manager("images")
    assert admin.get_asset_manager("videos").asset_type == "videos"


def test_put_get_count_exists_and_search(images: AssetManagerClient, admin: SceneEngineClient, tmp_path: Path) -> None:
    set_id = admin.create_set("pool", "images")
    first = images.put_file(data=jpeg(value=10), id="Frame 1", metadata={"sensor": "cam_a"}, set_id=set_id)
    path = tmp_path / "second.jpg"
    path.write_bytes(jpeg(value=200))
    second = images.put_file(path=path, metadata={"sensor": "cam_b", "aux": {"weather": "rain"}})
    assert first == "frame_1"
    assert images.count() == 2
    assert images.count({"filters": [{"field": "sensor", "values": ["cam_b"]}]}) == 1
    assert images.exists("Frame 1") and not images.exists("nope")
    assert images.search_assets({"aux.weather": ["rain"]}) == [second]
    assert [d["id"] for d in images.search_meta({"sets": [set_id]})] == [first]
    assert images.get_file(first) == jpeg(value=10)
    out = images.get_file(second, tmp_path / "copy.jpg")
    assert Path(out).read_bytes() == path.read_bytes()
    assert images.get_url(first).endswith("/v1/images/frame_1/file")


def test_put_file_refuses_bad_files_and_bad_arguments(images: AssetManagerClient) -> None:
    with pytest.raises(AssetError, match="not an image") as info:
        images.put_file(data=b"this is not an image", id="bad")
    assert info.value.status_code == 415
    with pytest.raises(InvalidArgumentsError):
        images.put_file(data=jpeg(), url="http://example.com/a.jpg")
    assert not images.exists("bad")


def test_update_metadata_merges_replaces_lists_and_replaces(images: AssetManagerClient) -> None:
    images.put_file(data=jpeg(), id="m", metadata={"tags": ["a"], "aux": {"x": 1, "keep": "yes"}})
    doc = images.update_metadata("m", {"tags": ["b"], "aux": {"y": 2}})
    assert doc["tags"] == ["a", "b"] and doc["aux"] == {"x": 1, "keep": "yes", "y": 2}
    doc = images.update_metadata("m", {"tags": ["c"]}, replace_sets=True)
    assert doc["tags"] == ["c"]
    doc = images.update_metadata("m", {"sensor": "cam"}, replace=True)
    assert doc["sensor"] == "cam" and "tags" not in doc and "aux" not in doc
    assert (doc["width"], doc["height"], doc["format"]) == (16, 12, "JPEG")  # derived by the server: kept
    assert images.get_file("m") == jpeg()  # the file too
    assert images.search_assets({"sensor": ["cam"]}) == ["m"]
    assert images.search_assets({"tags": ["c"]}) == []  # the index follows the replaced document


def test_update_metadata_refuses_server_fields_ids_and_unknown_assets(images: AssetManagerClient) -> None:
    images.put_file(data=jpeg(), id="m")
    for bad in ({"width": 1}, {"object_access": {"key": "x"}}, {"thumbnails": {}}, {"owner": "other"}):
        with pytest.raises(AssetError) as info:
            images.update_metadata("m", bad)
        assert info.value.status_code == 400
    with pytest.raises(AssetError, match="id of an asset cannot change"):
        images.update_metadata("m", {"id": "other"})
    assert images.update_metadata("m", {"id": "M", "sensor": "s"})["sensor"] == "s"  # the same id, standardized
    with pytest.raises(MetadataNotFoundError):
        images.update_metadata("ghost", {"sensor": "s"})
    with pytest.raises(SetsError, match="set routes"):
        AssetManagerClient(images._client, "sets").update_metadata("x", {})


def test_set_changes_through_metadata_get_the_set_checks(images: AssetManagerClient, admin: SceneEngineClient) -> None:
    pool = admin.create_set("pool", "images")
    frozen = admin.create_set("frozen", "images")
    videos = admin.create_set("clips", "videos")
    images.put_file(data=jpeg(), id="m", set_id=frozen)
    admin.set_lock(frozen)
    with pytest.raises(SetsError) as info:
        images.update_metadata("m", {"sets": [pool]}, replace_sets=True)  # would leave the locked set
    assert info.value.status_code == 423
    with pytest.raises(SetsError):
        images.update_metadata("m", {"sets": [videos]})  # a videos set cannot hold images
    assert images.update_metadata("m", {"sets": [pool]})["sets"] == [frozen, pool]  # joining is fine
    assert sorted(admin.assets_in_set(pool)) == ["m"]


def test_delete_removes_documents_and_blobs(
    server: InProcessServer, images: AssetManagerClient, admin: SceneEngineClient
) -> None:
    images.put_file(data=jpeg(value=1), id="a")
    images.put_file(data=jpeg(value=2), id="b")
    admin.get_image_bytes("a", thumbnail_tag="small")  # a cached thumbnail is a blob too
    assert len(blob_files(server)) == 3
    assert images.delete_assets(["a", "zzz"]) == {"deleted": 1, "missing": ["zzz"]}
    assert not images.exists("a") and images.count() == 1
    assert [p.read_bytes() for p in blob_files(server)] == [jpeg(value=2)]
    with pytest.raises(MetadataNotFoundError):
        images.delete_asset("a")
    images.delete_asset("b")
    assert images.count() == 0 and blob_files(server) == []


def test_assets_of_a_locked_set_are_not_deleted(images: AssetManagerClient, admin: SceneEngineClient) -> None:
    frozen = admin.create_set("frozen", "images")
    images.put_file(data=jpeg(), id="kept", set_id=frozen)
    images.put_file(data=jpeg(value=3), id="loose")
    admin.set_lock(frozen)
    with pytest.raises(SetsError) as info:
        images.delete_assets(["loose", "kept"])
    assert info.value.status_code == 423
    assert images.exists("kept") and images.exists("loose")  # nothing of the request was deleted


def test_roles_and_other_organizations(world: World) -> None:
    provider = world.client(world.a.tokens["data_provider"]).get_asset_manager("images")
    provider.put_file(data=jpeg(), id="shot")
    reader = world.client(world.a.tokens["public_user"]).get_asset_manager("images")
    assert reader.get_metadata("shot")["id"] == "shot" and reader.count() == 1
    data_user = world.client(world.a.tokens["data_user"]).get_asset_manager("images")
    for write in (lambda m: m.update_metadata("shot", {"sensor": "x"}), lambda m: m.delete_asset("shot")):
        with pytest.raises(AssetError) as info:
            write(data_user)
        assert info.value.status_code == 403
    other = world.client(world.b.tokens["admin"]).get_asset_manager("images")
    assert not other.exists("shot") and other.count() == 0
    with pytest.raises(MetadataNotFoundError):
        other.update_metadata("shot", {"sensor": "x"})
    with pytest.raises(MetadataNotFoundError):
        other.delete_asset("shot")
    with pytest.raises(MetadataNotFoundError):
        other.get_file("shot")
    assert provider.exists("shot")
