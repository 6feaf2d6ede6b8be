"""Organization B against organization A's resources, on every route that takes an id."""

from __future__ import annotations

import re

from scenebase.api.app import iter_api_routes
from scenebase.domain.roles import Role
from scenebase.storage.scope import Scope

from .conftest import World


def _a_resources(world: World) -> dict[str, str]:
    a_admin = world.client(world.a.tokens["admin"])
    job_id = a_admin.run_integration_test(duration=0.05, steps=1, wait_for_completion=True)
    running = world.server.runtime.jobs.repo.create(Scope.of(world.a.id, username="x"), "a-queued-record")
    return {
        "job_id": job_id,
        "queued_job_id": running["id"],
        "username": world.a.usernames["data_user"],
        "organization_id": world.a.id,
    }


def test_org_b_never_sees_org_a(world: World) -> None:
    res = _a_resources(world)
    http = world.server.http()
    routes = [r for r in iter_api_routes() if "{" in r.path]
    assert routes
    checked = 0
    for route in routes:
        params = re.findall(r"\{([^}]+)\}", route.path)
        for method in route.methods:
            for job_key in ("job_id", "queued_job_id"):
                url = route.path
                for p in params:
                    value = res[job_key] if p == "job_id" else res[p]
                    url = url.replace("{" + p + "}", value)
                for role in (Role.ADMIN, Role.DATA_PROVIDER, Role.DATA_USER):
                    resp = http.request(
                        method, url, params={"token": world.b.tokens[role.value], "progress": 1, "stage": "x",
                                             "note": "x"}, json={"email": "x@y", "organization_name": "pwned"},
                    )  # fmt: skip
                    # 404 (not found) or 403 (the role may not call the route at all); never a success
                    assert resp.status_code in (403, 404), (method, url, role.value, resp.status_code, resp.text)
                    checked += 1
    assert checked > 30

    # and nothing changed on A's side
    a_admin = world.client(world.a.tokens["admin"])
    assert a_admin.get_job(res["job_id"]).status == "finished"
    assert world.server.runtime.jobs.repo.get(Scope.of(world.a.id), res["queued_job_id"])["status"] == "queued"
    users = {u["username"]: u for u in a_admin.list_users()}
    assert users[res["username"]]["email"] != "x@y"
    assert {"name": "Org A", "id": world.a.id} in a_admin.list_organizations()


def test_listings_are_scoped(world: World) -> None:
    a_admin = world.client(world.a.tokens["admin"])
    b_admin = world.client(world.b.tokens["admin"])
    job_id = a_admin.run_integration_test(duration=0.01, steps=1, wait_for_completion=True)
    http = world.server.http()
    b_jobs = http.get("/v1/jobs/", params={"token": world.b.tokens["admin"]}).json()
    assert job_id not in {j["id"] for j in b_jobs}
    a_jobs = http.get("/v1/jobs/", params={"token": world.a.tokens["admin"]}).json()
    assert job_id in {j["id"] for j in a_jobs}
    assert {u["organization_id"] for u in b_admin.list_users()} == {world.b.id}
    assert b_admin.list_organizations() == [{"name": "Org B", "id": world.b.id}]
    assert b_admin.list_ownerships() == []


def test_ownership_grants_read_not_write(world: World) -> None:
    a_admin = world.client(world.a.tokens["admin"])
    job_id = a_admin.run_integration_test(duration=0.01, steps=1, wait_for_completion=True)
    a_admin.add_ownership(owner=world.a.id, access=world.b.id)
    b_user = world.client(world.b.tokens["data_user"])
    assert b_user.get_job(job_id).status == "finished"  # readable now
    resp = world.server.http().put(f"/v1/jobs/cancel/{job_id}", params={"token": world.b.tokens["admin"]})
    assert resp.status_code == 404  # but not writable
    a_admin.revoke_ownership(owner=world.a.id, access=world.b.id)
    world.server.runtime.identity.clear_auth_cache()
    resp = world.server.http().get(f"/v1/jobs/{job_id}", params={"token": world.b.tokens["data_user"]})
    assert resp.status_code == 404
