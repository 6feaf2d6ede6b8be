"""Videos on session timelines (FACTS 10.3, 11): add_video(create_session / add_to_session), add_videos
(add_to_session) and submit_video_indexing_request, against an in-process server with generated videos."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scenebase.clients import SceneEngineClient
from scenebase.domain.timeutil import to_epoch
from scenebase.errors import IndexingException, SessionError
from scenebase.models.assets import Video

from .conftest import World
from .videos_common import make_clip

START = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def video_set(admin: SceneEngineClient) -> str:
    return admin.create_set("drives", "videos")


def test_add_video_with_create_session_makes_a_video_session(
    admin: SceneEngineClient, video_set: str, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "front_camera.mp4", 50)  # 2 s at 25 fps
    video_id, session_uid = admin.add_video(video_set, video_path=str(clip), start_timestamp=START,
                                            create_session=True)  # type: ignore[misc]  # fmt: skip
    session = admin.get_metadata(session_uid, "sessions")
    assert (session["session_name"], session["session_type"]) == ("front_camera", "videos")
    assert session["sensors"] == [{"name": "main", "type": "camera"}]
    assert session["source_data"] == [{"id": video_id, "type": "videos", "sensor": "main"}]
    assert session["auxiliary_data"] == [{"id": video_id, "type": "concatenated_video", "tags": ["main"]}]
    assert (
        to_epoch(session["start_time"]) <= START.timestamp() and to_epoch(session["end_time"]) >= START.timestamp() + 2
    )
    video = admin.get_metadata(video_id, "videos")
    assert (video["session_uid"], video["sensor"]) == (session_uid, "main")
    assert admin.get_session_resolution_status(session_uid) == "ready"
    found = admin.search_session_intervals({"exists_filters": [{"field": "video"}]})
    [(begin, end)] = found[session_uid]  # the video covers its 2 s on the timeline
    assert begin <= START + timedelta(seconds=1) and end >= START + timedelta(seconds=1)


def test_add_to_session_extends_an_existing_session(admin: SceneEngineClient, video_set: str, tmp_path: Path) -> None:
    session_uid = admin.add_session("drive 7", session_type="videos")
    admin.update_time_span(session_uid, START, START + timedelta(seconds=1))
    first = make_clip(tmp_path / "a.mp4", 25)  # 1 s
    second = make_clip(tmp_path / "b.mp4", 75, first=25)  # 3 s
    a = admin.add_video(video_set, video_path=str(first), start_timestamp=START, session_uid=session_uid,
                        sensor="cam_left", add_to_session=True)  # fmt: skip
    ids = admin.add_videos([Video(path=second, start_timestamp=START + timedelta(seconds=10), session_uid=session_uid,
                                  sensor="cam_right")], video_set, add_to_session=True)  # fmt: skip
    session = admin.get_metadata(session_uid, "sessions")
    assert to_epoch(session["end_time"]) >= START.timestamp() + 13  # grown to cover the second video
    assert {s["name"] for s in session["sensors"]} == {"cam_left", "cam_right"}
    assert {d["id"] for d in session["source_data"]} == {a, *ids}
    assert admin.get_metadata(ids[0], "videos")["session_uid"] == session_uid


def test_add_videos_to_session_needs_one_shared_session(
    admin: SceneEngineClient, video_set: str, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "c.mp4", 10)
    with pytest.raises(SessionError, match="same session_uid"):
        admin.add_videos([Video(path=clip, session_uid="s1"), Video(path=clip, id="other", session_uid="s2")],
                         video_set, add_to_session=True)  # fmt: skip
    assert admin.search_assets("videos") == []  # refused before anything was uploaded


def test_submit_video_indexing_request(admin: SceneEngineClient, video_set: str, tmp_path: Path) -> None:
    paths = [make_clip(tmp_path / f"part{i}.mp4", 25, first=25 * i) for i in range(3)]
    ids = admin.add_videos([Video(path=p, id=f"part{i}", start_timestamp=START + timedelta(seconds=i))
                            for i, p in enumerate(paths)], video_set)  # fmt: skip
    out = admin.submit_video_indexing_request(
        "morning drive", raw_videos={"part0.mp4": ids[0]}, video_session_data={"asset_ids": [ids[1]]},
        video_filenames=["part2.mp4"],
    )  # fmt: skip
    assert set(out) == {"job_id", "session_uid"} and admin.get_job(out["job_id"]).status == "finished"
    session = admin.get_metadata(out["session_uid"], "sessions")
    assert session["session_name"] == "morning drive" and {d["id"] for d in session["source_data"]} == set(ids)
    again = admin.submit_video_indexing_request("morning drive", raw_videos={"part0.mp4": ids[0]})
    assert again["session_uid"] == out["session_uid"]  # the named session is reused
    with pytest.raises(IndexingException, match="no videos with ids"):
        admin.submit_video_indexing_request("other", raw_videos={"x.mp4": "no_such_video"})
    with pytest.raises(IndexingException, match="no video uploaded as"):
        admin.submit_video_indexing_request("other", video_filenames=["missing.mp4"])
    with pytest.raises(IndexingException, match="extraction_config is not supported"):
        admin.submit_video_indexing_request("other", raw_videos={"a": ids[0]}, extraction_config={"fps": 1})


def test_another_organization_cannot_index_my_videos(world: World, tmp_path: Path) -> None:
    a = world.client(world.a.tokens["data_provider"])
    video_id = a.add_video(a.create_set("v", "videos"), video_path=str(make_clip(tmp_path / "v.mp4", 10)))
    b = world.client(world.b.tokens["admin"])
    with pytest.raises(IndexingException) as info:
        b.submit_video_indexing_request("stolen", raw_videos={"v.mp4": video_id})
    assert info.value.status_code == 404
    assert b.search_assets("sessions") == []
