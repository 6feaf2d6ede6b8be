"""Organizations, users and ownerships in the catalog. Authorization is the identity service's job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, delete, func, insert, not_, select, update
from sqlalchemy.exc import IntegrityError

from scenebase.domain.roles import Role
from scenebase.storage.catalog import Catalog
from scenebase.storage.job_repo import TERMINAL
from scenebase.storage.tables import metadata, organization_ids, organizations, ownerships, users


class DuplicateError(Exception):
    """A unique constraint refused the row. ``field`` names the clashing column when it is known."""

    def __init__(self, value: str, field: str | None = None) -> None:
        super().__init__(value)
        self.field = field


class LastSuperadminError(Exception):
    """The change would leave the catalog without a superadmin."""


class OrganizationNotEmpty(Exception):
    """The organization still holds rows that must not outlive it; ``holdings`` counts them by kind."""

    def __init__(self, org_id: str, holdings: dict[str, int]) -> None:
        super().__init__(org_id)
        self.org_id = org_id
        self.holdings = holdings

    def summary(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.holdings.items())


#: Rows that go with their organization instead of keeping it alive (None: all of them): search terms and set
#: names derive from assets, which are counted; grants are sharing settings, not data; finished jobs are history.
#: Every other row of a table with an ``owner`` column or a reference to ``organizations.id`` blocks deletion,
#: so a table added later is covered without touching this module.
GOES_WITH_ORGANIZATION: dict[str, Callable[[Table], ColumnElement[bool]] | None] = {
    "asset_terms": None,
    "asset_element_terms": None,
    "names": None,
    "ownerships": None,
    "jobs": lambda t: t.c.status.in_(TERMINAL),
}
#: how blocking rows are named in the refusal: assets by their type, jobs by what keeps them alive
_KIND_COLUMNS = {"assets": "asset_type"}
_LABELS = {"jobs": "unfinished jobs"}


def organization_references() -> list[tuple[Table, Column[Any]]]:
    """Every (table, column) whose value is an organization id."""
    refs = []
    for table in metadata.sorted_tables:
        if table is organizations or table is organization_ids:
            continue
        for col in table.columns:
            if col.name == "owner" or any(fk.column is organizations.c.id for fk in col.foreign_keys):
                refs.append((table, col))
    return refs


def _holdings(conn: Connection, org_id: str) -> dict[str, int]:
    held: dict[str, int] = {}
    for table, col in organization_references():
        cond: ColumnElement[bool] = col == org_id
        if table.name in GOES_WITH_ORGANIZATION:
            removable = GOES_WITH_ORGANIZATION[table.name]
            if removable is None:
                continue
            cond = cond & not_(removable(table))
        kind = _KIND_COLUMNS.get(table.name)
        if kind is not None:
            q = select(table.c[kind], func.count()).where(cond).group_by(table.c[kind])
            counts = [(str(label), int(n)) for label, n in conn.execute(q)]
        else:
            n = conn.execute(select(func.count()).select_from(table).where(cond)).scalar_one()
            counts = [(_LABELS.get(table.name, table.name), int(n))]
        for label, n in counts:
            if n:
                held[label] = held.get(label, 0) + n
    return held


def _row(r: Any) -> dict[str, Any]:
    return dict(r._mapping)


class IdentityRepo:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # organizations
    def add_organization(self, org_id: str, name: str) -> dict[str, Any]:
        """Raises DuplicateError with ``field`` "name" (a live organization has it) or "id" (ever issued)."""
        now = time.time()
        try:
            with self.catalog.write() as c:
                # the registry's primary key makes the id check atomic with the insert
                c.execute(insert(organization_ids).values(id=org_id, created_at=now))
                c.execute(insert(organizations).values(id=org_id, name=name, created_at=now))
        except IntegrityError:
            field = "name" if self.organization_by_name(name) is not None else "id"
            raise DuplicateError(name if field == "name" else org_id, field) from None
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

    def holdings(self, org_id: str) -> dict[str, int]:
        """What keeps the organization from being deleted: counts by asset type, ``users``, ``unfinished jobs``..."""
        with self.catalog.read() as c:
            return _holdings(c, org_id)

    def delete_organization(self, org_id: str) -> bool:
        """Delete an organization that holds nothing (else OrganizationNotEmpty, and nothing changes).

        Rows listed in :data:`GOES_WITH_ORGANIZATION` go with it. Its id stays in ``organization_ids``.
        """
        with self.catalog.write() as c:
            # the row lock makes concurrent inserts that reference the organization (users) wait for us
            found = c.execute(select(organizations.c.id).where(organizations.c.id == org_id).with_for_update()).first()
            if found is None:
                return False
            held = _holdings(c, org_id)
            if held:
                raise OrganizationNotEmpty(org_id, held)
            for table, col in organization_references():
                if table.name in GOES_WITH_ORGANIZATION:
                    removable = GOES_WITH_ORGANIZATION[table.name]
                    cond = col == org_id if removable is None else (col == org_id) & removable(table)
                    c.execute(delete(table).where(cond))
            c.execute(update(organization_ids).where(organization_ids.c.id == org_id).values(deleted_at=time.time()))
            c.execute(delete(organizations).where(organizations.c.id == org_id))
        return True

    def organization_id_issued(self, org_id: str) -> bool:
        with self.catalog.read() as c:
            return c.execute(select(organization_ids.c.id).where(organization_ids.c.id == org_id)).first() is not None

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
        """Raises LastSuperadminError instead of demoting the last superadmin."""
        with self.catalog.write() as c:
            if values.get("role", Role.SUPERADMIN.value) != Role.SUPERADMIN.value:
                _keep_a_superadmin(c, username)
            res = c.execute(update(users).where(users.c.username == username).values(**values))
        return res.rowcount > 0

    def delete_user(self, username: str) -> bool:
        """Raises LastSuperadminError instead of deleting the last superadmin."""
        with self.catalog.write() as c:
            _keep_a_superadmin(c, username)
            res = c.execute(delete(users).where(users.c.username == username))
        return res.rowcount > 0

    def count_superadmins(self) -> int:
        with self.catalog.read() as c:
            q = select(func.count()).select_from(users).where(users.c.role == Role.SUPERADMIN.value)
            return int(c.execute(q).scalar_one())

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


def _keep_a_superadmin(conn: Connection, username: str) -> None:
    """Refuse to remove ``username`` from the superadmins when it is the only one.

    FOR UPDATE locks the superadmin rows: two superadmins demoting each other at once on PostgreSQL would
    otherwise both see the other one still in place. (SQLite write transactions are serial already.)
    """
    q = select(users.c.username).where(users.c.role == Role.SUPERADMIN.value).with_for_update()
    if [r[0] for r in conn.execute(q)] == [username]:
        raise LastSuperadminError(username)
