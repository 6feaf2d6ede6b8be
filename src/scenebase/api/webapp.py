"""The web app under ``/app/``: the bundle that ``npm run build`` (in ``webapp/``) writes to ``WEBAPP_DIST``.

Every ``/app/<page>`` path answers the bundle's ``index.html`` (the app routes in the browser, so that the
display_* URLs ``/app/images?image=<id>`` open the image page); ``/app/assets/*`` are the hashed scripts and
styles, cached for good. A server started from a checkout whose bundle was never built answers 503 naming the
command that builds it, not a blank page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, HTMLResponse, Response

WEBAPP_DIST = Path(__file__).resolve().parents[1] / "webapp_dist"
"""Where ``webapp/vite.config.ts`` writes the bundle (git-ignored: CI and the install command build it)."""
APP_PREFIX = "/app"
BUILD_COMMAND = "npm --prefix webapp ci && npm --prefix webapp run build"

_NOT_BUILT = """<!doctype html><html><head><meta charset="utf-8"><title>scenebase web app not built</title></head>
<body><h1>The scenebase web app is not built</h1><p>This server has no web app bundle in <code>{dist}</code>.
Build it from the repository root with <code>{command}</code> (Node.js 20+), then reload this page.</p>
<p>The API is running: see <a href="/docs">/docs</a>.</p></body></html>"""


class _Assets(StaticFiles):
    """Hashed file names: a changed file gets a new name, so a browser may keep each one for good."""

    async def get_response(self, path: str, scope: dict) -> Response:  # type: ignore[override]
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def install_webapp(app: FastAPI, dist: Path = WEBAPP_DIST) -> None:
    """Serve the bundle in ``dist`` under ``/app/`` (or the not-built page when ``dist`` has no index.html)."""
    index = dist / "index.html"
    if (dist / "assets").is_dir():
        app.mount(f"{APP_PREFIX}/assets", _Assets(directory=dist / "assets"), name="webapp-assets")

    async def page(path: str = "") -> Response:
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT.format(dist=dist, command=BUILD_COMMAND), status_code=503)
        # index.html names the current hashed assets: never cached, so a rebuilt bundle is picked up at once
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    app.add_api_route(APP_PREFIX, page, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{APP_PREFIX}/", page, methods=["GET"], include_in_schema=False)
    app.add_api_route(APP_PREFIX + "/{path:path}", page, methods=["GET"], include_in_schema=False)
