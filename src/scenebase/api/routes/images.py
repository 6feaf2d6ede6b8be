"""``/v1/images``: image-only jobs (thumbnails by preset or shape, image properties). Upload, originals and
thumbnails of images are the generic media routes (``api/routes/media.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from pydantic import BaseModel, Field

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import JobStarted
from scenebase.api.schemas.search import SearchObject
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.identity import Principal

router = SlashAgnosticRouter(prefix="/v1/images", tags=["images"])


class CompressBody(BaseModel):
    ids: list[str] = Field(min_length=1)
    desired_shape: list[int] | None = None
    thumbnail_tag: str | None = None
    use_preset: str | None = None


@router.post("/compress_images/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def compress_images(
    body: CompressBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start an ``image_compression`` job: a preset thumbnail, or ``desired_shape`` stored under ``thumbnail_tag``."""
    job_id = rt.images.compress(p.scope, body.ids, body.desired_shape, body.thumbnail_tag, body.use_preset)
    return {"job_id": job_id}


class PropertiesBody(BaseModel):
    ids: list[str] | None = None
    search: SearchObject | None = None
    properties: list[str] | None = None
    asset_type: str = "images"
    additional_params: dict[str, Any] | None = None


@router.post("/image_properties_enrichment/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def image_properties_enrichment(
    body: PropertiesBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start an ``image_properties_enrichment`` job (mean_brightness, rms_contrast, variance_of_laplacian)."""
    job_id = rt.images.enrich_properties(
        p.scope, body.asset_type, body.ids, body.search, body.properties, body.additional_params
    )
    return {"job_id": job_id}
