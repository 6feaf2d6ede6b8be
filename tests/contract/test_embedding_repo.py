"""Contract tests for the embeddings write path on both catalogs (SQLite, PostgreSQL): the ``embeddings`` table
(:class:`EmbeddingRepo`), setting one field on many asset documents in place (``AssetRepo.set_field_many``: the
index rows must be what a full re-index gives), and migration 0008 moving embedding documents into the table."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, Table, insert, select

from scenebase.domain.metadata import indexed_terms
from scenebase.domain.search import QueryError, parse_query
from scenebase.storage.asset_repo import AssetRepo
from scenebase.storage.catalog import MIGRATIONS_DIR, Catalog
from scenebase.storage.embedding_repo import EmbeddingRepo
from scenebase.storage.scope import Scope
from scenebase.storage.tables import asset_terms, assets
from servers import PostgresServer

ORG = Scope.of("org_e")
OTHER = Scope.of("org_other")
TS = "2024-01-01T00:00:00+00:00"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """A catalog on an empty database (not migrated)."""
    if request.param == "sqlite":
        url, name, server = f"sqlite:///{tmp_path / 'catalog.db'}", None, None
    else:
        server = request.getfixturevalue("postgres_server")
        assert isinstance(server, PostgresServer)
        name = f"t_{uuid.uuid4().hex}"
        url = server.create_database(name)
    cat = Catalog(url)
    try:
        yield cat
    finally:
        cat.dispose()
        if server is not None and name is not None:
            server.drop_database(name)


def _images(repo: AssetRepo, scope: Scope, n: int) -> None:
    docs = [{"id": f"img_{i}", "timestamp": TS, "tags": ["a"], "embeddings": {"old_space": "7"} if i == 0 else {},
             "umap": {"s": {"coordinates": [0.0, 0.0]}} if i == 1 else {}} for i in range(n)]  # fmt: skip
    repo.upsert(scope, "images", docs)


def _terms(catalog: Catalog, scope: Scope, asset_id: str) -> set[tuple[str, str | None, float | None]]:
    with catalog.read() as conn:
        pk = conn.execute(select(assets.c.pk).where(assets.c.owner == scope.org_id, assets.c.id == asset_id)).scalar()
        rows = conn.execute(select(asset_terms.c.field, asset_terms.c.vstr, asset_terms.c.vnum).where(
            asset_terms.c.asset_pk == pk))  # fmt: skip
        return {(r.field, r.vstr, r.vnum) for r in rows}


def test_set_field_many_edits_documents_and_their_index_rows_in_place(catalog: Catalog) -> None:
    catalog.migrate()
    repo = AssetRepo(catalog)
    _images(repo, ORG, 5)
    _images(repo, OTHER, 2)
    with catalog.write() as conn:
        repo.set_field_many(conn, ORG, "images", ("embeddings", "space.a"), {"img_0": "11", "img_1": "12"})
        repo.set_field_many(conn, ORG, "images", ("umap", "space.a", "coordinates"), {"img_1": [1.5, -2.0]})
        repo.set_field_many(conn, ORG, "images", ("embeddings", "old_space"), {"img_0": None})
    docs = repo.get_many(ORG, "images", ["img_0", "img_1", "img_2"])
    assert docs["img_0"]["embeddings"] == {"space.a": "11"} and docs["img_0"]["tags"] == ["a"]
    assert docs["img_1"]["embeddings"] == {"space.a": "12"}
    assert docs["img_1"]["umap"] == {"s": {"coordinates": [0.0, 0.0]}, "space.a": {"coordinates": [1.5, -2.0]}}
    assert "space.a" not in (docs["img_2"].get("embeddings") or {})
    assert repo.get_many(OTHER, "images", ["img_0"])["img_0"]["embeddings"] == {"old_space": "7"}  # untouched
    for asset_id, doc in docs.items():  # exactly the rows a full re-index of the edited document would make
        assert _terms(catalog, ORG, asset_id) == indexed_terms(doc)[0], asset_id

    def ids(search: dict[str, object]) -> list[str]:
        return sorted(repo.search(ORG, "images", parse_query(search), ids_only=True))

    assert ids({"filters": [{"field": "embeddings.space.a", "values": ["12"]}]}) == ["img_1"]
    assert ids({"exists_filters": [{"field": "umap.space.a.coordinates"}]}) == ["img_1"]
    assert ids({"exists_filters": [{"field": "embeddings.old_space"}]}) == []


def _row(asset_id: str, space: str, vector: list[float], emb_id: str | None = None) -> dict[str, object]:
    return {"id": emb_id or f"e_{asset_id}_{space}", "index_name": space, "asset_type": "images",
            "asset_id": asset_id, "dims": len(vector), "vector": np.asarray(vector, "<f4").tobytes(), "model": "m",
            "version": "v1", "layer": None, "session_uid": None, "timestamp": 1.0, "created_at": 1.0}  # fmt: skip


def test_embedding_rows_replace_by_id_and_by_asset_and_read_back(catalog: Catalog) -> None:
    catalog.migrate()
    repo = EmbeddingRepo(catalog)
    with catalog.write() as conn:
        repo.put_in(conn, ORG, [_row(f"img_{i}", "s1", [i, 1.0]) for i in range(5)])
        repo.put_in(conn, OTHER, [_row("img_0", "s1", [9.0, 9.0])])
    with catalog.write() as conn:
        # a new id for img_1 in s1 replaces its vector there; e_img_2_s1 re-added in s2 leaves s1
        moved = repo.put_in(conn, ORG, [_row("img_1", "s1", [5.0, 5.0], "new"), _row("img_2", "s2", [3.0, 3.0],
                                                                                   "e_img_2_s1")])  # fmt: skip
    assert moved == [("s1", "images", "img_2")]
    assert repo.spaces(ORG) == {"s1": {"images": 4}, "s2": {"images": 1}}
    found = repo.vectors_of(ORG, "s1", "images", ["img_0", "img_1", "img_2", "ghost"])
    assert sorted(found) == ["img_0", "img_1"]
    assert np.frombuffer(found["img_1"][1], "<f4").tolist() == [5.0, 5.0]
    scanned = [k for batch in repo.scan_space(ORG, "s1", None, batch=2) for k, _v in batch]
    assert scanned == ["img_0", "img_1", "img_3", "img_4"]
    assert repo.space_dim(ORG, "s1") == 2 and repo.space_dim(ORG, "nope") is None
    assert repo.get_many(ORG, ["new"])["new"]["vector"] == base64.b64encode(np.float32([5, 5]).tobytes()).decode()

    def ids(search: dict[str, object]) -> list[str]:
        return sorted(repo.search(ORG, parse_query(search), 100, 0, None, None, True))

    assert ids({"filters": [{"field": "asset_id", "values": ["img_3", "img_4"]}]}) == ["e_img_3_s1", "e_img_4_s1"]
    assert ids({"filters": [{"field": "index_name", "values": ["s1"]}, {"field": "ndim", "values": [2]}]}) == [
        "e_img_0_s1", "e_img_3_s1", "e_img_4_s1", "new"]  # fmt: skip
    assert ids({"filters": [{"field": "index_name", "values": ["s1"], "filter_out": True}]}) == ["e_img_2_s1"]
    assert repo.count(ORG, parse_query({})) == 5 and repo.count(OTHER, parse_query({})) == 1
    with pytest.raises(QueryError, match="vectors are never searchable"):
        repo.count(ORG, parse_query({"filters": [{"field": "vector", "values": ["x"]}]}))
    with catalog.write() as conn:
        gone = repo.delete_for_assets(conn, ORG, "images", ["img_1", "img_2"])
    assert {k: sorted(v) for k, v in gone.items()} == {"s1": ["img_1"], "s2": ["img_2"]}
    assert repo.spaces(ORG) == {"s1": {"images": 3}} and repo.spaces(OTHER) == {"s1": {"images": 1}}


def test_migration_0008_moves_embedding_documents_into_the_table(catalog: Catalog) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with catalog.write() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
    vector = base64.b64encode(np.float32([0.5, 1.5, -2.0]).tobytes()).decode()
    emb = {"id": "123", "timestamp": TS, "media_type": "images", "asset_id": "img_0", "model": "m", "version": "v1",
           "ndim": 3, "index_name": "sp", "vector": vector, "tags": []}  # fmt: skip
    image = {"id": "img_0", "timestamp": TS, "embeddings": {"sp": "123"}}
    with catalog.write() as c:
        old_assets = Table("assets", MetaData(), autoload_with=c)
        old_terms = Table("asset_terms", MetaData(), autoload_with=c)
        for asset_type, doc, updated in (("embeddings", emb, 2.0), ("embeddings", {**emb, "id": "99"}, 1.0),
                                         ("images", image, 1.0)):  # fmt: skip
            row = {"owner": "o", "asset_type": asset_type, "id": doc["id"], "timestamp": 1704067200.0, "doc": doc,
                   "created_at": 1.0, "updated_at": updated}  # fmt: skip
            pk = c.execute(insert(old_assets).returning(old_assets.c.pk), row).scalar_one()
            c.execute(insert(old_terms), [{"asset_pk": pk, "owner": "o", "asset_type": asset_type,
                                           "field": "asset_id", "vstr": "img_0", "vnum": None, "ts": 1.0}])  # fmt: skip
    catalog.migrate()
    scope = Scope.of("o")
    repo = EmbeddingRepo(catalog)
    # the later document of the asset in the space wins (the one its link names)
    assert repo.spaces(scope) == {"sp": {"images": 1}}
    assert np.frombuffer(repo.vectors_of(scope, "sp", "images", ["img_0"])["img_0"][1], "<f4").tolist() == [
        0.5, 1.5, -2.0]  # fmt: skip
    assert repo.get_many(scope, ["123"])["123"]["asset_id"] == "img_0"
    with catalog.read() as conn:
        left = conn.execute(select(assets.c.asset_type)).scalars().all()
        terms = conn.execute(select(asset_terms.c.asset_type)).scalars().all()
    assert left == ["images"] and terms == ["images"]
    stored = AssetRepo(catalog).get(scope, "images", "img_0")
    assert stored is not None and stored["embeddings"] == {"sp": "123"}  # links stay as they were
