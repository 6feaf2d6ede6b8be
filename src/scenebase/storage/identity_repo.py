"""Organizations, users and ownerships in the catalog. Authorization is the identity service's job."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from scenebase.storage.catalog import Catalog
from scenebase.storage.tables import organizations, ownerships, users


class DuplicateError(Exception):
    """A unique constraint refused the row."""


def _row(r: Any) -> dict[str, Any]:
    return dict(r._mapping)


class IdentityRepo:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # organizations
    def add_organization(self, org_id: str, name: str) -> dict[str, Any]:
        try:
            with self.catalog.write() as c:
                c.execute(insert(organizations).values(id=org_id, name=name, created_at=time.time()))
        except IntegrityError:
            raise DuplicateError(name) from None
        return {"id": org_id, "name": name}

    def get_organization(self, org_id: str) -> dict[str, Any] | None:
        with self.catalog.read() as c:
            r = c.execute(select(organizations).where(organizations.c.id == org_id)).first()
        return _row(r) if r else None

    def organization_by_name(self, name: str) -> dict[str, Any] | None:
        with self.catalog.read() as c:
            r = c.execute(select(organizations).where(organizations.c.name == name)).first()
        return _row(r) if r else None

    def list_organizations(self, only: set[str] | None = None) -> list[dict[str, Any]]:
        q = select(organizations).order_by(organizations.c.name)
        if only is not None:
            q = q.where(organizations.c.id.in_(only))
        with self.catalog.read() as c:
            return [_row(r) for r in c.execute(q)]

    def rename_organization(self, org_id: str, name: str) -> bool:
        try:
            with self.catalog.write() as c:
                res = c.execute(update(organizations).where(organizations.c.id == org_id).values(name=name))
        except IntegrityError:
            raise DuplicateError(name) from None
        return res.rowcount > 0

    def delete_organization(self, org_id: str) -> bool:
        with self.catalog.write() as c:
            c.execute(delete(ownerships).where((ownerships.c.owner == org_id) | (ownerships.c.access == org_id)))
            res = c.execute(delete(organizations).where(organizations.c.id == org_id))
        return res.rowcount > 0

    def count_users(self, org_id: str) -> int:
        with self.catalog.read() as c:
            return int(
                c.execute(select(func.count()).select_from(users).where(users.c.organization_id == org_id)).scalar_one()
            )

    # users
    def add_user(
        self, username: str, email: str | None, role: str, org_id: str, token_hash: str, token_hint: str
    ) -> None:
        try:
            with self.catalog.write() as c:
                c.execute(
                    insert(users).values(
                        username=username,
                        email=email,
                        role=role,
                        organization_id=org_id,
                        token_hash=token_hash,
                        token_hint=token_hint,
                        created_at=time.time(),
                    )
                )
        except IntegrityError:
            raise DuplicateError(username) from None

    def get_user(self, username: str) -> dict[str, Any] | None:
        with self.catalog.read() as c:
            r = c.execute(select(users).where(users.c.username == username)).first()
        return _row(r) if r else None

    def user_by_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        q = (
            select(users, organizations.c.name.label("organization_name"))
            .join(organizations, organizations.c.id == users.c.organization_id)
            .where(users.c.token_hash == token_hash)
        )
        with self.catalog.read() as c:
            r = c.execute(q).first()
        return _row(r) if r else None

    def list_users(self, org_id: str | None = None) -> list[dict[str, Any]]:
        q = (
            select(users, organizations.c.name.label("organization_name"))
            .join(organizations, organizations.c.id == users.c.organization_id)
            .order_by(users.c.username)
        )
        if org_id is not None:
            q = q.where(users.c.organization_id == org_id)
        with self.catalog.read() as c:
            return [_row(r) for r in c.execute(q)]

    def update_user(self, username: str, **values: Any) -> bool:
        with self.catalog.write() as c:
            res = c.execute(update(users).where(users.c.username == username).values(**values))
        return res.rowcount > 0

    def delete_user(self, username: str) -> bool:
        with self.catalog.write() as c:
            res = c.execute(delete(users).where(users.c.username == username))
        return res.rowcount > 0

    # ownerships
    def add_ownership(self, ownership_id: str, owner: str, access: str, created_by: str) -> dict[str, Any]:
        row = {"id": ownership_id, "owner": owner, "access": access, "created_by": created_by}
        try:
            with self.catalog.write() as c:
                c.execute(insert(ownerships).values(**row, created_at=time.time()))
        except IntegrityError:
            raise DuplicateError(f"{owner}->{access}") from None
        return row

    def delete_ownership(self, owner: str, access: str) -> bool:
        with self.catalog.write() as c:
            res = c.execute(delete(ownerships).where((ownerships.c.owner == owner) & (ownerships.c.access == access)))
        return res.rowcount > 0

    def list_ownerships(self, org_id: str | None = None) -> list[dict[str, Any]]:
        q = select(ownerships).order_by(ownerships.c.created_at)
        if org_id is not None:
            q = q.where((ownerships.c.owner == org_id) | (ownerships.c.access == org_id))
        with self.catalog.read() as c:
            return [_row(r) for r in c.execute(q)]

    def orgs_granting_access_to(self, org_id: str) -> set[str]:
        with self.catalog.read() as c:
            return {r[0] for r in c.execute(select(ownerships.c.owner).where(ownerships.c.access == org_id))}
