"""Tenancy scope passed to every data repository call.

Repositories filter every read by ``readable`` and stamp every write with ``org_id``: a route cannot
forget tenancy, because there is no repository method without a scope (the few system methods used by
the job reaper are named ``system_*``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    org_id: str
    #: the caller's organization plus every organization that granted it access (ownerships)
    readable: frozenset[str]
    username: str | None = None

    @classmethod
    def of(
        cls, org_id: str, also_readable: frozenset[str] | set[str] = frozenset(), username: str | None = None
    ) -> Scope:
        return cls(org_id=org_id, readable=frozenset({org_id, *also_readable}), username=username)
