"""The shapes users build annotations from (FACTS 2.13, 6.3): points, boxes, polygons, lines, cuboids, ellipses,
classification labels and poses. Re-exported by :mod:`scenebase.models.annotation`, the seed's module path.

Each shape checks itself when it is built (coordinates not negative except for 3-D cuboids, ``x_max >= x_min``,
confidence a float in [0, 1], ...) and raises InvalidAnnotationError naming the shape, its label and the problem.
:meth:`Shape.entity` turns it into the entity dictionary stored with the annotation (FACTS 6.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from scenebase.domain import annotations as rules
from scenebase.errors import InvalidAnnotationError


def _where(shape: object, label: Any) -> str:
    return f"{type(shape).__name__}({label!r})" if label is not None else type(shape).__name__


def _num(value: Any, what: str, non_negative: bool = True) -> float:
    try:
        f = rules.number(value, what)
    except rules.AnnotationProblem as e:
        raise InvalidAnnotationError(str(e)) from None
    if non_negative and f < 0:
        raise InvalidAnnotationError(f"{what} must be >= 0, got {value!r}")
    return f


def _confidence(value: Any, what: str) -> float | None:
    try:
        return rules.confidence_value(value, what)
    except rules.AnnotationProblem as e:
        raise InvalidAnnotationError(str(e)) from None


def _pairs(coordinates: Any, what: str, dims: int = 2, non_negative: bool = True) -> list[tuple[float, ...]]:
    """``[(x, y), ...]`` (or ``{"x":, "y":}`` dicts) as float tuples."""
    if not isinstance(coordinates, Sequence) or isinstance(coordinates, str):
        raise InvalidAnnotationError(f"{what}: coordinates must be a list of points")
    out = []
    names = "xyz"[:dims]
    for i, p in enumerate(coordinates):
        values = [p.get(k) for k in names] if isinstance(p, dict) else p
        if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != dims:
            raise InvalidAnnotationError(
                f"{what}: point {i} must have {dims} coordinates ({', '.join(names)}), got {p}"
            )
        out.append(tuple(_num(v, f"{what}: point {i} {n}", non_negative) for v, n in zip(values, names, strict=True)))
    return out


def _xy(points: list[tuple[float, ...]]) -> list[dict[str, float]]:
    return [dict(zip("xyz", p, strict=False)) for p in points]


class Shape:
    """What every shape has: ``label``, ``uid``, ``confidence`` and ``attributes`` (FACTS 2.13)."""

    annotation_type: ClassVar[str]

    def __init__(
        self,
        label: str | None = None,
        uid: str | None = None,
        confidence: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.where = _where(self, label)
        if label is not None and (not isinstance(label, str) or not label):
            raise InvalidAnnotationError(f"{self.where}: label must be a non-empty string")
        if attributes is not None and not isinstance(attributes, dict):
            raise InvalidAnnotationError(f"{self.where}: attributes must be a dict, got {type(attributes).__name__}")
        self.label = label
        self.uid = uid
        self.confidence = _confidence(confidence, self.where)
        self.attributes = dict(attributes) if attributes else None

    def _common(self) -> dict[str, Any]:
        if self.label is None:
            raise InvalidAnnotationError(f"{self.where}: label is required")
        entity: dict[str, Any] = {"label": self.label, "annotation_type": self.annotation_type,
                                  "attributes": dict(self.attributes or {})}  # fmt: skip
        for key in ("uid", "confidence"):
            if getattr(self, key) is not None:
                entity[key] = getattr(self, key)
        return entity

    def entity(self) -> dict[str, Any]:
        """The entity dictionary (FACTS 6.2), checked by the shared rules."""
        try:
            return rules.normalize_entity(self._entity(), self.where, allow_int_confidence=False)
        except rules.AnnotationProblem as e:
            raise InvalidAnnotationError(str(e)) from None

    def _entity(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r}, uid={self.uid!r})"


class Point(Shape):
    """A point at (``left``, ``top``) pixels; also a keypoint of a :class:`Pose`."""

    annotation_type = rules.POINT

    def __init__(
        self,
        label: str | None = None,
        uid: str | None = None,
        confidence: float | None = None,
        attributes: dict[str, Any] | None = None,
        left: float | None = None,
        top: float | None = None,
        category_id: int | str | None = None,
        geometry: Any = None,
    ) -> None:
        super().__init__(label, uid, confidence, attributes)
        if left is None or top is None:
            raise InvalidAnnotationError(f"{self.where}: left and top are required")
        self.left = _num(left, f"{self.where}: left")
        self.top = _num(top, f"{self.where}: top")
        self.category_id = category_id
        self.geometry = geometry

    def _entity(self) -> dict[str, Any]:
        return {**self._common(), "coordinates": [{"x": self.left, "y": self.top}], "category_id": self.category_id,
                "geometry": self.geometry}  # fmt: skip

    def keypoint(self) -> dict[str, Any]:
        """The point as a pose keypoint (FACTS 6.3): label, uid, confidence, attributes, left, top, ..."""
        out = {"label": self.label, "uid": self.uid, "confidence": self.confidence, "attributes": self.attributes,
               "left": self.left, "top": self.top, "category_id": self.category_id,
               "geometry": self.geometry}  # fmt: skip
        return {k: v for k, v in out.items() if v is not None}


class BoundingBox(Shape):
    """An axis-aligned box; stored as its four corners, clockwise from (x_min, y_min)."""

    annotation_type = rules.TWO_D_BOUNDING_BOX

    def __init__(
        self,
        label: str | None = None,
        uid: str | None = None,
        confidence: float | None = None,
        attributes: dict[str, Any] | None = None,
        x_min: float | None = None,
        x_max: float | None = None,
        y_min: float | None = None,
        y_max: float | None = None,
        category_id: int | str | None = None,
    ) -> None:
        super().__init__(label, uid, confidence, attributes)
        given = {"x_min": x_min, "x_max": x_max, "y_min": y_min, "y_max": y_max}
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise InvalidAnnotationError(f"{self.where}: {missing} are required")
        self.x_min, self.x_max, self.y_min, self.y_max = (_num(v, f"{self.where}: {k}") for k, v in given.items())
        if self.x_max < self.x_min or self.y_max < self.y_min:
            raise InvalidAnnotationError(
                f"{self.where}: x_max must be >= x_min and y_max >= y_min, got x {self.x_min}..{self.x_max}, "
                f"y {self.y_min}..{self.y_max}"
            )
        track_id = (attributes or {}).get("track_id")
        if track_id is not None and (isinstance(track_id, bool) or not isinstance(track_id, int)):
            raise InvalidAnnotationError(f"{self.where}: attributes.track_id must be an integer, got {track_id!r}")
        self.category_id = category_id

    def _entity(self) -> dict[str, Any]:
        x0, x1, y0, y1 = self.x_min, self.x_max, self.y_min, self.y_max
        corners = [{"x": x0, "y": y0}, {"x": x1, "y": y0}, {"x": x1, "y": y1}, {"x": x0, "y": y1}]
        return {**self._common(), "coordinates": corners, "category_id": self.category_id}


class Polygon(Shape):
    """A closed polygon of at most 500 vertices, ``coordinates`` as ``[(x, y), ...]``."""

    annotation_type = rules.POLYGON

    def __init__(
        self,
        label: str | None = None,
        uid: str | None = None,
        confidence: float | None = None,
        attributes: dict[str, Any] | None = None,
        coordinates: Sequence[Any] | None = None,
        category_id: int | str | None = None,
    ) -> None:
        super().__init__(label, uid, confidence, attributes)
        self.coordinates = _pairs(coordinates if coordinates is not None else [], self.where)
        if not self.coordinates:
            raise InvalidAnnotationError(f"{self.where}: coordinates are required")
        self.category_id = category_id

    def _entity(self) -> dict[str, Any]:
        return {**self._common(), "coordinates": _xy(self.coordinates), "category_id": self.category_id}


class Line(Polygon):
    """An open (or, with ``complete``, closed) polyline of at most 100 vertices."""

    annotation_type = rules.LINE

    def __init__(
        self,
        label: str | None = None,
        uid: str | None = None,
        confidence: float | None = None,
        attributes: dict[str, Any] | None = None,
        coordinates: Sequence[Any] | None = None,
        complete: bool = False,
        category_id: int | str | None = None,
    ) -> None:
        super().__init__(label, uid, confidence, attributes, coordinates, category_id)
        self.complete = complete  # the seed keeps it on the object only; it is not serialized


_CORNERS = ("tl1", "bl1", "tr1", "br1", "tl2", "bl2", "tr2", "br2")


class Cuboid2D(Shape):
    """A cuboid drawn on an image: front face corners tl1, bl1, tr1, br1, back face tl2, bl2, tr2, br2 (x, y)."""

    annotation_type = rules.TWO_D_CUBOID
    dims = 2

    def __init__(
        self,
        label: str | None = None,
        uid: str | None = None,
        confidence: float | None = None,
        attributes: dict[str, Any] | None = None,
        tl1: Sequence[float] | None = None,
        bl1: Sequence[float] | None = None,
        tr1: Sequence[float] | None = None,
        br1: Sequence[float] | None = None,
        tl2: Sequence[float] | None = None,
        bl2: Sequence[float] | None = None,
        tr2: Sequence[float] | None = None,
        br2: Sequence[float] | None = None,
        category_id: int | str | None = None,
    ) -> None:
        super().__init__(label, uid, confidence, attributes)
        corners = dict(zip(_CORNERS, (tl1, bl1, tr1, br1, tl2, bl2, tr2, br2), strict=True))
        missing = [k for k, v in corners.items() if v is None]
        if missing:
            raise InvalidAnnotationError(f"{self.where}: corners {missing} are required")
        # 2-D corners are pixels (never negative); 3-D corners are metres around the sensor
        self.corners = _pairs(list(corners.values()), self.where, self.dims, non_negative=self.dims == 2)
        self.category_id = category_id

    def _entity(self) -> dict[str, Any]:
        return {**self._common(), "coordinates": _xy(self.corners), "category_id": self.category_id}


class Cuboid3D(Cuboid2D):
    """A cuboid in a point cloud: the same eight corners in (x, y, z), which may be negative."""

    annotation_type = rules.THREE_D_CUBOID
    dims = 3


class Ellipse(Shape):
    """An ellipse: centre, radii and ``rotation`` in degrees. Stored as its four extreme points, rotated about the
    centre (FACTS 6.3), plus the parameters themselves under ``ellipse`` so nothing is lost."""

    annotation_type = rules.ELLIPSE

    def __init__(
        self,
        label: str | None = None,
        uid: str | None = None,
        confidence: float | None = None,
        attributes: dict[str, Any] | None = None,
        centre_x: float | None = None,
        centre_y: float | None = None,
        radius_x: float | None = None,
        radius_y: float | None = None,
        rotation: float = 0.0,
    ) -> None:
        super().__init__(label, uid, confidence, attributes)
        given = {"centre_x": centre_x, "centre_y": centre_y, "radius_x": radius_x, "radius_y": radius_y}
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise InvalidAnnotationError(f"{self.where}: {missing} are required")
        self.centre_x, self.centre_y, self.radius_x, self.radius_y = (
            _num(v, f"{self.where}: {k}") for k, v in given.items()
        )
        self.rotation = _num(rotation, f"{self.where}: rotation", non_negative=False)

    def extreme_points(self) -> list[dict[str, float]]:
        a = math.radians(self.rotation)
        cos, sin = math.cos(a), math.sin(a)
        rx, ry = self.radius_x, self.radius_y
        out = []
        for dx, dy in ((rx, 0.0), (0.0, ry), (-rx, 0.0), (0.0, -ry)):
            out.append({"x": self.centre_x + dx * cos - dy * sin, "y": self.centre_y + dx * sin + dy * cos})
        return out

    def _entity(self) -> dict[str, Any]:
        params = {"centre_x": self.centre_x, "centre_y": self.centre_y, "radius_x": self.radius_x,
                  "radius_y": self.radius_y, "rotation": self.rotation}  # fmt: skip
        return {**self._common(), "coordinates": self.extreme_points(), "ellipse": params}


class Label(Shape):
    """A classification label of the whole asset (no geometry)."""

    annotation_type = rules.CLASSIFICATION

    def __init__(
        self,
        label: str,
        class_name: str | None = None,
        category_id: int | str | None = None,
        confidence: float | None = None,
    ) -> None:
        super().__init__(label, None, confidence, None)
        self.class_name = class_name
        self.category_id = category_id

    def _entity(self) -> dict[str, Any]:
        return {**self._common(), "class_name": self.class_name, "category_id": self.category_id}


class Connection:
    """An edge of a pose's skeleton between two keypoints (indexes into the pose's keypoints)."""

    def __init__(self, start_index: int, end_index: int, confidence: float | None = None) -> None:
        for name, value in (("start_index", start_index), ("end_index", end_index)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidAnnotationError(f"Connection: {name} must be an integer >= 0, got {value!r}")
        self.start_index = start_index
        self.end_index = end_index
        self.confidence = _confidence(confidence, "Connection")

    def to_dic(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start_index": self.start_index, "end_index": self.end_index}
        if self.confidence is not None:
            out["confidence"] = self.confidence
        return out


class Pose(Shape):
    """A 2-D pose: keypoints (:class:`Point`) and the connections between them."""

    annotation_type = rules.TWO_D_POSE

    def __init__(
        self,
        label: str,
        keypoints: Sequence[Point],
        connections: Sequence[Connection] | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(label, None, None, attributes)
        if not isinstance(keypoints, Sequence) or not all(isinstance(k, Point) for k in keypoints):
            raise InvalidAnnotationError(f"{self.where}: keypoints must be a list of Point")
        connections = list(connections or [])
        if not all(isinstance(c, Connection) for c in connections):
            raise InvalidAnnotationError(f"{self.where}: connections must be a list of Connection")
        self.keypoints = list(keypoints)
        self.connections = connections

    def _entity(self) -> dict[str, Any]:
        return {**self._common(), "keypoints": [k.keypoint() for k in self.keypoints],
                "connections": [c.to_dic() for c in self.connections]}  # fmt: skip


__all__ = ["BoundingBox", "Connection", "Cuboid2D", "Cuboid3D", "Ellipse", "Label", "Line", "Point", "Polygon",
           "Pose", "Shape"]  # fmt: skip
