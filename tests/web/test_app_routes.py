"""``/app/`` serving and the display_* methods (no browser: tests/web/test_browser.py drives the pages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from scenebase.api.webapp import BUILD_COMMAND, install_webapp
from scenebase.clients import SceneEngineClient
from scenebase.errors import AssetError, SessionError, SetsError
from scenebase.models.assets import Image
from scenebase.testing import InProcessServer


def _dist(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root></div><script src=/app/assets/app-1.js></script>")
    (dist / "assets" / "app-1.js").write_text("console.log(1)")
    return dist


@pytest.mark.parametrize("path", ["/app", "/app/", "/app/images?image=x", "/app/sessions?session_uid=s", "/app/a/b"])
def test_every_app_path_answers_the_bundle_page(tmp_path: Path, path: str) -> None:
    app = FastAPI()
    install_webapp(app, _dist(tmp_path))
    resp = TestClient(app).get(path)
    assert resp.status_code == 200 and "<div id=root>" in resp.text
    assert resp.headers["cache-control"] == "no-cache"


def test_assets_are_served_and_cached_for_good(tmp_path: Path) -> None:
    app = FastAPI()
    install_webapp(app, _dist(tmp_path))
    client = TestClient(app)
    resp = client.get("/app/assets/app-1.js")
    assert resp.status_code == 200 and resp.text == "console.log(1)"
    assert "immutable" in resp.headers["cache-control"]
    assert client.get("/app/assets/missing.js").status_code == 404


def test_an_unbuilt_bundle_answers_503_naming_the_build_command(tmp_path: Path) -> None:
    app = FastAPI()
    install_webapp(app, tmp_path / "never-built")
    resp = TestClient(app).get("/app/images?image=x")
    assert resp.status_code == 503 and BUILD_COMMAND in resp.text and str(tmp_path / "never-built") in resp.text


def test_display_methods_check_the_id_and_return_the_page_url(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with InProcessServer(tmp_path / "data", workers=1) as server:
        client: SceneEngineClient = server.client()
        set_id = client.create_set("s", "images")
        (image_id,) = client.add_images([Image(id="img 1", bytes=_png())], set_id)
        assert client.display_image(image_id) == "http://127.0.0.1:8080/app/images?image=img_1"
        assert client.display_set(set_id) == f"http://127.0.0.1:8080/app/sets?set={set_id}"
        assert "open http://127.0.0.1:8080/app/images?image=img_1 in a browser" in caplog.text
        assert client.display_dashboard("main") == "http://127.0.0.1:8080/app/dashboard?dashboard=main"
        for call, error in [
            (lambda: client.display_image("nope"), AssetError),
            (lambda: client.display_video("nope"), AssetError),
            (lambda: client.display_lidar("nope"), AssetError),
            (lambda: client.display_object("nope"), AssetError),
            (lambda: client.display_set("nope"), SetsError),
            (lambda: client.display_session("nope"), SessionError),
        ]:
            with pytest.raises(error, match="nope"):
                call()


def _png() -> bytes:
    import io

    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.new("RGB", (8, 6), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()
