"""Unauthenticated status, identity of a token (``/auth``), and cache clearing."""

from __future__ import annotations

import socket
from typing import Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from scenebase import SUPPORTED_CLIENT_VERSION, __version__
from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.status import CacheCleared, ServerStatus, TokenIdentity
from scenebase.domain.roles import Permission, allows
from scenebase.runtime import Runtime
from scenebase.services.errors import Forbidden
from scenebase.services.identity import Principal

router = SlashAgnosticRouter(tags=["status"])


@router.get("/status", response_model=ServerStatus)
def status(runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Server version and URLs. No token needed."""
    api = runtime.settings.resolved_api_url()
    return {
        "version": __version__,
        "api_url": api,
        "asset_manager_url": f"{api}/v1",
        "frontend_url": runtime.settings.resolved_frontend_url(),
        "supported_version": SUPPORTED_CLIENT_VERSION,
    }


@router.get("/auth", response_model=TokenIdentity, dependencies=[requires(Permission.READ)])
def auth(principal: Principal = Depends(get_principal)) -> dict[str, Any]:
    """Who the token belongs to (the client's ``whoami``)."""
    return {
        "version": __version__,
        "build_host": socket.gethostname(),
        "token": principal.token,
        "username": principal.username,
        "role": principal.role.value,
        "organization": principal.org_name,
        "organization_id": principal.org_id,
    }


class ClearCacheBody(BaseModel):
    partitions: list[str] | None = Field(
        default=None, description="Cache partitions to clear; left out or `*`: all (and the token cache)."
    )


@router.post("/clear_cache", response_model=CacheCleared, dependencies=[requires(Permission.READ)])
def clear_cache(
    body: ClearCacheBody | None = None,
    all_organizations: bool = Query(False, description="Clear every organization's caches (admins only)."),
    principal: Principal = Depends(get_principal),
    runtime: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Empty the server's derived-data caches of the caller's organization (or of all, for admins)."""
    if all_organizations and not allows(principal.role, Permission.CLEAR_CACHE_ALL):
        raise Forbidden("clearing every organization's cache needs the admin or superadmin role")
    partitions = body.partitions if body else None
    cleared = runtime.cache.clear(None if all_organizations else principal.org_id, partitions)
    if all_organizations or not partitions or "*" in partitions:
        runtime.identity.clear_auth_cache()
    return {"acknowledged": True, "cleared_entries": cleared}
