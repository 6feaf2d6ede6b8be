"""``/v1/lidars``: LIDAR-only jobs (decimated renditions). Upload, originals and renditions of lidars are the generic
media routes (``api/routes/media.py``): ``GET /v1/lidars/{id}/thumbnail/skip_10`` is what the web app draws."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from pydantic import BaseModel, Field, StrictInt

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.lidars import LidarCompressionStarted
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.identity import Principal
from scenebase.services.jobs import job_document

router = SlashAgnosticRouter(prefix="/v1/lidars", tags=["lidars"])


class CompressLidarsBody(BaseModel):
    ids: list[str] = Field(min_length=1, description="The LIDARs to make renditions of.")
    skip_factors: list[StrictInt] | None = Field(
        default=None, description="One rendition `thumbnails.skip_<s>` per factor s (every s-th point); "
        "default [1, 10, 100].",
    )  # fmt: skip
    gzip_compress: bool = Field(default=True, description="Store the renditions gzip-compressed.")


@router.post("/compress_lidars/", response_model=LidarCompressionStarted, dependencies=[requires(Permission.INGEST)])
def compress_lidars(
    body: CompressLidarsBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Start a ``lidar_compression`` job; answers the job document (FACTS 8.1) plus ``job_id``."""
    row = rt.lidars.compress(p.scope, body.ids, body.skip_factors, body.gzip_compress)
    return {"job_id": row["id"], **job_document(row)}
