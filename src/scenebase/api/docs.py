"""Interactive API docs that work offline: Swagger UI (``/docs``) and ReDoc (``/redoc``) load their scripts and
styles from this server (``/docs/static``, files shipped by the ``fastapi-offline`` package), never from a CDN,
so they also render in an air-gapped lab."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
STATIC_URL = "/docs/static"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

SWAGGER_PARAMETERS = {
    "validatorUrl": None,  # Swagger UI would otherwise send the spec to validator.swagger.io for its badge
    "displayRequestDuration": True,
}


def install_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets. The app must be built with ``docs_url=None, redoc_url=None``."""
    if not (ASSETS_DIR / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"Swagger UI assets missing from {ASSETS_DIR}: reinstall the fastapi-offline package")
    app.mount(STATIC_URL, StaticFiles(directory=ASSETS_DIR), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # root_path: behind a reverse proxy that mounts the API under a prefix, the asset URLs must carry it
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} API",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
