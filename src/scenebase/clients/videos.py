"""Video ingestion and video jobs: renditions, frame thumbnails, concatenation, videos made from images."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from scenebase.clients.upload import UploadItem, UploadMixin
from scenebase.domain.ids import standardize_id
from scenebase.errors import AssetError, InvalidArgumentsError, JobError, ThumbnailNotAvailableError
from scenebase.models.assets import Video

log = logging.getLogger("scenebase.client")

#: sessions are another issue's work: the seed's session options say so instead of being ignored
_SESSIONS = "needs sessions (the sessions issue), which are not built yet"


def _set_list(set_id: str | Sequence[str] | None) -> list[str]:
    if set_id is None:
        return []
    return [set_id] if isinstance(set_id, str) else list(set_id)


def _no_job_id(job_id: str | None) -> None:
    if job_id is not None:
        raise NotImplementedError("job_id: scenebase names its jobs itself; call without job_id")


class VideosMixin(UploadMixin):
    def _video_items(self, videos: Sequence[Video]) -> list[UploadItem]:
        items = []
        for video in videos:
            if video.annotations:
                raise NotImplementedError("annotations at video ingestion are not built yet; add videos without them")
            items.append(UploadItem.of(video))
        return items

    def _add_videos(
        self, videos: Sequence[Video], set_id: str | Sequence[str], compress: bool, progress: bool | None
    ) -> tuple[list[str | None], list[dict[str, Any]], list[str]]:
        options = {"compress_videos": bool(compress)}
        out = self._upload_media("videos", self._video_items(videos), _set_list(set_id), True, options, progress)
        return out.ids, out.errors, out.job_ids

    # ------------------------------------------------------------------ seed methods

    def add_video(
        self,
        set_id: str | list[str],
        video_path: str | None = None,
        video_url: str | None = None,
        video_uri: str | None = None,
        sensor: str | None = None,
        start_timestamp: datetime | str | None = None,
        session_uid: str | None = None,
        id: str | None = None,
        annotations: list[Any] | None = None,
        aux_metadata: dict[str, Any] | None = None,
        enrichments: list[Any] | None = None,
        tags: list[str] | None = None,
        compress_video: bool = True,
        buffered_write: bool = False,
        add_to_session: bool = False,
        create_session: bool = False,
    ) -> str:
        """Upload (path) or reference (url, uri) one video into ``set_id`` (a videos set); returns its id.

        The server probes duration, fps, size, frame count and codec, and sets ``start_time`` = ``start_timestamp``
        (default now) and ``end_time`` = start + duration. ``compress_video`` (the default) makes the ``small`` and
        ``tiny`` poster thumbnails before returning; H.264 renditions are made by :meth:`compress_videos`.
        ``create_session`` and ``add_to_session`` need sessions and raise NotImplementedError; ``enrichments`` only
        matter to sessions; ``buffered_write`` changes nothing (every write is immediate)."""
        if not set_id:
            raise InvalidArgumentsError("add_video needs set_id (a videos set)")
        if create_session:
            raise NotImplementedError(f"add_video(create_session=True) {_SESSIONS}")
        if add_to_session and session_uid:
            raise NotImplementedError(f"add_video(add_to_session=True) {_SESSIONS}")
        video = Video(id=id, path=video_path, url=video_url, uri=video_uri, sensor=sensor, session_uid=session_uid,
                      aux_metadata=aux_metadata, annotations=annotations, tags=tags,
                      start_timestamp=start_timestamp)  # fmt: skip
        ids, errors, jobs = self._add_videos([video], set_id, compress_video, progress=False)
        if errors:
            raise self._single_error(errors)
        for job_id in jobs:
            self._job(job_id).wait(show_progress=False)
        return str(ids[0])

    def add_videos(
        self,
        videos: list[Video],
        set_id: str | list[str],
        enrichments: list[Any] | None = None,
        add_to_session: bool = False,
        compress_videos: bool = True,
    ) -> list[str]:
        """Upload many videos (files stream from disk; several requests in flight) into ``set_id``.

        Returns the ids of the videos ingested, in input order. Videos the server refused (corrupt, truncated,
        without a video stream, unsupported) are skipped, logged at WARNING with their names and the reason, and
        listed in ``client.last_errors``. ``compress_videos`` makes poster thumbnails (small, tiny) before
        returning. ``add_to_session`` needs sessions and raises NotImplementedError."""
        if add_to_session:
            raise NotImplementedError(f"add_videos(add_to_session=True) {_SESSIONS}")
        if not set_id:
            raise InvalidArgumentsError("add_videos needs set_id (a videos set)")
        if not videos:
            self.last_errors = []
            return []
        ids, errors, jobs = self._add_videos(list(videos), set_id, compress_videos, progress=None)
        self._report(errors, "video")
        for job_id in jobs:
            self._job(job_id).wait()
        return [i for i in ids if i is not None]

    def compress_videos(
        self,
        ids: list[str],
        desired_shape: Sequence[int] | None = None,
        thumbnail_tag: str | None = None,
        use_preset: str | None = None,
        job_id: str | None = None,
    ) -> dict[str, Any]:
        """Start a job making H.264 MP4 renditions: ``use_preset`` tiny (320 px), small (640 px) or full_size
        (stored as ``thumbnails.video_<preset>``), or ``desired_shape`` (height, width) under ``thumbnail_tag``.
        Returns the server's answer ``{"job_id": ...}``. Renditions stream from
        ``/v1/videos/<id>/rendition/<tag>`` with byte ranges."""
        _no_job_id(job_id)
        if not ids:
            raise InvalidArgumentsError("ids must not be empty")
        if use_preset is None and (desired_shape is None or thumbnail_tag is None):
            raise InvalidArgumentsError("give use_preset, or desired_shape and thumbnail_tag")
        body = {"ids": list(ids), "desired_shape": list(desired_shape) if desired_shape else None,
                "thumbnail_tag": thumbnail_tag, "use_preset": use_preset}  # fmt: skip
        return dict(self._request("POST", "/v1/videos/compress_videos/", json=body, error=AssetError))

    def concatenate_videos(
        self, ids: list[str], output_video_id: str, video_metadata: dict[str, Any], job_id: str | None = None
    ) -> dict[str, Any]:
        """Start a job joining ``ids`` in order into the new video ``output_video_id`` (tagged ``concatenated``,
        starting when the first video starts; ``video_metadata`` may hold sensor, tags, aux, session_uid and the
        target ``sets``/``set_id``). Returns ``{"job_id": ...}``."""
        _no_job_id(job_id)
        if not ids:
            raise InvalidArgumentsError("ids must not be empty")
        body = {"ids": list(ids), "output_video_id": output_video_id, "video_metadata": video_metadata or {}}
        return dict(self._request("POST", "/v1/videos/concatenate_videos/", json=body, error=AssetError))

    def extract_frame_thumbnails(
        self,
        ids: list[str],
        frames: list[int],
        thumbnail_tags: list[str] | None = None,
        wait_for_completion: bool = False,
    ) -> str:
        """Start a job storing thumbnails ``<tag>_frame_<n>`` of the given 0-based frames of each video (tags tiny,
        small, full_size_png; default small and full_size_png). Returns the job id. Frame numbers past the end of
        a video are refused (AssetError naming the video)."""
        if not ids or not frames:
            raise InvalidArgumentsError("give ids and frames")
        body = {"ids": list(ids), "frames": [int(f) for f in frames], "thumbnail_tags": thumbnail_tags}
        job_id = str(
            self._request("POST", "/v1/videos/extract_frame_thumbnails/", json=body, error=AssetError)["job_id"]
        )
        self._wait(job_id, wait_for_completion)
        return job_id

    def get_video_frame_thumbnail(self, video_id: str, frame: int, thumbnail_tag: str) -> str:
        """The URL of the stored thumbnail of frame ``frame`` (made by :meth:`extract_frame_thumbnails`); fetch it
        with the client's token. ThumbnailNotAvailableError when it was not made."""
        meta = self._request("GET", f"/v1/videos/meta/{quote(standardize_id(video_id), safe='')}", error=AssetError)
        key = f"{thumbnail_tag}_frame_{int(frame)}"
        if key not in (meta.get("thumbnails") or {}):
            raise ThumbnailNotAvailableError(
                f"video {meta['id']!r} has no thumbnail {key!r}; make it with extract_frame_thumbnails"
            )
        return f"{self.scene_engine_url}/videos/{quote(meta['id'], safe='')}/thumbnail/{quote(key, safe='')}"

    def make_video_from_image_uris(
        self,
        timestamps_image_uris_csv_filepath: str,
        sensor: str,
        width: int,
        height: int,
        image_format: str,
        session_uid: str | None = None,
        video_id: str | None = None,
        tags: list[str] | None = None,
        set_id: str | None = None,
        image_skip_factor: int = 1,
        wait_for_completion: bool = False,
    ) -> str:
        """Start a job encoding the images of a ``timestamp,image_uri`` CSV into an H.264 MP4 video (sorted by
        timestamp, every ``image_skip_factor``-th image, at the mean rate of the kept images); returns the job id.
        Image URIs are http(s)://, s3://, file:// (read with your organization's rights) or
        ``scenebase://images/<id>``. ``session_uid`` is stored on the video (no session entity: sessions are not
        built yet)."""
        path = Path(timestamps_image_uris_csv_filepath)
        if not path.is_file():
            raise InvalidArgumentsError(f"CSV file {str(path)!r} does not exist")
        params = {"sensor": sensor, "width": width, "height": height, "image_format": image_format,
                  "session_uid": session_uid, "video_id": video_id, "tags": tags, "set_id": set_id,
                  "image_skip_factor": image_skip_factor}  # fmt: skip
        with path.open("rb") as fh:
            files = [("params", (None, json.dumps(params), "application/json")), ("csv", (path.name, fh, "text/csv"))]
            answer = self._request("POST", "/v1/videos/make_video_from_image_uris/", files=files, error=JobError)
        job_id = str(answer["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    def get_video_bytes(self, video_id: str, thumbnail_tag: str | None = None) -> bytes:
        """The original video (or a stored thumbnail/rendition by tag). Not in the seed."""
        video_id = quote(standardize_id(video_id), safe="")
        path = f"/v1/videos/{video_id}/file" if thumbnail_tag is None else (
            f"/v1/videos/{video_id}/thumbnail/{quote(thumbnail_tag, safe='')}")  # fmt: skip
        self._server_status()
        return self._http.request("GET", path, error=AssetError).content
