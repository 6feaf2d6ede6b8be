"""Bodies of the generic per-type routes ``/v1/{asset_type}/...`` that are not searches: one document, counts,
existence and deletion. Metadata documents are ``search.AssetDocument`` (open-ended: ``id`` and whatever the asset
has)."""

from __future__ import annotations

from pydantic import Field

from scenebase.api.schemas.common import ResponseModel


class AssetCount(ResponseModel):
    count: int = Field(description="How many assets match the search.")


class AssetExists(ResponseModel):
    exists: bool = Field(description="Always true: an asset the caller cannot see is a 404.")


class AssetsDeleted(ResponseModel):
    deleted: int = Field(description="How many assets were deleted (with their files).")
    missing: list[str] = Field(description="Requested ids that did not exist.")
