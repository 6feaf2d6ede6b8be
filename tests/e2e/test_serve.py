"""``scenebase serve`` as a subprocess: bootstrap, identity, jobs, persistence, docs and the error envelope."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import (
    ADMIN_TOKEN,
    TOKEN_BLOCK,
    Launcher,
    ScenebaseProcess,
    client,
    envelope,
    subprocess_env,
    wait_for,
    wait_job,
)

from scenebase.errors import InvalidAuthorization, JobError

pytestmark = pytest.mark.e2e

ENV = {"SCENEBASE_ADMIN_TOKEN": ADMIN_TOKEN}


def _add_org_and_user(server: ScenebaseProcess) -> tuple[str, dict[str, Any]]:
    """As the superadmin: a new organization and an admin user in it. Returns (org id, add_user's answer)."""
    with client(server, ADMIN_TOKEN) as admin:
        org = admin.add_organization("Acme Robotics")
        assert org["name"] == "Acme Robotics"
        org_id = str(org["id"])
        user = admin.add_user("alice@acme.test", "alice", "admin", org_id)
        assert {k: user[k] for k in ("username", "organization_id", "role")} == {
            "username": "alice",
            "organization_id": org_id,
            "role": "admin",
        }
        assert isinstance(user["token"], str) and user["token"]
        assert org_id in {o["id"] for o in admin.list_organizations()}
        assert "alice" in {u["username"] for u in admin.list_users()}
    return org_id, user


def test_admin_user_and_job_over_http(launcher: Launcher, tmp_path: Path) -> None:
    server = launcher.serve(tmp_path / "data", ENV)
    with client(server, ADMIN_TOKEN) as admin:
        me = admin.whoami()
        assert me["username"] == "admin"
        assert me["role"] == "superadmin"
        assert me["organization_id"] == "default"
        assert me["organization"] == "default"
        assert me["token"] == ADMIN_TOKEN
        assert admin.get_platform_version()

    org_id, user = _add_org_and_user(server)
    with client(server, user["token"]) as alice:
        me = alice.whoami()
        assert (me["username"], me["role"], me["organization_id"]) == ("alice", "admin", org_id)
        job_id = alice.run_integration_test(duration=0.3, steps=3)
        job = wait_job(alice, job_id)
        assert job.status == "finished"
        assert job.progress == 100.0
        assert job.result == {"slept": 0.3, "steps": 3, "attempt": 1}
        assert job.document["owner"] == org_id
        assert job.document["user"] == "alice"
        assert job.document["attempts"] == 1

    # the job belongs to alice's organization: the default organization's admin cannot read it
    with client(server, ADMIN_TOKEN) as admin, pytest.raises(JobError) as caught:
        admin.get_job(job_id)
    assert (caught.value.status_code, caught.value.code) == (404, "not_found")


def test_data_survives_restart(launcher: Launcher, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = launcher.serve(data, ENV)
    org_id, user = _add_org_and_user(first)
    with client(first, user["token"]) as alice:
        job_id = alice.run_integration_test(duration=0.2, steps=2)
        assert wait_job(alice, job_id).status == "finished"
    assert first.stop() == 0, first.log_tail()

    second = launcher.serve(data, ENV)
    assert "admin token" not in second.stdout() + second.stderr()
    with client(second, user["token"]) as alice:
        me = alice.whoami()
        assert (me["username"], me["organization_id"]) == ("alice", org_id)
        job = alice.get_job(job_id)
        assert job.status == "finished"
        assert job.progress == 100.0
        assert job.result == {"slept": 0.2, "steps": 2, "attempt": 1}
    with client(second, ADMIN_TOKEN) as admin:
        assert admin.whoami()["role"] == "superadmin"
        assert org_id in {o["id"] for o in admin.list_organizations()}
        users = {u["username"]: u for u in admin.list_users()}
        assert users["alice"]["organization_id"] == org_id


def test_generated_admin_token_is_printed_once_framed_after_the_startup_log(launcher: Launcher, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = launcher.serve(data)  # no SCENEBASE_ADMIN_TOKEN
    wait_for("the admin token block", lambda: bool(TOKEN_BLOCK.search(first.stderr())), 10.0, first)
    err = first.stderr()
    [(top, token, bottom)] = TOKEN_BLOCK.findall(err)
    assert len(top) == len(bottom) >= 40
    block = TOKEN_BLOCK.search(err)
    assert block is not None
    # alone: after uvicorn's startup lines, with blank lines around the frame and no log text on its lines
    assert err.index("Uvicorn running on") < block.start()
    assert err[block.start() - 2 : block.start()] == "\n\n"
    assert err.count(token) == 1
    after = err[block.end() :]
    assert f"scenebase admin create-token --username admin --data-dir {data.resolve()}" in after
    assert token not in first.stdout(), "the token is printed once, in the framed block on stderr"
    with client(first, token) as admin:
        me = admin.whoami()
        assert (me["username"], me["role"], me["organization_id"]) == ("admin", "superadmin", "default")
    assert first.stop() == 0, first.log_tail()

    second = launcher.serve(data)
    with client(second, token) as admin:
        assert admin.whoami()["username"] == "admin"
    assert "admin token" not in second.stdout() + second.stderr()
    assert token not in second.stdout() + second.stderr()


def test_tokens_in_query_strings_never_reach_the_logs(launcher: Launcher, tmp_path: Path) -> None:
    server = launcher.serve(tmp_path / "data", ENV)
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        assert http.get("/auth", params={"token": ADMIN_TOKEN}).status_code == 200
        assert http.get("/auth", params={"x": "1", "token": "wrong-secret-token"}).status_code == 401
        assert http.get("/status", params={"X-Amz-Signature": "deadbeefcafe"}).status_code == 200
    wait_for("the access log lines", lambda: server.stdout().count("GET /auth?") == 2, 10.0, server)
    assert server.stop() == 0
    logs = server.stdout() + server.stderr()
    for secret in (ADMIN_TOKEN, "wrong-secret-token", "deadbeefcafe"):
        assert secret not in logs, secret
    assert '"GET /auth?token=REDACTED HTTP/1.1" 200' in logs
    assert '"GET /auth?x=1&token=REDACTED HTTP/1.1" 401' in logs
    assert "/status?X-Amz-Signature=REDACTED" in logs


def test_admin_create_token_recovers_access_while_the_server_runs(launcher: Launcher, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = launcher.serve(data)  # generated admin token: printed, and here "lost"
    done = subprocess.run(
        [sys.executable, "-m", "scenebase.cli.main", "admin", "create-token", "--username", "admin",
         "--data-dir", str(data)],
        env=subprocess_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout == token + "\n"
    with client(server, token) as admin:
        assert admin.whoami()["username"] == "admin"


def test_openapi_docs_and_error_envelope(launcher: Launcher, tmp_path: Path) -> None:
    server = launcher.serve(tmp_path / "data", ENV)
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        spec = http.get("/openapi.json")
        assert spec.status_code == 200
        doc = spec.json()
        assert doc["openapi"].startswith("3.")
        assert doc["info"]["title"] == "scenebase"
        for path in ("/status", "/auth", "/v1/jobs/{job_id}", "/v1/maintenance/integration_test/"):
            assert path in doc["paths"], path

        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "openapi.json" in page.text
        assert "cdn." not in page.text
        assert http.get("/docs/static/swagger-ui-bundle.js").status_code == 200

        unknown = http.get("/no/such/route")
        assert unknown.status_code == 404
        assert envelope(unknown)["code"] == "not_found"

        bad = http.get("/auth", headers={"Authorization": "Bearer not-a-real-token"})
        assert bad.status_code == 401
        assert envelope(bad)["code"] == "unauthenticated"

        missing = http.get("/auth")
        assert missing.status_code == 401
        assert envelope(missing)["code"] == "unauthenticated"

        invalid = http.post(
            "/v1/maintenance/integration_test/",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"duration": 1, "steps": 0},
        )
        assert invalid.status_code == 422
        err = envelope(invalid)
        assert err["code"] == "invalid_argument"
        assert isinstance(err["details"], list) and err["details"]

    # the client turns the envelope into its exception
    with client(server, "not-a-real-token") as intruder, pytest.raises(InvalidAuthorization) as caught:
        intruder.whoami()
    assert caught.value.status_code == 401
    assert caught.value.code == "unauthenticated"
    assert caught.value.message == "invalid token"


def test_several_processes_share_one_port(launcher: Launcher, tmp_path: Path) -> None:
    """``SCENEBASE_PROCESSES=2``: two uvicorn processes, one bootstrap, jobs run, requests land on both."""
    server = launcher.serve(tmp_path / "data", {**ENV, "SCENEBASE_PROCESSES": "2"})
    with client(server, ADMIN_TOKEN) as admin:
        assert admin.whoami()["username"] == "admin"
        org_id, user = _add_org_and_user(server)
        job_ids = [admin.run_integration_test(duration=0.1, steps=2) for _ in range(4)]
        for job_id in job_ids:
            assert wait_job(admin, job_id).status == "finished"
        for _ in range(20):  # new connections spread over both processes; each must know the new user
            with client(server, user["token"]) as alice:
                assert alice.whoami()["organization_id"] == org_id
