"""Video jobs through the client against an in-process server (issue 6, FACTS 10.2-10.4): frame thumbnails,
H.264 renditions (compress_videos), concatenation in order, and videos made from a CSV of image URIs.

Every video is generated here; each frame shows its number as stripes, so a thumbnail or a decoded frame tells
which frame it is, and a concatenation or a video made from images shows its order.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scenebase.clients import SceneEngineClient
from scenebase.domain.timeutil import to_epoch
from scenebase.errors import AssetError, SceneBaseError, ThumbnailNotAvailableError
from scenebase.media.video import probe_video
from scenebase.services.errors import InvalidArgument
from scenebase.services.video_from_images import parse_frame_list
from scenebase.testing import InProcessServer

from .videos_common import (
    AUTH,
    blob_keys,
    image_info,
    make_clip,
    number_in,
    png_bytes,
    serve_folder,
    video_frames,
    wait,
    work_files,
)


@pytest.fixture
def video_set(admin: SceneEngineClient) -> str:
    return admin.create_set("videos under test", "videos")


@pytest.fixture
def web_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    yield from serve_folder(tmp_path)


def add(admin: SceneEngineClient, set_id: str, path: Path, video_id: str, **kw: object) -> str:
    return admin.add_video(set_id, video_path=str(path), id=video_id, compress_video=False, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------- frame thumbnails


def test_extract_frame_thumbnails_stores_the_right_frames(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, tmp_path: Path
) -> None:
    video_id = add(admin, video_set, make_clip(tmp_path / "a.mp4", 40, size=(320, 240)), "a")
    other = add(admin, video_set, make_clip(tmp_path / "b.mp4", 50, first=100), "b")
    job_id = admin.extract_frame_thumbnails([video_id, other], [39, 0, 7, 7], wait_for_completion=True)
    job = admin.get_job(job_id)
    assert job.result == {"extracted": 2, "frames": 3, "thumbnail_tags": ["small", "full_size_png"], "failed": []}
    thumbs = admin.get_metadata(video_id, "videos")["thumbnails"]
    assert sorted(thumbs) == sorted(f"{t}_frame_{n}" for t in ("small", "full_size_png") for n in (0, 7, 39))
    assert thumbs["small_frame_7"]["frame"] == 7
    assert thumbs["small_frame_7"]["resolution"] == {"width": 300, "height": 225}
    for n in (0, 7, 39):
        full = admin.get_video_bytes(video_id, f"full_size_png_frame_{n}")
        assert image_info(full) == (320, 240, "PNG") and number_in(full) == n
        assert number_in(admin.get_video_bytes(video_id, f"small_frame_{n}")) == n
        assert number_in(admin.get_video_bytes(other, f"small_frame_{n}")) == 100 + n

    # the seed's accessor returns the URL of a stored one; a frame never extracted is not available
    url = admin.get_video_frame_thumbnail(video_id, 7, "small")
    assert url == f"{admin.scene_engine_url}/videos/{video_id}/thumbnail/small_frame_7"
    fetched = server.http().get(url.replace("http://testserver", ""), headers=AUTH)
    assert fetched.status_code == 200 and number_in(fetched.content) == 7
    with pytest.raises(ThumbnailNotAvailableError):
        admin.get_video_frame_thumbnail(video_id, 8, "small")
    with pytest.raises(ThumbnailNotAvailableError):
        admin.get_video_frame_thumbnail(video_id, 7, "tiny")

    # tiny only, on one video; the stored ones of the first job stay
    wait(admin, admin.extract_frame_thumbnails([video_id], [12], ["tiny"]))
    assert image_info(admin.get_video_bytes(video_id, "tiny_frame_12"))[:2] == (100, 75)
    assert len(admin.get_metadata(video_id, "videos")["thumbnails"]) == 7
    assert work_files(server) == []


def test_frames_past_the_end_and_bad_tags_are_refused_naming_the_video(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, tmp_path: Path
) -> None:
    short = add(admin, video_set, make_clip(tmp_path / "short.mp4", 10), "short")
    long = add(admin, video_set, make_clip(tmp_path / "long.mp4", 40), "long")
    jobs_before = len(server.http().get("/v1/jobs/", headers=AUTH).json())
    with pytest.raises(AssetError) as info:
        admin.extract_frame_thumbnails([long, short], [5, 12, 30])
    err = info.value
    assert err.status_code == 400 and "short (short.mp4)" in err.message and "[12, 30]" in err.message
    assert "10 frames, 0..9" in err.message and "long" not in err.message.replace("long.mp4", "")
    with pytest.raises(AssetError) as info:
        admin.extract_frame_thumbnails([long], [-1])
    assert info.value.status_code == 400 and "start at 0" in info.value.message
    with pytest.raises(AssetError) as info:
        admin.extract_frame_thumbnails([long], [1], ["huge"])
    assert info.value.status_code == 400 and "huge" in info.value.message
    with pytest.raises(AssetError) as info:
        admin.extract_frame_thumbnails([long, "nope"], [1])
    assert info.value.status_code == 404 and "nope" in info.value.message
    assert len(server.http().get("/v1/jobs/", headers=AUTH).json()) == jobs_before  # no job was started
    assert blob_keys(server, "thumbnails/") == []


# -------------------------------------------------------------------------------------------------------- renditions


def test_compress_videos_makes_h264_renditions_served_with_ranges(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, tmp_path: Path
) -> None:
    source = make_clip(tmp_path / "src.avi", 30, size=(1280, 720), codec="mpeg4", first=50)
    video_id = add(admin, video_set, source, "wide")
    assert admin.get_metadata(video_id, "videos")["codec"] == "mpeg4"
    answer = admin.compress_videos([video_id], use_preset="small")
    assert set(answer) == {"job_id"}
    assert wait(admin, answer["job_id"]).result == {"compressed": 1, "failed": []}
    answer = admin.compress_videos([video_id], desired_shape=[90, 120], thumbnail_tag="preview")
    wait(admin, answer["job_id"])
    thumbs = admin.get_metadata(video_id, "videos")["thumbnails"]
    assert sorted(thumbs) == ["preview", "video_small"]
    small = thumbs["video_small"]
    assert small["content_type"] == "video/mp4" and small["resolution"] == {"width": 640, "height": 360}
    assert (small["codec"], small["frame_count"]) == ("h264", 30)

    http = server.http()
    data = http.get(f"/v1/videos/{video_id}/rendition/video_small", headers=AUTH)
    assert (
        data.status_code == 200 and data.headers["content-type"] == "video/mp4" and len(data.content) == small["size"]
    )
    info = probe_video(io.BytesIO(data.content))
    assert (info.width, info.height, info.codec, info.frame_count) == (640, 360, "h264", 30)
    assert video_frames(data.content) == list(range(50, 80))  # every frame, in order
    half = small["size"] // 2
    part = http.get(f"/v1/videos/{video_id}/rendition/video_small", headers={**AUTH, "Range": f"bytes={half}-"})
    assert part.status_code == 206 and part.content == data.content[half:]
    assert part.headers["content-range"] == f"bytes {half}-{small['size'] - 1}/{small['size']}"
    past = http.get(f"/v1/videos/{video_id}/rendition/video_small", headers={**AUTH, "Range": "bytes=999999999-"})
    assert past.status_code == 416
    preview = probe_video(io.BytesIO(http.get(f"/v1/videos/{video_id}/rendition/preview", headers=AUTH).content))
    assert (preview.width, preview.height) == (120, 68)  # fits 120x90, aspect kept, even sizes
    missing = http.get(f"/v1/videos/{video_id}/rendition/video_tiny", headers=AUTH)
    assert missing.status_code == 404 and "video_small" in missing.json()["error"]["message"]

    # a second rendition under the same tag replaces the first and its blob
    before = set(blob_keys(server, "thumbnails/"))
    wait(admin, admin.compress_videos([video_id], use_preset="small")["job_id"])
    after = set(blob_keys(server, "thumbnails/"))
    assert len(after) == len(before) and small["key"] not in after
    assert work_files(server) == []


def test_compress_videos_bad_arguments(admin: SceneEngineClient, video_set: str, tmp_path: Path) -> None:
    video_id = add(admin, video_set, make_clip(tmp_path / "a.mp4", 5), "a")
    for kwargs, words in (
        ({"use_preset": "huge"}, "unknown video preset"),
        ({"desired_shape": [0, 10], "thumbnail_tag": "x"}, "positive"),
        ({"desired_shape": [10, 10], "thumbnail_tag": "small"}, "reserved"),
        ({"desired_shape": [10, 10], "thumbnail_tag": "small_frame_3"}, "reserved"),
    ):
        with pytest.raises(AssetError) as info:
            admin.compress_videos([video_id], **kwargs)  # type: ignore[arg-type]
        assert info.value.status_code == 400 and words in info.value.message, kwargs
    with pytest.raises(AssetError) as info:
        admin.compress_videos(["ghost"], use_preset="tiny")
    assert info.value.status_code == 404 and "ghost" in info.value.message
    with pytest.raises(NotImplementedError, match="job_id"):
        admin.compress_videos([video_id], use_preset="tiny", job_id="mine")
    with pytest.raises(NotImplementedError, match="job_id"):
        admin.concatenate_videos([video_id], "out", {}, job_id="mine")


# ----------------------------------------------------------------------------------------------------- concatenation


def test_concatenate_videos_in_order(server: InProcessServer, admin: SceneEngineClient, tmp_path: Path) -> None:
    source_set = admin.create_set("sources", "videos")
    target_set = admin.create_set("joined", "videos")
    start = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    parts = [
        ("second", make_clip(tmp_path / "b.mp4", 10, first=100), start + timedelta(seconds=60)),
        ("first", make_clip(tmp_path / "a.webm", 20, first=0, codec="libvpx-vp9"), start),
        ("third", make_clip(tmp_path / "c.mp4", 15, first=200, size=(320, 240)), start + timedelta(seconds=90)),
    ]
    for video_id, path, when in parts:
        add(admin, source_set, path, video_id, start_timestamp=when)
    order = ["first", "second", "third"]
    answer = admin.concatenate_videos(order, "Whole Drive", {"set_id": target_set, "sensor": "front",
                                                              "tags": ["reviewed"], "aux": {"route": 7}})  # fmt: skip
    job = wait(admin, answer["job_id"])
    assert job.result["video_id"] == "whole_drive" and job.result["failed"] == []
    meta = admin.get_metadata("whole_drive", "videos")
    assert meta["tags"] == ["reviewed", "concatenated"] and meta["sensor"] == "front" and meta["aux"] == {"route": 7}
    assert meta["sets"] == [target_set] and admin.assets_in_set(target_set) == ["whole_drive"]
    assert to_epoch(meta["timestamp"]) == to_epoch(meta["start_time"]) == start.timestamp()  # the first one's start
    durations = [admin.get_metadata(i, "videos")["duration"] for i in order]
    assert meta["duration"] == pytest.approx(sum(durations), abs=0.05)
    assert to_epoch(meta["end_time"]) == pytest.approx(start.timestamp() + sum(durations), abs=0.05)
    assert meta["frame_count"] == 45 and (meta["width"], meta["height"]) == (160, 120)
    frames = video_frames(admin.get_video_bytes("whole_drive"))
    assert frames == [*range(0, 20), *range(100, 110), *range(200, 215)]
    assert work_files(server) == []


def test_concatenate_videos_bad_requests(admin: SceneEngineClient, video_set: str, tmp_path: Path) -> None:
    a = add(admin, video_set, make_clip(tmp_path / "a.mp4", 5), "a")
    image_set = admin.create_set("images", "images")
    for ids, out, meta, status, words in (
        ([a, "ghost"], "out", {}, 404, "ghost"),
        ([a], "A", {}, 400, "is one of the videos"),
        ([a], "out", {"timestamp": "2024-01-01T00:00:00Z"}, 400, "timestamp"),
        ([a], "out", {"width": 3}, 400, "width"),
        ([a], "out", {"colour": "red"}, 400, "colour"),
        ([a], "out", {"sets": [image_set]}, 400, "videos"),
    ):
        with pytest.raises(Exception) as info:
            admin.concatenate_videos(ids, out, meta)
        assert getattr(info.value, "status_code", None) == status and words in str(info.value), (meta, info.value)
    assert admin.search_assets("videos", {}) == ["a"]


# ------------------------------------------------------------------------------------------------ video from images


def write_csv(path: Path, rows: list[tuple[str, str]], header: bool = True) -> Path:
    lines = (["timestamp,image_uri"] if header else []) + [f"{t},{u}" for t, u in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_make_video_from_image_uris(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, tmp_path: Path, web_folder: tuple[Path, str]
) -> None:
    folder, base = web_folder
    start = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    rows = []
    for n in range(20):  # 10 images a second, listed out of order; stored images and URLs mixed
        when = (start + timedelta(milliseconds=100 * n)).isoformat()
        if n % 5 == 0:
            image_id = admin.add_image(image_bytes=png_bytes(n), id=f"frame {n}")
            rows.append((when, f"scenebase://images/{image_id}"))
        else:
            (folder / f"{n}.png").write_bytes(png_bytes(n))
            rows.append((when, f"{base}/{n}.png"))
    rows.reverse()
    csv_path = write_csv(tmp_path / "frames.csv", rows)
    job_id = admin.make_video_from_image_uris(str(csv_path), "front", 160, 120, "png", video_id="From Images",
                                              tags=["synthetic"], set_id=video_set, image_skip_factor=2,
                                              wait_for_completion=True)  # fmt: skip
    result = admin.get_job(job_id).result
    assert result["video_id"] == "from_images" and result["frames"] == 10 and result["failed"] == []
    meta = admin.get_metadata("from_images", "videos")
    assert meta["fps"] == pytest.approx(5.0) and meta["frame_count"] == 10  # every 2nd image: 5 a second
    assert to_epoch(meta["start_time"]) == start.timestamp()
    assert to_epoch(meta["end_time"]) == pytest.approx(start.timestamp() + 2.0)  # last at 1.8 s, shown 0.2 s
    assert meta["sensor"] == "front" and meta["tags"] == ["synthetic"] and meta["sets"] == [video_set]
    assert (meta["width"], meta["height"], meta["codec"]) == (160, 120, "h264")
    assert video_frames(admin.get_video_bytes("from_images")) == list(range(0, 20, 2))

    # an image that cannot be read is noted and replaced by the previous frame; the timing is kept
    (folder / "4.png").unlink()
    (folder / "6.png").write_bytes(b"not a png")
    job_id = admin.make_video_from_image_uris(str(csv_path), "front", 160, 120, "png", video_id="gappy",
                                              set_id=video_set, image_skip_factor=2)  # fmt: skip
    job = wait(admin, job_id)
    assert job.result["failed"] == [f"{base}/4.png", f"{base}/6.png"]
    assert any("4.png" in note and "404" in note for note in job.notes)
    assert any("6.png" in note for note in job.notes)
    assert video_frames(admin.get_video_bytes("gappy")) == [0, 2, 2, 2, 8, 10, 12, 14, 16, 18]
    assert work_files(server) == []


def test_make_video_from_image_uris_refuses_bad_input_by_line(
    server: InProcessServer, admin: SceneEngineClient, video_set: str, tmp_path: Path
) -> None:
    good = [("2024-01-01T00:00:00Z", "https://example.com/a.png"), ("2024-01-01T00:00:01Z", "https://example.com/b")]
    cases = [
        (write_csv(tmp_path / "1.csv", [*good, ("yesterday", "https://example.com/c.png")]), {}, "line 4"),
        (write_csv(tmp_path / "2.csv", [*good, ("5", "")]), {}, "line 4"),
        (write_csv(tmp_path / "3.csv", good[:1]), {}, "at least 2 frames"),
        (write_csv(tmp_path / "4.csv", [*good, ("3", "ftp://example.com/c.png")]), {}, "ftp://"),
        (write_csv(tmp_path / "5.csv", [*good, ("3", "scenebase://videos/x")]), {}, "scenebase://images/"),
        (write_csv(tmp_path / "6.csv", good), {"image_format": "gif"}, "image_format"),
        (write_csv(tmp_path / "7.csv", good), {"width": 0}, "width"),
        (write_csv(tmp_path / "8.csv", good), {"image_skip_factor": 0}, "image_skip_factor"),
        (write_csv(tmp_path / "9.csv", good), {"set_id": "ghost"}, "ghost"),
    ]
    for path, overrides, words in cases:
        kwargs = {"sensor": "cam", "width": 64, "height": 48, "image_format": "png", "set_id": video_set, **overrides}
        with pytest.raises(SceneBaseError) as info:  # JobError, or SetsError for the set
            admin.make_video_from_image_uris(str(path), **kwargs)  # type: ignore[arg-type]
        assert info.value.status_code in (400, 404) and words in info.value.message, (path.name, info.value.message)
    assert server.http().get("/v1/jobs/", headers=AUTH).json() == []  # refused before any job was queued


def test_frame_list_parsing() -> None:
    text = "1700000000.5,file:///a.png\n1700000000000,file:///b.png\n\n1699999999000000000,file:///c.png\n"
    frames = parse_frame_list(text, 1, 64, 48, "PNG")
    assert frames.times == [1699999999.0, 1700000000.0, 1700000000.5]  # ns, ms and s, sorted
    assert frames.uris == ["file:///c.png", "file:///b.png", "file:///a.png"]
    assert frames.fps == pytest.approx(2 / 1.5)
    every_third = parse_frame_list("\n".join(f"{i},file:///{i}.png" for i in range(10)), 3, 64, 48, "jpg")
    assert every_third.uris == ["file:///0.png", "file:///3.png", "file:///6.png", "file:///9.png"]
    with pytest.raises(InvalidArgument, match="line 2"):
        parse_frame_list("0,file:///a.png\nnan,file:///b.png\n", 1, 64, 48, "png")
    with pytest.raises(InvalidArgument, match="line 1"):
        parse_frame_list("when,file:///a.png\n", 1, 64, 48, "png")  # not a header: its second cell is a URI
    with pytest.raises(InvalidArgument, match="megapixels"):
        parse_frame_list("0,a\n1,b\n", 1, 20000, 20000, "png")
