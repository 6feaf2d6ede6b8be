"""Bodies of ``/status``, ``/auth`` and ``/clear_cache``."""

from __future__ import annotations

from pydantic import Field

from scenebase.api.schemas.common import ResponseModel


class ServerStatus(ResponseModel):
    version: str = Field(description="scenebase server version.")
    api_url: str = Field(description="Public base URL of this API.")
    asset_manager_url: str = Field(description="`<api_url>/v1`: base of the asset routes.")
    frontend_url: str = Field(description="Public URL of the web app.")
    supported_version: str = Field(description="Oldest client version this server accepts.")


class TokenIdentity(ResponseModel):
    version: str = Field(description="scenebase server version.")
    build_host: str = Field(description="Host name of the server process that answered.")
    token: str = Field(description="The token the request carried.")
    username: str
    role: str = Field(description="One of the roles in docs/permissions.md.")
    organization: str = Field(description="Name of the user's organization.")
    organization_id: str


class CacheCleared(ResponseModel):
    acknowledged: bool
    cleared_entries: int = Field(description="How many cached entries were dropped.")
