"""Users, organizations, ownerships, tokens and /status through the client, in process."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from scenebase import __version__
from scenebase.clients import SceneEngineClient
from scenebase.domain.ids import new_token
from scenebase.errors import InvalidAuthorization, SceneBaseError
from scenebase.services.identity import token_hint
from scenebase.storage.identity_repo import DuplicateError
from scenebase.storage.scope import Scope
from scenebase.testing import ADMIN_TOKEN, InProcessServer


def test_status_needs_no_token(server: InProcessServer) -> None:
    body = server.http().get("/status").json()
    assert body["version"] == __version__
    assert set(body) >= {"version", "api_url", "frontend_url", "supported_version", "asset_manager_url"}
    assert server.http().get("/status/").status_code == 200


def test_whoami_of_bootstrapped_superadmin(admin: SceneEngineClient) -> None:
    me = admin.whoami()
    assert me["username"] == "admin"
    assert me["role"] == "superadmin"
    assert me["organization"] == "default" and me["organization_id"] == "default"
    assert me["token"] == ADMIN_TOKEN
    assert {"version", "build_host"} <= set(me)
    assert admin.get_platform_version() == __version__


def test_token_as_header_or_query_and_bad_tokens(server: InProcessServer) -> None:
    http = server.http()
    assert http.get("/auth", params={"token": ADMIN_TOKEN}).status_code == 200
    assert http.get("/auth", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    for params in ({}, {"token": "nope"}):
        r = http.get("/auth", params=params)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthenticated"
    with pytest.raises(InvalidAuthorization) as e:
        server.client("not-a-token").whoami()
    assert e.value.status_code == 401


def test_user_lifecycle(admin: SceneEngineClient, server: InProcessServer) -> None:
    org = admin.add_organization("Acme Robotics")
    assert org["name"] == "Acme Robotics"
    assert re.fullmatch(r"acme_robotics_[0-9a-f]{12}", org["id"]), org  # readable, but not derivable from the name
    user = admin.add_user("ana@acme.io", "ana", "data_provider", org["id"])
    assert user["username"] == "ana" and user["role"] == "data_provider" and user["organization_id"] == org["id"]
    assert user["email"] == "ana@acme.io"
    ana = server.client(user["token"])
    assert ana.whoami()["organization"] == "Acme Robotics"

    listed = {u["username"]: u for u in admin.list_users()}
    assert listed["ana"]["organization"] == "Acme Robotics"
    assert listed["ana"]["token"] != user["token"]  # only a hint: tokens are stored hashed
    assert user["token"].startswith(listed["ana"]["token"].rstrip("…"))

    admin.modify_user("ana", email="ana@new.io", role="data_user")
    listed = {u["username"]: u for u in admin.list_users()}
    assert listed["ana"]["email"] == "ana@new.io" and listed["ana"]["role"] == "data_user"

    with pytest.raises(InvalidAuthorization) as e:
        admin.add_user("x@acme.io", "ana", "data_user", org["id"])
    assert e.value.status_code == 409 and "already exists" in e.value.message
    with pytest.raises(InvalidAuthorization) as e:
        admin.add_user("x@acme.io", "bob", "wizard", org["id"])
    assert e.value.status_code == 400 and "unknown role" in e.value.message
    with pytest.raises(InvalidAuthorization) as e:
        admin.add_user("x@acme.io", "bob", "data_user", "no-such-org")
    assert e.value.status_code == 404

    admin.delete_user("ana")
    with pytest.raises(InvalidAuthorization):
        ana.whoami()  # the auth cache is cleared on user changes


def test_organizations(admin: SceneEngineClient) -> None:
    org = admin.add_organization("Blue Team")
    assert {"name": "Blue Team", "id": org["id"]} in admin.list_organizations()
    admin.modify_organization(org["id"], "Red Team")
    assert {"name": "Red Team", "id": org["id"]} in admin.list_organizations()
    with pytest.raises(InvalidAuthorization) as e:
        admin.add_organization("Red Team")
    assert e.value.status_code == 409
    with pytest.raises(InvalidAuthorization) as e:
        admin.modify_organization("nope", "x")
    assert e.value.status_code == 404
    admin.delete_organization(org["id"])
    assert org["id"] not in {o["id"] for o in admin.list_organizations()}


def test_org_admin_powers_are_limited_to_its_org(admin: SceneEngineClient, server: InProcessServer) -> None:
    a = admin.add_organization("A")["id"]
    b = admin.add_organization("B")["id"]
    a_admin = server.client(admin.add_user("a@a", "a-admin", "admin", a)["token"])
    admin.add_user("b@b", "b-user", "data_user", b)

    u = a_admin.add_user("n@a", "a-new", "data_user", a)
    assert u["organization_id"] == a
    assert {x["username"] for x in a_admin.list_users()} == {"a-admin", "a-new"}
    assert a_admin.list_organizations() == [{"name": "A", "id": a}]
    for call in (
        lambda: a_admin.add_user("n@b", "sneaky", "data_user", b),
        lambda: a_admin.modify_user("b-user", role="admin"),
        lambda: a_admin.delete_user("b-user"),
        lambda: a_admin.modify_user("a-new", organization_id=b),
    ):
        with pytest.raises(InvalidAuthorization) as e:
            call()
        assert e.value.status_code == 404, e.value
    with pytest.raises(InvalidAuthorization) as e:
        a_admin.add_user("n@a", "boss", "superadmin", a)
    assert e.value.status_code == 403
    with pytest.raises(InvalidAuthorization) as e:
        a_admin.add_organization("C")
    assert e.value.status_code == 403


def test_ownerships(admin: SceneEngineClient, server: InProcessServer) -> None:
    a = admin.add_organization("A")["id"]
    b = admin.add_organization("B")["id"]
    a_admin = server.client(admin.add_user("a@a", "a-admin", "admin", a)["token"])
    b_admin = server.client(admin.add_user("b@b", "b-admin", "admin", b)["token"])

    row = a_admin.add_ownership(owner=a, access=b)
    assert row["owner"] == a and row["access"] == b
    assert [(o["owner"], o["access"]) for o in a_admin.list_ownerships()] == [(a, b)]
    assert [(o["owner"], o["access"]) for o in b_admin.list_ownerships()] == [(a, b)]
    with pytest.raises(InvalidAuthorization) as e:
        a_admin.add_ownership(owner=a, access=b)
    assert e.value.status_code == 409
    with pytest.raises(InvalidAuthorization) as e:
        b_admin.add_ownership(owner=a, access=b)  # only the owner's admin can share
    assert e.value.status_code == 403
    with pytest.raises(InvalidAuthorization) as e:
        b_admin.revoke_ownership(owner=a, access=b)
    assert e.value.status_code == 404
    a_admin.revoke_ownership(owner=a, access=b)
    assert a_admin.list_ownerships() == []


def test_clear_cache(admin: SceneEngineClient, server: InProcessServer) -> None:
    server.runtime.cache.get_or_compute("default", "images", "k", lambda: 1)
    server.runtime.cache.get_or_compute("other", "images", "k", lambda: 1)
    assert admin.clear_cache(partitions=["images"])["acknowledged"] is True
    assert server.runtime.cache.get_or_compute("default", "images", "k", lambda: 2) == 2
    assert server.runtime.cache.get_or_compute("other", "images", "k", lambda: 2) == 1
    admin.clear_cache(all_organizations=True)
    assert server.runtime.cache.get_or_compute("other", "images", "k", lambda: 3) == 3
    with pytest.raises(SceneBaseError) as e:
        admin.clear_cache(partitions=["bogus"])
    assert e.value.status_code == 400 and "bogus" in e.value.message


def test_data_user_cannot_clear_all_caches(admin: SceneEngineClient, server: InProcessServer) -> None:
    user = admin.add_user("d@d", "dana", "data_user", "default")
    dana = server.client(user["token"])
    assert dana.clear_cache()["acknowledged"] is True
    with pytest.raises(SceneBaseError) as e:
        dana.clear_cache(all_organizations=True)
    assert e.value.status_code == 403


def test_error_envelope_everywhere(server: InProcessServer) -> None:
    http = server.http()
    for resp in (
        http.get("/no/such/route"),
        http.post("/identity_manager/user", json={"username": 3}, params={"token": ADMIN_TOKEN}),
        http.put("/v1/jobs/progress/x", params={"token": ADMIN_TOKEN, "progress": "lots"}),
        http.delete("/status"),
    ):
        body = resp.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details", "resource"}
        assert "Traceback" not in resp.text
        assert 400 <= resp.status_code < 500


def test_unexpected_errors_hide_the_stack_trace(server: InProcessServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(server.runtime.identity, "list_users", boom)
    resp = server.http().get("/identity_manager/user", params={"token": ADMIN_TOKEN})
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal"
    assert "secret internals" not in resp.text and "Traceback" not in resp.text


def test_openapi_and_docs_served(server: InProcessServer) -> None:
    http = server.http()
    spec = http.get("/openapi.json").json()
    assert "/identity_manager/user" in spec["paths"]
    assert "/v1/jobs/{job_id}" in spec["paths"]
    assert http.get("/docs").status_code == 200


def test_scene_engine_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENEBASE_URL", "http://example.test:9000/v1/")
    assert SceneEngineClient().scene_engine_url == "http://example.test:9000/v1"
    assert SceneEngineClient(scene_engine_url="http://h:1").scene_engine_url == "http://h:1/v1"
    monkeypatch.delenv("SCENEBASE_URL")
    assert SceneEngineClient().scene_engine_url == "http://127.0.0.1:8080/v1"
    monkeypatch.setenv("SCENEBASE_URL_DEV", "http://dev:1")
    assert SceneEngineClient(environment="dev").scene_engine_url == "http://dev:1/v1"
    with pytest.raises(ValueError, match="SCENEBASE_URL_PROD"):
        SceneEngineClient(environment="prod")


def test_with_auth_and_artifact_path(server: InProcessServer, tmp_path: object) -> None:
    c = server.client(None)
    with pytest.raises(InvalidAuthorization):
        c.whoami()
    assert c.with_auth(ADMIN_TOKEN) is c
    assert c.whoami()["username"] == "admin"
    c.with_auth()  # keeps the token
    assert c.whoami()["username"] == "admin"
    target = f"{tmp_path}/out/nested"
    c.update_artifact_path(target)
    assert c.artifacts_path == target


# -- issue 8: superadmins, organization deletion, token hints ---------------------------------------


def _refused(call: Callable[[], object], status: int) -> str:
    with pytest.raises(InvalidAuthorization) as e:
        call()
    assert e.value.status_code == status, e.value
    return e.value.message


def test_org_admin_cannot_demote_change_or_delete_a_superadmin(
    admin: SceneEngineClient, server: InProcessServer
) -> None:
    # an admin of the superadmin's own organization sees it in its listing, and must still not touch it
    rogue = server.client(admin.add_user("r@d", "rogue", "admin", "default")["token"])
    assert "admin" in {u["username"] for u in rogue.list_users()}
    for call in (
        lambda: rogue.modify_user("admin", role="data_user"),
        lambda: rogue.modify_user("admin", email="rogue@evil.io"),
        lambda: rogue.modify_user("admin", organization_id="default"),
        lambda: rogue.delete_user("admin"),
    ):
        assert "only a superadmin" in _refused(call, 403)
    me = admin.whoami()  # the superadmin's token still works and it is still superadmin
    assert me["role"] == "superadmin"
    assert {u["username"]: u for u in admin.list_users()}["admin"]["email"] is None
    # an admin of another organization does not even learn that the superadmin exists
    other = admin.add_organization("Other")["id"]
    outsider = server.client(admin.add_user("o@o", "outsider", "admin", other)["token"])
    assert _refused(lambda: outsider.delete_user("admin"), 404) == "user 'admin' not found"


def test_the_last_superadmin_cannot_be_demoted_or_deleted(admin: SceneEngineClient, server: InProcessServer) -> None:
    assert "last superadmin" in _refused(lambda: admin.modify_user("admin", role="admin"), 409)
    root2 = server.client(admin.add_user("r@r", "root2", "superadmin", "default")["token"])
    admin.modify_user("admin", role="admin")  # allowed: root2 remains
    assert admin.whoami()["role"] == "admin"
    assert "last superadmin" in _refused(lambda: root2.modify_user("root2", role="data_user"), 409)
    assert root2.whoami()["role"] == "superadmin"
    root2.modify_user("admin", role="superadmin")
    root2.delete_user("admin")  # two superadmins: one may go
    assert server.runtime.identity.repo.count_superadmins() == 1
    assert "cannot delete itself" in _refused(lambda: root2.delete_user("root2"), 409)


def test_an_organization_that_holds_data_is_not_deleted(admin: SceneEngineClient, server: InProcessServer) -> None:
    rt = server.runtime
    org = admin.add_organization("Doomed")["id"]
    owner = server.client(admin.add_user("d@d", "doomed-admin", "admin", org)["token"])
    owner.add_ownership(owner=org, access="default")
    scope = Scope.of(org, username="doomed-admin")
    rt.assets.put(scope, "images", [{"id": "img_1"}, {"id": "img_2"}])
    rt.assets.put(scope, "sessions", [{"id": "s1"}])
    rt.queue.stop_workers()  # the submitted job stays queued: an unfinished job
    pending = rt.jobs.submit(scope, "integration_test", {"duration": 0.0, "steps": 1})
    finished = rt.jobs.repo.create(scope, "finished-job", job_type="integration_test", status="finished")

    refusal = _refused(lambda: admin.delete_organization(org), 409)
    for held in ("2 images", "1 sessions", "1 unfinished jobs", "1 users", "nothing was deleted"):
        assert held in refusal, refusal
    with pytest.raises(InvalidAuthorization) as e:
        admin.delete_organization(org)
    assert e.value.details == {"holdings": {"images": 2, "sessions": 1, "users": 1, "unfinished jobs": 1}}
    assert owner.whoami()["organization_id"] == org  # nothing changed
    assert len(rt.assets.get_many(scope, "images", ["img_1", "img_2"])) == 2

    # empty it step by step: each refusal names only what is left
    rt.assets.repo.delete(scope, "images", ["img_1", "img_2"])
    rt.assets.repo.delete(scope, "sessions", ["s1"])
    rt.jobs.cancel(scope, pending["id"], "test")
    assert _refused(lambda: admin.delete_organization(org), 409).startswith(
        f"organization {org!r} still holds 1 users:"
    )
    admin.delete_user("doomed-admin")
    admin.delete_organization(org)

    assert org not in {o["id"] for o in admin.list_organizations()}
    # finished jobs and grants went with it; the id stays issued
    assert rt.jobs.repo.system_get(finished["id"]) is None and rt.jobs.repo.system_get(pending["id"]) is None
    assert admin.list_ownerships() == []
    assert rt.identity.repo.organization_id_issued(org)
    assert _refused(lambda: admin.delete_organization(org), 404) == f"organization {org!r} not found"


def test_a_new_organization_with_a_deleted_ones_name_sees_none_of_its_data(
    admin: SceneEngineClient, server: InProcessServer
) -> None:
    rt = server.runtime
    old = admin.add_organization("Phoenix")["id"]
    admin.delete_organization(old)
    # a straggler write for the deleted organization (a job that outlived it) lands under the old id
    rt.assets.put(Scope.of(old, username="ghost"), "images", [{"id": "ghost_image"}])
    rt.jobs.repo.create(Scope.of(old, username="ghost"), "ghost-job", status="finished")

    new = admin.add_organization("Phoenix")["id"]
    assert new != old
    newcomer = server.client(admin.add_user("n@p", "phoenix-admin", "admin", new)["token"])
    http = server.http()
    tok = {"token": newcomer.auth_token}
    assert http.post("/v1/images/", params=tok, json={}).json() == []
    assert http.get("/v1/jobs/", params=tok).json() == []
    assert http.get("/v1/jobs/ghost-job", params=tok).status_code == 404
    # ids are never issued twice, even when asked for directly
    with pytest.raises(DuplicateError) as e:
        rt.identity.repo.add_organization(old, "Phoenix II")
    assert e.value.field == "id"


def test_token_hints_never_hold_secret_characters() -> None:
    generated = new_token("acme_robotics_0123456789ab", "ana.smith")
    assert token_hint(generated, "acme_robotics_0123456789ab", "ana.smith") == "acmerobo-anasmith-…"
    for operator_token in ("s3cretAdminToken", "my-secret-words-here", "ab-cdefghij", "default-adminXsecret"):
        hint = token_hint(operator_token, "default", "admin")
        assert hint == "…", (operator_token, hint)
    # a token that happens to start with the user's public prefix shows only that prefix
    assert token_hint("default-admin-s3cret", "default", "admin") == "default-admin-…"


def test_dashless_operator_token_is_not_leaked_to_organization_admins(tmp_path: Path) -> None:
    secret = "Zq8vN2kLp4Rt7Wx1Yc5Hb"
    with InProcessServer(tmp_path / "data", admin_token=secret) as srv:
        root = srv.client(secret)
        org_admin = srv.client(root.add_user("a@d", "default-admin", "admin", "default")["token"])
        shown = {u["username"]: u["token"] for u in org_admin.list_users()}
    assert shown["admin"] == "…"
    assert not any(secret[i : i + 3] in shown["admin"] for i in range(len(secret) - 2))
    assert shown["default-admin"].startswith("default-default") and shown["default-admin"].endswith("-…")
