"""annotations_to_objects (FACTS 6.8): objects are crops of annotated images, described by metadata only.

For each entity of the chosen annotation types with a 2-D extent, an object records its parent image, the
annotation and entity it came from, its label and source, the entity's box and the crop box (the box widened by
``margin_pixels`` on each side, or by ``margin_ratio`` of its width and height, clipped to the image). Object ids
are ``md5(annotation id + entity uid)``, so running the job again updates the same objects. Without
``create_objects`` the job only records each entity's area on its image (``aux.object_areas``).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from scenebase.constants import EntityInfluenceTypes, EntityTypes
from scenebase.domain import annotations as rules
from scenebase.media.crops import clip_box
from scenebase.media.images import MAX_PIXELS
from scenebase.services.assets import AssetService, parse
from scenebase.services.errors import InvalidArgument
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.sessions import SessionService
from scenebase.services.sets import SetService
from scenebase.storage.blobs import BlobNotFound, BlobStore
from scenebase.storage.scope import Scope

KIND = "objects"
#: annotation types objects are made from when none is named (the seed's default)
DEFAULT_SOURCE_TYPES = (rules.POLYGON, rules.TWO_D_BOUNDING_BOX, rules.TWO_D_POSE)
CHUNK = 500
#: the session entity an object becomes (FACTS 6.8)
OBJECT_EVENTS = "objects"


def object_id(annotation_id: str, uid: str) -> str:
    return hashlib.md5(f"{annotation_id}{uid}".encode(), usedforsecurity=False).hexdigest()


def polygon_area(points: list[tuple[float, float]]) -> float:
    """Shoelace area of a closed polygon."""
    n = len(points)
    if n < 3:
        return 0.0
    s = sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1] for i in range(n))
    return abs(s) / 2.0


def entity_area(entity: dict[str, Any]) -> float | None:
    """Pixel area of a box or polygon entity (pose and point: their box); None without 2-D geometry."""
    box = rules.entity_box(entity)
    if box is None:
        return None
    if entity.get("annotation_type") == rules.POLYGON:
        return polygon_area(rules.entity_points(entity))
    return (box[2] - box[0]) * (box[3] - box[1])


def crop_box(
    box: tuple[float, float, float, float], width: int, height: int, margin_ratio: float, margin_pixels: int | None
) -> list[int]:
    x0, y0, x1, y1 = box
    dx = margin_pixels if margin_pixels is not None else margin_ratio * (x1 - x0)
    dy = margin_pixels if margin_pixels is not None else margin_ratio * (y1 - y0)
    return list(clip_box((x0 - dx, y0 - dy, x1 + dx, y1 + dy), width, height))


class ObjectService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("annotations_to_objects",)

    def __init__(
        self, assets: AssetService, sets: SetService, blobs: BlobStore, jobs: JobService, sessions: SessionService
    ) -> None:
        self.assets = assets
        self.sets = sets
        self.blobs = blobs
        self.jobs = jobs
        self.sessions = sessions

    def session_for(self, scope: Scope, session_uid: Any, add_to_session: Any = True) -> str | None:
        """The uid of the caller's session that objects are added to (FACTS 6.8), or None; an unknown session is
        an error before anything is made."""
        if not isinstance(add_to_session, bool):
            raise InvalidArgument(f"add_to_session must be true or false, got {add_to_session!r}", resource=KIND)
        if session_uid is None or not add_to_session:
            return None
        if not isinstance(session_uid, str) or not session_uid:
            raise InvalidArgument(f"session_uid must be a non-empty string, got {session_uid!r}", resource=KIND)
        return str(self.sessions.own(scope, session_uid)["id"])

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("annotations_to_objects", self._job)

    def submit(self, scope: Scope, request: dict[str, Any]) -> str:
        """Check an annotations_to_objects request and start its job."""
        ids, search = request.get("ids"), request.get("search")
        if ids is None and search is None:
            raise InvalidArgument("give the ids of annotations or a search over annotations", resource=KIND)
        if search is not None:
            parse(search)
        ratio = request.get("margin_ratio", 0.1)
        pixels = request.get("margin_pixels")
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio < 0:
            raise InvalidArgument(f"margin_ratio must be a number >= 0, got {ratio!r}", resource=KIND)
        if pixels is not None and (isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0):
            raise InvalidArgument(f"margin_pixels must be an integer >= 0, got {pixels!r}", resource=KIND)
        source_type = request.get("source_annotation_type")
        if source_type is not None and source_type not in rules.ANNOTATION_TYPES:
            raise InvalidArgument(f"unknown source_annotation_type {source_type!r}", resource=KIND)
        session = self.session_for(scope, request.get("session_uid"), request.get("add_to_session", True))
        output_set = request.get("output_set_id")
        if output_set and request.get("create_objects"):
            self.sets.check_writable(scope, [str(output_set)], KIND)
        params = {"ids": ids, "search": search, "create_objects": bool(request.get("create_objects")),
                  "margin_ratio": float(ratio), "margin_pixels": pixels, "source_annotation_type": source_type,
                  "output_set_id": output_set, "session_uid": session}  # fmt: skip
        row = self.jobs.submit(scope, "annotations_to_objects", params, description="objects from annotations",
                               asset_type=KIND)  # fmt: skip
        return str(row["id"])

    # ------------------------------------------------------------------ the job

    def _job(self, ctx: JobContext) -> dict[str, Any]:
        p, scope = ctx.params, ctx.scope
        ids = self.assets.resolve_ids(scope, "annotations", p.get("ids"), p.get("search"))
        types = (p["source_annotation_type"],) if p.get("source_annotation_type") else DEFAULT_SOURCE_TYPES
        made, areas, skipped, events = 0, 0, 0, 0
        ctx.stage(f"objects from {len(ids)} annotations")
        for start in range(0, len(ids), CHUNK):
            ctx.check_cancelled()
            anns = [a for a in self.assets.get_many(scope, "annotations", ids[start : start + CHUNK]).values()
                    if a.get("owner") == scope.org_id]  # fmt: skip
            images = self.assets.get_many(scope, "images", sorted({a["asset_id"] for a in anns}))
            objects: list[dict[str, Any]] = []
            patches: dict[str, list[dict[str, Any]]] = {}
            for ann in anns:
                image = images.get(ann["asset_id"])
                if ann.get("media_type", "images") != "images" or image is None:
                    skipped += 1
                    ctx.note(f"annotation {ann['id']}: objects are cut from images; its image was not found")
                    continue
                for entity in ann.get("annotation_entities") or []:
                    area = self._area(ann, entity)
                    if area is not None:
                        patches.setdefault(image["id"], []).append(
                            {
                                "annotation_id": ann["id"],
                                "uid": entity.get("uid"),
                                "label": entity.get("label"),
                                "area": area,
                            }
                        )
                    if p.get("create_objects") and ann.get("annotation_type") in types:
                        obj = self._object(ann, entity, image, p)
                        if obj is not None:
                            objects.append(obj)
            if objects:
                self.assets.put(scope, KIND, objects, "replace")
                made += len(objects)
                if p.get("session_uid"):
                    events += self._add_to_session(ctx, str(p["session_uid"]), objects)
            if patches:
                areas += self._record_areas(scope, images, patches)
            ctx.progress(100.0 * min(len(ids), start + CHUNK) / max(1, len(ids)))
        result = {"objects": made, "images_with_areas": areas, "skipped_annotations": skipped}
        if p.get("session_uid"):
            result["session_uid"], result["session_events"] = p["session_uid"], events
        return result

    def _add_to_session(self, ctx: JobContext, session_uid: str, objects: list[dict[str, Any]]) -> int:
        """One ``objects`` event per object at its image's time (FACTS 6.8), valued ``<label>.<sensor>.<provider>``
        so that a session search finds where an object of a label was seen. Events are ``state_set`` entities, as
        ``add_event_interval`` writes them: the several objects of one frame are all there at once. The session
        grows to cover them and is resolved after the usual debounce. Returns the events accepted."""
        entities = []
        for obj in objects:
            value = ".".join(str(obj.get(k) or "") for k in ("label", "sensor", "provider"))
            entities.append({"session": session_uid, "entity_id": obj["id"], "entity_name": OBJECT_EVENTS,
                             "entity_type": EntityTypes.STATE_SET, "entity_value": [value],
                             "influence": EntityInfluenceTypes.INTERVAL, "timestamp": obj["timestamp"],
                             "start_time": obj["timestamp"], "end_time": obj["timestamp"],
                             "extend_session": True})  # fmt: skip
        out = self.sessions.add_entities(ctx.scope, entities)
        for rejected in out["rejected"]:
            ctx.item_failed(str(rejected.get("entity_id") or rejected["index"]),
                            f"not added to session {session_uid}: {rejected.get('error')}")  # fmt: skip
        return int(out["accepted"])

    def _object(
        self, ann: dict[str, Any], entity: dict[str, Any], image: dict[str, Any], p: dict[str, Any]
    ) -> dict[str, Any] | None:
        box = rules.entity_box(entity)
        width, height = image.get("width"), image.get("height")
        if box is None or not width or not height:
            return None
        crop = crop_box(box, int(width), int(height), float(p.get("margin_ratio", 0.1)), p.get("margin_pixels"))
        doc = {
            "id": object_id(ann["id"], str(entity.get("uid"))),
            "timestamp": image["timestamp"],
            "media_type": "object",
            "asset_id": image["id"],
            "annotation_id": ann["id"],
            "entity_uid": entity.get("uid"),
            "annotation_type": ann.get("annotation_type"),
            "label": entity.get("label"),
            "provider": ann.get("provider"),
            "version": ann.get("version"),
            "annotation_group": ann.get("annotation_group"),
            "confidence": entity.get("confidence"),
            "category_id": entity.get("category_id"),
            "bbox": list(box),
            "crop_box": crop,
            "width": crop[2] - crop[0],
            "height": crop[3] - crop[1],
            "area": entity_area(entity),
            "parent_width": width,
            "parent_height": height,
            "sensor": image.get("sensor"),
            "session_uid": image.get("session_uid"),
            "sets": [p["output_set_id"]] if p.get("output_set_id") else [],
            "aux": {"attributes": entity.get("attributes") or {}},
            "thumbnails": {},
        }
        return {k: v for k, v in doc.items() if v is not None}

    def _area(self, ann: dict[str, Any], entity: dict[str, Any]) -> float | None:
        """An entity's area in pixels: from its geometry, or counted in its segmentation mask."""
        mask_id = entity.get("mask_id")
        if mask_id and entity.get("mask_color"):
            access = (ann.get("masks") or {}).get(mask_id) or {}
            if access.get("key"):
                return self._mask_area(str(access["key"]), str(entity["mask_color"]), entity.get("mask_type"))
            return None
        return entity_area(entity)

    def _mask_area(self, key: str, color: str, mask_type: str | None) -> float | None:
        try:
            data = self.blobs.get(key)
        except BlobNotFound:
            return None
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                return None
            if mask_type == "SingleColor":
                return float(np.count_nonzero(np.asarray(im.convert("L"))))
            rgb = np.asarray(im.convert("RGB"))
        hexcolor = color.lstrip("#")
        if len(hexcolor) == 3:
            hexcolor = "".join(c * 2 for c in hexcolor)
        target = np.array([int(hexcolor[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.uint8)
        return float(np.count_nonzero(np.all(rgb == target, axis=-1)))

    def _record_areas(
        self, scope: Scope, images: dict[str, dict[str, Any]], patches: dict[str, list[dict[str, Any]]]
    ) -> int:
        docs = []
        for image_id, entries in patches.items():
            image = images[image_id]
            if image.get("owner") != scope.org_id:
                continue
            done = {(e["annotation_id"], e["uid"]) for e in entries}
            old = [e for e in (image.get("aux") or {}).get("object_areas") or []
                   if isinstance(e, dict) and (e.get("annotation_id"), e.get("uid")) not in done]  # fmt: skip
            docs.append({"id": image_id, "timestamp": image["timestamp"], "aux": {"object_areas": old + entries}})
        if docs:
            self.assets.put(scope, "images", docs, "merge_replace_lists")
        return len(docs)
