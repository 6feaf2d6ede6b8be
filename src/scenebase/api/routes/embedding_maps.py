"""UMAP maps, set comparisons and model inference (FACTS 5.6, 7.4, 12, 15): ``/v1/embeddings/create_umap_from_assets/``,
``/v1/sets_comparisons/compare_sets/``, ``/v1/sets_comparisons/comparison_matrix/``, ``/v1/models/model_inference/``."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import JobStarted
from scenebase.api.schemas.embeddings import SetComparison
from scenebase.domain.roles import Permission
from scenebase.domain.umap_maps import UmapParams
from scenebase.runtime import Runtime
from scenebase.services.identity import Principal

router = SlashAgnosticRouter(tags=["embeddings"])


class UmapBody(BaseModel):
    search: dict[str, Any] | None = None
    n_neighbors: int = 20
    min_dist: float = 0.3
    index_name: str = Field(min_length=1)
    asset_type: str = "images"
    train_size: int = 10_000
    transform_only: bool = False


@router.post(
    "/v1/embeddings/create_umap_from_assets/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)]
)
def create_umap(body: UmapBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """Start a ``umap_creation`` job: a 2-D map of the space, stored as ``umap.<index_name>.coordinates`` on every
    asset matching ``search`` (all with an embedding in the space when empty)."""
    params = UmapParams(n_neighbors=body.n_neighbors, min_dist=body.min_dist, train_size=body.train_size)
    job_id = rt.embedding_maps.create_umap(p.scope, body.asset_type, body.index_name, body.search, params,
                                           body.transform_only)  # fmt: skip
    return {"job_id": job_id}


class CompareBody(BaseModel):
    sets: list[str]
    index_name: str | None = None
    metric_type: str | None = None
    metric_params: dict[str, Any] | None = None


@router.post(
    "/v1/sets_comparisons/compare_sets/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)]
)
def compare_sets(body: CompareBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """Start a ``compare_sets`` job: the sliced Wasserstein distance between every pair of ``sets`` in the space."""
    job_id = rt.embedding_maps.compare_sets(p.scope, body.sets, body.index_name, body.metric_type,
                                            body.metric_params)  # fmt: skip
    return {"job_id": job_id}


class MatrixBody(BaseModel):
    search: dict[str, Any] | None = None
    index_name: str | None = None


@router.post(
    "/v1/sets_comparisons/comparison_matrix/",
    responses={200: {"model": list[SetComparison]}},
    dependencies=[requires(Permission.READ)],
)
def comparison_matrix(
    body: MatrixBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """The stored comparison documents (one per pair of sets) matching ``search`` and ``index_name``."""
    return rt.embedding_maps.comparison_matrix(p.scope, body.search, body.index_name)


class InferenceBody(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())  # additional_params travel as extra keys

    model: str = "mask_rcnn"
    asset_type: str = "images"
    ids: list[str] | None = None
    search: dict[str, Any] | None = None
    obtain_mask: bool = False
    obtain_bbox: bool = False
    obtain_object_entities: bool = False
    obtain_embeddings: bool = False
    threshold: float | None = None
    classes_of_interest: list[str] | None = None


@router.post("/v1/models/model_inference/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def model_inference(
    body: InferenceBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """Start an ``image_inference`` job. Built: ``model="histogram"`` with ``obtain_embeddings`` (FACTS 12)."""
    obtain = {
        "obtain_mask": body.obtain_mask,
        "obtain_bbox": body.obtain_bbox,
        "obtain_object_entities": body.obtain_object_entities,
        "obtain_embeddings": body.obtain_embeddings,
    }
    job_id = rt.embedding_maps.model_inference(p.scope, body.asset_type, body.ids, body.search, body.model, obtain,
                                               dict(body.model_extra or {}))  # fmt: skip
    return {"job_id": job_id}
