"""Role matrix: every role against every protected route; the permission table in the docs matches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scenebase.api.app import iter_api_routes
from scenebase.api.deps import route_permission
from scenebase.domain.roles import MATRIX, Permission, Role, allows, matrix_markdown
from scenebase.testing import InProcessServer

from .conftest import World

PUBLIC = {"/status", "/status/"}
REPO = Path(__file__).resolve().parents[2]


def protected_routes(server: InProcessServer) -> list[tuple[str, str, Permission]]:
    out = []
    for route in iter_api_routes():
        if route.path in PUBLIC:
            continue
        perm = route_permission(route.dependencies)
        assert perm is not None, f"{route.path} declares no permission"
        for method in sorted(route.methods):
            out.append((method, route.path, perm))
    return out


def test_every_route_declares_a_permission(server: InProcessServer) -> None:
    routes = protected_routes(server)
    assert len(routes) > 20
    assert {p for _, _, p in routes} >= {Permission.READ, Permission.CURATE, Permission.MANAGE_USERS}


def test_role_matrix(world: World) -> None:
    http = world.server.http()
    checked = 0
    for method, path, perm in protected_routes(world.server):
        url = re.sub(r"\{[^}]+\}", "no-such-thing", path)
        for role in Role:
            token = world.a.tokens[role.value]
            resp = http.request(method, url, params={"token": token}, json={})
            if allows(role, perm):
                assert resp.status_code != 403, (method, path, role.value, resp.text)
            else:
                assert resp.status_code == 403, (method, path, role.value, resp.status_code, resp.text)
                body = resp.json()["error"]
                assert body["code"] == "forbidden" and perm.value in body["message"]
            checked += 1
        anonymous = http.request(method, url, json={})
        assert anonymous.status_code == 401, (method, path)
    assert checked >= 20 * len(Role)


def test_superadmin_has_every_permission() -> None:
    assert all(Role.SUPERADMIN in roles for roles in MATRIX.values())
    assert all(Role.READ_ONLY_USER not in roles for p, roles in MATRIX.items() if p is not Permission.READ)


def test_permission_docs_match_matrix() -> None:
    doc = (REPO / "docs" / "permissions.md").read_text()
    assert matrix_markdown() in doc, "regenerate with: scenebase docs permissions"


@pytest.mark.parametrize("role", ["public_user", "read_only_user"])
def test_readers_cannot_write(world: World, role: str) -> None:
    client = world.client(world.a.tokens[role])
    assert client.whoami()["role"] == role
    with pytest.raises(Exception) as e:
        client.run_integration_test(duration=0)
    assert getattr(e.value, "status_code", None) == 403
