"""``/v1/sets`` (FACTS 5) and zip downloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Body, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StrictFloat, StrictInt

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.responses import content_disposition
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import JobStarted
from scenebase.api.schemas.search import SearchObject
from scenebase.api.schemas.sets import (
    SetCreated,
    SetLock,
    SetMemberIds,
    SetMembers,
    SetStatus,
    SplitStarted,
    ZipStarted,
)
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services import request_warnings
from scenebase.services.errors import InvalidArgument, NotFound
from scenebase.services.identity import Principal
from scenebase.services.sets import MAX_SUBSETS
from scenebase.storage.blobs import BlobNotFound

router = SlashAgnosticRouter(prefix="/v1", tags=["sets"])


class NewSet(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    assets_type: str
    origin_set_id: str | None = None
    origin: str | None = None
    description: str | None = None
    expected_count: int | None = Field(default=None, ge=0)
    tags: list[str] = Field(default_factory=list)
    id: str | None = None
    auxiliary: dict[str, Any] | None = None
    is_primary: bool = False
    raise_if_set_exists: bool = False


class AssetList(BaseModel):
    asset_list: list[str]


class SplitBody(BaseModel):
    set_id: str
    # bounded here so that a huge request is refused before any work: at most MAX_SUBSETS subsets, and never
    # more than the set has members (checked by the service)
    sections: StrictInt | None = None  # not a bool (true would count as 1 section)
    percentages: list[StrictFloat] | None = Field(default=None, min_length=1, max_length=MAX_SUBSETS)
    subset_names: list[str] | None = Field(default=None, max_length=MAX_SUBSETS)
    random_seed: int = 42


@router.post("/sets/add/", response_model=SetCreated, dependencies=[requires(Permission.CURATE)])
def add_set(body: NewSet, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Create a set; an existing name answers its id with ``created: false`` (409 with raise_if_set_exists)."""
    set_id, created = rt.sets.create(
        p.scope,
        body.name,
        body.assets_type,
        origin=body.origin_set_id or body.origin,
        description=body.description,
        expected_count=body.expected_count,
        tags=body.tags,
        set_id=body.id,
        aux=body.auxiliary,
        is_primary=body.is_primary,
        raise_if_set_exists=body.raise_if_set_exists,
    )
    return {"id": set_id, "created": created}


@router.put("/sets/{set_id}/lock", response_model=SetLock, dependencies=[requires(Permission.CURATE)])
def lock(set_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Lock the set: jobs that change its members are refused until it is unlocked."""
    rt.sets.set_locked(p.scope, set_id, True)
    return {"locked": True}


@router.delete("/sets/{set_id}/lock", response_model=SetLock, dependencies=[requires(Permission.CURATE)])
def unlock(set_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Unlock the set."""
    rt.sets.set_locked(p.scope, set_id, False)
    return {"locked": False}


@router.get("/sets/{set_id}/lock", response_model=SetLock, dependencies=[requires(Permission.READ)])
def is_locked(set_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Whether the set is locked."""
    return {"locked": rt.sets.is_locked(p.scope, set_id)}


@router.get("/sets/{set_id}/status/", response_model=SetStatus, dependencies=[requires(Permission.READ)])
def status(set_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Name, asset type, state, lock and member count of a set."""
    return rt.sets.status(p.scope, set_id)


@router.delete("/sets/delete_set/{set_id}", response_model=JobStarted, dependencies=[requires(Permission.DELETE)])
def delete_set(
    set_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Delete the set (a job); its assets stay, without the set in their ``sets``."""
    return {"job_id": rt.sets.delete(p.scope, set_id)}


@router.post("/sets/split_sets/", response_model=SplitStarted, dependencies=[requires(Permission.CURATE)])
def split_sets(
    body: SplitBody, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Split a set into new subsets (a job): `sections` equal parts or `percentages`, shuffled with `random_seed`."""
    if (body.sections is None) == (body.percentages is None):
        raise InvalidArgument("give exactly one of 'sections' and 'percentages'")
    spec: Any = body.sections if body.sections is not None else body.percentages
    job_id, subset_ids = rt.sets.split(p.scope, body.set_id, spec, body.subset_names, body.random_seed)
    return {"job_id": job_id, "subset_ids": subset_ids}


@router.post("/sets/{set_id}/add_assets_query/", response_model=JobStarted, dependencies=[requires(Permission.CURATE)])
def add_assets_query(
    set_id: str,
    search: SearchObject | None = Body(None),
    limit: int | None = Query(None, ge=0),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Add the assets matching the search body (a job); `limit` takes a seeded random sample of them."""
    return {"job_id": rt.sets.add_assets(p.scope, set_id, None, search or {}, limit)}


@router.post("/sets/{set_id}/add_assets_list/", response_model=JobStarted, dependencies=[requires(Permission.CURATE)])
def add_assets_list(
    set_id: str, body: AssetList, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Add assets by id to the set (a job)."""
    return {"job_id": rt.sets.add_assets(p.scope, set_id, body.asset_list, None, None)}


@router.post(
    "/sets/{set_id}/remove_assets_query/", response_model=JobStarted, dependencies=[requires(Permission.CURATE)]
)
def remove_assets_query(
    set_id: str,
    search: SearchObject | None = Body(None),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Remove the set's members matching the search body (a job)."""
    return {"job_id": rt.sets.remove_assets(p.scope, set_id, None, search or {})}


@router.post(
    "/sets/{set_id}/remove_assets_list/", response_model=JobStarted, dependencies=[requires(Permission.CURATE)]
)
def remove_assets_list(
    set_id: str, body: AssetList, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Remove assets by id from the set (a job)."""
    return {"job_id": rt.sets.remove_assets(p.scope, set_id, body.asset_list, None)}


@router.post("/sets/{set_id}/list_assets/", response_model=SetMemberIds, dependencies=[requires(Permission.READ)])
def list_assets(
    set_id: str,
    search: SearchObject | None = Body(None),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Ids of the set's members matching the search body (all members without one)."""
    return {"results": rt.sets.within(p.scope, set_id, search, ids_only=True)}


@router.post("/sets/{set_id}/list_assets_meta/", response_model=SetMembers, dependencies=[requires(Permission.READ)])
def list_assets_meta(
    set_id: str,
    search: SearchObject | None = Body(None),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Metadata of the set's members matching the search body (all without one)."""
    return {"results": rt.sets.within(p.scope, set_id, search, ids_only=False)}


@router.post("/sets/{set_id}/zip_all_assets/", response_model=ZipStarted, dependencies=[requires(Permission.CURATE)])
def zip_all_assets(
    set_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Zip the set's files and metadata (a job) into a zipfile asset."""
    job_id, zip_id = rt.zips.zip(p.scope, set_id)
    return {"job_id": job_id, "zip_id": zip_id}


@router.get(
    "/zipfiles/{zip_id}/file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The zip file."}},
    dependencies=[requires(Permission.READ)],
)
def zip_file(
    zip_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> StreamingResponse:
    """The zip's bytes, streamed in 8 MiB pieces. A zip that lacks some members' files (unreadable when it was
    made; its manifest lists them under `missing_files`) answers with an `X-Scenebase-Warning` naming them."""
    doc = rt.assets.get(p.scope, "zipfiles", zip_id)
    missing = doc.get("missing_files") or []
    if missing:
        named = "; ".join(f"{m.get('id')} ({m.get('error')})" for m in missing[:5])
        more = f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
        request_warnings.warn(
            f"zip {zip_id} lacks the files of {len(missing)} of its {doc.get('count')} assets: {named}{more}"
        )
    key = doc["object_access"]["key"]
    try:
        size = rt.blobs.size(key)
    except BlobNotFound:
        raise NotFound(f"the file of zipfile {zip_id!r} is missing") from None
    chunk = 8 * 1024 * 1024

    def pieces() -> Iterator[bytes]:
        for start in range(0, size, chunk):
            yield rt.blobs.open_range(key, start, chunk)

    headers = {"Content-Length": str(size), "Content-Disposition": content_disposition("attachment", doc["name"])}
    return StreamingResponse(pieces(), media_type="application/zip", headers=headers)
