"""``/v1/indexing``: put recorded media on session timelines (FACTS 11). Video sessions for now; ROS recordings
come with their own issue."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from pydantic import BaseModel, Field

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.sessions import SessionIndexingStarted
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.errors import InvalidArgument
from scenebase.services.identity import Principal

router = SlashAgnosticRouter(prefix="/v1/indexing", tags=["sessions"])


class VideoIndexingBody(BaseModel):
    session_name: str | None = None
    session_uid: str | None = None
    raw_videos: dict[str, str] | None = Field(default=None, description="File name -> id of an uploaded video.")
    video_session_data: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="`{filename, metadata, asset_ids: [video ids]}` (or a list of them)."
    )
    video_filenames: list[str] | None = Field(default=None, description="File names the videos were uploaded as.")
    sensor: str | None = Field(default=None, description="Camera name (default: each video's sensor, else 'main').")
    enrichments: list[Any] | None = None
    concatenated: bool = Field(default=False, description="The videos are one recording (FACTS 10.3 create_session).")
    extraction_config: dict[str, Any] | None = None
    session_formatting_strategy: str | None = None
    retry: bool = False


def _video_ids(body: VideoIndexingBody, rt: Runtime, p: Principal) -> list[str]:
    ids = list((body.raw_videos or {}).values())
    data = body.video_session_data
    for entry in [data] if isinstance(data, dict) else data or []:
        asset_ids = entry.get("asset_ids") or []
        if not isinstance(asset_ids, list) or not all(isinstance(a, str) for a in asset_ids):
            raise InvalidArgument("video_session_data.asset_ids must be a list of video ids", resource="indexing")
        ids.extend(asset_ids)
    if body.video_filenames:
        ids.extend(rt.video_sessions.find_by_filenames(p.scope, body.video_filenames))
    if not ids:
        raise InvalidArgument("name the videos: raw_videos, video_session_data.asset_ids or video_filenames",
                              resource="indexing")  # fmt: skip
    return ids


@router.post("/index_video_session/", response_model=SessionIndexingStarted, dependencies=[requires(Permission.INGEST)])
def index_video_session(
    body: VideoIndexingBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, str]:
    """Put uploaded videos on a session's timeline (the session named ``session_name`` is created, type videos,
    when ``session_uid`` is not given): ``{"job_id", "session_uid"}``. Frame extraction (``extraction_config``) and
    ``session_formatting_strategy`` are not built: giving them is a 400."""
    if body.extraction_config:
        raise InvalidArgument("extraction_config is not supported: extract frames with extract_frame_thumbnails",
                              resource="indexing")  # fmt: skip
    if body.session_formatting_strategy:
        raise InvalidArgument("session_formatting_strategy is not supported", resource="indexing")
    job_id, uid = rt.video_sessions.index(
        p.scope, _video_ids(body, rt, p), body.session_name, body.session_uid, body.sensor, body.enrichments,
        body.concatenated,
    )  # fmt: skip
    return {"job_id": job_id, "session_uid": uid}
