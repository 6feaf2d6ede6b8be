"""Set membership, deletion, ingestion, splits and zips run against each other, on SQLite and on PostgreSQL;
afterwards every invariant holds: no orphan documents or memberships, counts agree, no 500s, no internal errors.

Each round starts the same mix of work at once from several client threads (issue 8.11 among it: add, delete and
add on one set), waits until every job has ended, then checks the catalog. The outcome of each race may differ
from run to run; the invariants may not.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from scenebase.errors import SceneBaseError
from scenebase.models.assets import Image
from scenebase.storage.job_repo import TERMINAL
from scenebase.storage.scope import Scope
from scenebase.storage.tables import names
from scenebase.testing import InProcessServer
from servers import PostgresServer

ORG = Scope.of("default")
POOL_SIZE = 40


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (16, 12), ((29 * i) % 256, (7 * i) % 256, 90)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcessServer]:
    extra: dict[str, Any] = {}
    database = f"concurrency_{uuid.uuid4().hex[:12]}"
    pg: PostgresServer | None = None
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        extra["catalog_url"] = pg.create_database(database)
    srv = InProcessServer(tmp_path / "data", workers=3, job_lease_seconds=5.0, reaper_interval_seconds=0.5, **extra)
    try:
        with srv:
            yield srv
    finally:
        if pg is not None:
            pg.drop_database(database)


class Calls:
    """Runs client calls from many threads and keeps what each raised: refusals (4xx) are expected in a race,
    a 5xx or a non-client exception is a bug."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refused: list[str] = []
        self.broken: list[str] = []
        self.job_ids: list[str] = []

    def run(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            out = call()
        except SceneBaseError as e:
            with self.lock:
                (self.broken if (e.status_code or 0) >= 500 else self.refused).append(f"{what}: {e}")
            return None
        except Exception as e:  # the client must turn every answer into its own exceptions
            with self.lock:
                self.broken.append(f"{what}: {type(e).__name__}: {e}")
            return None
        if isinstance(out, str) and what.startswith("job:"):
            with self.lock:
                self.job_ids.append(out)
        return out


def _in_threads(*calls: Callable[[], None]) -> None:
    barrier = threading.Barrier(len(calls))

    def start(call: Callable[[], None]) -> Callable[[], None]:
        def go() -> None:
            barrier.wait()
            call()

        return go

    threads = [threading.Thread(target=start(c)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a client thread hung"


def _all_jobs_end(server: InProcessServer) -> list[dict[str, Any]]:
    repo = server.runtime.jobs.repo
    for _ in range(3000):
        rows = repo.list_jobs(ORG, limit=1000)
        if all(r["status"] in TERMINAL for r in rows if r["driven_by"] == "server"):
            return rows
        threading.Event().wait(0.1)
    raise AssertionError(f"jobs still running: {[r for r in rows if r['status'] not in TERMINAL]}")


def _round(server: InProcessServer, calls: Calls, pool_ids: list[str], k: int) -> None:
    admin = server.client()
    sets = {name: admin.create_set(f"{name}_{k}", "images") for name in ("keep", "doomed", "churn", "zipped")}
    admin.add_assets_to_set(sets["zipped"], ids=pool_ids[:10], wait_for_completion=True)
    clients = [server.client() for _ in range(6)]
    fresh = [Image(image_bytes=_jpeg(100 + i), id=f"new_{k}_{i}") for i in range(6)]

    def membership() -> None:
        c = clients[0]
        calls.run("job:add keep", lambda: c.add_assets_to_set(sets["keep"], ids=pool_ids))
        calls.run("job:add doomed", lambda: c.add_assets_to_set(sets["doomed"], search={}))
        calls.run("job:remove keep", lambda: c.remove_assets_from_set(ids=pool_ids[::3], set_id=sets["keep"]))

    def deletion() -> None:
        c = clients[1]
        calls.run("job:delete doomed", lambda: c.delete_set(sets["doomed"]))
        calls.run("job:add churn", lambda: c.add_assets_to_set(sets["churn"], ids=pool_ids[:20]))

    def churn() -> None:  # issue 8.11: add, delete and add again on one set, at once with the rest
        c = clients[2]
        calls.run("job:add churn again", lambda: c.add_assets_to_set(sets["churn"], ids=pool_ids[20:]))
        calls.run("job:delete churn", lambda: c.delete_set(sets["churn"]))
        calls.run("job:add churn late", lambda: c.add_assets_to_set(sets["churn"], ids=pool_ids, timeout=1))

    def ingest() -> None:
        c = clients[3]
        calls.run("ingest keep+churn", lambda: c.add_images(fresh[:3], [sets["keep"], sets["churn"]]))
        calls.run("ingest doomed", lambda: c.add_images(fresh[3:], sets["doomed"]))

    def zips() -> None:
        c = clients[4]
        for name in ("zipped", "keep", "doomed"):
            out = calls.run(f"zip {name}", lambda name=name: c.zip_set(sets[name]))
            if out is not None:
                calls.job_ids.append(out[0])

    def split() -> None:
        c = clients[5]
        calls.run("split zipped", lambda: c.split_set(sets["zipped"], 2, None))

    _in_threads(membership, deletion, churn, ingest, zips, split)


def _check_invariants(server: InProcessServer, calls: Calls) -> None:
    rt = server.runtime
    admin = server.client()
    assert calls.broken == [], calls.broken
    jobs = _all_jobs_end(server)
    internal = [(j["id"], j["job_type"], j["stage"]) for j in jobs if "internal error" in (j["stage"] or "")]
    assert internal == [], internal

    set_docs = {d["id"]: d for batch in rt.assets.scan(ORG, "sets", {}, ids_only=False) for d in batch}
    with rt.catalog.read() as conn:
        claimed = {r.name: r.ref_id for r in conn.execute(select(names).where(names.c.kind == "sets"))}
    # every set is whole and owns its name; every name points at a set
    for sid, doc in set_docs.items():
        assert {"name", "assets_type", "status", "locked"} <= doc.keys(), doc
        assert claimed.get(doc["name"]) == sid, (doc["name"], claimed.get(doc["name"]), sid)
    assert set(claimed.values()) <= set(set_docs), "a name points at a deleted set"

    members: dict[str, set[str]] = {sid: set() for sid in set_docs}
    for batch in rt.assets.scan(ORG, "images", {}, ids_only=False):
        for image in batch:
            for sid in image.get("sets") or []:
                assert sid in set_docs, f"image {image['id']} is in a set that does not exist: {sid}"
                members[sid].add(image["id"])
    for sid in set_docs:
        status = admin.get_set_status(sid)
        assert status["count"] == len(members[sid]) == len(admin.assets_in_set(sid)), sid
        assert status["status"] == "ready", status

    for batch in rt.assets.scan(ORG, "zipfiles", {}, ids_only=False):
        for z in batch:
            data = admin.download_zipfile(z["id"])
            with zipfile.ZipFile(data) as zf:  # type: ignore[arg-type]
                manifest = json.loads(zf.read("manifest.json"))
                files = {n for n in zf.namelist() if "/assets/" in n}
            assert {e["file"] for e in manifest["assets"] if "file" in e} == files
            assert manifest["files"] == len(files) == manifest["count"] - len(manifest["missing_files"])


def test_sets_jobs_ingest_and_zips_against_each_other(server: InProcessServer) -> None:
    admin = server.client()
    pool = admin.create_set("pool", "images")
    pool_ids = admin.add_images([Image(image_bytes=_jpeg(i), id=f"p{i:03d}") for i in range(POOL_SIZE)], pool)
    calls = Calls()
    for k in range(3):
        _round(server, calls, pool_ids, k)
        _check_invariants(server, calls)
    # the races were real: some calls were refused (a set being deleted takes nothing new), none broke
    assert any("being deleted" in r or "does not exist" in r or "no set" in r for r in calls.refused), calls.refused


@pytest.mark.postgres
def test_ingest_batches_hold_their_set_together_and_a_status_write_waits_for_them(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """The batches of one upload into one set write at the same time: each holds the set's row with a shared lock
    (an exclusive one made them queue for each other's whole transaction). A status write (lock, deletion) still
    waits until they commit, and an ingest after it reads its status."""
    from sqlalchemy.exc import OperationalError

    database = f"share_{uuid.uuid4().hex[:12]}"
    srv = InProcessServer(tmp_path / "data", catalog_url=postgres_server.create_database(database))
    try:
        with srv:
            rt = srv.runtime
            set_id = srv.client().create_set("held together", "images")

            def with_timeout(conn: Any) -> Any:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
                return conn

            with rt.catalog.write() as first:
                rt.sets.hold_for_members(first, ORG, [set_id])
                with rt.catalog.write() as second:  # another batch of the same upload: not blocked
                    rt.sets.hold_for_members(with_timeout(second), ORG, [set_id])
                with pytest.raises(OperationalError, match="lock timeout"), rt.catalog.write() as status:
                    rt.sets._hold(with_timeout(status), ORG, set_id)  # what a status write does first
            rt.sets.set_locked(ORG, set_id, True)  # the batch committed: the write goes through
            with rt.catalog.write() as after:
                assert rt.sets._hold(after, ORG, set_id, share=True)["locked"] is True
    finally:
        postgres_server.drop_database(database)
