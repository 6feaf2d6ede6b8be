"""Bodies of ``/v1/videos`` (FACTS 10.2-10.4, 15) and the media types of its renditions."""

from __future__ import annotations

from pydantic import Field

from scenebase.api.schemas.common import JobStarted
from scenebase.services.kinds import VideoKind

#: stored renditions are H.264 MP4 (compress_videos) or JPEG/PNG frames (extract_frame_thumbnails)
RENDITION_MEDIA_TYPES = sorted({"video/mp4", "image/jpeg", "image/png", *VideoKind.content_types})


class VideoFromImagesStarted(JobStarted):
    video_id: str = Field(description="Id the new video will have.")
