"""An in-process server with two organizations and one user per role in each."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scenebase.clients import SceneEngineClient
from scenebase.domain.roles import Role
from scenebase.storage.asset_repo import Snapshot
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


def before_each_unlocked_plan(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, times: int, action: Callable[[int], Any]
) -> list[int]:
    """Patch ``owner.<name>`` (a planner: ``AssetService.plan``, or ``ParentLinks.plans``) to run ``action``
    (another request's write, given the call's number) right after it plans from unlocked snapshots, the first
    ``times`` times. Returns the calls: 0 for a plan from unlocked snapshots (read before the transaction), 1 for
    one from snapshots read inside it under locks. The plans of ``action``'s own requests are not counted."""
    planner = getattr(owner, name)
    calls: list[int] = []
    acting: list[bool] = []

    def plan_then_a_concurrent_write(*args: Any, **kwargs: Any) -> Any:
        out = planner(*args, **kwargs)
        if acting:
            return out
        given = [*args, *kwargs.values()]
        snapshots = [a for a in given if isinstance(a, Snapshot)]
        snapshots += [v for a in given if isinstance(a, dict) for v in a.values() if isinstance(v, Snapshot)]
        locked = all(snap.locked for snap in snapshots)
        calls.append(int(locked))
        if not locked and len(calls) <= times:
            acting.append(True)
            try:
                action(len(calls))
            finally:
                acting.clear()
        return out

    monkeypatch.setattr(owner, name, plan_then_a_concurrent_write)
    return calls
