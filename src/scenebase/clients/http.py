"""HTTP plumbing of the client: one ``httpx.Client``, bearer auth, and the error envelope → exceptions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from scenebase.clients.encoding import encode_json
from scenebase.errors import (
    EmbeddingError,
    IdentityError,
    InvalidAnnotationError,
    InvalidAuthorization,
    JobError,
    ResponseError,
    SceneBaseError,
    SearchError,
    ServerUnavailableError,
    SessionError,
    SetsError,
    SimilaritySearchError,
)

#: The one table from a server error (its ``resource`` and ``code``) to the seed's exception names. Looked up as
#: (resource, code), then (any resource, code), then (resource, any code); no entry: the exception the calling
#: method names (``ResponseError`` for SceneEngine routes, ``AssetError`` for asset routes, ...).
ERROR_TABLE: dict[tuple[str | None, str | None], type[SceneBaseError]] = {
    (None, "unauthenticated"): InvalidAuthorization,
    ("sets", None): SetsError,
    ("sessions", None): SessionError,
    ("session_manager", None): SessionError,
    ("jobs", None): JobError,
    ("identity_manager", None): InvalidAuthorization,
    ("auth", None): IdentityError,
    ("search", None): SearchError,
    ("annotations", "invalid_argument"): InvalidAnnotationError,
    ("embeddings", "invalid_argument"): EmbeddingError,
    ("similarity_search", None): SimilaritySearchError,
}


def error_class(
    status: int, code: str | None, resource: str | None, default: type[SceneBaseError],
    not_found: type[SceneBaseError] | None = None,
) -> type[SceneBaseError]:  # fmt: skip
    """The exception a client raises for a server error (see ERROR_TABLE). A method that names its own
    ``not_found`` exception (``get_metadata``: MetadataNotFoundError) gets it for a 404 whatever the resource."""
    if status == 404 and not_found is not None:
        return not_found
    for key in ((resource, code), (None, code), (resource, None)):
        if key in ERROR_TABLE:
            return ERROR_TABLE[key]
    return InvalidAuthorization if status == 401 else default


class HttpSession:
    """A thin wrapper over ``httpx.Client``. Tests swap ``client`` for an in-process transport."""

    def __init__(self, root_url: str, token: str | None, max_connections: int = 24) -> None:
        self.root_url = root_url.rstrip("/")
        self.token = token
        self.client: httpx.Client = httpx.Client(
            base_url=self.root_url,
            timeout=httpx.Timeout(120.0, connect=10.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        files: Any = None,
        data: dict[str, Any] | None = None,
        error: type[SceneBaseError] = ResponseError,
        not_found: type[SceneBaseError] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": _clean(params), "headers": self._headers()}
        if json is not None:  # through the client's one encoder: datetimes, numpy values, errors naming the part
            kwargs["content"] = encode_json(json)
            kwargs["headers"]["Content-Type"] = "application/json"
        if content is not None:
            kwargs["content"] = content
            if content_type is not None:
                kwargs["headers"]["Content-Type"] = content_type
        if files is not None:
            kwargs["files"] = files
        if data is not None:
            kwargs["data"] = data
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise ServerUnavailableError(f"cannot reach scenebase at {self.root_url}: {e}") from e
        if resp.status_code >= 400:
            raise_for_envelope(resp, error, not_found)
        return resp

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        error: type[SceneBaseError] = ResponseError,
        not_found: type[SceneBaseError] | None = None,
    ) -> Iterator[httpx.Response]:
        """A response whose body is read piece by piece (``iter_bytes``); errors raise like ``request``."""
        try:
            with self.client.stream(method, path, headers=self._headers()) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise_for_envelope(resp, error, not_found)
                yield resp
        except httpx.TransportError as e:
            raise ServerUnavailableError(f"cannot reach scenebase at {self.root_url}: {e}") from e

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def close(self) -> None:
        self.client.close()


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else v
    return out


def raise_for_envelope(
    resp: httpx.Response, error: type[SceneBaseError], not_found: type[SceneBaseError] | None = None
) -> None:
    code, message, details, resource = "error", resp.text[:500] or resp.reason_phrase, None, None
    try:
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            env = body["error"]
            code, message, details = env.get("code", code), env.get("message", message), env.get("details")
            resource = env.get("resource")
    except ValueError:
        pass
    cls = error_class(resp.status_code, code, resource, error, not_found)
    raise cls(message, status_code=resp.status_code, code=code, details=details)
