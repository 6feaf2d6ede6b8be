"""The FastAPI application. ``create_app(runtime)`` for tests; ``scenebase serve`` builds its own runtime."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from scenebase import __version__
from scenebase.api.docs import install_offline_docs
from scenebase.api.errors import install_error_handlers
from scenebase.api.limits import RequestLimitMiddleware
from scenebase.api.routes import annotations as annotation_routes
from scenebase.api.routes import (
    assets,
    embedding_maps,
    embeddings,
    identity,
    images,
    indexing,
    jobs,
    lidars,
    maintenance,
    media,
    sessions,
    sets,
    status,
    videos,
)
from scenebase.api.schemas.common import ERROR_RESPONSES
from scenebase.api.warning_headers import WarningHeaderMiddleware
from scenebase.api.webapp import install_webapp
from scenebase.runtime import Runtime

# specific routers first: the generic /v1/{asset_type}/... routes come last
ROUTERS = [
    status.router,
    identity.router,
    jobs.router,
    maintenance.router,
    images.router,
    videos.router,
    indexing.router,
    sessions.router,
    lidars.router,
    annotation_routes.router,
    sets.router,
    embeddings.router,
    embedding_maps.router,
    # the generic routes: metadata first, so that GET /v1/{type}/meta/file is the metadata of an asset named
    # "file" (the file of an asset named "meta" is the one path this costs)
    assets.router,
    media.router,
]

DESCRIPTION = """scenebase API: perception data (images, videos, LIDAR, ROS recordings), sets and jobs.

**Authentication**: every route except `GET /status` needs a personal token, as `Authorization: Bearer <token>`
or as the query parameter `?token=<token>` (press *Authorize* to try routes out here). A token belongs to one
user in one organization; the role of that user decides which routes it may call (see docs/permissions.md).

**Errors** always have one shape, `{"error": {"code", "message", "details", "resource"}}`, where `code` is one
of `invalid_argument`, `unauthenticated`, `forbidden`, `not_found`, `method_not_allowed`, `conflict`, `locked`,
`payload_too_large`, `unsupported_media`, `range_not_satisfiable`, `too_many_requests`, `unavailable`, `busy`,
`internal`, and `resource` names what the error is about (an asset type, `sets`, `jobs`, `search`, ...).

**Jobs**: routes that start long work answer a `job_id`; follow it with `GET /v1/jobs/{job_id}`."""


#: objects allocated (less freed) before the cyclic collector scans the young generation in a server process
GC_YOUNG_THRESHOLD = 20_000


def create_app(runtime: Runtime, manage_runtime: bool = False, freeze_heap: bool = False) -> FastAPI:
    """Build the app around ``runtime``. With ``manage_runtime`` the app starts and stops it. ``freeze_heap``
    (for a server process, not for tests that build many apps) moves everything alive after start-up out of the
    cyclic garbage collector's sight: the collector otherwise rescans the ~200,000 long-lived start-up objects
    (modules, models, routes) on every full collection, a third of the CPU of a bulk ``add_entities``; it also
    makes the young generation larger (``GC_YOUNG_THRESHOLD``)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        if freeze_heap:
            gc.collect()
            gc.freeze()
            # requests allocate many short-lived containers (decoded documents, index terms): at the default 700
            # a young-generation collection ran every few annotations of an add_annotations batch, and their
            # survivors triggered older ones; 20,000 lets most die by reference count first (about 5 % less CPU)
            gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        try:
            yield
        finally:
            if manage_runtime:
                runtime.stop()

    app = FastAPI(
        title="scenebase",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        docs_url=None,  # served offline by install_offline_docs
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    install_offline_docs(app)
    install_webapp(app)  # /app/: the web app's bundle (api/webapp.py)
    app.add_middleware(WarningHeaderMiddleware)  # search warnings as X-Scenebase-Warning headers
    settings = runtime.settings
    app.add_middleware(RequestLimitMiddleware, max_request_bytes=settings.max_request_bytes,
                       max_upload_bytes=settings.max_upload_bytes)  # fmt: skip
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

    return create_app(Runtime(Settings()), manage_runtime=True, freeze_heap=True)
