"""Request limits: a request body is counted as it arrives and refused with 413 once it is too large, and a
path or query string holding a NUL character is refused with 400 (no database stores one).

* JSON and every other non-multipart body: at most ``SCENEBASE_MAX_REQUEST_BYTES`` (searches, set member lists,
  job records). A larger ``Content-Length`` is refused before a byte of the body is read; a body sent without one
  (chunked) is refused as soon as the count passes the limit.
* ``multipart/form-data`` uploads: at most ``SCENEBASE_MAX_UPLOAD_BYTES`` in all, and each file part at most
  ``SCENEBASE_MAX_FILE_BYTES``: ``api/uploads.parse_upload`` stops storing a file part once it passes that
  limit (the rest of the part is counted and dropped), so the item is reported as too large without the server
  ever holding more of it than the limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scenebase.api.errors import envelope

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _limit_text(limit: int, upload: bool) -> str:
    if upload:
        return f"an upload request may be at most {limit} bytes in all (SCENEBASE_MAX_UPLOAD_BYTES)"
    return f"a request body other than an upload may be at most {limit} bytes (SCENEBASE_MAX_REQUEST_BYTES)"


class RequestLimitMiddleware:
    """Pure ASGI: refuses NUL characters in paths and query strings, and counts the bytes of every request body
    against the limit for its content type."""

    def __init__(self, app: ASGIApp, max_request_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or _has_nul(scope.get("query_string", b""))):
            await envelope(400, "invalid_argument", "the URL contains a NUL character (%00)")(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        upload = headers.get("content-type", "").lower().startswith("multipart/")
        limit = self.max_upload_bytes if upload else self.max_request_bytes
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await envelope(400, "invalid_argument", f"Content-Length {declared[:40]!r} is not a number")(
                    scope, receive, send
                )
                return
            if int(declared) > limit:
                # answered before the body is read; the client may still be sending it (the server closes)
                message = f"the request body is {int(declared)} bytes; {_limit_text(limit, upload)}"
                await envelope(413, "payload_too_large", message)(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # an HTTPException passes the body parsers untouched and becomes the 413 envelope
                    raise HTTPException(413, f"the request body passed {limit} bytes; {_limit_text(limit, upload)}")
            return message

        await self.app(scope, counted, send)


def _has_nul(query: bytes) -> bool:
    return b"\x00" in query or b"%00" in query
