"""Organizations, users, tokens and ownerships; authentication of personal tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from scenebase.domain.ids import new_id, new_token, standardize_id, token_prefix
from scenebase.domain.roles import Role, parse_role
from scenebase.services.errors import Conflict, Forbidden, InvalidArgument, NotFound, Unauthenticated
from scenebase.storage.identity_repo import DuplicateError, IdentityRepo, LastSuperadminError, OrganizationNotEmpty
from scenebase.storage.scope import Scope

DEFAULT_ORG = "default"
ADMIN_USER = "admin"
#: how long an authenticated token is remembered in this process (revocations take at most this long)
AUTH_CACHE_SECONDS = 5.0
#: hint of a token that does not start with its user's public prefix (operator-given tokens)
UNKNOWN_HINT = "…"
#: random hex characters that end every organization id: 48 bits, so ids can be neither guessed nor reused
ORG_ID_SUFFIX_BYTES = 6
_ORG_ID_LENGTH = 64  # organizations.id


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str, org_id: str, username: str) -> str:
    """What listings show of a token: its public ``<org>-<user>`` prefix, never a character of the secret.

    An operator-given token (``SCENEBASE_ADMIN_TOKEN``) may have any shape, ``my-secret-words`` included, so
    its characters are never shown unless they are exactly the prefix that :func:`new_token` would have used.
    """
    prefix = token_prefix(org_id, username)
    return f"{prefix}-{UNKNOWN_HINT}" if token.startswith(prefix + "-") else UNKNOWN_HINT


def new_organization_id(name: str) -> str:
    """``<standardized name>_<12 random hex>``: readable, but neither derivable from the name nor reusable."""
    suffix = secrets.token_hex(ORG_ID_SUFFIX_BYTES)
    return f"{standardize_id(name)[: _ORG_ID_LENGTH - len(suffix) - 1]}_{suffix}"


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role
    org_id: str
    org_name: str
    token: str
    scope: Scope

    @property
    def is_superadmin(self) -> bool:
        return self.role is Role.SUPERADMIN


class IdentityService:
    def __init__(self, repo: IdentityRepo) -> None:
        self.repo = repo
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    # ---- bootstrap and authentication ----

    def bootstrap(self, admin_token: str | None) -> str | None:
        """On an empty catalog create organization ``default`` and superadmin ``admin``.

        Returns the admin token when one was generated (the caller prints it once), else None.
        """
        if self.repo.list_organizations():
            return None
        try:
            self.repo.add_organization(DEFAULT_ORG, DEFAULT_ORG)
        except DuplicateError:
            return None  # another server bootstrapped first
        token = admin_token or new_token(DEFAULT_ORG, ADMIN_USER)
        hint = token_hint(token, DEFAULT_ORG, ADMIN_USER)
        self.repo.add_user(ADMIN_USER, None, Role.SUPERADMIN.value, DEFAULT_ORG, hash_token(token), hint)
        return None if admin_token else token

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("missing token: send 'Authorization: Bearer <token>' or '?token=<token>'")
        key = hash_token(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        row = self.repo.user_by_token_hash(key)
        if row is None:
            raise Unauthenticated("invalid token")
        granted = self.repo.orgs_granting_access_to(row["organization_id"])
        principal = Principal(
            username=row["username"],
            role=Role(row["role"]),
            org_id=row["organization_id"],
            org_name=row["organization_name"],
            token=token,
            scope=Scope.of(row["organization_id"], granted, username=row["username"]),
        )
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + AUTH_CACHE_SECONDS, principal)
        return principal

    def clear_auth_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # ---- organizations ----

    def _visible_org(self, actor: Principal, org_id: str) -> dict[str, Any]:
        org = self.repo.get_organization(org_id)
        if org is None or (not actor.is_superadmin and org_id != actor.org_id):
            raise NotFound(f"organization {org_id!r} not found")
        return org

    def add_organization(self, actor: Principal, name: str) -> dict[str, Any]:
        name = (name or "").strip()
        if not name:
            raise InvalidArgument("organization_name must be a non-empty string")
        for _ in range(3):
            try:
                return self.repo.add_organization(new_organization_id(name), name)
            except DuplicateError as e:
                if e.field == "name":
                    raise Conflict(f"organization {name!r} already exists") from None
        raise Conflict(f"could not issue a fresh id for organization {name!r}; try again")

    def list_organizations(self, actor: Principal) -> list[dict[str, Any]]:
        only = None if actor.is_superadmin else {actor.org_id}
        return [{"name": o["name"], "id": o["id"]} for o in self.repo.list_organizations(only)]

    def modify_organization(self, actor: Principal, org_id: str, name: str) -> None:
        self._visible_org(actor, org_id)
        if not (name or "").strip():
            raise InvalidArgument("organization_name must be a non-empty string")
        try:
            self.repo.rename_organization(org_id, name.strip())
        except DuplicateError:
            raise Conflict(f"organization {name!r} already exists") from None
        self.clear_auth_cache()

    def delete_organization(self, actor: Principal, org_id: str) -> None:
        """Delete an organization that holds nothing any more; its id is never issued again.

        Refused (409, nothing deleted) while it has users, assets of any type or unfinished jobs: see
        ``IdentityRepo.delete_organization`` for what goes with it (grants, finished jobs).
        """
        self._visible_org(actor, org_id)
        if org_id == actor.org_id:
            raise Conflict("an organization cannot delete itself")
        try:
            self.repo.delete_organization(org_id)
        except OrganizationNotEmpty as e:
            raise Conflict(
                f"organization {org_id!r} still holds {e.summary()}: delete them (cancel or wait for unfinished"
                " jobs) before deleting the organization; nothing was deleted",
                details={"holdings": e.holdings},
            ) from None
        self.clear_auth_cache()

    # ---- users ----

    def _check_role_grant(self, actor: Principal, role: Role) -> None:
        if role is Role.SUPERADMIN and not actor.is_superadmin:
            raise Forbidden("only a superadmin can grant the superadmin role")

    def _check_may_change(self, actor: Principal, user: dict[str, Any], verb: str) -> None:
        if user["role"] == Role.SUPERADMIN.value and not actor.is_superadmin:
            raise Forbidden(f"only a superadmin can {verb} superadmin {user['username']!r}")

    def _visible_user(self, actor: Principal, username: str) -> dict[str, Any]:
        user = self.repo.get_user(username)
        if user is None or (not actor.is_superadmin and user["organization_id"] != actor.org_id):
            raise NotFound(f"user {username!r} not found")
        return user

    def add_user(self, actor: Principal, username: str, email: str | None, role: str, org_id: str) -> dict[str, Any]:
        if not username or not isinstance(username, str):
            raise InvalidArgument("username must be a non-empty string")
        try:
            role_ = parse_role(role)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        self._check_role_grant(actor, role_)
        self._visible_org(actor, org_id)
        token = new_token(org_id, username)
        try:
            hint = token_hint(token, org_id, username)
            self.repo.add_user(username, email, role_.value, org_id, hash_token(token), hint)
        except DuplicateError:
            if self.repo.get_organization(org_id) is None:  # deleted meanwhile: the foreign key refused the row
                raise NotFound(f"organization {org_id!r} not found") from None
            # usernames are unique across organizations: the clash cannot be hidden, but it names nobody's
            # organization and reads the same whoever holds the name
            raise Conflict(f"user {username!r} already exists") from None
        return {
            "username": username,
            "organization_id": org_id,
            "token": token,
            "role": role_.value,
            "email": email,
        }

    def modify_user(
        self, actor: Principal, username: str, email: str | None, role: str | None, org_id: str | None
    ) -> None:
        user = self._visible_user(actor, username)
        self._check_may_change(actor, user, "change")
        values: dict[str, Any] = {}
        if email is not None:
            values["email"] = email
        if role is not None:
            try:
                role_ = parse_role(role)
            except ValueError as e:
                raise InvalidArgument(str(e)) from None
            self._check_role_grant(actor, role_)
            values["role"] = role_.value
        if org_id is not None:
            if not actor.is_superadmin and org_id != actor.org_id:
                raise NotFound(f"organization {org_id!r} not found")
            self._visible_org(actor, org_id)
            values["organization_id"] = org_id
        if values:
            try:
                self.repo.update_user(username, **values)
            except LastSuperadminError:
                raise Conflict(
                    f"{username!r} is the last superadmin: make another user superadmin before changing its role"
                ) from None
            self.clear_auth_cache()

    def delete_user(self, actor: Principal, username: str) -> None:
        user = self._visible_user(actor, username)
        self._check_may_change(actor, user, "delete")
        if username == actor.username:
            raise Conflict("a user cannot delete itself")
        try:
            self.repo.delete_user(username)
        except LastSuperadminError:
            raise Conflict(f"{username!r} is the last superadmin and cannot be deleted") from None
        self.clear_auth_cache()

    def list_users(self, actor: Principal) -> list[dict[str, Any]]:
        rows = self.repo.list_users(None if actor.is_superadmin else actor.org_id)
        return [
            {
                "username": r["username"],
                "organization": r["organization_name"],
                "organization_id": r["organization_id"],
                "role": r["role"],
                "email": r["email"],
                # tokens are stored hashed: only their public prefix can be shown
                "token": r["token_hint"],
            }
            for r in rows
        ]

    # ---- ownerships ----

    def add_ownership(self, actor: Principal, owner: str, access: str) -> dict[str, Any]:
        if not actor.is_superadmin and owner != actor.org_id:
            raise Forbidden("an admin can only share its own organization's data (owner must be your organization)")
        self._visible_org(actor, owner)
        if self.repo.get_organization(access) is None:
            raise NotFound(f"organization {access!r} not found")
        if owner == access:
            raise InvalidArgument("owner and access must be different organizations")
        try:
            row = self.repo.add_ownership(new_id(), owner, access, actor.username)
        except DuplicateError:
            raise Conflict(f"organization {access!r} already has access to {owner!r}") from None
        self.clear_auth_cache()
        return row

    def delete_ownership(self, actor: Principal, owner: str, access: str) -> None:
        if not actor.is_superadmin and owner != actor.org_id:
            raise NotFound(f"ownership {owner!r} -> {access!r} not found")
        if not self.repo.delete_ownership(owner, access):
            raise NotFound(f"ownership {owner!r} -> {access!r} not found")
        self.clear_auth_cache()

    def list_ownerships(self, actor: Principal) -> list[dict[str, Any]]:
        rows = self.repo.list_ownerships(None if actor.is_superadmin else actor.org_id)
        return [
            {"id": r["id"], "owner": r["owner"], "access": r["access"], "created_by": r["created_by"]} for r in rows
        ]
