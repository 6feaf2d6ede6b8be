"""Response shapes shared by several route groups."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ResponseModel(BaseModel):
    """Base of every response model. Extra keys are kept, not dropped: a field the service adds reaches clients
    before the model documents it (the SceneBox client reads documents as plain dicts)."""

    model_config = ConfigDict(extra="allow")


class Acknowledged(ResponseModel):
    acknowledged: bool = Field(description="Always true: the change was made.")


class JobStarted(ResponseModel):
    job_id: str = Field(description="Id of the job doing the work; follow it with `GET /v1/jobs/{job_id}`.")


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable: invalid_argument, unauthenticated, forbidden, not_found, ...")
    message: str = Field(description="What went wrong, naming the offending item.")
    details: Any = Field(default=None, description="Per-item errors or validation errors, when there are any.")
    resource: str | None = Field(
        default=None, description="What the error is about: an asset type, sets, jobs, search, identity_manager, ..."
    )


class ErrorEnvelope(BaseModel):
    """The one shape of every error answer."""

    error: ErrorBody


#: declared on every route (the app's default responses); replaces FastAPI's own 422 body, which scenebase
#: never sends
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorEnvelope, "description": "The request was refused; `error.message` says why."},
    "5XX": {"model": ErrorEnvelope, "description": "Server error; `error.message` names an incident id."},
}
