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


def as_sent(value: Any) -> Any:
    """For ``Annotated[dict[str, Any], BeforeValidator(as_sent, json_schema_input_type=Model)]``: a route body that
    is any JSON object, handed to the route as sent (the service validates it, with messages that name the
    offending part), documented in ``/openapi.json`` as ``Model``."""
    return value


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its nested models written in place, for ``openapi_extra`` (whose schemas
    cannot add components): multipart parts and bodies that routes read themselves."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve({**defs[ref.rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def binary_answer(description: str, media_types: list[str], ranges: bool = False) -> dict[int | str, dict[str, Any]]:
    """The documented answer of a route that sends a file: its media types (and 206 for byte ranges)."""
    content: dict[str, Any] = {t: {"schema": {"type": "string", "format": "binary"}} for t in media_types}
    answers: dict[int | str, dict[str, Any]] = {200: {"content": content, "description": description}}
    if ranges:
        answers[206] = {
            "content": content,
            "description": "The bytes a `Range: bytes=a-b` request asked for, with `Content-Range`.",
        }
    return answers
