"""Roles and the permission matrix enforced by the server (FACTS 13, proposal adopted).

Every protected route names exactly one :class:`Permission`; ``docs/permissions.md`` is generated from
:data:`MATRIX` and a test fails when the two disagree.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SUPERADMIN = "superadmin"
    ADMIN = "admin"
    TESTER = "tester"
    HEALTH_CHECKER = "health_checker"
    DATA_PROVIDER = "data_provider"
    DATA_USER = "data_user"
    PUBLIC_USER = "public_user"
    READ_ONLY_USER = "read_only_user"


class Permission(StrEnum):
    READ = "read"  # read and search data, read own jobs
    CURATE = "curate"  # create sets/projects, start jobs that derive data (zip, split), write jobs
    INGEST = "ingest"  # add and modify assets, annotations, sessions
    DELETE = "delete"  # delete assets, sets, sessions
    DIAGNOSTICS = "diagnostics"  # integration-test jobs, health checks beyond /status
    MANAGE_USERS = "manage_users"  # users of the caller's organization
    MANAGE_OWNERSHIPS = "manage_ownerships"  # share the organization's data with another one
    CLEAR_CACHE_ALL = "clear_cache_all"  # clear every organization's cache
    MANAGE_ORGANIZATIONS = "manage_organizations"  # create, rename, delete organizations; cross-org users


_ALL = frozenset(Role)
_READERS = _ALL
_CURATORS = frozenset(
    {Role.SUPERADMIN, Role.ADMIN, Role.DATA_PROVIDER, Role.DATA_USER, Role.TESTER, Role.HEALTH_CHECKER}
)
_PROVIDERS = frozenset({Role.SUPERADMIN, Role.ADMIN, Role.DATA_PROVIDER})
_ADMINS = frozenset({Role.SUPERADMIN, Role.ADMIN})

MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.READ: _READERS,
    Permission.CURATE: _CURATORS,
    Permission.INGEST: _PROVIDERS,
    Permission.DELETE: _PROVIDERS,
    Permission.DIAGNOSTICS: frozenset({Role.SUPERADMIN, Role.ADMIN, Role.TESTER, Role.HEALTH_CHECKER}),
    Permission.MANAGE_USERS: _ADMINS,
    Permission.MANAGE_OWNERSHIPS: _ADMINS,
    Permission.CLEAR_CACHE_ALL: _ADMINS,
    Permission.MANAGE_ORGANIZATIONS: frozenset({Role.SUPERADMIN}),
}


def allows(role: Role | str, permission: Permission) -> bool:
    return Role(role) in MATRIX[permission]


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {value!r}; valid roles: {valid}") from None


def matrix_markdown() -> str:
    """The permission matrix as a markdown table (written to docs/permissions.md)."""
    roles = list(Role)
    head = "| permission | " + " | ".join(r.value for r in roles) + " |"
    sep = "|---|" + "---|" * len(roles)
    rows = [f"| {p.value} | " + " | ".join("yes" if r in MATRIX[p] else "-" for r in roles) + " |" for p in Permission]
    return "\n".join([head, sep, *rows]) + "\n"
