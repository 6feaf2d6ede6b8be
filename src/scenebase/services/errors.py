"""The server's exception tree. The API maps each class to one HTTP status and error code.

Every error names the ``resource`` it is about when there is one (an asset type such as ``images``, or ``sets``,
``jobs``, ``sessions``, ``identity``, ``search``...). The JSON envelope carries code and resource, and the client
maps them with one table (``scenebase.clients.http.ERROR_TABLE``) to the seed's exception names.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error a service raises on purpose. ``message`` is shown to the caller."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, details: Any = None, resource: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.resource = resource


class InvalidArgument(ServiceError):
    code = "invalid_argument"
    http_status = 400


class Unauthenticated(ServiceError):
    code = "unauthenticated"
    http_status = 401


class Forbidden(ServiceError):
    code = "forbidden"
    http_status = 403


class NotFound(ServiceError):
    code = "not_found"
    http_status = 404


class Conflict(ServiceError):
    code = "conflict"
    http_status = 409


class Locked(ServiceError):
    code = "locked"
    http_status = 423


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMedia(ServiceError):
    code = "unsupported_media"
    http_status = 415


class RangeNotSatisfiable(ServiceError):
    code = "range_not_satisfiable"
    http_status = 416


class TooManyRequests(ServiceError):
    code = "too_many_requests"
    http_status = 429


class Unavailable(ServiceError):
    code = "unavailable"
    http_status = 503


class Busy(Unavailable):
    """The catalog stayed locked by other writers, or a write kept colliding with a concurrent one: retry."""

    code = "busy"
