"""Annotations and objects as asset kinds (FACTS 2.4, 6.1, 6.8).

An annotation is metadata with an optional raw file (the annotator's own JSON or text, stored as its blob) and
optional segmentation masks (PNG blobs under ``masks.<id>``); it is written by ``AnnotationService``, not by the
generic upload. An object is a crop of an annotated image described by metadata only: it has no file, and its
thumbnails are cut from the parent image when they are first asked for.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from scenebase.domain import annotations as rules
from scenebase.media.crops import CROP_FORMATS, CROP_PRESETS, crop_thumbnail
from scenebase.media.images import ImageDecodeError, content_type_for
from scenebase.services.kinds.base import AssetKind, Media, MediaError, Probed, Rendition

#: largest raw annotation file (the annotator's export of one asset)
MAX_RAW_ANNOTATION_BYTES = 64 * 1024 * 1024
#: geometry inside entities: stored and returned, never searched (a polygon would add a term per vertex); entity
#: uids are unique per entity and only ever looked up through their annotation; an entity's type is the
#: annotation's (searchable there)
ENTITY_GEOMETRY = frozenset(f"annotation_entities.{f}" for f in (*rules.GEOMETRY_FIELDS, "uid", "annotation_type"))


class AnnotationKind(AssetKind):
    asset_type = "annotations"
    media_type = "annotation"
    noun = "annotation"
    never_indexed = ENTITY_GEOMETRY | {"masks"}
    max_batch = 1000

    def probe(self, media: Media, meta: dict[str, Any]) -> Probed:
        """A raw annotation file: any non-empty file; JSON and text are recognized for serving."""
        if media.size > MAX_RAW_ANNOTATION_BYTES:
            raise MediaError(f"a raw annotation file holds at most {MAX_RAW_ANNOTATION_BYTES} bytes, got {media.size}")
        data = media.read_bytes(MAX_RAW_ANNOTATION_BYTES)
        return Probed({}, *raw_content_type(data))

    def content_type(self, doc: dict[str, Any]) -> str:
        return str((doc.get("object_access") or {}).get("content_type") or "application/octet-stream")


def raw_content_type(data: bytes) -> tuple[str, str]:
    """(content type, extension) of a raw annotation file: JSON, text, or bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream", "bin"
    try:
        json.loads(text)
    except ValueError:
        return "text/plain; charset=utf-8", "txt"
    return "application/json", "json"


class ObjectKind(AssetKind):
    asset_type = "objects"
    media_type = "object"
    noun = "object"
    #: everything but user metadata comes from the annotation the object was made from
    derived = frozenset({"asset_id", "annotation_id", "entity_uid", "annotation_type", "label", "provider",
                         "version", "annotation_group", "bbox", "crop_box", "width", "height", "area",
                         "parent_width", "parent_height", "confidence", "category_id"})  # fmt: skip
    accepted = frozenset({"embeddings", "umap"})
    thumbnail_presets: ClassVar[dict[str, str]] = {
        "tiny": "JPEG crop fitting in 100x100",
        "small": "JPEG crop fitting in 300x300",
        "full_size_png": "PNG crop at the parent image's resolution",
    }
    max_batch = 1

    def probe(self, media: Media, meta: dict[str, Any]) -> Probed:
        raise MediaError("objects have no file of their own: annotations_to_objects makes them from annotations")

    def source(self, doc: dict[str, Any]) -> tuple[str, str] | None:
        return "images", str(doc["asset_id"])

    def thumbnail(self, media: Media, doc: dict[str, Any], tag: str, shape: tuple[int, ...] | None) -> Rendition:
        """A crop of the parent image (``media``) at the object's ``crop_box``."""
        if shape is None and tag not in CROP_PRESETS:
            raise MediaError(f"unknown thumbnail preset {tag!r}; presets: {sorted(CROP_PRESETS)}")
        fmt = CROP_FORMATS.get(tag, "JPEG") if shape is None else "JPEG"
        size = CROP_PRESETS[tag] if shape is None else (int(shape[-1]), int(shape[0]))  # shape is (height, width)
        box = tuple(float(v) for v in doc["crop_box"])
        try:
            data, w, h = crop_thumbnail(media.read_bytes(512 * 1024 * 1024), box, size, fmt, name=doc["id"])  # type: ignore[arg-type]
        except ImageDecodeError as e:
            raise MediaError(e.problem) from None
        return Rendition(data, fmt, content_type_for(fmt), "jpg" if fmt == "JPEG" else "png", w, h)

    def content_type(self, doc: dict[str, Any]) -> str:
        return "image/jpeg"
