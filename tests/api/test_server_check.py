"""A client pointed at something that is not a scenebase server says so, naming the URL and what it answered,
instead of surfacing another server's HTML page."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from scenebase.clients import SceneEngineClient
from scenebase.errors import NotAScenebaseServerError, ServerUnavailableError
from scenebase.testing import ADMIN_TOKEN, InProcessServer


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the status, content type and body configured on its server."""

    def do_GET(self) -> None:
        status, content_type, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_status_check_sends_no_token(other_server: http.server.ThreadingHTTPServer) -> None:
    """The first request goes to a server not yet known to be scenebase: it must not receive the token."""
    seen: list[str | None] = []

    class Recording(_Answers):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            super().do_GET()

    other_server.RequestHandlerClass = Recording
    other_server.answer = (404, "text/html", b"<html></html>")  # type: ignore[attr-defined]
    client, _url = _client_of(other_server)
    with pytest.raises(NotAScenebaseServerError):
        client.whoami()
    assert seen == [None]


def _client_of(server: http.server.ThreadingHTTPServer, path: str = "") -> tuple[SceneEngineClient, str]:
    url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    return SceneEngineClient(auth_token="some-token", scene_engine_url=url), url


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((404, "text/html; charset=utf-8", b"<html><h1>Not Found</h1></html>"), "404 text/html"),
        ((200, "text/html", b"<!doctype html><title>a web app</title>"), "200 text/html"),
        ((200, "application/json", b'{"status": "ok"}'), "200 application/json without scenebase's version"),
        ((401, "application/json", b'{"detail": "Not authenticated"}'), "401 application/json"),
        ((200, "application/json", b"not json"), "200 application/json without scenebase's version"),
    ],
    ids=["404-html", "spa-html", "other-json-api", "auth-proxy", "broken-json"],
)
def test_another_web_server_is_named_as_not_scenebase(
    other_server: http.server.ThreadingHTTPServer, answer: tuple[int, str, bytes], said: str
) -> None:
    other_server.answer = answer  # type: ignore[attr-defined]
    client, url = _client_of(other_server)
    with pytest.raises(NotAScenebaseServerError) as caught:
        client.whoami()
    assert caught.value.message.startswith(f"no scenebase server at {url}: GET /status answered {said}")
    assert "<html" not in str(caught.value) and "<!doctype" not in str(caught.value)
    assert isinstance(caught.value, ServerUnavailableError)
    assert caught.value.status_code == answer[0]


def test_a_failing_server_is_unavailable_not_wrong(other_server: http.server.ThreadingHTTPServer) -> None:
    other_server.answer = (502, "text/html", b"<html>Bad Gateway</html>")  # type: ignore[attr-defined]
    client, url = _client_of(other_server)
    with pytest.raises(ServerUnavailableError) as caught:
        client.get_platform_version()
    assert not isinstance(caught.value, NotAScenebaseServerError)
    assert caught.value.message == f"scenebase at {url} is unavailable: GET /status answered 502 text/html"


def test_nothing_listening_is_unavailable() -> None:
    client = SceneEngineClient(scene_engine_url="http://127.0.0.1:9")
    with pytest.raises(ServerUnavailableError, match=r"cannot reach scenebase at http://127\.0\.0\.1:9"):
        client.get_platform_version()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/docs", 404), ("/docs/", 404), ("/openapi.json", 404), ("/v1/jobs", 401)],  # /v1/jobs/status: a job id
)
def test_a_scenebase_server_at_a_wrong_base_url(tmp_path: Path, path: str, status: int) -> None:
    with InProcessServer(tmp_path / "data", workers=0) as server:  # type: ignore[operator]
        client = SceneEngineClient(auth_token=ADMIN_TOKEN, scene_engine_url=f"http://testserver{path}")
        root = client._http.root_url
        client._http.client = TestClient(server.app, base_url=root, raise_server_exceptions=False)
        with pytest.raises(NotAScenebaseServerError) as caught:
            client.whoami()
        assert caught.value.message == f"no scenebase server at {root}: GET /status answered {status} application/json"
        # the right base URL works
        assert server.client().whoami()["username"] == "admin"
