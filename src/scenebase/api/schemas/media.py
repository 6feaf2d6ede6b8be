"""Bodies of the generic media routes ``/v1/{asset_type}/...``: the multipart upload and its answer, and the media
types of originals and thumbnails."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scenebase.api.schemas.common import ResponseModel, inline_schema
from scenebase.services.kinds import ImageKind, LidarKind, VideoKind
from scenebase.services.kinds.lidars import RENDITION_CONTENT_TYPE

#: what ``GET /v1/{asset_type}/{asset_id}/file`` may answer: the stored content type of the original (other
#: uploads, e.g. raw annotation files, are ``application/octet-stream`` unless they were recognized)
ORIGINAL_MEDIA_TYPES = sorted(
    {*ImageKind.content_types, *VideoKind.content_types, *LidarKind.content_types, "application/json"}
)
#: thumbnails are JPEG or PNG; LIDAR renditions are gzip-compressed point clouds; stored video renditions MP4
THUMBNAIL_MEDIA_TYPES = sorted({"image/jpeg", "image/png", "video/mp4", RENDITION_CONTENT_TYPE})


class ItemError(ResponseModel):
    """Why one item of a batch was not ingested."""

    index: int = Field(description="Position of the item in the request's list.")
    name: str = Field(description="The item's name, URL (without credentials) or id.")
    code: str = Field(description="Machine-readable: invalid_argument, not_found, payload_too_large, ...")
    error: str = Field(description="What went wrong with this item.")
    status: int = Field(description="The HTTP status this error would have alone.")


class IngestWarning(ResponseModel):
    """An ingested item with a remark."""

    index: int
    name: str
    id: str = Field(description="Id of the ingested asset.")
    code: str = Field(description="`duplicate_content`: the organization already has an asset with these bytes.")
    warning: str
    content_hash: str | None = None
    duplicate_of: list[str] = Field(default_factory=list, description="Ids of assets with the same bytes (a few).")
    duplicates: int = Field(0, description="How many such assets in all.")


class MediaAdded(ResponseModel):
    """The answer of a batch upload: 200 when every item was ingested, 207 when some were not."""

    ids: list[str | None] = Field(description="Per item, in request order: the asset's id, or null if it failed.")
    errors: list[ItemError] = Field(description="The items that failed (empty with 200).")
    job_id: str | None = Field(description="The first of `job_ids`, or null.")
    job_ids: list[str] = Field(description="Jobs started by the upload (e.g. thumbnails, probing), if any.")
    warnings: list[IngestWarning] = Field(description="Ingested items with a remark.")


class UploadItem(BaseModel):
    """One asset of a batch: an uploaded file part (``file``), or a reference to download (``url``/``uri``)."""

    model_config = ConfigDict(extra="allow")
    file: str | None = Field(None, description="Name of the multipart file part holding the item's bytes.")
    url: str | None = Field(None, description="An http(s) URL to fetch the file from (instead of `file`).")
    uri: str | None = Field(None, description="A storage URI (s3://, gs://, ...) to read the file from.")
    name: str | None = Field(None, description="Name used in errors and as the file name (default: the part's).")
    metadata: dict[str, Any] | None = Field(None, description="The asset's metadata (`id`, `sensor`, `tags`, ...).")
    relative_path: str | None = Field(None, description="Path of the file inside an uploaded folder (a/b.jpg).")


class UploadManifest(BaseModel):
    """The ``manifest`` part of a batch upload. Other keys are options of the media type (images:
    ``thumbnailize_at_ingest``, ``thumbnail_presets``)."""

    model_config = ConfigDict(extra="allow")
    items: list[UploadItem] = Field(description="The assets, in order (at most the type's batch size).")
    set_ids: list[str] | str | None = Field(None, description="Sets to add every ingested asset to.")
    overwrite: bool = Field(True, description="Replace assets that have the same id.")


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A `manifest` JSON part and one file part per uploaded item (named by `items[].file`).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["manifest"],
                    "properties": {"manifest": inline_schema(UploadManifest)},
                    "additionalProperties": {
                        "type": "string",
                        "format": "binary",
                        "description": "A file part, named as an item's `file` says.",
                    },
                },
                "encoding": {"manifest": {"contentType": "application/json"}},
            }
        },
    }
}
