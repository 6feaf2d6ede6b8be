"""The warnings a request gathered (``services/request_warnings.py``) as response headers.

Each warning is one ``X-Scenebase-Warning`` header line whose value is a JSON string: ASCII-only and free of
line breaks whatever field names a query held, and read back exactly with ``json.loads``.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scenebase.services import request_warnings

WARNING_HEADER = "X-Scenebase-Warning"


class WarningHeaderMiddleware:
    """Pure ASGI, so that the endpoint (run in a copy of this context) and the response share one collection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_warnings.collecting() as box:

            async def send_with_warnings(message: Message) -> None:
                if message["type"] == "http.response.start" and box:
                    extra = [(WARNING_HEADER.lower().encode(), json.dumps(w).encode("ascii")) for w in box]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                await send(message)

            await self.app(scope, receive, send_with_warnings)
