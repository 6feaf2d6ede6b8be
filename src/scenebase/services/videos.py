"""Video-only work on top of the generic media seam (FACTS 10.2-10.4): renditions and poster thumbnails
(compress_videos), frame thumbnails (extract_frame_thumbnails), concatenation, and videos made from images.

Every request is checked before a job is queued (ids, frame numbers, tags, sets, metadata), so bad input is a 4xx
naming the video and the problem; the jobs note failures per video and return them in ``failed``. New videos
(concatenations, videos from images) are ingested through ``IngestService`` like uploads: probed, stored, written
in one transaction. Work files live in ``<data_dir>/tmp`` and are removed when a job ends, however it ends.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from scenebase.domain.ids import new_id, standardize_id
from scenebase.media.video import (
    RENDITION_PRESETS,
    VideoDecodeError,
    concatenate_videos,
    extract_frames,
    frame_thumbnail,
    make_rendition,
)
from scenebase.services.assets import AssetService
from scenebase.services.errors import InvalidArgument, NotFound, ServiceError, UnsupportedMedia
from scenebase.services.ingest import IncomingItem, IngestService
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.kinds import FileMedia, KindRegistry, Rendition
from scenebase.services.kinds.videos import (
    DEFAULT_FRAME_TAGS,
    POSTER_PRESETS,
    RENDITION_TAG_PREFIX,
    frame_tag,
    image_rendition,
    is_reserved_tag,
    video_source,
)
from scenebase.services.media import MediaService
from scenebase.services.sets import SetService
from scenebase.services.sources import SourceReader
from scenebase.services.video_from_images import FrameList, ImageFrames, parse_frame_list
from scenebase.storage.blobs import BlobStore
from scenebase.storage.scope import Scope

VIDEOS = "videos"
#: frame thumbnails written to the catalog per document update (bounds the encoded images held in memory)
FRAME_BATCH = 24
#: threads encoding frame thumbnails while frames are decoded, and decoded frames waiting for them at most
THUMBNAIL_THREADS = 2
THUMBNAILS_AHEAD = 8
#: most frames one extract_frame_thumbnails request may ask for, per video
MAX_FRAMES_PER_REQUEST = 10_000


def frame_renditions(image: Image.Image, number: int, tags: list[str]) -> dict[str, Rendition]:
    """The thumbnails ``<tag>_frame_<number>`` of one decoded frame."""
    out = {}
    for tag in tags:
        max_size, fmt = POSTER_PRESETS[tag]
        data, width, height, out_format = frame_thumbnail(image, max_size, fmt)
        out[frame_tag(tag, number)] = image_rendition(data, width, height, out_format, frame=number)
    return out


class VideoService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = (
        "video_compression", "video_concatenation", "video_extraction", "media_extraction",
    )  # fmt: skip

    def __init__(
        self,
        assets: AssetService,
        media: MediaService,
        ingest: IngestService,
        sets: SetService,
        jobs: JobService,
        blobs: BlobStore,
        sources: SourceReader,
        kinds: KindRegistry,
        tmp_dir: Path,
    ) -> None:
        self.assets = assets
        self.media = media
        self.ingest = ingest
        self.sets = sets
        self.jobs = jobs
        self.blobs = blobs
        self.kind = kinds.get(VIDEOS)
        self.frames = ImageFrames(sources, assets, media)
        self.tmp_dir = tmp_dir

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("video_compression", self._compress_job)
        registry.register("video_concatenation", self._concatenate_job)
        registry.register("video_extraction", self._extract_job)
        registry.register("media_extraction", self._from_images_job)

    # ------------------------------------------------------------------ requests

    def _own_videos(self, scope: Scope, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The caller's own videos by standardized id; 404 naming every id that is not one."""
        wanted = list(dict.fromkeys(standardize_id(i) for i in ids))
        docs = {i: d for i, d in self.assets.get_many(scope, VIDEOS, wanted).items() if d.get("owner") == scope.org_id}
        missing = [i for i in wanted if i not in docs]
        if missing:
            raise NotFound(f"no videos with ids {missing}", resource=VIDEOS)
        return {i: docs[i] for i in wanted}

    def _submit(self, scope: Scope, job_type: str, params: dict[str, Any], description: str) -> str:
        return str(self.jobs.submit(scope, job_type, params, description=description, asset_type=VIDEOS)["id"])

    def compress(
        self,
        scope: Scope,
        ids: list[str],
        desired_shape: list[int] | None,
        thumbnail_tag: str | None,
        use_preset: str | None,
    ) -> str:
        """A ``video_compression`` job: an H.264 MP4 rendition of each video, by preset (stored under
        ``video_<preset>``) or fitting ``desired_shape`` (height, width) under ``thumbnail_tag``."""
        renditions: dict[str, list[int] | None] = {}
        if use_preset is not None:
            if use_preset not in RENDITION_PRESETS:
                raise InvalidArgument(
                    f"unknown video preset {use_preset!r}; presets: {sorted(RENDITION_PRESETS)} (stored as "
                    f"{RENDITION_TAG_PREFIX}<preset>); poster thumbnails {sorted(POSTER_PRESETS)} are made on request",
                    resource=VIDEOS,
                )
            size = RENDITION_PRESETS[use_preset]
            renditions[RENDITION_TAG_PREFIX + use_preset] = list(size) if size else None
        else:
            if not desired_shape or len(desired_shape) < 2 or not thumbnail_tag:
                raise InvalidArgument("give use_preset, or desired_shape (height, width) and thumbnail_tag")
            if any(x <= 0 for x in desired_shape[:2]):
                raise InvalidArgument(f"desired_shape must be positive, got {desired_shape}")
            if is_reserved_tag(thumbnail_tag):
                raise InvalidArgument(f"thumbnail_tag {thumbnail_tag!r} is reserved for presets or frame thumbnails")
            renditions[thumbnail_tag] = [int(desired_shape[1]), int(desired_shape[0])]
        docs = self._own_videos(scope, ids)
        params = {"ids": list(docs), "renditions": renditions}
        return self._submit(scope, "video_compression", params, f"video renditions {sorted(renditions)}")

    def extract_frame_thumbnails(
        self, scope: Scope, ids: list[str], frames: list[int], thumbnail_tags: list[str] | None
    ) -> str:
        """A ``video_extraction`` job storing ``<tag>_frame_<n>`` thumbnails. Frame numbers past the end of a
        video are refused here, naming the video and the numbers."""
        tags = list(dict.fromkeys(thumbnail_tags or DEFAULT_FRAME_TAGS))
        unknown = [t for t in tags if t not in POSTER_PRESETS]
        if unknown:
            raise InvalidArgument(f"unknown frame thumbnail tags {unknown}; tags: {sorted(POSTER_PRESETS)}")
        numbers = sorted(set(frames))
        if not numbers or len(numbers) > MAX_FRAMES_PER_REQUEST:
            raise InvalidArgument(f"give 1 to {MAX_FRAMES_PER_REQUEST} frame numbers, got {len(numbers)}")
        if numbers[0] < 0:
            raise InvalidArgument(f"frame numbers start at 0, got {numbers[0]}")
        docs = self._own_videos(scope, ids)
        problems = []
        for video_id, doc in docs.items():
            past = [n for n in numbers if n >= int(doc.get("frame_count") or 0)]
            if past:
                name = (doc.get("object_access") or {}).get("filename") or video_id
                problems.append(
                    f"{video_id} ({name}): frames {past[:5]}{' ...' if len(past) > 5 else ''} are past the end "
                    f"(the video has {doc.get('frame_count')} frames, 0..{int(doc.get('frame_count') or 0) - 1})"
                )
        if problems:
            raise InvalidArgument("; ".join(problems), resource=VIDEOS)
        params = {"ids": list(docs), "frames": numbers, "thumbnail_tags": tags}
        return self._submit(scope, "video_extraction", params, f"{len(numbers)} frame thumbnails per video")

    def _target_sets(self, scope: Scope, meta: dict[str, Any]) -> list[str]:
        """``sets`` and/or ``set_id`` of a new video's metadata, checked writable (videos sets, unlocked)."""
        given = meta.pop("set_id", None)
        sets = list(meta.pop("sets", None) or [])
        sets += [given] if isinstance(given, str) else list(given or [])
        if not all(isinstance(s, str) for s in sets):
            raise InvalidArgument("sets must be a list of set ids")
        return self.sets.check_writable(scope, list(dict.fromkeys(standardize_id(s) for s in sets)), VIDEOS)

    def concatenate(
        self, scope: Scope, ids: list[str], output_video_id: str, video_metadata: dict[str, Any] | None
    ) -> str:
        """A ``video_concatenation`` job joining ``ids`` in order into a new video ``output_video_id`` tagged
        ``concatenated``: it starts when the first video starts and lasts the sum of their durations."""
        if not ids:
            raise InvalidArgument("give the ids of the videos to concatenate")
        if not isinstance(output_video_id, str) or not output_video_id.strip():
            raise InvalidArgument("output_video_id must be a non-empty string")
        out_id = standardize_id(output_video_id)
        wanted = [standardize_id(i) for i in ids]
        if out_id in wanted:
            raise InvalidArgument(f"output_video_id {out_id!r} is one of the videos being concatenated")
        found = self.assets.get_many(scope, VIDEOS, wanted)  # videos shared with the caller may be read too
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound(f"no videos with ids {list(dict.fromkeys(missing))}", resource=VIDEOS)
        meta = dict(video_metadata or {})
        if "timestamp" in meta or "id" in meta:
            raise InvalidArgument("video_metadata cannot set id or timestamp: they are output_video_id and the "
                                  "first video's start")  # fmt: skip
        set_ids = self._target_sets(scope, meta)
        meta = self.kind.validate(meta)  # unknown or server-derived fields fail now, not in the job
        meta["tags"] = list(dict.fromkeys([*(meta.get("tags") or []), "concatenated"]))
        params = {"ids": wanted, "output_video_id": out_id, "metadata": meta, "set_ids": set_ids}
        return self._submit(scope, "video_concatenation", params, f"concatenate {len(wanted)} videos into {out_id}")

    def make_from_images(
        self,
        scope: Scope,
        csv_text: str,
        width: int,
        height: int,
        image_format: str,
        image_skip_factor: int,
        metadata: dict[str, Any],
    ) -> tuple[str, str]:
        """A ``media_extraction`` job encoding the images of a ``timestamp,image_uri`` CSV into an H.264 MP4
        (FACTS 10.4); returns (job id, id of the video it will write)."""
        frame_list = parse_frame_list(csv_text, image_skip_factor, width, height, image_format)
        for uri in dict.fromkeys(frame_list.uris):
            self.frames.check(scope, uri)
        meta = {k: v for k, v in metadata.items() if v is not None}
        meta["id"] = standardize_id(meta.get("id") or new_id())  # chosen now: a retried job rewrites the same video
        set_ids = self._target_sets(scope, meta)
        meta = self.kind.validate(meta)
        params = {"frames": frame_list.to_params(), "metadata": meta, "set_ids": set_ids}
        job_id = self._submit(scope, "media_extraction", params, f"video {meta['id']} from {len(frame_list)} images")
        return job_id, meta["id"]

    # ------------------------------------------------------------------ jobs

    @contextlib.contextmanager
    def _workdir(self) -> Iterator[Path]:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.tmp_dir, prefix="video-job-") as tmp:
            yield Path(tmp)

    def _each_video(self, ctx: JobContext, ids: list[str], work: Any, what: str) -> tuple[int, list[str]]:
        """Run ``work(doc, index)`` for each video; a failure is noted and the video listed in ``failed``."""
        done, failed = 0, []
        ctx.stage(f"{what} of {len(ids)} videos")
        for i, video_id in enumerate(ids):
            ctx.check_cancelled()
            try:
                doc = self.assets.get(ctx.scope, VIDEOS, video_id)
                if doc.get("owner") != ctx.scope.org_id:
                    raise NotFound(f"no videos with id {video_id!r}")
                work(doc, i)
                done += 1
            except VideoDecodeError as e:
                failed.append(video_id)
                ctx.note(f"{video_id}: {e.problem}")
            except ServiceError as e:
                failed.append(video_id)
                ctx.note(f"{video_id}: {e.message}")
            ctx.progress(100.0 * (i + 1) / max(1, len(ids)))
        return done, failed

    def _compress_job(self, ctx: JobContext) -> dict[str, Any]:
        posters = list(ctx.params.get("posters") or [])
        renditions: dict[str, list[int] | None] = dict(ctx.params.get("renditions") or {})

        def work(doc: dict[str, Any], _i: int) -> None:
            if posters:
                self.media.make_thumbnails(ctx.scope, VIDEOS, doc, {p: None for p in posters})
            for tag, size in renditions.items():
                self._rendition(ctx.scope, doc, tag, (size[0], size[1]) if size else None)

        ids = [str(i) for i in ctx.params.get("ids") or []]
        done, failed = self._each_video(ctx, ids, work, f"making {sorted([*posters, *renditions])}")
        return {"compressed": done, "failed": failed}

    def _rendition(self, scope: Scope, doc: dict[str, Any], tag: str, max_size: tuple[int, int] | None) -> None:
        """An H.264 MP4 rendition written to a work file and stored as a blob from there (never held in memory)."""
        with self._workdir() as work, self.media.open_original(VIDEOS, doc) as media, media.local_path() as src:
            out = work / f"{tag}.mp4"
            info = make_rendition(src, out, max_size, name=doc["id"])
            size = out.stat().st_size
            key = f"thumbnails/{new_id()}.mp4"
            self.blobs.put_file(key, out, "video/mp4")
        entry = {"filename": f"{doc['id']}_{tag}.mp4", "key": key, "format": "MP4", "content_type": "video/mp4",
                 "size": size, "resolution": {"height": info.height, "width": info.width}, "duration": info.duration,
                 "fps": info.fps, "frame_count": info.frame_count, "codec": info.codec}  # fmt: skip
        try:
            self.assets.put(scope, VIDEOS, [{"id": doc["id"], "timestamp": doc["timestamp"],
                                             "thumbnails": {tag: entry}}], mode="merge")  # fmt: skip
        except BaseException:
            self.blobs.delete(key)
            raise
        old = ((doc.get("thumbnails") or {}).get(tag) or {}).get("key")
        if old and old != key:
            self.blobs.delete(old)

    def _extract_job(self, ctx: JobContext) -> dict[str, Any]:
        frames = [int(n) for n in ctx.params.get("frames") or []]
        tags = [str(t) for t in ctx.params.get("thumbnail_tags") or DEFAULT_FRAME_TAGS]
        ids = [str(i) for i in ctx.params.get("ids") or []]

        def work(doc: dict[str, Any], index: int) -> None:
            # thumbnails are encoded on other threads while the decoder goes on (both release the GIL)
            batch: dict[str, Rendition] = {}
            pending: deque[Future[dict[str, Rendition]]] = deque()
            stored = 0

            def collect(keep: int) -> None:
                nonlocal batch, stored
                while len(pending) > keep:
                    batch.update(pending.popleft().result())
                    stored += 1
                    if len(batch) >= FRAME_BATCH:
                        self.media.store_renditions(ctx.scope, VIDEOS, doc, batch)
                        batch = {}
                    ctx.progress(100.0 * (index + stored / len(frames)) / len(ids))

            with (
                self.media.open_original(VIDEOS, doc) as media,
                video_source(media) as src,
                ThreadPoolExecutor(THUMBNAIL_THREADS, thread_name_prefix="scenebase-thumbs") as pool,
            ):
                for number, image in extract_frames(src, frames, name=doc["id"]):
                    pending.append(pool.submit(frame_renditions, image, number, tags))
                    collect(THUMBNAILS_AHEAD)
                collect(0)
            if batch:
                self.media.store_renditions(ctx.scope, VIDEOS, doc, batch)

        done, failed = self._each_video(ctx, ids, work, f"extracting {len(frames)} frames as {tags}")
        return {"extracted": done, "frames": len(frames), "thumbnail_tags": tags, "failed": failed}

    def _ingest_result(self, ctx: JobContext, path: Path, meta: dict[str, Any], set_ids: list[str]) -> dict[str, Any]:
        """Ingest a video the job made (probed, stored, written like an upload); its metadata document."""
        item = IncomingItem(0, f"{meta['id']}.mp4", meta, FileMedia(path))
        result = self.ingest.ingest(ctx.scope, VIDEOS, [item], set_ids, overwrite=True)
        if result.errors:
            err = result.errors[0]
            raise UnsupportedMedia(f"the new video {meta['id']!r} was not stored: {err['error']}", resource=VIDEOS)
        return self.assets.get(ctx.scope, VIDEOS, meta["id"])

    def _concatenate_job(self, ctx: JobContext) -> dict[str, Any]:
        ids = [str(i) for i in ctx.params["ids"]]
        docs = [self.assets.get(ctx.scope, VIDEOS, i) for i in ids]
        meta = {**ctx.params.get("metadata", {}), "id": ctx.params["output_video_id"],
                "timestamp": docs[0]["timestamp"]}  # fmt: skip
        ctx.stage(f"joining {len(ids)} videos")
        with contextlib.ExitStack() as stack:
            paths = []
            for doc in docs:
                media = stack.enter_context(self.media.open_original(VIDEOS, doc))
                paths.append(stack.enter_context(media.local_path()))
            work = stack.enter_context(self._workdir())
            out = work / "concatenated.mp4"
            try:
                concatenate_videos(paths, out, names=[d["id"] for d in docs])
            except VideoDecodeError as e:
                ctx.note(f"{e.name}: {e.problem}")
                raise UnsupportedMedia(f"cannot concatenate: {e.name}: {e.problem}", resource=VIDEOS) from None
            ctx.progress(80.0, stage="storing the concatenated video")
            stored = self._ingest_result(ctx, out, meta, list(ctx.params.get("set_ids") or []))
        return {"video_id": stored["id"], "duration": stored["duration"], "frame_count": stored["frame_count"],
                "inputs": ids, "failed": []}  # fmt: skip

    def _from_images_job(self, ctx: JobContext) -> dict[str, Any]:
        frame_list = FrameList.from_params(ctx.params["frames"])
        meta = dict(ctx.params["metadata"])
        meta["timestamp"] = frame_list.start_iso
        with self._workdir() as work:
            out = work / "from_images.mp4"
            encoded = self.frames.encode(ctx, frame_list, out)
            ctx.progress(95.0, stage="storing the video")
            stored = self._ingest_result(ctx, out, meta, list(ctx.params.get("set_ids") or []))
        return {"video_id": stored["id"], "frames": len(frame_list), "fps": stored["fps"],
                "duration": stored["duration"], "start_time": stored["start_time"],
                "end_time": stored["end_time"], "failed": encoded.failed}  # fmt: skip
