"""HTTP plumbing of the client: one ``httpx.Client``, bearer auth, and the error envelope → exceptions."""

from __future__ import annotations

from typing import Any

import httpx

from scenebase.clients.encoding import encode_json
from scenebase.errors import InvalidAuthorization, ResponseError, SceneBaseError, ServerUnavailableError, SetsError


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
    code, message, details = "error", resp.text[:500] or resp.reason_phrase, None
    try:
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            env = body["error"]
            code, message, details = env.get("code", code), env.get("message", message), env.get("details")
    except ValueError:
        pass
    cls: type[SceneBaseError] = error
    if resp.status_code == 401:
        cls = InvalidAuthorization
    elif isinstance(details, dict) and details.get("resource") == "sets":
        cls = SetsError  # the server says a set was the problem (unknown, locked, wrong type, name taken)
    elif resp.status_code == 404 and not_found is not None:
        cls = not_found
    raise cls(message, status_code=resp.status_code, code=code, details=details)
