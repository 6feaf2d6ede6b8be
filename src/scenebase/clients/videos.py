"""Video ingestion and video jobs: renditions, frame thumbnails, concatenation, videos made from images."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from scenebase.clients.annotations import AnnotationsMixin
from scenebase.clients.upload import UploadItem
from scenebase.domain.ids import standardize_id
from scenebase.domain.timeutil import to_epoch, to_iso
from scenebase.errors import (
    AssetError,
    IndexingException,
    InvalidArgumentsError,
    JobError,
    SessionError,
    ThumbnailNotAvailableError,
)
from scenebase.models.assets import Video

log = logging.getLogger("scenebase.client")


def _set_list(set_id: str | Sequence[str] | None) -> list[str]:
    if set_id is None:
        return []
    return [set_id] if isinstance(set_id, str) else list(set_id)


def _no_job_id(job_id: str | None) -> None:
    if job_id is not None:
        raise NotImplementedError("job_id: scenebase names its jobs itself; call without job_id")


class VideosMixin(AnnotationsMixin):
    def _add_videos(
        self, videos: Sequence[Video], set_id: str | Sequence[str], compress: bool, progress: bool | None
    ) -> tuple[list[str | None], list[dict[str, Any]], list[str]]:
        """Upload, then add each ingested video's annotations (FACTS 6.4) at their frames' times."""
        options = {"compress_videos": bool(compress)}
        items = [UploadItem.of(video) for video in videos]
        out = self._upload_media("videos", items, _set_list(set_id), True, options, progress)
        errors = out.errors
        annotated = [i for v, i in zip(videos, out.ids, strict=True) if i is not None and v.annotations]
        if annotated:
            times = self._frame_times(annotated)
            errors = sorted(errors + self._annotate_media(videos, out.ids, progress=progress, time_of=times),
                            key=lambda e: e["index"])  # fmt: skip
        return out.ids, errors, out.job_ids

    def _frame_times(self, video_ids: list[str]) -> Callable[[str, Any], str | None]:
        """``(video id, annotation) -> time`` of the annotated frame: the video's start plus frame / fps, as the
        server probed them (the client cannot know the fps before the upload)."""
        docs = {i: self._request("GET", f"/v1/videos/meta/{quote(standardize_id(i), safe='')}", error=AssetError)
                for i in video_ids}  # fmt: skip

        def time_of(video_id: str, ann: Any) -> str | None:
            doc = docs[video_id]
            start = doc.get("start_time") or doc.get("timestamp")
            frame = ann.get("frame") if isinstance(ann, dict) else getattr(ann, "frame", None)
            fps = doc.get("fps")
            if start is None or not isinstance(frame, int) or not fps:
                return str(start) if start is not None else None
            return to_iso(to_epoch(start) + frame / float(fps))

        return time_of

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
        ``create_session`` (without ``session_uid``) makes a ``videos`` session named after the file (or the id) and
        returns ``(video_id, session_uid)`` (FACTS 10.3; sensor default ``main``); ``add_to_session`` with
        ``session_uid`` puts the video on that session's timeline (a ``video`` media entity over its span; the
        session grows to cover it). ``enrichments`` go to the session entity; ``buffered_write`` changes nothing
        (every write is immediate)."""
        if not set_id:
            raise InvalidArgumentsError("add_video needs set_id (a videos set)")
        if create_session and session_uid:
            raise InvalidArgumentsError("create_session makes a new session: give no session_uid with it")
        video = Video(id=id, path=video_path, url=video_url, uri=video_uri, sensor=sensor, session_uid=session_uid,
                      aux_metadata=aux_metadata, annotations=annotations, tags=tags,
                      start_timestamp=start_timestamp)  # fmt: skip
        if create_session and sensor is None:
            video.sensor = "main"
        ids, errors, jobs = self._add_videos([video], set_id, compress_video, progress=False)
        if errors:
            raise self._single_error(errors)
        for job_id in jobs:
            self._job(job_id).wait(show_progress=False)
        video_id = str(ids[0])
        if create_session:
            name = Path(video_path or video_url or video_uri or "").stem or video_id
            body = {"session_name": name, "raw_videos": {name: video_id}, "enrichments": enrichments,
                    "concatenated": True}  # fmt: skip
            return video_id, self._index_videos(body)  # type: ignore[return-value]  # FACTS 10.3: (id, uid)
        if add_to_session and session_uid:
            self._index_videos({"session_uid": session_uid, "raw_videos": {video_id: video_id},
                                "enrichments": enrichments})  # fmt: skip
        return video_id

    def _index_videos(self, body: dict[str, Any], wait: bool = True) -> str:
        """Put uploaded videos on a session timeline (``POST /v1/indexing/index_video_session/``); waits for the
        job unless told not to and returns the session uid."""
        out = self._request("POST", "/v1/indexing/index_video_session/", json=body, error=SessionError)
        if wait:
            self._job(str(out["job_id"])).wait(show_progress=False)
        return str(out["session_uid"])

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
        returning. ``add_to_session`` puts every video on its session's timeline; the videos must all name the same
        ``session_uid`` (SessionError otherwise)."""
        sessions = {v.session_uid for v in videos}
        if add_to_session and (len(sessions) != 1 or None in sessions):
            raise SessionError(
                f"add_to_session needs every video to name the same session_uid, got {sorted(map(str, sessions))}"
            )
        if not set_id:
            raise InvalidArgumentsError("add_videos needs set_id (a videos set)")
        if not videos:
            self.last_errors = []
            return []
        ids, errors, jobs = self._add_videos(list(videos), set_id, compress_videos, progress=None)
        self._report(errors, "video")
        for job_id in jobs:
            self._job(job_id).wait()
        added = [i for i in ids if i is not None]
        if add_to_session and added:
            self._index_videos({"session_uid": videos[0].session_uid, "raw_videos": {i: i for i in added},
                                "enrichments": enrichments})  # fmt: skip
        return added

    def submit_video_indexing_request(
        self,
        session_name: str,
        video_session_data: dict[str, Any] | list[dict[str, Any]] | None = None,
        video_filenames: list[str] | None = None,
        raw_videos: dict[str, str] | None = None,
        session_formatting_strategy: str | None = None,
        extraction_config: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
        retry: bool = False,
        enrichments: list[Any] | None = None,
        session_uid: str | None = None,
    ) -> dict[str, str]:
        """Index uploaded videos into a session (the ``videos`` session ``session_name``, created when missing, or
        ``session_uid``): each becomes a ``video`` media entity over its span, its sensor a session camera, and
        the session is resolved. Name the videos by ``raw_videos`` (file name -> video id),
        ``video_session_data`` (``{"asset_ids": [...]}``) or ``video_filenames`` (as uploaded). Returns
        ``{"job_id", "session_uid"}``; IndexingException when the job fails. ``extraction_config`` and
        ``session_formatting_strategy`` are not built (a 400 names them)."""
        body = {"session_name": session_name, "session_uid": session_uid, "raw_videos": raw_videos,
                "video_session_data": video_session_data, "video_filenames": video_filenames,
                "extraction_config": extraction_config, "session_formatting_strategy": session_formatting_strategy,
                "retry": retry, "enrichments": enrichments}  # fmt: skip
        out = self._request("POST", "/v1/indexing/index_video_session/", json=body, error=IndexingException)
        if wait_for_completion:
            try:
                self._job(str(out["job_id"])).wait()
            except JobError as e:
                raise IndexingException(f"video indexing failed: {e.message}", details=e.details) from e
        return {"job_id": str(out["job_id"]), "session_uid": str(out["session_uid"])}

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
