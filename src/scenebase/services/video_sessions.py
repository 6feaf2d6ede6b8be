"""Videos on session timelines (FACTS 10.3, 11): the ``video_indexing`` job behind
``submit_video_indexing_request``, ``add_video(create_session=True)`` and ``add_video(s)(add_to_session=True)``.

Each video becomes a ``media`` entity named ``video`` covering its ``start_time..end_time`` (it extends the session
when it runs past it), its sensor is listed in the session's ``source_data`` and ``sensors`` (a camera), the video
document gets the session's uid, and the session is resolved. The session is created (type ``videos``) or found
before the request is answered, so the caller gets its uid at once; the job does the rest.
"""

from __future__ import annotations

from typing import Any, ClassVar

from scenebase.constants import SessionTypes
from scenebase.domain.ids import standardize_id
from scenebase.services.assets import AssetService
from scenebase.services.errors import InvalidArgument, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.session_timeline import TimelineService
from scenebase.services.sessions import SessionService
from scenebase.storage.scope import Scope

VIDEOS = "videos"
#: most videos one indexing request takes
MAX_VIDEOS = 1000


class VideoSessionService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("video_indexing",)

    def __init__(
        self, assets: AssetService, sessions: SessionService, timeline: TimelineService, jobs: JobService
    ) -> None:
        self.assets = assets
        self.sessions = sessions
        self.timeline = timeline
        self.jobs = jobs

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("video_indexing", self._indexing_job)

    def index(
        self,
        scope: Scope,
        video_ids: list[str],
        session_name: str | None = None,
        session_uid: str | None = None,
        sensor: str | None = None,
        enrichments: list[Any] | None = None,
        concatenated: bool = False,
    ) -> tuple[str, str]:
        """Queue the indexing of ``video_ids`` into a session (``session_uid``, or the ``videos`` session named
        ``session_name``, created when missing). Returns ``(job_id, session_uid)``."""
        if not video_ids or len(video_ids) > MAX_VIDEOS:
            raise InvalidArgument(f"index 1 to {MAX_VIDEOS} videos per request", resource="indexing")
        ids = list(dict.fromkeys(standardize_id(str(v)) for v in video_ids))
        found = {i for i, d in self.assets.get_many(scope, VIDEOS, ids).items() if d["owner"] == scope.org_id}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no videos with ids {missing[:10]}", resource=VIDEOS)
        if session_uid:
            uid = str(self.sessions.own(scope, session_uid)["id"])
        elif session_name:
            uid, _ = self.sessions.create(scope, session_name, SessionTypes.VIDEOS)
        else:
            raise InvalidArgument("give session_name or session_uid", resource="indexing")
        if sensor is not None and (not isinstance(sensor, str) or not sensor.strip()):
            raise InvalidArgument("sensor must be a non-empty string", resource="indexing")
        params = {"session_uid": uid, "video_ids": ids, "sensor": sensor, "enrichments": list(enrichments or []),
                  "concatenated": bool(concatenated)}  # fmt: skip
        row = self.jobs.submit(scope, "video_indexing", params, description=f"index {len(ids)} videos into a session",
                               asset_type="sessions", asset_id=uid)  # fmt: skip
        return str(row["id"]), uid

    def find_by_filenames(self, scope: Scope, filenames: list[str]) -> list[str]:
        """Ids of the caller's videos uploaded under these file names (the seed's ``video_filenames``; the newest
        upload of a name wins). File names are not in the search index (``object_access`` never is): this reads
        the organization's video documents in batches."""
        wanted = set(filenames)
        newest: dict[str, tuple[str, str]] = {}
        for batch in self.assets.scan(scope, VIDEOS, None, ids_only=False):
            for doc in batch:
                name = (doc.get("object_access") or {}).get("filename")
                if (
                    name in wanted
                    and doc["owner"] == scope.org_id
                    and (name not in newest or doc["created_at"] > newest[name][0])
                ):
                    newest[name] = (doc["created_at"], doc["id"])  # fmt: skip
        missing = [n for n in filenames if n not in newest]
        if missing:
            raise NotFound(f"no video uploaded as {missing[0]!r}", resource=VIDEOS)
        return [newest[n][1] for n in filenames]

    def _indexing_job(self, ctx: JobContext) -> dict[str, Any]:
        uid = str(ctx.params["session_uid"])
        session = self.sessions.own(ctx.scope, uid)
        docs = self.assets.get_many(ctx.scope, VIDEOS, list(ctx.params["video_ids"]))
        entities: list[dict[str, Any]] = []
        sources: list[dict[str, Any]] = []
        sensors: list[dict[str, Any]] = []
        aux: list[dict[str, Any]] = []
        patches: list[dict[str, Any]] = []
        ctx.stage(f"putting {len(docs)} videos on session {session['session_name']}")
        for video_id in ctx.params["video_ids"]:
            ctx.check_cancelled()
            doc = docs.get(video_id)
            if doc is None or doc["owner"] != ctx.scope.org_id:
                ctx.item_failed(video_id, "the video no longer exists")
                continue
            sensor = ctx.params.get("sensor") or doc.get("sensor") or "main"
            start, end = doc.get("start_time") or doc["timestamp"], doc.get("end_time") or doc["timestamp"]
            entities.append({"session": uid, "entity_id": video_id, "entity_name": "video", "entity_type": "media",
                             "entity_value": video_id, "influence": "interval", "timestamp": start,
                             "start_time": start, "end_time": end, "extend_session": True,
                             "enrichments": ctx.params.get("enrichments") or []})  # fmt: skip
            sources.append({"id": video_id, "type": VIDEOS, "sensor": sensor})
            if sensor not in {s["name"] for s in sensors}:
                sensors.append({"name": sensor, "type": "camera"})
            aux.append({"id": video_id, "type": "concatenated_video" if ctx.params.get("concatenated") else "video",
                        "tags": [sensor]})  # fmt: skip
            patches.append({"id": video_id, "timestamp": doc["timestamp"], "session_uid": uid})
        if entities:
            out = self.sessions.add_entities(ctx.scope, entities, urgent=True)
            for rejected in out["rejected"]:
                ctx.item_failed(str(rejected.get("entity_id") or rejected["index"]), str(rejected.get("error")))
            self.sessions.add_source_data(ctx.scope, uid, sources, sensors, replace=False)
            self.sessions.add_auxiliary_data(ctx.scope, uid, aux, replace=False)
            self.assets.put(ctx.scope, VIDEOS, patches, mode="merge")
        ctx.progress(50.0, stage="resolving the session")
        self.timeline.resolve_now(ctx.scope, uid, ctx)
        return {"session_uid": uid, "videos": len(patches)}
