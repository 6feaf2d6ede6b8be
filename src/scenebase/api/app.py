"""The FastAPI application. ``create_app(runtime)`` for tests; ``scenebase serve`` builds its own runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from scenebase import __version__
from scenebase.api.errors import install_error_handlers
from scenebase.api.routes import assets, identity, images, jobs, maintenance, sets, status
from scenebase.api.warning_headers import WarningHeaderMiddleware
from scenebase.runtime import Runtime

# specific routers first: the generic /v1/{asset_type}/... routes come last
ROUTERS = [status.router, identity.router, jobs.router, maintenance.router, images.router, sets.router, assets.router]

DESCRIPTION = """scenebase API. Authenticate with `Authorization: Bearer <token>` (or `?token=<token>`).
Every error is `{"error": {"code", "message", "details"}}`."""


def create_app(runtime: Runtime, manage_runtime: bool = False) -> FastAPI:
    """Build the app around ``runtime``. With ``manage_runtime`` the app starts and stops it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                runtime.stop()

    app = FastAPI(title="scenebase", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(WarningHeaderMiddleware)  # search warnings as X-Scenebase-Warning headers
    for r in ROUTERS:
        app.include_router(r)
    return app


def iter_api_routes() -> list[APIRoute]:
    """Every API route (both slash forms), for the role-matrix and tenancy tests and the docs."""
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


def app_from_environment() -> FastAPI:
    """App factory for ``scenebase serve --processes N``: each process reads its settings from the environment
    and starts (and stops) its own runtime."""
    from scenebase.settings import Settings

    return create_app(Runtime(Settings()), manage_runtime=True)
