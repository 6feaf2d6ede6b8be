"""Annotations for ``add_annotation(s)`` and ``add_image(s)`` (seed: ``scenebox.models.annotation``, FACTS 2.13,
6.1-6.3).

``Annotation(**kwargs)`` takes the seed's keywords; the wrappers take their shapes first and the same keywords::

    BoundingBoxAnnotation([BoundingBox(label="car", x_min=1, x_max=20, y_min=5, y_max=30)],
                          image_id="frame_1", provider="labeler", version="v2")

Everything is checked when the object is built; InvalidAnnotationError names the annotation, the entity and the
problem. :meth:`Annotation.to_dic` is the document sent to the server (which checks it again).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from scenebase.domain import annotations as rules
from scenebase.domain.ids import new_id, standardize_id
from scenebase.errors import InvalidAnnotationError, InvalidTimeError
from scenebase.models.annotation_shapes import (
    BoundingBox,
    Connection,
    Cuboid2D,
    Cuboid3D,
    Ellipse,
    Label,
    Line,
    Point,
    Polygon,
    Pose,
    Shape,
)

#: the keywords Annotation(**kwargs) reads (FACTS 2.13); anything else is refused, naming it
ANNOTATION_KEYWORDS = frozenset(
    {"id", "timestamp", "asset_id", "image_id", "video_id", "lidar_id", "media_type", "annotation_type", "provider",
     "annotation_entities", "annotation_meta", "sets", "set_id", "session_uid", "sensor", "version",
     "annotation_group", "masks", "tags", "frame", "aux", "raw_annotation_str", "raw_annotation_json",
     "raw_annotation_url", "raw_annotation_uri"}
)  # fmt: skip
_ASSET_KEYS = ("asset_id", "image_id", "video_id", "lidar_id")
_RAW_KEYS = ("raw_annotation_str", "raw_annotation_json", "raw_annotation_url", "raw_annotation_uri")


class AnnotationEntity:
    """One entity as a dictionary-like object (FACTS 6.2); :meth:`from_dict` reads a stored one."""

    def __init__(
        self,
        label: str,
        annotation_type: str,
        class_name: str | None = None,
        coordinates: list[dict[str, float]] | None = None,
        confidence: float | None = None,
        mask_color: str | None = None,
        mask_id: str | None = None,
        uid: str | None = None,
        category_id: int | str | None = None,
        related_annotations: list[dict[str, str]] | None = None,
        attributes: dict[str, Any] | None = None,
        mask_type: str | None = None,
        keypoints: list[dict[str, Any]] | None = None,
        connections: list[dict[str, Any]] | None = None,
    ) -> None:
        raw = {"label": label, "annotation_type": annotation_type, "class_name": class_name,
               "coordinates": coordinates, "confidence": confidence, "mask_color": mask_color, "mask_id": mask_id,
               "uid": uid, "category_id": category_id, "related_annotations": related_annotations,
               "attributes": attributes, "mask_type": mask_type, "keypoints": keypoints,
               "connections": connections}  # fmt: skip
        try:
            self._dict = rules.normalize_entity({k: v for k, v in raw.items() if v is not None}, "entity",
                                                allow_int_confidence=False)  # fmt: skip
        except rules.AnnotationProblem as e:
            raise InvalidAnnotationError(str(e)) from None
        for key, value in self._dict.items():
            setattr(self, key, value)

    @classmethod
    def from_dict(cls, entity: dict[str, Any]) -> AnnotationEntity:
        known = {"label", "annotation_type", "class_name", "coordinates", "confidence", "mask_color", "mask_id",
                 "uid", "category_id", "related_annotations", "attributes", "mask_type", "keypoints",
                 "connections"}  # fmt: skip
        return cls(**{k: v for k, v in entity.items() if k in known})

    def to_dic(self) -> dict[str, Any]:
        return dict(self._dict)

    to_dict = to_dic


def _timestamp(value: Any, where: str) -> str:
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, datetime):
        from scenebase.clients.encoding import iso_utc  # lazy: the models must not import the client eagerly

        try:
            return iso_utc(value)
        except InvalidTimeError as e:
            raise InvalidTimeError(f"{where}: timestamp: {e.message}") from None
    if not isinstance(value, str):
        raise InvalidAnnotationError(f"{where}: timestamp must be a datetime or an ISO-8601 string, got {value!r}")
    return value


class Annotation:
    """An annotation of one asset (FACTS 6.1). Subclasses fix ``annotation_type`` and build the entities."""

    annotation_type_default: ClassVar[str | None] = None
    media_type_forced: ClassVar[str | None] = None

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - ANNOTATION_KEYWORDS
        if unknown:
            raise InvalidAnnotationError(
                f"{type(self).__name__}: unknown keyword(s) {sorted(unknown)}; known: {sorted(ANNOTATION_KEYWORDS)}"
            )
        raw_id = kwargs.get("id")
        if raw_id is not None and (not isinstance(raw_id, str) or not raw_id.strip()):
            raise InvalidAnnotationError(f"annotation id must be a non-empty string, got {raw_id!r}")
        self.id = standardize_id(raw_id) if raw_id else new_id()
        where = f"annotation {raw_id or self.id!r}"
        self.where = where
        assets = [(k, kwargs[k]) for k in _ASSET_KEYS if kwargs.get(k) is not None]
        if not assets:
            raise InvalidAnnotationError(f"{where}: asset_id (or image_id / video_id / lidar_id) is required")
        if len({standardize_id(str(v)) for _, v in assets}) > 1:
            raise InvalidAnnotationError(f"{where}: {[k for k, _ in assets]} name different assets")
        self.asset_id = standardize_id(str(assets[0][1]))
        self.timestamp = _timestamp(kwargs.get("timestamp"), where)
        media_type = self.media_type_forced or kwargs.get("media_type") or "images"
        if media_type not in rules.MEDIA_TYPES:
            raise InvalidAnnotationError(f"{where}: media_type {media_type!r} is not one of {list(rules.MEDIA_TYPES)}")
        self.media_type = media_type
        self.provider = kwargs.get("provider") or rules.DEFAULT_PROVIDER
        annotation_type = kwargs.get("annotation_type") or self.annotation_type_default
        if annotation_type not in rules.ANNOTATION_TYPES:
            raise InvalidAnnotationError(
                f"{where}: annotation_type {annotation_type!r} is not one of {list(rules.ANNOTATION_TYPES)}"
            )
        self.annotation_type: str = annotation_type
        group = kwargs.get("annotation_group") or rules.DEFAULT_GROUP
        if group not in rules.ANNOTATION_GROUPS:
            raise InvalidAnnotationError(
                f"{where}: annotation_group {group!r} is not one of {list(rules.ANNOTATION_GROUPS)}"
            )
        self.annotation_group = group
        sets = kwargs.get("sets")
        if kwargs.get("set_id") is not None:
            sets = [*(sets or []), kwargs["set_id"]]
        self.sets = [standardize_id(s) for s in sets] if sets else []
        self.session_uid = kwargs.get("session_uid")
        self.sensor = kwargs.get("sensor")
        self.version = kwargs.get("version")
        self.tags = list(kwargs.get("tags") or [])
        self.aux = dict(kwargs.get("aux") or {})
        self.annotation_meta = dict(kwargs.get("annotation_meta") or {})
        self.masks: dict[str, dict[str, Any]] = dict(kwargs.get("masks") or {})
        #: local mask files to upload with the annotation: mask id -> path
        self.mask_files: dict[str, str] = {}
        frame = kwargs.get("frame")
        if media_type == "videos" and frame is None:
            raise InvalidAnnotationError(f"{where}: a video annotation needs the frame number it belongs to")
        if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
            raise InvalidAnnotationError(f"{where}: frame must be an integer >= 0, got {frame!r}")
        self.frame = frame
        raws = [k for k in _RAW_KEYS if kwargs.get(k) is not None]
        if len(raws) > 1:
            raise InvalidAnnotationError(f"{where}: give at most one raw annotation, got {raws}")
        self.raw_annotation: tuple[str, Any] | None = (raws[0], kwargs[raws[0]]) if raws else None
        self.annotation_entities: list[dict[str, Any]] = []
        for i, entity in enumerate(kwargs.get("annotation_entities") or []):
            self.annotation_entities.append(self._entity(entity, i))

    def _entity(self, entity: Any, i: int) -> dict[str, Any]:
        where = f"{self.where}: entity {i}"
        if isinstance(entity, Shape):
            return entity.entity()
        if isinstance(entity, AnnotationEntity):
            return entity.to_dic()
        try:
            return rules.normalize_entity(entity, where, self.annotation_type, allow_int_confidence=False)
        except rules.AnnotationProblem as e:
            raise InvalidAnnotationError(str(e)) from None

    @property
    def labels(self) -> list[str]:
        return rules.entity_labels(self.annotation_entities)

    def raw_bytes(self) -> tuple[bytes, str] | None:
        """The raw annotation to upload with the document (string or JSON), and its file name; None otherwise."""
        if self.raw_annotation is None:
            return None
        key, value = self.raw_annotation
        if key == "raw_annotation_str":
            return str(value).encode(), f"{self.id}.txt"
        if key == "raw_annotation_json":
            return (value if isinstance(value, str) else json.dumps(value)).encode(), f"{self.id}.json"
        return None

    def raw_reference(self) -> dict[str, str] | None:
        """``{"url": ...}`` or ``{"uri": ...}`` of a raw annotation the server fetches; None otherwise."""
        if self.raw_annotation is None or self.raw_annotation[0] not in ("raw_annotation_url", "raw_annotation_uri"):
            return None
        key, value = self.raw_annotation
        return {"url" if key == "raw_annotation_url" else "uri": str(value)}

    def to_dic(self) -> dict[str, Any]:
        """The annotation document (FACTS 6.1), None values left out."""
        doc: dict[str, Any] = {
            **self.annotation_meta,
            "id": self.id,
            "timestamp": self.timestamp,
            "asset_id": self.asset_id,
            "media_type": self.media_type,
            "provider": self.provider,
            "annotation_type": self.annotation_type,
            "annotation_entities": [dict(e) for e in self.annotation_entities],
            "labels": self.labels,
            "annotation_group": self.annotation_group,
            "sets": self.sets or None,
            "session_uid": self.session_uid,
            "sensor": self.sensor,
            "version": self.version,
            "masks": self.masks or None,
            "frame": self.frame,
            "tags": self.tags or None,
            "aux": self.aux or None,
        }
        return {k: v for k, v in doc.items() if v is not None}

    to_dict = to_dic

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(id={self.id!r}, asset_id={self.asset_id!r}, provider={self.provider!r}, "
                f"entities={len(self.annotation_entities)})")  # fmt: skip


class _ShapeAnnotation(Annotation):
    """A wrapper: a list of one kind of shape, then the Annotation keywords."""

    shape_type: ClassVar[tuple[type, ...]]

    def __init__(self, shapes: Sequence[Shape], **kwargs: Any) -> None:
        if "annotation_entities" in kwargs:
            raise InvalidAnnotationError(f"{type(self).__name__} builds its entities; do not pass annotation_entities")
        if isinstance(shapes, Shape) or not isinstance(shapes, Sequence):
            raise InvalidAnnotationError(f"{type(self).__name__}: the shapes must be a list")
        wrong = [type(s).__name__ for s in shapes if not isinstance(s, self.shape_type)]
        if wrong:
            names = " or ".join(t.__name__ for t in self.shape_type)
            raise InvalidAnnotationError(f"{type(self).__name__} takes {names} objects, got {sorted(set(wrong))}")
        kwargs.setdefault("annotation_type", self.annotation_type_default)
        super().__init__(annotation_entities=list(shapes), **kwargs)


class BoundingBoxAnnotation(_ShapeAnnotation):
    annotation_type_default = rules.TWO_D_BOUNDING_BOX
    shape_type = (BoundingBox,)

    def __init__(self, bounding_boxes: Sequence[BoundingBox], **kwargs: Any) -> None:
        super().__init__(bounding_boxes, **kwargs)


class PolygonAnnotation(_ShapeAnnotation):
    annotation_type_default = rules.POLYGON
    shape_type = (Polygon,)

    def __init__(self, polygons: Sequence[Polygon], **kwargs: Any) -> None:
        super().__init__(polygons, **kwargs)


class LineAnnotation(_ShapeAnnotation):
    annotation_type_default = rules.LINE
    shape_type = (Line,)

    def __init__(self, lines: Sequence[Line], **kwargs: Any) -> None:
        super().__init__(lines, **kwargs)


class PointAnnotation(_ShapeAnnotation):
    annotation_type_default = rules.POINT
    shape_type = (Point,)

    def __init__(self, points: Sequence[Point], **kwargs: Any) -> None:
        super().__init__(points, **kwargs)


class ClassificationAnnotation(_ShapeAnnotation):
    annotation_type_default = rules.CLASSIFICATION
    shape_type = (Label,)

    def __init__(self, labels: Sequence[Label], **kwargs: Any) -> None:
        super().__init__(labels, **kwargs)


class PoseAnnotation(_ShapeAnnotation):
    annotation_type_default = rules.TWO_D_POSE
    shape_type = (Pose,)

    def __init__(self, poses: Sequence[Pose], **kwargs: Any) -> None:
        super().__init__(poses, **kwargs)


class Cuboid2DAnnotation(_ShapeAnnotation):
    annotation_type_default = rules.TWO_D_CUBOID
    shape_type = (Cuboid2D,)

    def __init__(self, cuboids: Sequence[Cuboid2D], **kwargs: Any) -> None:
        wrong = [c for c in cuboids if isinstance(c, Cuboid3D)]
        if wrong:
            raise InvalidAnnotationError("Cuboid2DAnnotation takes Cuboid2D objects; use Cuboid3DAnnotation for 3-D")
        super().__init__(cuboids, **kwargs)


class Cuboid3DAnnotation(_ShapeAnnotation):
    """3-D cuboids annotate point clouds: media_type is always ``lidars``."""

    annotation_type_default = rules.THREE_D_CUBOID
    media_type_forced = "lidars"
    shape_type = (Cuboid3D,)

    def __init__(self, cuboids: Sequence[Cuboid3D], **kwargs: Any) -> None:
        super().__init__(cuboids, **kwargs)


class EllipseAnnotation(_ShapeAnnotation):
    annotation_type_default = rules.ELLIPSE
    shape_type = (Ellipse,)

    def __init__(self, ellipses: Sequence[Ellipse], **kwargs: Any) -> None:
        super().__init__(ellipses, **kwargs)


def _mask_id(source: str) -> str:
    return hashlib.md5(source.encode(), usedforsecurity=False).hexdigest()


class SegmentationAnnotation(Annotation):
    """One entity per label, each pointing at a mask (a PNG) by url, uri, local file or an existing mask id; the
    mask id is the md5 of its url/uri/path unless given (FACTS 6.3). Local mask files are uploaded with the
    annotation and stored as blobs."""

    annotation_type_default = rules.SEGMENTATION

    def __init__(
        self,
        labels: Sequence[str],
        mask_colors: Sequence[str],
        mask_urls: Sequence[str] | None = None,
        mask_uris: Sequence[str] | None = None,
        mask_file_paths: Sequence[str | os.PathLike[str]] | None = None,
        mask_ids: Sequence[str] | None = None,
        mask_types: Sequence[str] | None = None,
        confidences: Sequence[float | None] | None = None,
        attributes_list: Sequence[dict[str, Any] | None] | None = None,
        **kwargs: Any,
    ) -> None:
        n = len(labels)
        columns = {"mask_colors": mask_colors, "mask_urls": mask_urls, "mask_uris": mask_uris,
                   "mask_file_paths": mask_file_paths, "mask_ids": mask_ids, "mask_types": mask_types,
                   "confidences": confidences, "attributes_list": attributes_list}  # fmt: skip
        uneven = [k for k, v in columns.items() if v is not None and len(v) != n]
        if uneven:
            raise InvalidAnnotationError(f"SegmentationAnnotation: {uneven} must have one value per label ({n})")
        kwargs.setdefault("annotation_type", rules.SEGMENTATION)
        super().__init__(**kwargs)
        masks: dict[str, dict[str, Any]] = dict(self.masks)
        for i, label in enumerate(labels):
            url = mask_urls[i] if mask_urls else None
            uri = mask_uris[i] if mask_uris else None
            path = os.fspath(mask_file_paths[i]) if mask_file_paths and mask_file_paths[i] else None
            given_id = mask_ids[i] if mask_ids else None
            sources = [s for s in (url, uri, path) if s]
            if len(sources) > 1:
                raise InvalidAnnotationError(f"{self.where}: mask of {label!r}: give one of url, uri or file path")
            if not sources and not given_id:
                raise InvalidAnnotationError(f"{self.where}: mask of {label!r}: give a url, uri, file path or mask id")
            mask_id = standardize_id(given_id) if given_id else _mask_id(sources[0])
            if path is not None:
                if not Path(path).is_file():
                    raise InvalidAnnotationError(f"{self.where}: mask file {path!r} does not exist")
                self.mask_files[mask_id] = path
                masks[mask_id] = {"filename": Path(path).name}
            elif url:
                masks[mask_id] = {"url": url}
            elif uri:
                masks[mask_id] = {"uri": uri}
            entity = {"label": label, "annotation_type": rules.SEGMENTATION, "mask_id": mask_id,
                      "mask_color": mask_colors[i], "mask_type": mask_types[i] if mask_types else None,
                      "confidence": confidences[i] if confidences else None,
                      "attributes": attributes_list[i] if attributes_list else None}  # fmt: skip
            self.annotation_entities.append(self._entity({k: v for k, v in entity.items() if v is not None}, i))
        self.masks = masks


__all__ = [
    "ANNOTATION_KEYWORDS", "Annotation", "AnnotationEntity", "BoundingBox", "BoundingBoxAnnotation",
    "ClassificationAnnotation", "Connection", "Cuboid2D", "Cuboid2DAnnotation", "Cuboid3D", "Cuboid3DAnnotation",
    "Ellipse", "EllipseAnnotation", "Label", "Line", "LineAnnotation", "Point", "PointAnnotation", "Polygon",
    "PolygonAnnotation", "Pose", "PoseAnnotation", "SegmentationAnnotation", "Shape",
]  # fmt: skip
