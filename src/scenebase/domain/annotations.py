"""Annotation documents and entities (FACTS 6.1-6.2): vocabularies, validation and the metadata an annotation
contributes to its parent asset (FACTS 6.4). Pure: shared by the client models and the server.

Validation returns normalized copies (ids standardized, colours lower-cased, numbers as floats) and raises
:class:`AnnotationProblem` whose message names the entity and the problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from scenebase.domain.ids import new_id, standardize_id

# ---- vocabularies (constants.AnnotationTypes & co. re-export these) ------------------------------------------

SEGMENTATION = "segmentation"
TWO_D_BOUNDING_BOX = "two_d_bounding_box"
TWO_D_CUBOID = "two_d_cuboid"
THREE_D_CUBOID = "three_d_cuboid"
POINT = "point"
POLYGON = "polygon"
LINE = "line"
CLASSIFICATION = "classification"
MIXED = "mixed"
CUSTOM = "custom"
TWO_D_POSE = "two_d_pose"
ELLIPSE = "ellipse"
ANNOTATION_TYPES = (SEGMENTATION, TWO_D_BOUNDING_BOX, TWO_D_CUBOID, THREE_D_CUBOID, POINT, POLYGON, LINE,
                    CLASSIFICATION, MIXED, CUSTOM, TWO_D_POSE, ELLIPSE)  # fmt: skip
MEDIA_TYPES = ("images", "videos", "lidars", "image_sequences", "lidar_sequences")
ANNOTATION_GROUPS = ("ground_truth", "model_generated", "other")
RELATIONSHIPS = ("parent", "child", "sibling")
MASK_TYPES = ("MultiColor", "SingleColor")
DEFAULT_PROVIDER = "default_provider"
DEFAULT_GROUP = "ground_truth"

#: most vertices / keypoints / connections one entity may have (C:580-584)
MAX_POLYGON_VERTICES = 500
MAX_LINE_VERTICES = 100
MAX_POSE_KEYPOINTS = 1000
MAX_POSE_CONNECTIONS = 2000
#: coordinates each entity type must have exactly
EXACT_COORDINATES = {POINT: 1, TWO_D_BOUNDING_BOX: 4, TWO_D_CUBOID: 8, THREE_D_CUBOID: 8}
#: entity fields that hold geometry: stored with the annotation, never in the search index
GEOMETRY_FIELDS = ("coordinates", "keypoints", "connections", "ellipse", "rle", "related_annotations")

_HEX_COLOR = re.compile(r"^#(?:[0-9a-f]{3}|[0-9a-f]{6})$")


class AnnotationProblem(ValueError):
    """An annotation or entity that breaks a rule of FACTS 6.1-6.2; the message names it and the rule."""


# ---- numbers ----------------------------------------------------------------------------------------------


def number(value: Any, what: str) -> float:
    """A finite number as float (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnnotationProblem(f"{what} must be a number, got {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise AnnotationProblem(f"{what} must be finite, got {value!r}")
    return f


def confidence_value(value: Any, what: str, allow_int: bool = False) -> float | None:
    """A confidence in [0, 1]. The seed's client refuses ints (``1`` instead of ``1.0``); JSON from other
    clients cannot tell them apart, so the server passes ``allow_int``."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not allow_int:
        raise AnnotationProblem(f"{what}: confidence must be a float in [0, 1], got the integer {value!r}")
    c = number(value, f"{what}: confidence")
    if not 0.0 <= c <= 1.0:
        raise AnnotationProblem(f"{what}: confidence {c} is not in [0, 1]")
    return c


def mask_color(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HEX_COLOR.match(value.lower()):
        raise AnnotationProblem(f"{what}: mask_color must be a hex colour like '#ff0000' or '#f00', got {value!r}")
    return value.lower()


# ---- entities -----------------------------------------------------------------------------------------------


def _point(raw: Any, what: str, three_d: bool) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise AnnotationProblem(f"{what} must be an object with x and y{' and z' if three_d else ''}, got {raw!r}")
    keys = ("x", "y", "z") if three_d else ("x", "y")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise AnnotationProblem(f"{what} lacks {missing}")
    return {k: number(raw[k], f"{what}.{k}") for k in keys}


def _points(raw: list[Any], where: str, three_d: bool) -> list[dict[str, float]]:
    """``_point`` of every coordinate; points of finite floats (what clients send) skip building the name each
    check would need, which is most of the cost of checking a box."""
    out = []
    isfinite = math.isfinite
    for i, p in enumerate(raw):
        if type(p) is dict and not three_d:
            x, y = p.get("x"), p.get("y")
            if type(x) is float and type(y) is float and isfinite(x) and isfinite(y):
                out.append({"x": x, "y": y})
                continue
        out.append(_point(p, f"{where}: coordinates[{i}]", three_d))
    return out


def _keypoint(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise AnnotationProblem(f"{what} must be an object with left and top, got {raw!r}")
    for key in ("left", "top"):
        if key not in raw:
            raise AnnotationProblem(f"{what} lacks {key!r}")
    out = dict(raw)
    out["left"] = number(raw["left"], f"{what}.left")
    out["top"] = number(raw["top"], f"{what}.top")
    if out.get("confidence") is not None:
        out["confidence"] = confidence_value(out["confidence"], what, allow_int=True)
    if out.get("attributes") is not None and not isinstance(out["attributes"], dict):
        raise AnnotationProblem(f"{what}: attributes must be an object")
    return {k: v for k, v in out.items() if v is not None}


def normalize_entity(
    raw: Any, where: str, annotation_type: str | None = None, allow_int_confidence: bool = True
) -> dict[str, Any]:
    """Check one annotation entity (FACTS 6.2) and return it normalized. ``annotation_type`` is the annotation's,
    used when the entity does not name its own."""
    if not isinstance(raw, dict):
        raise AnnotationProblem(f"{where} must be an object, got {type(raw).__name__}")
    label = raw.get("label")
    if not isinstance(label, str) or not label:
        raise AnnotationProblem(f"{where}: label is required (a non-empty string), got {label!r}")
    where = f"{where} ({label!r})"
    kind = raw.get("annotation_type") or annotation_type
    if kind not in ANNOTATION_TYPES:
        raise AnnotationProblem(f"{where}: annotation_type {kind!r} is not one of {list(ANNOTATION_TYPES)}")
    out: dict[str, Any] = dict(raw)
    out["annotation_type"] = kind
    uid = raw.get("uid")
    if uid is not None and (not isinstance(uid, str) or not uid):
        raise AnnotationProblem(f"{where}: uid must be a non-empty string, got {uid!r}")
    out["uid"] = standardize_id(uid) if uid else new_id()
    attributes = raw.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise AnnotationProblem(f"{where}: attributes must be an object, got {attributes!r}")
    out["attributes"] = dict(attributes or {})
    category_id = raw.get("category_id")
    if category_id is not None and (isinstance(category_id, bool) or not isinstance(category_id, int | str)):
        raise AnnotationProblem(f"{where}: category_id must be an integer or a string, got {category_id!r}")
    out["confidence"] = confidence_value(raw.get("confidence"), where, allow_int=allow_int_confidence)
    for key in ("class_name", "mask_id"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise AnnotationProblem(f"{where}: {key} must be a string, got {raw[key]!r}")
    if raw.get("mask_color") is not None:
        out["mask_color"] = mask_color(raw["mask_color"], where)
    if raw.get("mask_type") is not None and raw["mask_type"] not in MASK_TYPES:
        raise AnnotationProblem(f"{where}: mask_type {raw['mask_type']!r} is not one of {list(MASK_TYPES)}")
    related = raw.get("related_annotations") or []
    if not isinstance(related, list):
        raise AnnotationProblem(f"{where}: related_annotations must be a list")
    out["related_annotations"] = [_related(r, f"{where}: related_annotations[{i}]") for i, r in enumerate(related)]
    coordinates = raw.get("coordinates") or []
    if not isinstance(coordinates, list):
        raise AnnotationProblem(f"{where}: coordinates must be a list of points")
    three_d = kind == THREE_D_CUBOID
    out["coordinates"] = _points(coordinates, where, three_d)
    _check_shape(out, where)
    return {k: v for k, v in out.items() if v is not None}


def _related(raw: Any, what: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not isinstance(raw.get("uid"), str):
        raise AnnotationProblem(f"{what} must be an object with a uid and a relationship")
    if raw.get("relationship") not in RELATIONSHIPS:
        raise AnnotationProblem(f"{what}: relationship {raw.get('relationship')!r} is not one of {list(RELATIONSHIPS)}")
    return {"uid": standardize_id(raw["uid"]), "relationship": raw["relationship"]}


def _check_shape(entity: dict[str, Any], where: str) -> None:
    kind = entity["annotation_type"]
    n = len(entity["coordinates"])
    exact = EXACT_COORDINATES.get(kind)
    if exact is not None and n != exact:
        raise AnnotationProblem(f"{where}: a {kind} entity has exactly {exact} coordinates, got {n}")
    if kind in (POLYGON, LINE) and n == 0:
        raise AnnotationProblem(f"{where}: a {kind} entity needs coordinates")
    if kind == POLYGON and n > MAX_POLYGON_VERTICES:
        raise AnnotationProblem(f"{where}: a polygon has at most {MAX_POLYGON_VERTICES} vertices, got {n}")
    if kind == LINE and n > MAX_LINE_VERTICES:
        raise AnnotationProblem(f"{where}: a line has at most {MAX_LINE_VERTICES} vertices, got {n}")
    if kind == SEGMENTATION and not entity.get("mask_color"):
        raise AnnotationProblem(f"{where}: a segmentation entity needs a mask_color")
    keypoints = entity.get("keypoints")
    connections = entity.get("connections")
    if keypoints is not None:
        if not isinstance(keypoints, list):
            raise AnnotationProblem(f"{where}: keypoints must be a list")
        if len(keypoints) > MAX_POSE_KEYPOINTS:
            raise AnnotationProblem(f"{where}: a pose has at most {MAX_POSE_KEYPOINTS} keypoints, got {len(keypoints)}")
        entity["keypoints"] = [_keypoint(k, f"{where}: keypoints[{i}]") for i, k in enumerate(keypoints)]
    if connections is not None:
        if not isinstance(connections, list):
            raise AnnotationProblem(f"{where}: connections must be a list")
        if connections and not keypoints:
            raise AnnotationProblem(f"{where}: connections need keypoints")
        if len(connections) > MAX_POSE_CONNECTIONS:
            raise AnnotationProblem(
                f"{where}: a pose has at most {MAX_POSE_CONNECTIONS} connections, got {len(connections)}"
            )
        entity["connections"] = [
            _connection(c, f"{where}: connections[{i}]", len(keypoints or [])) for i, c in enumerate(connections)
        ]


def _connection(raw: Any, what: str, n_keypoints: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise AnnotationProblem(f"{what} must be an object with start_index and end_index")
    out: dict[str, Any] = {}
    for key in ("start_index", "end_index"):
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnnotationProblem(f"{what}: {key} must be an integer, got {value!r}")
        if not 0 <= value < n_keypoints:
            raise AnnotationProblem(f"{what}: {key} {value} is not the index of one of the {n_keypoints} keypoints")
        out[key] = value
    if raw.get("confidence") is not None:
        out["confidence"] = confidence_value(raw["confidence"], what, allow_int=True)
    return out


# ---- what an annotation adds to its parent asset (FACTS 6.4) ---------------------------------------------


def entity_labels(entities: Iterable[dict[str, Any]]) -> list[str]:
    """The distinct labels of ``entities`` in first-seen order."""
    return list(dict.fromkeys(str(e["label"]) for e in entities if e.get("label")))


def confident_labels(entities: Iterable[dict[str, Any]]) -> list[str]:
    """Labels of the entities that count for ``aux.labels_<provider>``: confidence above 0, or none given (a
    ground-truth entity carries no confidence and is certain)."""
    return list(
        dict.fromkeys(
            str(e["label"]) for e in entities if e.get("label") and (e.get("confidence") is None or e["confidence"] > 0)
        )
    )


def meta_entry(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``annotations_meta`` element describing annotation ``doc`` on its parent asset. Beyond the seed's
    provider/id/type/version it carries the group, so assets are searchable by it element-wise."""
    entry = {
        "provider": doc.get("provider"),
        "id": doc["id"],
        "type": doc.get("annotation_type"),
        "version": doc.get("version"),
        "annotation_group": doc.get("annotation_group"),
    }
    return {k: v for k, v in entry.items() if v is not None}


def label_terms(labels: Iterable[str], provider: str | None, add_provider: bool = True) -> list[str]:
    """``aux.labels`` values: ``<label>_<provider>`` (the seed's default) or the bare labels."""
    if add_provider and provider:
        return [f"{label}_{provider}" for label in labels]
    return list(labels)


def labels_field(provider: str) -> str:
    """The aux key of one provider's label list (``labels_<provider>``, FACTS 2.1); the provider as an id, with
    dots replaced, so the key is one path segment."""
    return "labels_" + standardize_id(provider).replace(".", "_")


# ---- whole documents, as the server receives them ------------------------------------------------------------

#: fields of an annotation document that only the server writes
SERVER_FIELDS = frozenset({"owner", "object_access", "created_at", "updated_at", "user", "thumbnails", "labels"})
_ASSET_KEYS = ("asset_id", "image_id", "video_id", "lidar_id")


def _string(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise AnnotationProblem(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value


def normalize_annotation(raw: Any, where: str) -> dict[str, Any]:
    """Check an annotation document a client sent (FACTS 6.1) and return it normalized: ids standardized,
    defaults filled (provider, group, media type), entities checked, ``labels`` derived from the entities.
    ``timestamp`` is left to the caller. Other keys (the seed's ``annotation_meta`` extras) are kept."""
    if not isinstance(raw, dict):
        raise AnnotationProblem(f"{where} must be an object, got {type(raw).__name__}")
    doc = {k: v for k, v in raw.items() if v is not None}
    server = sorted(set(doc) & SERVER_FIELDS - {"labels"})
    if server:
        raise AnnotationProblem(f"{where}: {server} are set by the server")
    doc.pop("labels", None)  # derived from the entities below
    raw_id = _string(doc, "id", where)
    doc["id"] = standardize_id(raw_id) if raw_id else new_id()
    where = f"{where} ({raw_id or doc['id']!r})"
    parents = {k: doc.pop(k) for k in _ASSET_KEYS if k in doc}
    for key, value in parents.items():
        if not isinstance(value, str) or not value:
            raise AnnotationProblem(f"{where}: {key} must be a non-empty string, got {value!r}")
    if not parents:
        raise AnnotationProblem(f"{where}: asset_id (or image_id / video_id / lidar_id) is required")
    if len({standardize_id(v) for v in parents.values()}) > 1:
        raise AnnotationProblem(f"{where}: {sorted(parents)} name different assets")
    doc["asset_id"] = standardize_id(next(iter(parents.values())))
    doc["media_type"] = doc.get("media_type", "images")
    if doc["media_type"] not in MEDIA_TYPES:
        raise AnnotationProblem(f"{where}: media_type {doc['media_type']!r} is not one of {list(MEDIA_TYPES)}")
    if doc.get("annotation_type") not in ANNOTATION_TYPES:
        raise AnnotationProblem(
            f"{where}: annotation_type {doc.get('annotation_type')!r} is not one of {list(ANNOTATION_TYPES)}"
        )
    doc["provider"] = _string(doc, "provider", where) or DEFAULT_PROVIDER
    doc["annotation_group"] = doc.get("annotation_group", DEFAULT_GROUP)
    if doc["annotation_group"] not in ANNOTATION_GROUPS:
        raise AnnotationProblem(
            f"{where}: annotation_group {doc['annotation_group']!r} is not one of {list(ANNOTATION_GROUPS)}"
        )
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, str | int | float)):
        raise AnnotationProblem(f"{where}: version must be a string or a number, got {version!r}")
    for key in ("sensor", "session_uid"):
        _string(doc, key, where)
    for key in ("sets", "tags"):
        value = doc.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise AnnotationProblem(f"{where}: {key} must be a list of strings")
    if "sets" in doc:
        doc["sets"] = [standardize_id(s) for s in doc["sets"]]
    if doc.get("aux") is not None and not isinstance(doc["aux"], dict):
        raise AnnotationProblem(f"{where}: aux must be an object")
    frame = doc.get("frame")
    if doc["media_type"] == "videos" and frame is None:
        raise AnnotationProblem(f"{where}: a video annotation needs the frame number it belongs to")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
        raise AnnotationProblem(f"{where}: frame must be an integer >= 0, got {frame!r}")
    masks = doc.get("masks") or {}
    if not isinstance(masks, dict) or not all(isinstance(v, dict) for v in masks.values()):
        raise AnnotationProblem(f"{where}: masks must map mask ids to objects (url, uri or an uploaded file)")
    if masks:
        doc["masks"] = {standardize_id(str(k)): dict(v) for k, v in masks.items()}
    entities = doc.get("annotation_entities") or []
    if not isinstance(entities, list):
        raise AnnotationProblem(f"{where}: annotation_entities must be a list")
    kind = doc["annotation_type"]
    doc["annotation_entities"] = [
        normalize_entity(e, f"{where}: annotation_entities[{i}]", kind) for i, e in enumerate(entities)
    ]
    doc["labels"] = entity_labels(doc["annotation_entities"])
    return doc


# ---- geometry -------------------------------------------------------------------------------------------------


def entity_points(entity: dict[str, Any]) -> list[tuple[float, float]]:
    """The 2-D points of an entity: its coordinates, or its pose's keypoints."""
    points = [(float(p["x"]), float(p["y"])) for p in entity.get("coordinates") or [] if "z" not in p]
    points += [(float(k["left"]), float(k["top"])) for k in entity.get("keypoints") or []]
    return points


def entity_box(entity: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """``(x_min, y_min, x_max, y_max)`` around an entity's points; None when it has no 2-D geometry."""
    points = entity_points(entity)
    if not points:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)
