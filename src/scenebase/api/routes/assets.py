"""Generic per-type routes: search ids / metadata, summaries, field statistics, one document.

The search language is documented in docs/search.md and, as typed models, in ``/openapi.json``
(``api/schemas/search.py``); fields no asset has come back as ``X-Scenebase-Warning`` headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Body, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.assets import AssetCount, AssetExists, AssetsDeleted
from scenebase.api.schemas.search import (
    AssetDocument,
    DocumentList,
    FieldStatistics,
    IdList,
    SearchBody,
    SummaryBody,
    SummaryResponse,
)
from scenebase.api.warning_headers import WARNING_HEADER
from scenebase.domain.ids import standardize_id
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.errors import NotFound
from scenebase.services.identity import Principal

router = SlashAgnosticRouter(prefix="/v1", tags=["search"])

#: the search body is validated by the service, not by pydantic: a malformed search is a 400 naming the problem
SEARCH_DOC = "The search (docs/search.md); no body or `{}` matches every asset."
_WARNINGS = {
    WARNING_HEADER: {
        "description": "One per field the query names that no asset has: a JSON string naming the closest known "
        "fields (docs/search.md, Warnings).",
        "schema": {"type": "string"},
    }
}


def _answer(model: Any, description: str, warns: bool = True) -> dict[int | str, dict[str, Any]]:
    """The documented 200 answer. Documentation only: the answer is not re-validated (10,000 documents)."""
    return {200: {"model": model, "description": description, **({"headers": _WARNINGS} if warns else {})}}


def _stream_array(batches: Iterator[list[Any]]) -> Iterator[bytes]:
    """A JSON array written batch by batch: the server holds one batch at a time."""
    yield b"["
    first = True
    for batch in batches:
        if not batch:
            continue
        body = b",".join(json.dumps(item, default=str).encode() for item in batch)
        yield body if first else b"," + body
        first = False
    yield b"]"


@dataclass
class Paging:
    """Query parameters shared by the two search routes."""

    size: int = Query(50, ge=0)
    offset: int = Query(0, ge=0)
    sort_field: str | None = None
    sort_order: str | None = None
    scan: bool = False


def _search(rt: Runtime, p: Principal, asset_type: str, search: Any, page: Paging, ids_only: bool) -> Any:
    if page.scan:
        batches = rt.assets.scan(p.scope, asset_type, search, ids_only=ids_only)
        first = next(batches, [])  # validate the query before the 200 goes out

        def chained() -> Iterator[list[Any]]:
            yield first
            yield from batches

        return StreamingResponse(_stream_array(chained()), media_type="application/json")
    return rt.assets.search(
        p.scope, asset_type, search, page.size, page.offset, page.sort_field, page.sort_order, ids_only
    )


@router.post("/{asset_type}/", dependencies=[requires(Permission.READ)], responses=_answer(IdList, "Matching ids."))
def search_ids(
    asset_type: str,
    search: Annotated[SearchBody, Body(description=SEARCH_DOC)] = None,
    page: Paging = Depends(),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """Ids of assets matching ``search`` (plain: at most 10,000; ``scan=true``: all, streamed)."""
    return _search(rt, p, asset_type, search, page, ids_only=True)


@router.post(
    "/{asset_type}/meta/", dependencies=[requires(Permission.READ)], responses=_answer(DocumentList, "Metadata.")
)
def search_meta(
    asset_type: str,
    search: Annotated[SearchBody, Body(description=SEARCH_DOC)] = None,
    page: Paging = Depends(),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """Metadata of assets matching ``search`` (``source_selected_fields`` projects them)."""
    return _search(rt, p, asset_type, search, page, ids_only=False)


@router.post(
    "/{asset_type}/meta/summary/",
    dependencies=[requires(Permission.READ)],
    responses=_answer(SummaryResponse, "Total and buckets."),
)
def summary(
    asset_type: str,
    request: Annotated[SummaryBody, Body(description="Validated by the service, naming the offending part.")],
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """``{"total", "aggregations": [{"dimension", "buckets": [{"key", "doc_count"}]}]}``; with
    ``"dimensions": []`` just the count."""
    return rt.assets.summary(p.scope, asset_type, request)


@router.get(
    "/{asset_type}/meta/searchable_field_statistics/",
    dependencies=[requires(Permission.READ)],
    responses=_answer(FieldStatistics, "Field name -> statistics.", warns=False),
)
def field_statistics(
    asset_type: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Each searchable field with its type, count and min/max (numbers, times) or top values (tags)."""
    return rt.assets.field_statistics(p.scope, asset_type)


@router.get("/{asset_type}/meta/{asset_id}", response_model=AssetDocument, dependencies=[requires(Permission.READ)])
def get_metadata(
    asset_type: str, asset_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """The metadata document of one asset (404 for unknown ids and other organizations' assets)."""
    return rt.assets.get(p.scope, asset_type, asset_id)


@router.put("/{asset_type}/meta/{asset_id}", response_model=AssetDocument, dependencies=[requires(Permission.INGEST)])
def update_metadata(
    asset_type: str,
    asset_id: str,
    metadata: Annotated[dict[str, Any], Body(description="Fields to write (FACTS 1.5 merge rules).")],
    replace: bool = False,
    replace_sets: bool = False,
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Change an asset's metadata: merged by default (dicts merged, lists unioned); ``replace_sets`` overwrites
    lists; ``replace`` swaps the document, keeping what the server derived. Answers the stored document."""
    return rt.lifecycle.update_metadata(p.scope, asset_type, asset_id, metadata, replace, replace_sets)


@router.post("/{asset_type}/count/", response_model=AssetCount, dependencies=[requires(Permission.READ)])
def count(
    asset_type: str,
    search: Annotated[SearchBody, Body(description=SEARCH_DOC)] = None,
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, int]:
    """``{"count": n}``: how many assets match ``search``."""
    return {"count": rt.assets.count(p.scope, asset_type, search)}


@router.get("/{asset_type}/exists/{asset_id}", response_model=AssetExists, dependencies=[requires(Permission.READ)])
def exists(
    asset_type: str, asset_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, bool]:
    """``{"exists": true}`` when the caller can see the asset, else 404 (like any other read of it)."""
    if not rt.assets.get_many(p.scope, asset_type, [standardize_id(asset_id)]):
        raise NotFound(f"no {asset_type} with id {asset_id!r}", resource=asset_type)
    return {"exists": True}


class DeleteBody(BaseModel):
    ids: list[str] = Field(min_length=1, description="Ids to delete (at most 1,000 per request).")


@router.post("/{asset_type}/delete/", response_model=AssetsDeleted, dependencies=[requires(Permission.DELETE)])
def delete_assets(
    asset_type: str, body: DeleteBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Delete assets and their files: ``{"deleted": n, "missing": [ids not found]}``. Refused (423, nothing
    deleted) when one of them is in a locked set."""
    return rt.lifecycle.delete(p.scope, asset_type, body.ids)
