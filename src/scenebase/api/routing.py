"""An APIRouter that answers every route with and without a trailing slash (FACTS 0: the SceneBox
client sends both forms), without redirects (a 307 would make clients resend bodies)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter


class SlashAgnosticRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        full = self.prefix + path
        alt = path[:-1] if path.endswith("/") else path + "/"
        if full.rstrip("/"):
            alt_kwargs = dict(kwargs, include_in_schema=False)
            alt_kwargs.pop("operation_id", None)
            super().add_api_route(alt, endpoint, **alt_kwargs)
