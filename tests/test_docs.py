"""The README and docs say what the code does: generated tables must be current; the README's first command
works on a stock Python; the API docs work offline and describe and type every route."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from sample_data import SHARED_DATA, missing_reason, require_shared_data
from scenebase.api.app import iter_api_routes
from scenebase.api.deps import route_permission
from scenebase.clients import SceneEngineClient
from scenebase.clients import search as search_client
from scenebase.clients.method_status import status_table
from scenebase.domain.search import (
    EXISTS_KEYS,
    FILTER_KEYS,
    KNOWN_KEYS,
    MISPLACED_KEYS,
    RANGE_KEYS,
    TIME_RANGE_KEYS,
)
from scenebase.services.assets import SUMMARY_KEYS, SUMMARY_KEYS_NOT_BUILT
from scenebase.settings import Settings, config_table
from scenebase.testing import ADMIN_TOKEN, InProcessServer

REPO = Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    head = readme[:1500]
    assert "scenebase serve --data-dir" in head
    assert "bash .ci/run" in head


def test_readme_config_table_is_current() -> None:
    assert config_table() in (REPO / "README.md").read_text(), "regenerate with: scenebase docs config"


def test_readme_method_table_is_current() -> None:
    assert status_table() in (REPO / "README.md").read_text(), "regenerate with: scenebase docs methods"


def test_every_setting_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"SCENEBASE_{name.upper()}" in readme


def test_benchmarks_documented() -> None:
    doc = (REPO / "docs" / "benchmarks.md").read_text()
    assert "whoami" in doc and "2026" in doc


# ------------------------------------------------------------------------------------------- README first command


def _first_bash_block(readme: str) -> list[str]:
    match = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert match, "the README starts with a bash block"
    return [line.strip() for line in match.group(1).splitlines()]


def test_readme_first_command_installs_into_a_virtual_environment() -> None:
    """Stock Debian/Ubuntu refuses `pip install` outside a venv (PEP 668): the first command must not need it."""
    lines = _first_bash_block((REPO / "README.md").read_text())
    commands = [line for line in lines if line and not line.startswith("#")]
    first = commands[0]
    assert not any(re.match(r"(sudo )?pip3? install", c) for c in commands), "a bare `pip install` is refused"
    assert first.startswith("bash scripts/serve.sh ") and "--data-dir" in first, first
    script = (REPO / "scripts" / "serve.sh").read_text()
    assert '"$PY" -m venv .venv' in script
    assert ".venv/bin/python -m pip install -q -e ." in script
    assert 'exec .venv/bin/scenebase serve "$@"' in script
    assert "python3-venv" in script  # Debian's stock Python lacks venv's pip bootstrap


FAKE_PYTHON = """#!/usr/bin/env bash
# a stand-in interpreter: `-m venv DIR` makes a venv whose python records pip calls and installs a scenebase stub
[ "$1 $2" = "-m venv" ] || exit 1
mkdir -p "$3/bin"
cat > "$3/bin/python" <<'PY'
#!/usr/bin/env bash
here="$(cd "$(dirname "$0")" && pwd)"
echo "$*" >> "$here/../../pip-calls.log"
printf '#!/usr/bin/env bash\\necho "scenebase $*"\\n' > "$here/scenebase"
chmod +x "$here/scenebase"
PY
chmod +x "$3/bin/python"
"""


def test_serve_script_creates_the_venv_installs_once_and_passes_arguments(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "serve.sh", repo / "scripts" / "serve.sh")
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake)}

    def serve(*args: str) -> str:
        done = subprocess.run(
            ["bash", "scripts/serve.sh", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def pip_calls() -> list[str]:
        return (repo / "pip-calls.log").read_text().splitlines()

    assert serve("--data-dir", "./d", "--port", "9") == "scenebase serve --data-dir ./d --port 9"
    assert pip_calls() == ["-m pip install -q -e ."]
    assert serve("--data-dir", "./d") == "scenebase serve --data-dir ./d"
    assert len(pip_calls()) == 1, "installed again although pyproject.toml did not change"
    stamp = repo / ".venv" / ".scenebase-installed"
    os.utime(stamp, (stamp.stat().st_mtime - 60,) * 2)  # pyproject.toml is now newer than the last install
    serve()
    assert len(pip_calls()) == 2


# ---------------------------------------------------------------------------------------------------- API docs


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with InProcessServer(tmp_path_factory.mktemp("docs"), workers=0) as server:
        yield server.http()


@pytest.fixture(scope="module")
def spec(api: TestClient) -> dict[str, Any]:
    doc: dict[str, Any] = api.get("/openapi.json").json()
    return doc


def _asset_urls(html: str) -> list[str]:
    attributes = re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", html)
    return attributes + re.findall(r"url:\s*'([^']+)'", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_this_server(api: TestClient, page: str) -> None:
    resp = api.get(page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert not re.findall(r"https?://", resp.text), "the page must not reference another host (CDN, fonts)"
    urls = _asset_urls(resp.text)
    assert "/openapi.json" in urls
    assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    script = next(u for u in urls if u.endswith(".js"))
    assert ("SwaggerUIBundle" if page == "/docs" else "Redoc") in api.get(script).text


def test_swagger_ui_parameters_send_nothing_elsewhere(api: TestClient) -> None:
    assert '"validatorUrl": null' in api.get("/docs").text  # else the spec goes to validator.swagger.io


def _operations(spec: dict[str, Any]) -> Iterator[tuple[APIRoute, str, dict[str, Any]]]:
    for route in iter_api_routes():
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods):
            yield route, method, spec["paths"][route.path][method.lower()]


def test_token_schemes_are_declared_and_applied_to_every_protected_route(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": ANY_TEXT}
    assert (schemes["token_query"]["type"], schemes["token_query"]["in"], schemes["token_query"]["name"]) == (
        "apiKey",
        "query",
        "token",
    )
    checked = 0
    for route, method, op in _operations(spec):
        if route_permission(route.dependencies) is None:
            assert "security" not in op, f"{method} {route.path} needs no token"
            continue
        assert op.get("security") == [{"bearer": []}, {"token_query": []}], f"{method} {route.path}"
        checked += 1
    assert checked > 20


class _AnyText:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other.strip())


ANY_TEXT: Any = _AnyText()

#: routes of modules being rewritten by others (images.py: the lead; assets.py: "searchlang") that had no
#: description when this test was written; remove an entry when its route gets one (the test says when)
UNDESCRIBED_ELSEWHERE: set[str] = set()


def test_every_route_has_a_summary_and_a_description(spec: dict[str, Any]) -> None:
    missing, now_described = [], []
    for route, method, op in _operations(spec):
        name = f"{route.endpoint.__module__}.{route.endpoint.__name__}"
        assert op.get("summary", "").strip(), f"{method} {route.path} has no summary"
        described = bool(op.get("description", "").strip())
        if name in UNDESCRIBED_ELSEWHERE:
            if described:
                now_described.append(name)
        elif not described:
            missing.append(f"{method} {route.path} ({name}): give the route function a docstring")
    assert not missing, "\n".join(missing)
    assert not now_described, f"described now, remove from UNDESCRIBED_ELSEWHERE: {now_described}"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/components/schemas/"), ref
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def _untyped_json(spec: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """Why a JSON answer's schema does not type it, or None: it must be a model (a component schema with
    properties), a list or a map of models, or a list (or list of lists) of plain values (ids, labels)."""
    if "$ref" in schema:
        return None if _resolve(spec, schema).get("properties") else f"{schema['$ref']} has no properties"
    if schema.get("type") == "array":
        items = schema.get("items", {})
        if items.get("type") in ("string", "integer", "number", "boolean"):
            return None
        if items.get("type") == "array":
            return _untyped_json(spec, items)  # a list of lists: the neighbour ids of each query
        return _untyped_json(spec, items) if "$ref" in items else f"a list of untyped items {items}"
    additional = schema.get("additionalProperties")
    if schema.get("type") == "object" and isinstance(additional, dict) and not schema.get("properties"):
        return _untyped_json(spec, additional)  # a map: session uid -> intervals, field -> statistics, ...
    return f"untyped {schema}"


def _binary_types(content: dict[str, Any]) -> list[str]:
    return [t for t, body in content.items() if body.get("schema", {}).get("format") == "binary"]


def test_every_answer_is_typed(spec: dict[str, Any]) -> None:
    """Every JSON answer names its fields (the web app generates its types from them); every file answer names
    its media types. A new route without a response model fails here."""
    untyped, checked, files = [], 0, 0
    for route, method, op in _operations(spec):
        answers = {code: body for code, body in op["responses"].items() if code.startswith("2")}
        assert answers, f"{method} {route.path} documents no success answer"
        for code, body in answers.items():
            content = body.get("content") or {}
            where = f"{method} {route.path} ({route.endpoint.__module__}.{route.endpoint.__name__}) {code}"
            if not content:
                untyped.append(f"{where}: no content documented")
                continue
            binary = _binary_types(content) or (["application/zip"] if "application/zip" in content else [])
            if binary:
                assert all("/" in t and "*" not in t for t in binary), where
                files += 1
                continue
            reason = _untyped_json(spec, content.get("application/json", {}).get("schema", {}))
            if reason:
                untyped.append(f"{where}: {reason}")
            checked += 1
    assert not untyped, "give these routes a response_model (or a documented answer):\n" + "\n".join(untyped)
    assert checked >= 80 and files >= 5, (checked, files)


#: request bodies that are open-ended by design: any metadata fields may be written
OPEN_BODIES = {"PUT /v1/{asset_type}/meta/{asset_id}"}


def test_every_request_body_is_typed(spec: dict[str, Any]) -> None:
    untyped: dict[str, str] = {}
    for route, method, op in _operations(spec):
        for media_type, body in op.get("requestBody", {}).get("content", {}).items():
            text = json.dumps(body["schema"])
            if media_type != "application/json" and body["schema"].get("format") == "binary":
                continue  # raw bytes (``add_binary``): typed as binary, their layout told in the body's description
            if "$ref" not in text and '"properties"' not in text:
                untyped[f"{method} {route.path}"] = f"({media_type}) {text}"
    assert set(untyped) == OPEN_BODIES, untyped  # a typed body leaves OPEN_BODIES too


def test_uploads_document_their_parts(spec: dict[str, Any]) -> None:
    def form(path: str) -> dict[str, Any]:
        body: dict[str, Any] = spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        return body

    upload = form("/v1/{asset_type}/add/")
    manifest = upload["schema"]["properties"]["manifest"]
    assert upload["encoding"]["manifest"]["contentType"] == "application/json"
    assert {"items", "set_ids", "overwrite"} <= set(manifest["properties"])
    assert {"file", "url", "uri", "name", "metadata", "relative_path"} <= set(
        manifest["properties"]["items"]["items"]["properties"]
    )
    assert upload["schema"]["additionalProperties"]["format"] == "binary"
    answers = spec["paths"]["/v1/{asset_type}/add/"]["post"]["responses"]
    for code in ("200", "207"):
        ref = answers[code]["content"]["application/json"]["schema"]["$ref"]
        assert set(_resolve(spec, {"$ref": ref})["properties"]) == {"ids", "errors", "job_id", "job_ids", "warnings"}
    assert "annotations" in form("/v1/annotations/add/")["schema"]["properties"]["manifest"]["properties"]
    video = form("/v1/videos/make_video_from_image_uris/")["schema"]["properties"]
    assert video["csv"]["format"] == "binary" and {"width", "height", "image_format"} <= set(
        video["params"]["properties"]
    )
    assert not any("$defs" in json.dumps(form(p)) for p in ("/v1/{asset_type}/add/", "/v1/annotations/add/"))


def test_errors_are_documented_as_the_envelope(spec: dict[str, Any]) -> None:
    for route, method, op in _operations(spec):
        for status in ("4XX", "5XX"):
            assert op["responses"][status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorEnvelope"
            }, f"{method} {route.path}"
        assert "422" not in op["responses"], f"{method} {route.path}: FastAPI's own 422 body is never sent"
    envelope = spec["components"]["schemas"]["ErrorBody"]
    assert set(envelope["properties"]) == {"code", "message", "details", "resource"}


def test_typed_responses_keep_every_field_the_services_return(api: TestClient) -> None:
    """Response models must not filter fields out: the seed client reads whole documents."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    me = api.get("/auth", headers=headers).json()
    assert set(me) == {"version", "build_host", "token", "username", "role", "organization", "organization_id"}
    job_id = api.post("/v1/jobs/add/", json={"description": "by hand", "tags": ["t"]}, headers=headers).json()["job_id"]
    job = api.get(f"/v1/jobs/{job_id}", headers={}, params={"token": ADMIN_TOKEN}).json()
    assert set(job) >= {"id", "status", "progress", "notes", "asset_id", "owner", "attempts", "created_at"}
    assert (job["id"], job["tags"], job["asset_id"]) == (job_id, ["t"], "undefined")


def test_sample_data_helpers_skip_naming_the_folder() -> None:
    assert missing_reason() == f"needs ../shared/data (looked for {SHARED_DATA}): not present beside this checkout"
    with pytest.raises(pytest.skip.Exception, match=r"needs ../shared/data \(no/such/file.png, looked for "):
        require_shared_data("no/such/file.png")


def test_search_reference_names_every_key_of_the_language() -> None:
    doc = (REPO / "docs" / "search.md").read_text()
    keys = KNOWN_KEYS | FILTER_KEYS | EXISTS_KEYS | RANGE_KEYS | TIME_RANGE_KEYS | SUMMARY_KEYS | SUMMARY_KEYS_NOT_BUILT
    for key in sorted(keys | set(MISPLACED_KEYS)):
        assert f"`{key}`" in doc, f"docs/search.md does not mention `{key}`"
    for needle in ("X-Scenebase-Warning", "last_warnings", "InvalidTimeError", "searchable_field_statistics"):
        assert needle in doc, needle
    assert "(docs/search.md)" in (REPO / "README.md").read_text()


def test_search_docstrings_link_the_reference_not_the_spec() -> None:
    for method in (SceneEngineClient.search_assets, SceneEngineClient.search_meta, SceneEngineClient.summary_meta,
                   SceneEngineClient.search_within_set, SceneEngineClient.get_searchable_field_statistics):  # fmt: skip
        doc = method.__doc__ or ""
        assert "docs/search.md" in doc and "FACTS" not in doc, method.__name__
    assert "FACTS" not in (search_client.__doc__ or "") and "docs/search.md" in (search_client.__doc__ or "")
