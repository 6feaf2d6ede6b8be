"""Helpers for testing code against an in-process scenebase server (no sockets, no subprocess).

>>> with InProcessServer(tmp_path) as server:
...     client = server.client()          # a SceneEngineClient authenticated as the superadmin
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from scenebase.api.app import create_app
from scenebase.clients.scene_engine_client import SceneEngineClient
from scenebase.runtime import Runtime
from scenebase.settings import Settings

ADMIN_TOKEN = "default-admin-testtoken"


class InProcessServer:
    """A started :class:`Runtime` plus its app; clients talk to it through Starlette's test transport."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        settings.setdefault("admin_token", ADMIN_TOKEN)
        settings.setdefault("workers", 2)
        self.settings = Settings(data_dir=data_dir, **settings)
        self.runtime = Runtime(self.settings)
        self.app = create_app(self.runtime)
        self._transports: list[TestClient] = []

    def start(self) -> InProcessServer:
        self.runtime.start()
        return self

    def stop(self) -> None:
        for t in self._transports:
            t.close()
        self.runtime.stop()

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def http(self) -> TestClient:
        """A raw HTTP client (httpx API) for route-level tests."""
        t = TestClient(self.app, raise_server_exceptions=False)
        self._transports.append(t)
        return t

    def client(self, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> SceneEngineClient:
        """A ``SceneEngineClient`` whose HTTP goes straight into the app."""
        kwargs.setdefault("scene_engine_url", "http://testserver")
        c = SceneEngineClient(auth_token=token, **kwargs)
        c._http.client = self.http()
        return c
