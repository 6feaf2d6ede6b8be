"""Request limits: a request body is counted as it arrives and refused with 413 once it is too large, and a
path or query string holding a NUL character is refused with 400 (no database stores one).

* JSON and every other non-multipart body: at most ``SCENEBASE_MAX_REQUEST_BYTES`` (searches, set member lists,
  job records). A larger ``Content-Length`` is refused before a byte of the body is read; a body sent without one
  (chunked) is refused as soon as the count passes the limit.
* ``multipart/form-data`` uploads: at most ``SCENEBASE_MAX_UPLOAD_BYTES`` in all, and each file part at most
  ``SCENEBASE_MAX_FILE_BYTES``: :func:`parse_upload_form` stops writing a file part to disk once it passes that
  limit (the rest of the part is counted and dropped), so the item is reported as too large without the server
  ever holding more of it than the limit.
"""

from __future__ import annotations

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
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


class _CappedMultiPartParser(MultiPartParser):
    """Starlette's parser, but a file part stops being written once it passes ``max_file_bytes``."""

    def __init__(self, *args: object, max_file_bytes: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.max_file_bytes = max_file_bytes
        self.file_bytes: dict[int, int] = {}  # id(UploadFile) -> bytes the part had
        self.oversized: dict[int, UploadFile] = {}

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        upload = self._current_part.file
        if upload is not None:
            seen = self.file_bytes.get(id(upload), 0) + (end - start)
            self.file_bytes[id(upload)] = seen
            if seen > self.max_file_bytes:
                self.oversized[id(upload)] = upload
                return  # counted, not stored
        super().on_part_data(data, start, end)


async def parse_upload_form(
    request: Request, *, max_files: int, max_fields: int, max_part_size: int, max_file_bytes: int
) -> FormData:
    """``request.form(...)`` for uploads, with each file part capped at ``max_file_bytes`` while it is read. A
    capped part's ``UploadFile.size`` is its full size (so the caller reports it as too large) and its file holds
    only the first ``max_file_bytes``: it must not be used as the upload."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise HTTPException(415, f"an upload is multipart/form-data, not {content_type[:60]!r}")
    parser = _CappedMultiPartParser(
        request.headers,
        request.stream(),
        max_files=max_files,
        max_fields=max_fields,
        max_part_size=max_part_size,
        max_file_bytes=max_file_bytes,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(400, f"invalid upload: {exc.message}") from None
    for key, upload in parser.oversized.items():
        upload.size = parser.file_bytes[key]
    return form
