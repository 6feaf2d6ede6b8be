"""Client exceptions with the seed's names (``scenebox.custom_exceptions``) under one base class.

Every exception raised because of a server answer carries ``status_code``, the server's ``code`` and
``message`` and the ``details`` of the JSON error envelope.
"""

from __future__ import annotations

from typing import Any


class SceneBaseError(Exception):
    """Base class of every scenebase client exception."""

    def __init__(
        self, message: str = "", status_code: int | None = None, code: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details = details

    def __str__(self) -> str:
        if self.status_code:
            return f"{self.message} (HTTP {self.status_code}, {self.code})"
        return self.message


class ResponseError(SceneBaseError):
    """The SceneEngine answered with a non-2xx status."""


class AssetError(SceneBaseError):
    """An asset operation failed (search, put, update, delete, invalid asset type)."""


class MetadataNotFoundError(AssetError):
    """No metadata for this id (or not visible to your organization)."""


class SetsError(SceneBaseError):
    """Set name exists, set locked, wrong set type, neither ids nor search, ..."""


class SessionError(SceneBaseError):
    pass


class JobError(SceneBaseError):
    """A job was aborted, timed out, or was interrupted."""


class InvalidArgumentsError(SceneBaseError, ValueError):
    """Arguments the method cannot accept (e.g. not exactly one media source). Also a ValueError."""


class InvalidTimeError(SceneBaseError, ValueError):
    pass


class InvalidAnnotationError(SceneBaseError, ValueError):
    pass


class EmbeddingError(SceneBaseError):
    pass


class SimilaritySearchError(SceneBaseError):
    pass


class IndexingException(SceneBaseError):
    pass


class InvalidAuthorization(SceneBaseError):
    """Missing/invalid token, or a user/organization/ownership operation was refused."""


class IdentityError(SceneBaseError):
    """The identity of a token could not be obtained."""


class ThumbnailNotAvailableError(SceneBaseError):
    pass


class ProjectError(SceneBaseError):
    pass


class OperationError(SceneBaseError):
    pass


class CampaignError(SceneBaseError):
    pass


class JiraError(SceneBaseError):
    pass


class UDFError(SceneBaseError):
    pass


class SearchError(ResponseError):
    """A malformed search query."""


class ZippingError(SceneBaseError):
    pass


class VersionError(SceneBaseError):
    """The server requires a newer client."""


class ServerUnavailableError(SceneBaseError):
    """The server could not be reached."""


class NotAScenebaseServerError(ServerUnavailableError):
    """The URL answers, but not as a scenebase server (another web server, or a wrong path such as ``/docs``)."""


__all__ = [name for name in dir() if name.endswith(("Error", "Exception", "Authorization"))]
