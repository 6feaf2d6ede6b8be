"""The server's exception tree. The API maps each class to one HTTP status and error code."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error a service raises on purpose. ``message`` is shown to the caller."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


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


class Unavailable(ServiceError):
    code = "unavailable"
    http_status = 503
