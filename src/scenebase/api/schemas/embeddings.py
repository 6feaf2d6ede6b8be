"""Answers of the embeddings, similarity search, UMAP, set comparison and model inference routes."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scenebase.api.schemas.common import ResponseModel


class EmbeddingsAdded(ResponseModel):
    ids: list[str] = Field(description="Ids of the stored embeddings, in request order.")


class EmbeddingVectors(ResponseModel):
    asset_ids: list[str] = Field(description="The asset of each vector, in the order of `vectors`.")
    ndim: int = Field(description="Values per vector.")
    vectors: str = Field(description="base64 of len(asset_ids) * ndim little-endian float32 values.")


class EmbeddingSpace(ResponseModel):
    count: int = Field(description="Embeddings stored in the space.")
    asset_types: list[str] = Field(description="Asset types the embeddings belong to.")
    indexed: int = Field(description="Vectors in the space's similarity index.")


class SetComparison(ResponseModel):
    id: str
    sets: list[str] = Field(description="The two sets compared.")
    index_name: str = Field(description="The embedding space.")
    metric_type: str | None = None
    metric_params: dict[str, Any] | None = None
    value: float = Field(description="Sliced Wasserstein distance, mean over the seeds.")
    std: float = Field(description="Spread of the distance over the seeds.")
    counts: list[int] = Field(description="Vectors read from each set.")
    timestamp: Any = None
    job_id: str | None = Field(None, description="The compare_sets job that computed it.")
