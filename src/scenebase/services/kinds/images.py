"""Images (FACTS 2.1, 10.1-10.2): JPEG, PNG and TIFF, probed from their headers, thumbnails by preset or shape."""

from __future__ import annotations

from typing import Any, ClassVar

from scenebase.constants import ImagePreprocesses
from scenebase.media.budget import DecodeBusy
from scenebase.media.images import (
    EXTENSION_FORMATS,
    THUMBNAIL_PRESETS,
    ImageDecodeError,
    content_type_for,
    custom_thumbnail,
    preset_thumbnail,
    probe_image,
)
from scenebase.services.errors import InvalidArgument, Unavailable
from scenebase.services.kinds.base import AssetKind, Media, MediaError, PostIngestJob, Probed, Rendition

#: largest image file read into memory for probing and thumbnails (the decoder bounds pixels separately)
MAX_IMAGE_BYTES = 512 * 1024 * 1024


def file_extension(fmt: str) -> str:
    """The extension scenebase writes for a probed image format."""
    return {"JPEG": "jpg", "PNG": "png", "TIFF": "tiff"}[fmt]


class ImageKind(AssetKind):
    asset_type = "images"
    media_type = "image"
    noun = "image"
    derived = frozenset({"width", "height", "format"})
    accepted = frozenset({"preprocesses"})
    string_lists = ("tags", "sets", "preprocesses")
    merge_on_no_overwrite = ("sets", "aux", "preprocesses", "annotations", "annotations_meta")
    extensions = tuple(EXTENSION_FORMATS)
    content_types = ("image/jpeg", "image/png", "image/tiff")
    job_types = ("image_compression",)
    thumbnail_presets: ClassVar[dict[str, str]] = {
        "tiny": "JPEG fitting in 100x100",
        "small": "JPEG fitting in 300x300",
        "full_size_png": "PNG at the original size",
    }

    def validate_kind(self, meta: dict[str, Any]) -> dict[str, Any]:
        unknown = set(meta.get("preprocesses") or []) - {ImagePreprocesses.NORMALIZE_THUMBNAIL_COLORS}
        if unknown:
            raise InvalidArgument(f"unknown preprocesses {sorted(unknown)}")
        return meta

    def probe(self, media: Media, meta: dict[str, Any]) -> Probed:
        try:
            info = probe_image(media.read_bytes(MAX_IMAGE_BYTES), media.name)
        except ImageDecodeError as e:
            raise MediaError(e.problem) from None
        fields = {"width": info.width, "height": info.height, "format": info.format}
        return Probed(fields=fields, content_type=info.content_type, extension=info.extension)

    def thumbnail(self, media: Media, doc: dict[str, Any], tag: str, shape: tuple[int, ...] | None) -> Rendition:
        normalize = ImagePreprocesses.NORMALIZE_THUMBNAIL_COLORS in (doc.get("preprocesses") or [])
        data = media.read_bytes(MAX_IMAGE_BYTES)
        try:
            if shape is None:
                if tag not in THUMBNAIL_PRESETS:
                    raise MediaError(f"unknown thumbnail preset {tag!r}")
                blob, w, h, fmt = preset_thumbnail(data, tag, normalize, name=doc["id"])
            else:
                blob, w, h, fmt = custom_thumbnail(data, shape, normalize, name=doc["id"])
        except ImageDecodeError as e:
            raise MediaError(e.problem) from None
        except DecodeBusy as e:  # the server's memory is taken by other decodes, not the file's fault
            raise Unavailable(str(e), resource=self.asset_type) from None
        return Rendition(blob, fmt, content_type_for(fmt), file_extension(fmt), w, h)

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(options.get("thumbnailize_at_ingest", False), bool):
            raise InvalidArgument("thumbnailize_at_ingest must be true or false")
        presets = options.get("thumbnail_presets")
        if presets is not None:
            if not isinstance(presets, list) or not all(isinstance(p, str) for p in presets):
                raise InvalidArgument("thumbnail_presets must be a list of preset names")
            unknown = [p for p in presets if p not in THUMBNAIL_PRESETS]
            if unknown:
                raise InvalidArgument(f"unknown thumbnail presets {unknown}; presets: {sorted(THUMBNAIL_PRESETS)}")
        return options

    def after_ingest(self, docs: list[dict[str, Any]], options: dict[str, Any]) -> list[PostIngestJob]:
        presets = list(options.get("thumbnail_presets") or ())
        if not options.get("thumbnailize_at_ingest") or not presets or not docs:
            return []
        params = {"ids": [d["id"] for d in docs], "presets": presets}
        return [PostIngestJob("image_compression", params, "thumbnails at ingest", wait=True)]

    def zip_member_name(self, doc: dict[str, Any]) -> str:
        """The id, with the format's extension unless the id ends with one of its spellings (``a.jpeg`` stays
        ``a.jpeg``; ``a.png`` holding a JPEG becomes ``a.png.jpg``, which says what the file is)."""
        suffix = doc["id"].rsplit(".", 1)[-1].lower() if "." in doc["id"] else ""
        if EXTENSION_FORMATS.get(suffix) == doc["format"]:
            return str(doc["id"])
        return f"{doc['id']}.{file_extension(doc['format'])}"

    def content_type(self, doc: dict[str, Any]) -> str:
        return content_type_for(doc["format"])
