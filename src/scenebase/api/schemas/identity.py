"""Bodies of ``/identity_manager``: users, organizations, ownerships."""

from __future__ import annotations

from pydantic import Field

from scenebase.api.schemas.common import ResponseModel


class CreatedUser(ResponseModel):
    username: str
    organization_id: str
    token: str = Field(description="The new user's personal token: shown only here, stored hashed.")
    role: str
    email: str | None = None


class UserEntry(ResponseModel):
    username: str
    organization: str = Field(description="Name of the user's organization.")
    organization_id: str
    role: str
    email: str | None = None
    token: str = Field(description="Public prefix of the token only (tokens are stored hashed).")


class Organization(ResponseModel):
    id: str
    name: str


class Ownership(ResponseModel):
    id: str
    owner: str = Field(description="Organization whose data is shared.")
    access: str = Field(description="Organization that may read it.")
    created_by: str = Field(description="Username that granted the access.")
