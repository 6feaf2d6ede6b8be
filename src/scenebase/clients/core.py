"""The client's core: construction, URL resolution, version check, requests, jobs and web-app links.

The constructor opens no connection; the first request checks ``/status`` for a compatible server version.
Server warnings (``X-Scenebase-Warning`` headers, e.g. a search on a field no asset has) are logged at WARNING
on the ``scenebase.client`` logger and kept in ``last_warnings``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any
from urllib.parse import quote

import httpx

from scenebase import __version__
from scenebase.clients.http import HttpSession
from scenebase.clients.job import Job
from scenebase.clients.kv_store import KVStore
from scenebase.errors import (
    InvalidArgumentsError,
    NotAScenebaseServerError,
    ServerUnavailableError,
    VersionError,
)

log = logging.getLogger("scenebase.client")
#: the response header that carries server warnings (``api/warning_headers.py``), one per header line
WARNING_HEADER = "X-Scenebase-Warning"

#: The seed's default URL. Passing it (or nothing) means "not given": ``SCENEBASE_URL`` or a local server.
SEED_DEFAULT_URL = "https://scene-engine.demo.scenebox.ai/"
LOCAL_DEFAULT_URL = "http://127.0.0.1:8080"


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def _header_text(value: str) -> str:
    """A warning header's text: a JSON string (so any field name survives the header), or plain text."""
    try:
        text = json.loads(value)
    except ValueError:
        return value
    return text if isinstance(text, str) else value


def _resolve_root(scene_engine_url: str | None, environment: str | None) -> str:
    if environment:
        var = f"SCENEBASE_URL_{environment.upper()}"
        url = os.environ.get(var)
        if not url:
            raise InvalidArgumentsError(f"environment {environment!r} given but {var} is not set")
    elif scene_engine_url and scene_engine_url != SEED_DEFAULT_URL:
        url = scene_engine_url
    else:
        url = os.environ.get("SCENEBASE_URL") or LOCAL_DEFAULT_URL
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class ClientCore:
    """State and plumbing shared by the method groups of ``SceneEngineClient``."""

    def __init__(
        self,
        auth_token: str | None = None,
        scene_engine_url: str = SEED_DEFAULT_URL,
        asset_manager_url: str | None = None,
        environment: str | None = None,
        artifacts_path: str = ".",
        kv_store: KVStore | None = None,
        num_threads: int = 20,
    ) -> None:
        self.auth_token = auth_token or os.environ.get("SCENEBASE_TOKEN")
        root = _resolve_root(scene_engine_url, environment)
        self.scene_engine_url = root + "/v1"
        self.asset_manager_url = asset_manager_url.rstrip("/") if asset_manager_url else None
        self.environment = environment
        self.artifacts_path = artifacts_path
        self.kv_store = kv_store
        self.num_threads = max(1, int(num_threads))
        self._http = HttpSession(root, self.auth_token, max_connections=self.num_threads + 4)
        self._status: dict[str, Any] | None = None
        self._status_lock = threading.Lock()
        self._per_thread = threading.local()  # last_warnings: client methods may run in several threads
        #: per-item errors of the last call that reports them: files an upload refused, items a job it waited for
        #: could not process (``[{"id" or "name", "error", ...}]``); empty before any such call
        self.last_errors: list[dict[str, Any]] = []
        #: raise (``JobError``, ``ZippingError``) instead of warning when a job this client waits for, or a zip it
        #: downloads, is partial: some of its items failed (their ids and reasons are in ``last_errors``)
        self.raise_on_partial_jobs = False

    @property
    def last_warnings(self) -> list[str]:
        """The server's warnings on the last request this thread made (``[]`` when it had none): e.g. that no
        asset has a field a search names, and which known fields are closest (docs/search.md, Warnings).
        Each one is also logged at WARNING on the ``scenebase.client`` logger."""
        return list(getattr(self._per_thread, "warnings", []))

    # ---- plumbing ----

    def _server_status(self) -> dict[str, Any]:
        with self._status_lock:
            if self._status is None:
                status = self._fetch_status()
                supported = status.get("supported_version")
                if supported and _version_tuple(__version__) < _version_tuple(str(supported)):
                    raise VersionError(
                        f"the server needs scenebase client >= {supported}; this client is {__version__}"
                    )
                self._status = status
                if self.asset_manager_url is None:
                    self.asset_manager_url = status.get("asset_manager_url")
            return self._status

    def _fetch_status(self) -> dict[str, Any]:
        """``GET /status``, checked to come from a scenebase server: anything else (another web server's page,
        a base URL that points at ``/docs``) raises an error that says so instead of surfacing its HTML."""
        root = self._http.root_url
        try:
            resp = self._http.client.get("/status")
        except httpx.TransportError as e:
            raise ServerUnavailableError(f"cannot reach scenebase at {root}: {e}") from e
        content_type = resp.headers.get("content-type", "").split(";")[0].strip() or "without a content type"
        body: Any = None
        if content_type == "application/json":
            try:
                body = resp.json()
            except ValueError:
                body = None
        answered = f"GET /status answered {resp.status_code} {content_type}"
        if resp.status_code == 200 and isinstance(body, dict) and {"version", "api_url"} <= body.keys():
            return body
        if resp.status_code >= 500:
            # a scenebase server (or a proxy in front of it) that is failing, not necessarily a wrong URL
            raise ServerUnavailableError(f"scenebase at {root} is unavailable: {answered}", resp.status_code)
        if resp.status_code == 200 and content_type == "application/json":
            answered += " without scenebase's version fields"
        raise NotAScenebaseServerError(f"no scenebase server at {root}: {answered}", resp.status_code, "not_scenebase")

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        self._server_status()
        self._per_thread.warnings = []
        resp = self._http.request(method, path, **kwargs)
        self._per_thread.warnings = warnings = [_header_text(v) for v in resp.headers.get_list(WARNING_HEADER)]
        for warning in warnings:
            log.warning("server warning on %s %s: %s", method, path, warning)
        if not resp.content:
            return None
        return resp.json()

    def _job(self, job_id: str) -> Job:
        return Job(self._http, job_id)

    def _wait(self, job_id: str | None, wait: bool, **kwargs: Any) -> Job | None:
        """Wait for the job (when ``wait``): its failed items become ``last_errors``; a partial job warns, or
        raises with ``raise_on_partial_jobs``."""
        if not (wait and job_id):
            return None
        job = self._job(job_id)
        try:
            job.wait(raise_on_partial=self.raise_on_partial_jobs, **kwargs)
        finally:
            self.last_errors = job.errors()
        return job

    def _frontend_url(self, path: str) -> str:
        base = str(self._server_status().get("frontend_url") or self._http.root_url + "/app/")
        return base.rstrip("/") + "/" + quote(path, safe="/:?=&")

    def _display(self, path: str) -> str:
        url = self._frontend_url(path)
        try:
            from IPython import get_ipython
            from IPython.display import Javascript, display

            if get_ipython() is not None:
                display(Javascript(f"window.open({url!r});"))
                return url
        except ImportError:
            pass
        log.error("display_* opens the web app only from a Jupyter/Colab notebook; open %s in a browser", url)
        return url
