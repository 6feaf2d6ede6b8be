"""One JSON error envelope for every error: ``{"error": {"code", "message", "details", "resource"}}``.

No stack trace ever reaches a response; unexpected errors are logged with an id the response names. Write
conflicts that survived the services' retries (a locked SQLite file, a PostgreSQL deadlock or serialization
failure, a duplicate key) answer 409/503, never 500; values the database refuses (NUL in PostgreSQL text, lone
surrogates) answer 400, and a decode that waited in vain for the decode budget 503.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from scenebase.media.budget import DecodeBusy
from scenebase.services.errors import ServiceError
from scenebase.storage.catalog import ConcurrentWrite, write_conflict

log = logging.getLogger("scenebase.api")

_HTTP_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "invalid_argument",
    416: "range_not_satisfiable",
    423: "locked",
    429: "too_many_requests",
}


def envelope(
    status: int, code: str, message: str, details: Any = None, resource: str | None = None, headers: Any = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details, "resource": resource}}
    return JSONResponse(body, status_code=status, headers=headers)


def _resource_of(req: Request) -> str | None:
    """The asset type or area a route is about, for errors raised outside the services (validation, 404s)."""
    route = req.scope.get("route")
    if route is None:  # no route matched: nothing to name
        return None
    asset_type = req.path_params.get("asset_type")
    if asset_type:
        return str(asset_type)
    parts = [p for p in str(getattr(route, "path", "")).split("/") if p and not p.startswith("{")]
    if parts and parts[0] == "v1" and len(parts) > 1:
        return parts[1]
    return parts[0] if parts else None


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append({"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg"), "type": err.get("type")})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(req: Request, exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.http_status in (429, 503) else None
        resource = exc.resource or _resource_of(req)
        return envelope(exc.http_status, exc.code, exc.message, exc.details, resource, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
        message = f"invalid request: {where + ': ' if where else ''}{first['msg']}"
        return envelope(422, "invalid_argument", message, details, _resource_of(req))

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return envelope(exc.status_code, code, str(exc.detail), resource=_resource_of(req))

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", incident, req.method, req.url.path)
        return envelope(500, "internal", f"internal server error (incident {incident}); see the server log")

    @app.exception_handler(DecodeBusy)
    async def _decode_busy(req: Request, exc: DecodeBusy) -> JSONResponse:
        # any kind's decoder waited for the process's decode budget in vain: the server's state, retry later
        return envelope(503, "busy", str(exc), resource=_resource_of(req), headers={"Retry-After": "1"})

    @app.exception_handler(UnicodeEncodeError)
    async def _unstorable_text(req: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # a JSON "\udcff" escape is a lone surrogate, which no database driver can encode; any other encoding
        # failure (a header that is not latin-1, say) is the server's own bug
        if "surrogate" not in str(exc.reason):
            return await _unexpected(req, exc)
        message = "the request holds text with a lone surrogate (an invalid \\uD800-\\uDFFF escape)"
        return envelope(400, "invalid_argument", message, resource=_resource_of(req))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConcurrentWrite)
    async def _database(req: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DataError):  # the database refused a value of the request (e.g. NUL in text)
            text = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
            return envelope(400, "invalid_argument", f"a value cannot be stored: {text}", resource=_resource_of(req))
        conflict = write_conflict(exc)
        if conflict is None:
            return await _unexpected(req, exc)
        status, text = conflict
        log.warning("write conflict on %s %s: %s", req.method, req.url.path, text)
        code = "conflict" if status == 409 else "busy"
        return envelope(status, code, f"{text}; retry", resource=_resource_of(req), headers={"Retry-After": "1"})
