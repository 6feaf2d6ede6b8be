"""Embeddings and similarity search (FACTS 7, 15): ``/v1/embeddings/...`` and ``/v1/similarity_search/...``.

Vectors travel as raw little-endian float32 values: in ``/v1/embeddings/add_binary/`` as the bytes themselves
after a JSON header (what the client sends), elsewhere as base64 of them, all of a request's vectors in one
string (a JSON list of 512 numbers per vector would be several times larger and slower to parse)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from scenebase import fastjson
from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import JobStarted
from scenebase.api.schemas.embeddings import EmbeddingsAdded, EmbeddingSpace, EmbeddingVectors
from scenebase.domain.embeddings import MAX_NDIM, InvalidVector, decode_vectors
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.embeddings import MAX_EMBEDDINGS_READ
from scenebase.services.errors import InvalidArgument
from scenebase.services.identity import Principal

router = SlashAgnosticRouter(tags=["embeddings"])


class AddBody(BaseModel):
    embeddings: list[dict[str, Any]] = Field(min_length=1, description="metadata of each embedding (FACTS 2.6)")
    ndim: int = Field(ge=1, le=MAX_NDIM)
    vectors: str = Field(description="base64 of len(embeddings) * ndim little-endian float32 values")


#: ``/v1/embeddings/add_binary/``: the body is this many bytes giving the header's length, the header, the vectors
HEADER_LENGTH_BYTES = 4
ADD_BINARY_BODY = {
    "requestBody": {
        "required": True,
        "description": 'A 4-byte little-endian unsigned length n, then n bytes of UTF-8 JSON `{"embeddings": '
        '[metadata, ...], "ndim": d}` (as for /v1/embeddings/add/), then len(embeddings) * d little-endian '
        "float32 values.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def parse_binary_add(body: bytes) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The embeddings' metadata and their ``(n, ndim)`` vectors from an ``add_binary`` body; InvalidArgument
    naming the part at fault."""
    if len(body) < HEADER_LENGTH_BYTES:
        raise InvalidArgument("the body must start with the 4-byte length of its JSON header", resource="embeddings")
    size = int.from_bytes(body[:HEADER_LENGTH_BYTES], "little")
    end = HEADER_LENGTH_BYTES + size
    if size == 0 or end > len(body):
        raise InvalidArgument(f"the JSON header is said to hold {size} bytes; the body has {len(body)} in all",
                              resource="embeddings")  # fmt: skip
    try:
        header = fastjson.loads(body[HEADER_LENGTH_BYTES:end])
    except ValueError as e:
        raise InvalidArgument(f"the header is not JSON: {e}", resource="embeddings") from None
    metas, ndim = (header.get("embeddings"), header.get("ndim")) if isinstance(header, dict) else (None, None)
    if not isinstance(metas, list) or not metas:
        raise InvalidArgument("the header must hold a non-empty list 'embeddings'", resource="embeddings")
    if isinstance(ndim, bool) or not isinstance(ndim, int) or not 1 <= ndim <= MAX_NDIM:
        raise InvalidArgument(f"the header's 'ndim' must be an integer from 1 to {MAX_NDIM}, got {ndim!r}",
                              resource="embeddings")  # fmt: skip
    try:
        vectors = decode_vectors(body[end:], ndim, len(metas))
    except InvalidVector as e:
        raise InvalidArgument(f"vectors: {e}", resource="embeddings") from None
    return metas, vectors


@router.post(
    "/v1/embeddings/add_binary/",
    response_model=EmbeddingsAdded,
    openapi_extra=ADD_BINARY_BODY,
    dependencies=[requires(Permission.INGEST)],
)
async def add_embeddings_binary(
    request: Request, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """``/v1/embeddings/add/`` with the vectors as raw bytes (no base64 to encode and decode): what the client
    sends."""
    metas, vectors = parse_binary_add(await request.body())
    return {"ids": await run_in_threadpool(rt.embeddings.add, p.scope, metas, vectors)}


@router.post("/v1/embeddings/add/", response_model=EmbeddingsAdded, dependencies=[requires(Permission.INGEST)])
def add_embeddings(body: AddBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """Store embeddings and link them to their assets; an indexed asset's vector is replaced in its index too."""
    try:
        vectors = decode_vectors(body.vectors, body.ndim, len(body.embeddings))
    except (InvalidVector, ValueError) as e:
        raise InvalidArgument(f"vectors: {e}", resource="embeddings") from None
    return {"ids": rt.embeddings.add(p.scope, body.embeddings, vectors)}


class VectorsBody(BaseModel):
    index_name: str = Field(min_length=1)
    asset_type: str = "images"
    ids: list[str] | None = None
    search: dict[str, Any] | None = None
    max_number_of_embeddings: int = Field(MAX_EMBEDDINGS_READ, ge=1, le=1_000_000)


@router.post("/v1/embeddings/vectors/", response_model=EmbeddingVectors, dependencies=[requires(Permission.READ)])
def get_vectors(body: VectorsBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """The vectors of a space (of ``ids`` and/or assets matching ``search``; every one when neither):
    ``{"asset_ids", "ndim", "vectors": base64 float32}``."""
    ids, matrix = rt.embeddings.vectors(p.scope, body.index_name, body.ids, body.search, body.asset_type,
                                        body.max_number_of_embeddings)  # fmt: skip
    data = base64.b64encode(matrix.astype("<f4").tobytes()).decode("ascii")
    return {"asset_ids": ids, "ndim": int(matrix.shape[1]), "vectors": data}


@router.get(
    "/v1/embeddings/spaces/",
    responses={200: {"model": dict[str, EmbeddingSpace]}},
    dependencies=[requires(Permission.READ)],
)
def list_spaces(
    asset_type: str | None = None, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """The organization's embedding spaces: ``{index_name: {"count", "asset_types", "indexed"}}``."""
    return rt.embeddings.spaces(p.scope, asset_type)


class RemoveBody(BaseModel):
    index_name: str = Field(min_length=1)
    asset_type: str | None = None


@router.post(
    "/v1/embeddings/remove_embedding_space/", response_model=JobStarted, dependencies=[requires(Permission.DELETE)]
)
def remove_space(body: RemoveBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """Start an ``embedding_removal`` job: the space's embeddings, their links on assets, and its index."""
    return {"job_id": rt.embeddings.remove_space(p.scope, body.index_name, body.asset_type)}


class BulkIndexBody(BaseModel):
    embedding_ids: list[str] | None = None
    search_dic: dict[str, Any] | None = None


@router.post("/v1/similarity_search/bulk_index/", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def bulk_index(body: BulkIndexBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """Start a ``similarity_bulk_index`` job over embeddings (by id and/or a search over embeddings)."""
    return {"job_id": rt.similarity.bulk_index(p.scope, body.embedding_ids, body.search_dic)}


class SimilarBody(BaseModel):
    ids: list[str] | None = None
    similar_asset_count: int = 10
    index_name: str | None = None
    asset_type: str = "images"
    search: dict[str, Any] | None = None
    vector: list[float] | None = Field(None, description="a raw query vector instead of ids (needs index_name)")


@router.post(
    "/v1/similarity_search/similarity_search/",
    responses={200: {"model": list[list[str]], "description": "for each query, the ids of the most similar assets"}},
    dependencies=[requires(Permission.READ)],
)
def similarity_search(
    body: SimilarBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """For each query id (or the vector): the most similar assets' ids, most similar first, itself left out."""
    return rt.similarity.search_similar(p.scope, body.ids, body.similar_asset_count, body.asset_type,
                                        body.index_name, body.search, body.vector)  # fmt: skip
