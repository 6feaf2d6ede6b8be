"""``/identity_manager``: users, organizations and ownerships (unversioned, as SceneBox has them)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from pydantic import BaseModel, Field

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import Acknowledged
from scenebase.api.schemas.identity import CreatedUser, Organization, Ownership, UserEntry
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.identity import Principal

router = SlashAgnosticRouter(prefix="/identity_manager", tags=["identity"])


class NewUser(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    email: str | None = None
    role: str
    organization_id: str


class UserChanges(BaseModel):
    email: str | None = None
    role: str | None = None
    organization_id: str | None = None


class OrganizationBody(BaseModel):
    organization_name: str = Field(min_length=1, max_length=255)


class OwnershipBody(BaseModel):
    owner: str
    access: str


@router.post("/user", response_model=CreatedUser, dependencies=[requires(Permission.MANAGE_USERS)])
def add_user(
    body: NewUser, principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Create a user in an organization; the answer holds the user's token, which is shown only here."""
    return rt.identity.add_user(principal, body.username, body.email, body.role, body.organization_id)


@router.get("/user", response_model=list[UserEntry], dependencies=[requires(Permission.MANAGE_USERS)])
def list_users(principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> list[Any]:
    """Users of the caller's organization (every user, for a superadmin)."""
    return rt.identity.list_users(principal)


@router.put("/user/{username}", response_model=Acknowledged, dependencies=[requires(Permission.MANAGE_USERS)])
def modify_user(
    username: str,
    body: UserChanges,
    principal: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Change a user's email, role or organization (fields left out stay as they are)."""
    rt.identity.modify_user(principal, username, body.email, body.role, body.organization_id)
    return {"acknowledged": True}


@router.delete("/user/{username}", response_model=Acknowledged, dependencies=[requires(Permission.MANAGE_USERS)])
def delete_user(
    username: str, principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Delete a user; its token stops working."""
    rt.identity.delete_user(principal, username)
    return {"acknowledged": True}


@router.post("/organization", response_model=Organization, dependencies=[requires(Permission.MANAGE_ORGANIZATIONS)])
def add_organization(
    body: OrganizationBody, principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Create an organization (superadmin only); the answer holds its new id."""
    return rt.identity.add_organization(principal, body.organization_name)


@router.get("/organization", response_model=list[Organization], dependencies=[requires(Permission.READ)])
def list_organizations(principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> list[Any]:
    """The caller's organization (every organization, for a superadmin)."""
    return rt.identity.list_organizations(principal)


@router.put(
    "/organization/{organization_id}",
    response_model=Acknowledged,
    dependencies=[requires(Permission.MANAGE_ORGANIZATIONS)],
)
def modify_organization(
    organization_id: str,
    body: OrganizationBody,
    principal: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Rename an organization (its id stays)."""
    rt.identity.modify_organization(principal, organization_id, body.organization_name)
    return {"acknowledged": True}


@router.delete(
    "/organization/{organization_id}",
    response_model=Acknowledged,
    dependencies=[requires(Permission.MANAGE_ORGANIZATIONS)],
)
def delete_organization(
    organization_id: str, principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Delete an organization (superadmin only, never the caller's own); refused while it has users."""
    rt.identity.delete_organization(principal, organization_id)
    return {"acknowledged": True}


@router.post("/ownership", response_model=Ownership, dependencies=[requires(Permission.MANAGE_OWNERSHIPS)])
def add_ownership(
    body: OwnershipBody, principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Let organization `access` read the data of organization `owner` (an admin can share only its own)."""
    return rt.identity.add_ownership(principal, body.owner, body.access)


@router.delete("/ownership", response_model=Acknowledged, dependencies=[requires(Permission.MANAGE_OWNERSHIPS)])
def delete_ownership(
    body: OwnershipBody, principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Revoke the read access of `access` to the data of `owner`."""
    rt.identity.delete_ownership(principal, body.owner, body.access)
    return {"acknowledged": True}


@router.get("/ownership", response_model=list[Ownership], dependencies=[requires(Permission.READ)])
def list_ownerships(principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> list[Any]:
    """Ownerships the caller's organization is part of, as owner or as access (all, for a superadmin)."""
    return rt.identity.list_ownerships(principal)
