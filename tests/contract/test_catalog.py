"""Contract tests that every catalog backend must pass.

Backends: SQLite on a file under ``tmp_path`` and PostgreSQL (session fixture ``postgres_server``, a fresh
database with pgvector per test). The same tests cover the Alembic migrations, :class:`IdentityRepo` and
:class:`JobRepo`, including the concurrency guarantees the job system relies on (atomic claims, many
simultaneous writers).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, func, insert, inspect, select

from scenebase.domain.search import parse_query
from scenebase.storage.asset_repo import AssetRepo
from scenebase.storage.catalog import ANALYZE_UNTIL_ROWS, MIGRATIONS_DIR, Catalog
from scenebase.storage.identity_repo import DuplicateError, IdentityRepo, LastSuperadminError, OrganizationNotEmpty
from scenebase.storage.job_repo import ABORTED, FINISHED, QUEUED, RUNNING, JobRepo
from scenebase.storage.scope import Scope
from scenebase.storage.tables import asset_element_terms, asset_terms, assets, jobs, metadata
from servers import PostgresServer

T = TypeVar("T")

NOTE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z (?P<text>.*)$", re.DOTALL)
THREADS = 8


def _head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """A catalog on an empty database (not migrated)."""
    cleanup: Callable[[], None] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"t_{uuid.uuid4().hex}"
        url = server.create_database(name)

        def cleanup() -> None:
            server.drop_database(name)

    cat = Catalog(url)
    try:
        yield cat
    finally:
        cat.dispose()
        if cleanup is not None:
            cleanup()


@pytest.fixture
def db(catalog: Catalog) -> Catalog:
    """The catalog, migrated to head."""
    catalog.migrate()
    return catalog


@pytest.fixture
def identity(db: Catalog) -> IdentityRepo:
    return IdentityRepo(db)


@pytest.fixture
def repo(db: Catalog) -> JobRepo:
    return JobRepo(db)


def _all_at_once(fn: Callable[[int], T], n: int = THREADS) -> list[T]:
    """Run ``fn(i)`` for i in range(n) in n threads released together; re-raises the first failure."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(run, i) for i in range(n)]
        return [f.result(timeout=120) for f in futures]


def _note_texts(notes: list[str]) -> list[str]:
    texts = []
    for note in notes:
        m = NOTE_RE.match(note)
        assert m is not None, f"note without a UTC timestamp: {note!r}"
        texts.append(m.group("text"))
    return texts


def upgrade_to(catalog: Catalog, revision: str) -> None:
    """Migrate ``catalog`` to ``revision`` only (a test then writes rows as that revision left the schema)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with catalog.write() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


# -- migrations ------------------------------------------------------------------------------------


def test_migrate_is_idempotent(catalog: Catalog) -> None:
    head = _head_revision()
    assert catalog.current_revision() is None
    catalog.migrate()
    assert catalog.current_revision() == head
    IdentityRepo(catalog).add_organization("org1", "Org One")
    catalog.migrate()
    assert catalog.current_revision() == head
    # a second run neither fails nor touches the data
    assert IdentityRepo(catalog).get_organization("org1") is not None
    with catalog.read() as conn:
        names = set(inspect(conn).get_table_names())
    assert {"organizations", "users", "ownerships", "jobs", "alembic_version"} <= names


def test_migrated_schema_matches_tables(db: Catalog) -> None:
    with db.read() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diffs = compare_metadata(ctx, metadata)
    assert diffs == []


# -- organizations ---------------------------------------------------------------------------------


def test_organizations_crud(identity: IdentityRepo) -> None:
    assert identity.add_organization("o2", "Beta") == {"id": "o2", "name": "Beta"}
    identity.add_organization("o1", "Alpha")
    identity.add_organization("o3", "Gamma")

    org = identity.get_organization("o1")
    assert org is not None
    assert (org["id"], org["name"]) == ("o1", "Alpha")
    assert isinstance(org["created_at"], float) and abs(org["created_at"] - time.time()) < 60
    assert identity.get_organization("nope") is None

    by_name = identity.organization_by_name("Beta")
    assert by_name is not None and by_name["id"] == "o2"
    assert identity.organization_by_name("beta") is None  # names are case-sensitive
    assert identity.organization_by_name("Nope") is None

    assert [o["name"] for o in identity.list_organizations()] == ["Alpha", "Beta", "Gamma"]
    assert [o["id"] for o in identity.list_organizations(only={"o3", "o1", "missing"})] == ["o1", "o3"]
    assert identity.list_organizations(only=set()) == []

    assert identity.rename_organization("o1", "Zeta") is True
    assert identity.organization_by_name("Zeta") == identity.get_organization("o1")
    assert identity.organization_by_name("Alpha") is None
    assert identity.rename_organization("o1", "Zeta") is True  # same name again is no conflict
    assert identity.rename_organization("missing", "Whatever") is False
    assert [o["name"] for o in identity.list_organizations()] == ["Beta", "Gamma", "Zeta"]

    assert identity.delete_organization("o2") is True
    assert identity.get_organization("o2") is None
    assert identity.delete_organization("o2") is False
    assert [o["id"] for o in identity.list_organizations()] == ["o3", "o1"]


def test_organization_duplicates(identity: IdentityRepo) -> None:
    identity.add_organization("o1", "Alpha")
    identity.add_organization("o2", "Beta")
    with pytest.raises(DuplicateError):
        identity.add_organization("o3", "Alpha")  # same name
    with pytest.raises(DuplicateError):
        identity.add_organization("o1", "Other")  # same id
    with pytest.raises(DuplicateError):
        identity.rename_organization("o2", "Alpha")
    # the refused writes left nothing behind, and the catalog still accepts writes
    assert [(o["id"], o["name"]) for o in identity.list_organizations()] == [("o1", "Alpha"), ("o2", "Beta")]
    identity.add_organization("o3", "Gamma")
    assert identity.get_organization("o3") is not None


# -- users -----------------------------------------------------------------------------------------


def _add_user(identity: IdentityRepo, username: str, org_id: str, role: str = "user") -> str:
    token_hash = uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex chars, like a sha256
    identity.add_user(username, f"{username}@example.com", role, org_id, token_hash, f"{org_id[:4]}-{username[:4]}")
    return token_hash


def test_users_crud(identity: IdentityRepo) -> None:
    identity.add_organization("o1", "Alpha")
    identity.add_organization("o2", "Beta")
    bob_hash = _add_user(identity, "bob", "o1", role="admin")
    _add_user(identity, "alice", "o1")
    _add_user(identity, "carol", "o2")

    bob = identity.get_user("bob")
    assert bob is not None
    assert (bob["username"], bob["email"], bob["role"], bob["organization_id"]) == (
        "bob",
        "bob@example.com",
        "admin",
        "o1",
    )
    assert bob["token_hash"] == bob_hash
    assert bob["token_hint"] == "o1-bob"
    assert isinstance(bob["created_at"], float)
    assert identity.get_user("nobody") is None

    by_token = identity.user_by_token_hash(bob_hash)
    assert by_token is not None
    assert by_token["username"] == "bob"
    assert by_token["organization_name"] == "Alpha"
    assert identity.user_by_token_hash("0" * 64) is None

    assert [u["username"] for u in identity.list_users()] == ["alice", "bob", "carol"]
    o1_users = identity.list_users("o1")
    assert [u["username"] for u in o1_users] == ["alice", "bob"]
    assert {u["organization_name"] for u in o1_users} == {"Alpha"}
    assert [u["username"] for u in identity.list_users("o2")] == ["carol"]
    assert identity.list_users("missing") == []
    assert identity.count_users("o1") == 2

    new_hash = "f" * 64
    assert identity.update_user("alice", role="admin", email=None, token_hash=new_hash, token_hint="o1-new") is True
    alice = identity.get_user("alice")
    assert alice is not None
    assert (alice["role"], alice["email"], alice["token_hint"]) == ("admin", None, "o1-new")
    by_new = identity.user_by_token_hash(new_hash)
    assert by_new is not None and by_new["username"] == "alice"
    assert identity.update_user("nobody", role="admin") is False

    # the organization name follows a rename
    identity.rename_organization("o1", "Alpha Renamed")
    renamed = identity.user_by_token_hash(bob_hash)
    assert renamed is not None and renamed["organization_name"] == "Alpha Renamed"

    assert identity.delete_user("bob") is True
    assert identity.get_user("bob") is None
    assert identity.user_by_token_hash(bob_hash) is None
    assert identity.delete_user("bob") is False
    assert [u["username"] for u in identity.list_users("o1")] == ["alice"]
    assert identity.count_users("o1") == 1


def test_user_duplicates(identity: IdentityRepo) -> None:
    identity.add_organization("o1", "Alpha")
    identity.add_organization("o2", "Beta")
    taken_hash = _add_user(identity, "bob", "o1")
    with pytest.raises(DuplicateError):
        _add_user(identity, "bob", "o2")  # usernames are global, not per organization
    with pytest.raises(DuplicateError):
        identity.add_user("eve", None, "user", "o2", taken_hash, "o2-eve")  # token hashes are unique
    assert [(u["username"], u["organization_id"]) for u in identity.list_users()] == [("bob", "o1")]


# -- ownerships ------------------------------------------------------------------------------------


def test_ownerships(identity: IdentityRepo) -> None:
    for org_id, name in (("o1", "Alpha"), ("o2", "Beta"), ("o3", "Gamma")):
        identity.add_organization(org_id, name)

    row = identity.add_ownership("w1", "o1", "o2", "admin")
    assert row == {"id": "w1", "owner": "o1", "access": "o2", "created_by": "admin"}
    identity.add_ownership("w2", "o3", "o2", "admin")
    identity.add_ownership("w3", "o2", "o1", "bob")

    with pytest.raises(DuplicateError):
        identity.add_ownership("w4", "o1", "o2", "someone")  # same (owner, access) pair
    with pytest.raises(DuplicateError):
        identity.add_ownership("w1", "o3", "o1", "someone")  # same id

    listed = identity.list_ownerships()
    assert {(r["id"], r["owner"], r["access"], r["created_by"]) for r in listed} == {
        ("w1", "o1", "o2", "admin"),
        ("w2", "o3", "o2", "admin"),
        ("w3", "o2", "o1", "bob"),
    }
    assert all(isinstance(r["created_at"], float) for r in listed)
    assert {r["id"] for r in identity.list_ownerships("o1")} == {"w1", "w3"}  # either side
    assert {r["id"] for r in identity.list_ownerships("o3")} == {"w2"}

    assert identity.orgs_granting_access_to("o2") == {"o1", "o3"}
    assert identity.orgs_granting_access_to("o1") == {"o2"}
    assert identity.orgs_granting_access_to("o3") == set()

    assert identity.delete_ownership("o1", "o2") is True
    assert identity.delete_ownership("o1", "o2") is False
    assert identity.delete_ownership("o2", "o3") is False  # the direction matters
    assert identity.orgs_granting_access_to("o2") == {"o3"}

    # deleting an organization removes the grants on both sides
    assert identity.delete_organization("o2") is True
    assert identity.list_ownerships() == []
    assert identity.orgs_granting_access_to("o1") == set()


# -- organizations: deletion, id registry, superadmins (issue 8) -----------------------------------


def test_organization_ids_are_never_issued_twice(identity: IdentityRepo) -> None:
    identity.add_organization("o1", "Alpha")
    assert identity.delete_organization("o1") is True
    assert identity.organization_id_issued("o1") and not identity.organization_id_issued("o2")
    with pytest.raises(DuplicateError) as e:
        identity.add_organization("o1", "Alpha")
    assert e.value.field == "id"
    # the name is free again, under a new id
    assert identity.add_organization("o2", "Alpha") == {"id": "o2", "name": "Alpha"}
    with pytest.raises(DuplicateError) as e:
        identity.add_organization("o3", "Alpha")
    assert e.value.field == "name"
    assert identity.get_organization("o3") is None and not identity.organization_id_issued("o3")


def test_an_organization_that_holds_rows_is_not_deleted(identity: IdentityRepo, db: Catalog) -> None:
    identity.add_organization("o1", "Alpha")
    identity.add_organization("o2", "Beta")
    _add_user(identity, "bob", "o1")
    jobs_repo = JobRepo(db)
    o1 = Scope.of("o1")
    jobs_repo.create(o1, "queued-job")
    jobs_repo.create(o1, "done-job", status=FINISHED)
    jobs_repo.create(Scope.of("o2"), "other-job")
    now = time.time()
    with db.write() as c:
        for pk, asset_type in ((1, "images"), (2, "images"), (3, "videos")):
            c.execute(
                insert(assets).values(
                    pk=pk, owner="o1", asset_type=asset_type, id=f"a{pk}", timestamp=now, doc={}, created_at=now,
                    updated_at=now,
                )
            )  # fmt: skip
            c.execute(insert(asset_terms).values(asset_pk=pk, owner="o1", asset_type=asset_type, field="f", vstr="v"))
    identity.add_ownership("w1", "o1", "o2", "admin")
    identity.add_ownership("w2", "o2", "o1", "admin")

    expected = {"images": 2, "videos": 1, "users": 1, "unfinished jobs": 1}
    assert identity.holdings("o1") == expected
    with pytest.raises(OrganizationNotEmpty) as e:
        identity.delete_organization("o1")
    assert e.value.holdings == expected
    assert e.value.summary() == "2 images, 1 videos, 1 unfinished jobs, 1 users"
    assert identity.get_organization("o1") is not None
    assert {j["id"] for j in jobs_repo.list_jobs(o1)} == {"queued-job", "done-job"}
    assert len(identity.list_ownerships()) == 2

    with db.write() as c:
        c.execute(delete(assets).where(assets.c.owner == "o1"))  # asset_terms rows stay behind: derived, not held
    jobs_repo.update(o1, "queued-job", status=ABORTED)
    identity.delete_user("bob")
    assert identity.holdings("o1") == {}
    assert identity.delete_organization("o1") is True
    # finished jobs, derived rows and grants in both directions went with it; other organizations' rows stayed
    assert jobs_repo.list_jobs(o1) == []
    assert identity.list_ownerships() == []
    with db.read() as c:
        assert c.execute(select(func.count()).select_from(asset_terms)).scalar_one() == 0
    assert jobs_repo.get(Scope.of("o2"), "other-job") is not None


def test_a_table_added_later_keeps_its_organization_alive(identity: IdentityRepo, db: Catalog) -> None:
    """No list to update: any table with an ``owner`` column counts (here a stand-in for a future one)."""
    future = Table("future_vectors", metadata, Column("id", Integer, primary_key=True), Column("owner", String(64)))
    try:
        with db.write() as c:
            future.create(c)
            c.execute(insert(future).values(id=1, owner="o1"))
        identity.add_organization("o1", "Alpha")
        with pytest.raises(OrganizationNotEmpty) as e:
            identity.delete_organization("o1")
        assert e.value.holdings == {"future_vectors": 1}
    finally:
        metadata.remove(future)
        with db.write() as c:
            future.drop(c)


def test_the_last_superadmin_stays(identity: IdentityRepo) -> None:
    identity.add_organization("o1", "Alpha")
    _add_user(identity, "root", "o1", role="superadmin")
    _add_user(identity, "bob", "o1", role="admin")
    for change in (lambda: identity.update_user("root", role="admin"), lambda: identity.delete_user("root")):
        with pytest.raises(LastSuperadminError):
            change()
    root = identity.get_user("root")
    assert root is not None and root["role"] == "superadmin"
    assert identity.update_user("root", email="new@example.com", role="superadmin") is True  # not a demotion
    assert identity.update_user("bob", role="superadmin") is True
    assert identity.update_user("root", role="admin") is True
    assert identity.count_superadmins() == 1


def test_two_superadmins_demoting_each_other_at_once_leave_one(identity: IdentityRepo) -> None:
    identity.add_organization("o1", "Alpha")
    names = [f"root{i}" for i in range(THREADS)]
    for name in names:
        _add_user(identity, name, "o1", role="superadmin")

    def demote(i: int) -> bool:
        try:
            return identity.update_user(names[i], role="admin")
        except LastSuperadminError:
            return False

    assert sum(_all_at_once(demote)) == THREADS - 1
    assert identity.count_superadmins() == 1


def test_migration_0004_fixes_hints_and_marks_client_jobs(catalog: Catalog) -> None:
    upgrade_to(catalog, "0003")
    now = time.time()
    with catalog.write() as c:
        old = Table("jobs", MetaData(), autoload_with=c)  # the jobs table as revision 0003 left it
        c.execute(sa.text("INSERT INTO organizations (id, name, created_at) VALUES ('default', 'default', 1.0)"))
        for username, hint in (("admin", "s3cret…"), ("ana", "default-ana-…"), ("eve", "my-secret-…")):
            c.execute(
                sa.text(
                    "INSERT INTO users (username, role, organization_id, token_hash, token_hint, created_at)"
                    " VALUES (:u, 'admin', 'default', :h, :hint, 1.0)"
                ),
                {"u": username, "h": username * 8, "hint": hint},
            )
        base = {"owner": "default", "status": QUEUED, "progress": 0.0, "notes": [], "tags": [], "attempts": 0,
                "max_attempts": 1, "created_at": now, "updated_at": now}  # fmt: skip
        c.execute(insert(old).values(id="server-job", params={}, **base))
        c.execute(insert(old).values(id="client-job", **base))  # params omitted: SQL NULL
        c.execute(insert(old).values(id="client-job-2", params=None, **base))  # JSON null
    catalog.migrate()

    identity = IdentityRepo(catalog)
    hints = {u["username"]: u["token_hint"] for u in identity.list_users()}
    assert hints == {"admin": "…", "ana": "default-ana-…", "eve": "…"}
    assert identity.organization_id_issued("default")
    repo = JobRepo(catalog)
    driven = {j["id"]: j["driven_by"] for j in repo.list_jobs(Scope.of("default"))}
    assert driven == {"server-job": "server", "client-job": "client", "client-job-2": "client"}


def test_migration_0006_fills_term_times_and_element_positions(catalog: Catalog) -> None:
    upgrade_to(catalog, "0004")
    docs = {
        "a1": {"id": "a1", "timestamp": "2024-01-01T00:00:00+00:00",
               "annotations_meta": [{"provider": "p1", "type": "box"}, {"provider": "p2", "type": "polygon"}]},
        "a2": {"id": "a2", "timestamp": "2024-01-02T00:00:00+00:00", "note": "has [{ in text", "tags": ["x"]},
    }  # fmt: skip
    with catalog.write() as c:
        old_assets = Table("assets", MetaData(), autoload_with=c)
        old_terms = Table("asset_terms", MetaData(), autoload_with=c)  # as revision 0004 left it: no ts
        for i, (doc_id, doc) in enumerate(docs.items()):
            ts = 1704067200.0 + 86400 * i
            row = {"owner": "o", "asset_type": "images", "id": doc_id, "timestamp": ts, "doc": doc, "created_at": ts,
                   "updated_at": ts}  # fmt: skip
            pk = c.execute(insert(old_assets).returning(old_assets.c.pk), row).scalar_one()
            c.execute(insert(old_terms), [{"asset_pk": pk, "owner": "o", "asset_type": "images", "field": "tags",
                                           "vstr": "x", "vnum": None}])  # fmt: skip
    catalog.migrate()
    with catalog.read() as conn:
        times = [r[0] for r in conn.execute(select(asset_terms.c.ts).order_by(asset_terms.c.ts))]
        elements = set(conn.execute(select(asset_element_terms.c.field, asset_element_terms.c.vstr,
                                           asset_element_terms.c.pos)))  # fmt: skip
    assert times == [1704067200.0, 1704153600.0]
    assert elements == {("annotations_meta.provider", "p1", 0), ("annotations_meta.type", "box", 0),
                        ("annotations_meta.provider", "p2", 1), ("annotations_meta.type", "polygon", 1)}  # fmt: skip
    repo = AssetRepo(catalog)
    nested = {"path": "annotations_meta", "filters": [{"field": "provider", "values": ["p1"]},
                                                      {"field": "type", "values": ["polygon"]}]}  # fmt: skip
    assert repo.search(Scope.of("o"), "images", parse_query({"nested_filters": [nested]}), ids_only=True) == []
    nested["filters"][1]["values"] = ["box"]
    assert repo.search(Scope.of("o"), "images", parse_query({"nested_filters": [nested]}), ids_only=True) == ["a1"]


def test_migration_0009_keeps_only_numbers_in_the_number_postings(catalog: Catalog) -> None:
    upgrade_to(catalog, "0008")
    repo = AssetRepo(catalog)
    scope = Scope.of("o")
    docs = [{"id": f"n{i}", "timestamp": f"2024-01-0{i + 1}T00:00:00+00:00", "speed": float(i), "sensor": f"cam{i}",
             "aux": {"frame": i}} for i in range(4)]  # fmt: skip
    repo.upsert(scope, "images", docs)  # written under revision 0008's full index

    def number_postings(conn: Any) -> tuple[int, str]:
        if conn.dialect.name == "postgresql":
            sql = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_terms_num'"
        else:
            sql = "SELECT sql FROM sqlite_master WHERE name = 'ix_terms_num'"
        count = conn.execute(select(func.count()).select_from(asset_terms).where(asset_terms.c.vnum.is_not(None)))
        return count.scalar_one(), str(conn.exec_driver_sql(sql).scalar_one())

    with catalog.read() as conn:
        assert "vnum IS NOT NULL" not in number_postings(conn)[1]
    catalog.migrate()
    with catalog.read() as conn:
        numbers, definition = number_postings(conn)
    assert "vnum IS NOT NULL" in definition, definition
    assert numbers > 0

    def ids(query: dict[str, Any]) -> list[str]:
        return sorted(repo.search(scope, "images", parse_query(query), ids_only=True))

    assert ids({"ranges": [{"field": "speed", "min": 1, "max": 2}]}) == ["n1", "n2"]
    assert ids({"ranges": [{"field": "speed", "max": 0.5}]}) == ["n0"]
    assert ids({"filters": [{"field": "aux.frame", "values": [3]}]}) == ["n3"]
    assert ids({"filters": [{"field": "sensor", "values": ["cam0"]}]}) == ["n0"]
    assert ids({"exists_filters": [{"field": "aux"}]}) == ["n0", "n1", "n2", "n3"]
    buckets = repo.summary(scope, "images", parse_query({}), ["speed"])["aggregations"][0]["buckets"]
    assert sorted(b["key"] for b in buckets) == [0, 1, 2, 3]


# -- jobs: records, scopes, notes ------------------------------------------------------------------


def test_job_create_and_scoped_get(repo: JobRepo) -> None:
    owner = Scope.of("org-a", username="alice")
    created = repo.create(owner, "job-1", job_type="integration_test", params={"duration": 1}, description="d")
    assert created["owner"] == "org-a" and created["user"] == "alice"

    row = repo.get(owner, "job-1")
    assert row is not None
    assert row["id"] == "job-1"
    assert row["owner"] == "org-a"
    assert row["user"] == "alice"
    assert row["job_type"] == "integration_test"
    assert row["status"] == QUEUED
    assert row["progress"] == 0.0
    assert row["notes"] == [] and row["tags"] == []
    assert row["params"] == {"duration": 1}
    assert row["description"] == "d"
    assert (row["attempts"], row["max_attempts"]) == (0, 1)
    assert row["claim"] is None and row["lease_expires_at"] is None
    assert row["created_at"] == pytest.approx(row["updated_at"])

    assert repo.get(Scope.of("org-b"), "job-1") is None
    assert repo.get(Scope.of("org-b", also_readable={"org-c"}), "job-1") is None
    reader = repo.get(Scope.of("org-b", also_readable={"org-a"}), "job-1")
    assert reader is not None and reader["id"] == "job-1"
    assert repo.get(owner, "job-missing") is None

    repo.create(Scope.of("org-b"), "job-2")
    assert [j["id"] for j in repo.list_jobs(Scope.of("org-a"))] == ["job-1"]
    assert {j["id"] for j in repo.list_jobs(Scope.of("org-b", also_readable={"org-a"}))} == {"job-1", "job-2"}
    assert repo.list_jobs(Scope.of("org-a"), status=RUNNING) == []


def test_job_update_is_scoped(repo: JobRepo) -> None:
    owner = Scope.of("org-a")
    repo.create(owner, "job-1", description="before")
    before = repo.get(owner, "job-1")
    assert before is not None

    assert repo.update(Scope.of("org-b"), "job-1", description="hacked", status=ABORTED) is False
    # being able to read a job does not allow writing it
    assert repo.update(Scope.of("org-b", also_readable={"org-a"}), "job-1", description="hacked") is False
    assert repo.get(owner, "job-1") == before

    assert repo.update(owner, "job-1", description="after", progress=42.5, stage="half way") is True
    after = repo.get(owner, "job-1")
    assert after is not None
    assert (after["description"], after["progress"], after["stage"]) == ("after", 42.5, "half way")
    assert after["updated_at"] >= before["updated_at"]
    assert repo.update(owner, "job-missing", description="x") is False


def test_job_append_note(repo: JobRepo) -> None:
    owner = Scope.of("org-a")
    repo.create(owner, "job-1")
    texts = ["first", "second: ünïcödé ✓", "third\nwith a newline"]
    for text in texts[:2]:
        assert repo.append_note(owner, "job-1", text) is True
    assert repo.append_note(None, "job-1", texts[2]) is True  # the system path
    assert repo.append_note(Scope.of("org-b"), "job-1", "intruder") is False
    assert repo.append_note(Scope.of("org-b", also_readable={"org-a"}), "job-1", "reader") is False
    assert repo.append_note(owner, "job-missing", "x") is False
    assert repo.append_note(None, "job-missing", "x") is False

    row = repo.get(owner, "job-1")
    assert row is not None
    assert _note_texts(row["notes"]) == texts


def test_json_columns_round_trip(repo: JobRepo) -> None:
    params: dict[str, Any] = {
        "nested": {"a": [1, 2.5, {"b": None, "c": [True, False]}], "empty": {}, "none": []},
        "unicode": 'Zürich — 東京 — emoji 🚗🛰️ — quote " backslash \\ tab \t',
        "keys with spaces/und ümlauts": {"ключ": "значение"},
        "big": 2**53,
        "neg": -0.125,
        "list_of_lists": [[[]], [["deep", ["deeper"]]]],
    }
    result: dict[str, Any] = {"items": [{"id": i, "tags": [f"t{i}", "ö"]} for i in range(50)]}
    tags = ["alpha", "βeta", "🚀"]
    owner = Scope.of("org-a")
    repo.create(owner, "job-1", params=params, tags=tags)
    repo.update(owner, "job-1", result=result)

    row = repo.get(owner, "job-1")
    assert row is not None
    assert row["params"] == params
    assert row["tags"] == tags
    assert row["result"] == result
    assert row["notes"] == []

    repo.create(owner, "job-2", params=None)
    row2 = repo.get(owner, "job-2")
    assert row2 is not None
    assert row2["params"] is None and row2["result"] is None


# -- jobs: claims and leases -----------------------------------------------------------------------


def test_system_claim_is_atomic(repo: JobRepo) -> None:
    repo.create(Scope.of("org-a"), "job-1", max_attempts=3)

    results = _all_at_once(lambda i: repo.system_claim("job-1", f"claim-{i}", f"worker-{i}", 30.0))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    won = winners[0]
    assert won["status"] == RUNNING
    assert won["attempts"] == 1

    row = repo.system_get("job-1")
    assert row is not None
    assert row["claim"] == won["claim"]
    assert row["worker"] == won["worker"] == won["claim"].replace("claim", "worker")
    assert row["attempts"] == 1
    assert row["started_at"] is not None
    assert row["lease_expires_at"] == pytest.approx(row["started_at"] + 30.0)

    # a running job cannot be claimed again
    assert repo.system_claim("job-1", "late", "worker-late", 30.0) is None
    assert repo.system_claim("job-missing", "c", "w", 30.0) is None


def test_system_update_claimed(repo: JobRepo) -> None:
    repo.create(Scope.of("org-a"), "job-1")
    assert repo.system_update_claimed("job-1", "anything", progress=5.0) is False  # queued: nobody holds it
    assert repo.system_claim("job-1", "right", "w", 30.0) is not None

    assert repo.system_update_claimed("job-1", "wrong", progress=50.0, stage="hijacked") is False
    row = repo.system_get("job-1")
    assert row is not None
    assert (row["progress"], row["stage"]) == (0.0, None)

    assert repo.system_update_claimed("job-1", "right", progress=50.0, stage="working") is True
    row = repo.system_get("job-1")
    assert row is not None
    assert (row["progress"], row["stage"]) == (50.0, "working")

    assert repo.system_update_claimed("job-1", "right", status=FINISHED, progress=100.0) is True
    # once the job left "running", even its own claim cannot write any more
    assert repo.system_update_claimed("job-1", "right", progress=1.0) is False
    row = repo.system_get("job-1")
    assert row is not None
    assert (row["status"], row["progress"]) == (FINISHED, 100.0)


def test_system_expired_and_release(repo: JobRepo) -> None:
    owner = Scope.of("org-a")
    repo.create(owner, "job-1", max_attempts=2)
    repo.create(owner, "job-other")  # queued: never "expired"
    claimed = repo.system_claim("job-1", "c1", "host:1", 10.0)
    assert claimed is not None
    lease = claimed["lease_expires_at"]

    assert repo.system_expired(lease - 1.0) == []
    expired = repo.system_expired(lease + 1.0)
    assert [j["id"] for j in expired] == ["job-1"]
    job = expired[0]
    assert job["claim"] == "c1"

    # retry: back to queued, claim and lease cleared, note appended
    now = lease + 1.0
    assert repo.system_release_expired(job, now, retry=True, note="lease lost, re-queued") is True
    row = repo.system_get("job-1")
    assert row is not None
    assert row["status"] == QUEUED
    assert row["claim"] is None and row["lease_expires_at"] is None
    assert row["finished_at"] is None
    assert row["updated_at"] == now
    assert _note_texts(row["notes"]) == ["lease lost, re-queued"]
    assert repo.system_expired(now + 100.0) == []
    # releasing the same (stale) snapshot twice does nothing
    assert repo.system_release_expired(job, now, retry=True, note="again") is False

    # second attempt, then no retry: aborted with the note as the error stage
    claimed2 = repo.system_claim("job-1", "c2", "host:2", 10.0)
    assert claimed2 is not None and claimed2["attempts"] == 2
    expired2 = repo.system_expired(claimed2["lease_expires_at"] + 1.0)
    assert [j["claim"] for j in expired2] == ["c2"]
    now2 = claimed2["lease_expires_at"] + 1.0
    assert repo.system_release_expired(expired2[0], now2, retry=False, note="lease lost, gave up") is True
    row = repo.system_get("job-1")
    assert row is not None
    assert row["status"] == ABORTED
    assert row["stage"] == "Error :lease lost, gave up"
    assert row["finished_at"] == now2
    assert row["claim"] is None and row["lease_expires_at"] is None
    assert _note_texts(row["notes"]) == ["lease lost, re-queued", "lease lost, gave up"]
    assert repo.system_claim("job-1", "c3", "host:3", 10.0) is None  # aborted jobs stay aborted


def test_system_release_refuses_changed_claim(repo: JobRepo) -> None:
    repo.create(Scope.of("org-a"), "job-1", max_attempts=3)
    first = repo.system_claim("job-1", "c1", "w1", 1.0)
    assert first is not None
    now = first["lease_expires_at"] + 1.0
    (stale,) = repo.system_expired(now)

    # meanwhile another reaper released it and another worker claimed it
    assert repo.system_release_expired(stale, now, retry=True, note="released by someone else") is True
    assert repo.system_claim("job-1", "c2", "w2", 60.0) is not None

    assert repo.system_release_expired(stale, now, retry=False, note="stale abort") is False
    row = repo.system_get("job-1")
    assert row is not None
    assert (row["status"], row["claim"], row["worker"], row["attempts"]) == (RUNNING, "c2", "w2", 2)
    assert _note_texts(row["notes"]) == ["released by someone else"]

    # and a finished job is never released, even with the matching claim
    assert repo.system_update_claimed("job-1", "c2", status=FINISHED) is True
    snapshot = repo.system_get("job-1")
    assert snapshot is not None
    assert repo.system_release_expired(snapshot, now, retry=True, note="too late") is False
    row = repo.system_get("job-1")
    assert row is not None and row["status"] == FINISHED


def test_system_release_keeps_notes_added_meanwhile(repo: JobRepo) -> None:
    repo.create(Scope.of("org-a"), "job-1", max_attempts=2)
    claimed = repo.system_claim("job-1", "c1", "w1", 1.0)
    assert claimed is not None
    now = claimed["lease_expires_at"] + 1.0
    (snapshot,) = repo.system_expired(now)
    # the (slow, not dead) worker writes a note after the reaper read the row
    assert repo.append_note(None, "job-1", "worker note") is True
    assert repo.system_release_expired(snapshot, now, retry=True, note="re-queued") is True
    row = repo.system_get("job-1")
    assert row is not None
    assert _note_texts(row["notes"]) == ["worker note", "re-queued"]


# -- concurrency -----------------------------------------------------------------------------------


def test_concurrent_creates(repo: JobRepo, db: Catalog) -> None:
    per_thread = 50

    def create_many(t: int) -> int:
        scope = Scope.of(f"org-{t % 2}", username=f"user-{t}")
        for i in range(per_thread):
            repo.create(scope, f"job-{t}-{i}", params={"t": t, "i": i}, tags=[f"t{t}"])
        return per_thread

    assert sum(_all_at_once(create_many)) == THREADS * per_thread
    with db.read() as conn:
        total = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        distinct = conn.execute(select(func.count(func.distinct(jobs.c.id)))).scalar_one()
    assert total == distinct == THREADS * per_thread
    row = repo.get(Scope.of("org-1"), "job-3-49")
    assert row is not None and row["params"] == {"t": 3, "i": 49} and row["user"] == "user-3"


def test_concurrent_writes_and_reads(repo: JobRepo) -> None:
    """Writers (notes, updates) and readers at the same time: no lost update, no 'database is locked'."""
    owner = Scope.of("org-a")
    repo.create(owner, "job-1")
    per_thread = 10

    def work(t: int) -> int:
        seen = 0
        for i in range(per_thread):
            if t % 2:
                assert repo.append_note(owner, "job-1", f"{t}-{i}")
            else:
                assert repo.update(owner, "job-1", stage=f"{t}-{i}")
            row = repo.get(owner, "job-1")
            assert row is not None
            seen += 1
        return seen

    assert sum(_all_at_once(work)) == THREADS * per_thread
    row = repo.get(owner, "job-1")
    assert row is not None
    # append_note reads and rewrites the list in one write transaction: no note may be lost
    writers = [t for t in range(THREADS) if t % 2]
    assert sorted(_note_texts(row["notes"])) == sorted(f"{t}-{i}" for t in writers for i in range(per_thread))


def test_sqlite_wal_is_checkpointed_beside_the_writer_and_the_thread_stops(tmp_path: Path) -> None:
    """After write transactions the checkpointer thread copies the WAL into the database file (the writer itself
    would only past WAL_AUTOCHECKPOINT_PAGES, far more than these writes), and ``dispose`` stops it. The database
    file alone, copied without its WAL, must hold every row."""
    import shutil
    import sqlite3

    from scenebase.storage.scope import Scope

    path = tmp_path / "c.db"
    catalog = Catalog(f"sqlite:///{path}")
    catalog.migrate()
    repo = AssetRepo(catalog)
    for batch in range(5):
        docs = [{"id": f"d{batch}_{i}", "timestamp": "2026-01-01T00:00:00", "tags": [f"t{i % 7}"]} for i in range(400)]
        repo.upsert(Scope.of("org"), "images", docs)
    threads = [t for t in threading.enumerate() if t.name == "scenebase-checkpoint"]
    assert threads, "a write starts the checkpointer"

    def rows_in_the_file_alone() -> int:
        copy = tmp_path / f"copy_{uuid.uuid4().hex}.db"
        shutil.copyfile(path, copy)  # no -wal file beside the copy: only what was checkpointed
        probe = sqlite3.connect(copy)
        try:
            return int(probe.execute("SELECT count(*) FROM assets").fetchone()[0])
        finally:
            probe.close()

    deadline = time.monotonic() + 15
    while rows_in_the_file_alone() < 2000 and time.monotonic() < deadline:  # bounded wait for the thread
        time.sleep(0.2)
    assert rows_in_the_file_alone() == 2000
    catalog.dispose()
    assert not any(t.is_alive() for t in threads)

    # used again after dispose (a runtime stopped and started again): the next write starts a new thread
    repo.upsert(Scope.of("org"), "images", [{"id": "again", "timestamp": "2026-01-01T00:00:00"}])
    again = [t for t in threading.enumerate() if t.name == "scenebase-checkpoint" and t not in threads]
    assert len(again) == 1 and again[0].is_alive()
    deadline = time.monotonic() + 15
    while rows_in_the_file_alone() < 2001 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rows_in_the_file_alone() == 2001
    catalog.dispose()
    assert not again[0].is_alive()


def test_a_new_sqlite_catalog_has_8_kib_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    import sqlite3

    from scenebase.storage.catalog import SQLITE_PAGE_SIZE

    catalog = Catalog(f"sqlite:///{tmp_path / 'new.db'}")
    catalog.migrate()
    with catalog.read() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE == 8192
    catalog.dispose()
    old = tmp_path / "old.db"
    made = sqlite3.connect(old)
    made.execute("PRAGMA page_size=4096")
    made.execute("CREATE TABLE t (x)")
    made.close()
    catalog = Catalog(f"sqlite:///{old}")
    catalog.migrate()
    with catalog.read() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        assert conn.exec_driver_sql("SELECT count(*) FROM assets").scalar() == 0
    catalog.dispose()


def test_documents_too_large_for_one_sqlite_value_are_read_row_by_row(tmp_path: Path) -> None:
    """Snapshots and locked reads fetch their documents as one JSON value per 10,000 ids; past SQLite's longest
    value (1 GB by default, lowered here to 64 KiB) they fall back to one row each, with the same result."""
    from sqlalchemy import event

    from scenebase.storage.scope import Scope

    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    repo = AssetRepo(catalog)
    scope = Scope.of("org")
    docs = [{"id": f"d{i}", "timestamp": "2026-01-01T00:00:00", "aux": {"text": "x" * 8000, "n": i}} for i in range(20)]
    repo.upsert(scope, "images", docs)
    ids = [d["id"] for d in docs] + ["absent"]
    whole = repo.snapshot(scope, "images", ids)
    assert len(whole.docs) == 20

    for engine in (catalog._read_engine, catalog._write_engine):
        engine.dispose()

        @event.listens_for(engine, "connect")
        def _small(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 64 * 1024)

    small = repo.snapshot(scope, "images", ids)
    assert small.docs == whole.docs
    with catalog.write() as conn:
        locked = repo.get_for_update(conn, scope, "images", ids)
        assert {i: doc for i, (_pk, doc) in locked.items()} == {i: d for i, (_pk, d, _t) in whole.docs.items()}
        conn.exec_driver_sql("SELECT 1")  # the transaction is still usable
    catalog.dispose()


def test_a_growing_postgres_table_gets_statistics_before_autovacuum_would_look(db: Catalog) -> None:
    """Without statistics PostgreSQL looked up a batch's ids by range-scanning the organization's pk index; the
    catalog analyzes a table once this process's writes pass what its statistics saw (at least 1,000 rows)."""
    repo = AssetRepo(db)
    scope = Scope.of("org-analyze")
    docs = [{"id": f"im-{i:05d}", "timestamp": "2026-12-01T00:00:00Z", "sensor": f"cam{i % 4}"} for i in range(2500)]
    for start in range(0, len(docs), 500):
        repo.upsert(scope, "images", docs[start : start + 500])
    if db.analyzer is None:  # SQLite keeps no statistics unless asked: nothing to do
        assert db.dialect == "sqlite"
        return
    _wait_analyzed(db.analyzer, {"assets", "asset_terms"})
    with db.read() as conn:
        analyzed = conn.exec_driver_sql("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'assets'")
        assert analyzed.scalar() is not None  # our ANALYZE, not autovacuum's (that sets last_autoanalyze)
        plan = conn.exec_driver_sql(
            "EXPLAIN SELECT pk FROM assets WHERE owner = %s AND asset_type = 'images' AND id = ANY(%s)",
            ("org-analyze", [f"im-{i:05d}" for i in range(0, 2500, 25)]),
        ).scalars()
        assert "uq_assets_owner_type_id" in "\n".join(plan)  # the unique index, not a scan of every asset


def test_a_restarted_server_starts_from_the_statistics_a_table_has(db: Catalog) -> None:
    """A process that has not analyzed a table yet reads what its statistics saw: 1,500 more rows into a table of
    2,500 analyzed ones are not worth an ANALYZE (the table has not quadrupled), though they pass the minimum."""
    if db.analyzer is None:
        assert db.dialect == "sqlite"
        return
    _analyzed_assets(db, "org-restart", 2500)
    restarted = Catalog(db.url)
    try:
        assert restarted.analyzer is not None
        repo = AssetRepo(restarted)
        docs = [{"id": f"new-{i:05d}", "timestamp": "2026-12-01T00:00:00Z"} for i in range(1500)]
        repo.upsert(Scope.of("org-restart"), "images", docs)
        _analyzer_idle(restarted.analyzer)
        assert "assets" not in restarted.analyzer.analyzed
        assert restarted.analyzer._seen["assets"] == pytest.approx(2500, rel=0.1)
        repo.upsert(Scope.of("org-restart"), "images", [{**d, "id": f"more-{i:05d}"} for i, d in
                                                         enumerate(docs * 4)])  # fmt: skip
        _wait_analyzed(restarted.analyzer, {"assets"})  # 7,500 rows written: three times what it saw
    finally:
        restarted.dispose()


def test_statistics_of_ten_thousand_rows_are_left_to_autovacuum(db: Catalog) -> None:
    """Once a table's statistics saw ``ANALYZE_UNTIL_ROWS`` rows the catalog stops analyzing it, however much more is
    written: autovacuum keeps them from then on (the planner went wrong only without any)."""
    if db.analyzer is None:
        assert db.dialect == "sqlite"
        return
    _analyzed_assets(db, "org-big", ANALYZE_UNTIL_ROWS + 500)
    db.analyzer.wrote("assets", 100 * ANALYZE_UNTIL_ROWS)  # as if a repository had committed that many rows
    _analyzer_idle(db.analyzer)
    assert "assets" not in db.analyzer.analyzed


def _analyzed_assets(db: Catalog, owner: str, rows: int) -> None:
    """``rows`` bare image rows of ``owner`` in ``assets``, then an ANALYZE (not this process's analyzer)."""
    with db.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO assets (owner, asset_type, id, timestamp, doc, created_at, updated_at) SELECT %s, 'images',"
            " 'old-' || g, 0, '{}', 0, 0 FROM generate_series(1, %s) g",
            (owner, rows),
        )
        conn.exec_driver_sql("ANALYZE assets")


def _wait_analyzed(analyzer: Any, tables: set[str]) -> None:
    deadline = time.monotonic() + 30
    while not tables <= set(analyzer.analyzed) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tables <= set(analyzer.analyzed), analyzer.analyzed


def _analyzer_idle(analyzer: Any) -> None:
    deadline = time.monotonic() + 30
    while analyzer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert analyzer._thread is None
