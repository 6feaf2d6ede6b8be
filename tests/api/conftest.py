"""An in-process server with two organizations and one user per role in each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scenebase.clients import SceneEngineClient
from scenebase.domain.roles import Role
from scenebase.testing import InProcessServer


@dataclass
class Org:
    id: str
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token
    usernames: dict[str, str] = field(default_factory=dict)  # role -> username


@dataclass
class World:
    server: InProcessServer
    a: Org
    b: Org

    def client(self, token: str | None) -> SceneEngineClient:
        return self.server.client(token)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    # URL tests serve media from 127.0.0.1, which the server refuses to fetch unless allowed
    with InProcessServer(
        tmp_path / "data", job_lease_seconds=3.0, reaper_interval_seconds=0.2, url_allowed_networks="127.0.0.1/32"
    ) as srv:
        yield srv


@pytest.fixture
def admin(server: InProcessServer) -> SceneEngineClient:
    return server.client()


@pytest.fixture
def world(server: InProcessServer, admin: SceneEngineClient) -> World:
    orgs = []
    for name in ("Org A", "Org B"):
        org = Org(id=admin.add_organization(name)["id"])
        for role in Role:
            username = f"{org.id}-{role.value}"
            user = admin.add_user(f"{username}@example.com", username, role.value, org.id)
            org.tokens[role.value] = user["token"]
            org.usernames[role.value] = username
        orgs.append(org)
    return World(server=server, a=orgs[0], b=orgs[1])
