"""Concurrent writes are retried or answered 409/503, never 500 (the error tree of the asset-kind issue)."""

from __future__ import annotations

import io
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from scenebase.storage.catalog import Catalog, ConcurrentWrite, write_conflict
from scenebase.storage.scope import Scope
from scenebase.testing import InProcessServer


def test_write_retrying_runs_a_lost_race_again(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    calls: list[int] = []

    def write(conn: Connection) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrentWrite("another request wrote the same id")
        return "done"

    assert catalog.write_retrying(write) == "done" and len(calls) == 3
    catalog.dispose()


def test_write_retrying_gives_up_and_never_retries_bugs(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    calls: list[int] = []

    def always_conflicts(conn: Connection) -> None:
        calls.append(1)
        raise ConcurrentWrite("again")

    with pytest.raises(ConcurrentWrite):
        catalog.write_retrying(always_conflicts, attempts=3)
    assert len(calls) == 3

    def bug(conn: Connection) -> None:
        calls.append(1)
        raise ValueError("a programming error")

    with pytest.raises(ValueError):
        catalog.write_retrying(bug)
    assert len(calls) == 4  # once: a bug is not a race
    catalog.dispose()


def test_write_conflicts_are_recognized() -> None:
    locked = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
    assert write_conflict(locked) == (503, "the catalog is busy (database is locked)")
    duplicate = IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert write_conflict(duplicate) == (409, "a concurrent write created the same record")

    class Deadlock(Exception):
        sqlstate = "40P01"

    assert write_conflict(OperationalError("UPDATE", {}, Deadlock())) == (503, "the catalog is busy (deadlock)")
    assert write_conflict(OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))) is None
    assert write_conflict(ValueError("bug")) is None


def test_conflicts_that_survive_retries_answer_503_or_409_not_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with InProcessServer(tmp_path / "data", workers=0) as server:
        http = server.http()
        token = {"token": "default-admin-testtoken"}
        rt = server.runtime

        def busy(*_args: Any, **_kwargs: Any) -> Any:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

        monkeypatch.setattr(rt.sets, "create", busy)
        resp = http.post("/v1/sets/add/", params=token, json={"name": "s", "assets_type": "images"})
        assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
        assert resp.json()["error"]["code"] == "busy" and "retry" in resp.json()["error"]["message"]

        def duplicate(*_args: Any, **_kwargs: Any) -> Any:
            raise ConcurrentWrite("another request wrote one of these ids at the same time; retry")

        monkeypatch.setattr(rt.sets, "create", duplicate)
        resp = http.post("/v1/sets/add/", params=token, json={"name": "s", "assets_type": "images"})
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"

        def bug(*_args: Any, **_kwargs: Any) -> Any:
            raise ValueError("a programming error")

        monkeypatch.setattr(rt.sets, "create", bug)
        resp = http.post("/v1/sets/add/", params=token, json={"name": "s", "assets_type": "images"})
        assert resp.status_code == 500 and "incident" in resp.json()["error"]["message"]  # never a 400


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database(f"conflicts_{uuid.uuid4().hex[:10]}"))


def test_concurrent_first_writes_of_one_id_all_succeed(tmp_path: Path, catalog_url: str | None) -> None:
    """Many threads create the same document at once: every write succeeds (on PostgreSQL the losers of the insert
    race are retried as updates; SQLite serializes writers)."""
    with InProcessServer(tmp_path / "data", workers=0, catalog_url=catalog_url) as server:
        assets = server.runtime.assets
        scope = Scope.of("default", username="admin")
        errors: list[BaseException] = []

        def put(n: int) -> None:
            try:
                assets.put(scope, "projects", [{"id": "shared", "timestamp": "2021-01-01T00:00:00+00:00",
                                                "aux": {f"k{n}": n}}], mode="merge")  # fmt: skip
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=put, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert assets.get(scope, "projects", "shared")["aux"] == {f"k{n}": n for n in range(8)}


def test_concurrent_annotations_and_reuploads_of_one_image_lose_nothing(
    tmp_path: Path, catalog_url: str | None
) -> None:
    """Threads annotate one image while others upload it again with overwrite=False (which merges sets and aux):
    each batch is planned from what it read, goes stale when another commits first, and is decided again (from a
    new snapshot, finally under its transaction's locks). At the end the image lists every annotation, is in every
    set and has every aux value; every batch succeeded and no upload was stored."""
    from PIL import Image as PILImage

    from scenebase.models.annotation import BoundingBox, BoundingBoxAnnotation
    from scenebase.services.annotations import IncomingAnnotation
    from scenebase.services.ingest import IncomingItem
    from scenebase.services.kinds import BytesMedia

    def jpeg(seed: int) -> bytes:
        buf = io.BytesIO()
        PILImage.new("RGB", (32, 24), (seed * 20 % 256, 90, 120)).save(buf, "JPEG")
        return buf.getvalue()

    with InProcessServer(tmp_path / "data", workers=0, catalog_url=catalog_url) as server:
        rt = server.runtime
        scope = Scope.of("default", username="admin")
        sets = [rt.sets.create(scope, f"s{n}", "images")[0] for n in range(4)]
        rt.ingest.ingest(scope, "images", [IncomingItem(0, "f.jpg", {"id": "frame"}, BytesMedia(jpeg(0), "f.jpg"))],
                         [sets[0]])  # fmt: skip
        errors: list[BaseException] = []

        def annotate(n: int) -> None:
            try:
                for k in range(5):
                    box = BoundingBox(label=f"l{n}", x_min=1, x_max=9, y_min=1, y_max=9)
                    doc = BoundingBoxAnnotation([box], image_id="frame", provider=f"p{n}", id=f"a{n}_{k}").to_dic()
                    result = rt.annotations.add(scope, [IncomingAnnotation(0, doc)])
                    assert result.errors == [] and result.ids == [f"a{n}_{k}"]
            except BaseException as e:
                errors.append(e)

        def reupload(n: int) -> None:
            try:
                for k in range(5):
                    meta = {"id": "frame", "aux": {f"r{n}": k}}
                    item = IncomingItem(0, "f.jpg", meta, BytesMedia(jpeg(k), "f.jpg"))
                    result = rt.ingest.ingest(scope, "images", [item], [sets[n]], overwrite=False)
                    assert result.errors == [] and result.ids == ["frame"]
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=annotate, args=(n,)) for n in range(4)]
        threads += [threading.Thread(target=reupload, args=(n,)) for n in range(1, 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        doc = rt.assets.get(scope, "images", "frame")
        expected = {f"a{n}_{k}" for n in range(4) for k in range(5)}
        assert set(doc["annotations"]) == expected and len(doc["annotations"]) == 20
        assert {m["id"] for m in doc["annotations_meta"]} == expected
        assert sorted(doc["sets"]) == sorted(sets)
        assert sorted(doc["aux"]["labels"]) == sorted(f"l{n}_p{n}" for n in range(4))
        assert {k: doc["aux"][k] for k in ("r1", "r2", "r3")} == {"r1": 4, "r2": 4, "r3": 4}
        assert list(rt.blobs.list("images/")) == [doc["object_access"]["key"]]  # no upload left behind
