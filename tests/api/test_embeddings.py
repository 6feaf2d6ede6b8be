"""Embeddings and similarity search through the client against an in-process server (issue 10): add, index,
search (by asset, raw vector, with a filter), replacement, deletion, bad input, tenancy, get and delete."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from scenebase.clients import SceneEngineClient
from scenebase.errors import EmbeddingError, SceneBaseError, SimilaritySearchError
from scenebase.models.assets import Embedding, Image
from scenebase.testing import InProcessServer
from servers import PostgresServer

from .conftest import World

N = 40
DIM = 16


def _png(i: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (4, 4), (i * 5 % 256, 0, 0)).save(out, "PNG")
    return out.getvalue()


def _vectors(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, DIM))
    x = centers[np.arange(n) % 4] + 0.4 * rng.normal(size=(n, DIM))
    return x.astype(np.float32)


def _exact(x: np.ndarray, i: int, k: int, among: list[int] | None = None) -> list[str]:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    candidates = [j for j in (among if among is not None else range(len(x))) if j != i]
    scores = unit[candidates] @ unit[i]
    return [f"img_{candidates[j]}" for j in np.argsort(-scores, kind="stable")[:k]]


@pytest.fixture
def images(admin: SceneEngineClient) -> list[str]:
    items = [Image(id=f"img_{i}", bytes=_png(i), aux_metadata={"half": "a" if i < N // 2 else "b"}) for i in range(N)]
    admin.add_images(items, admin.create_set("embedded", "images"))
    return [i.id for i in items]


def _add(client: SceneEngineClient, x: np.ndarray, **kw: object) -> list[str]:
    embeddings = [Embedding(v, f"img_{i}", **kw) for i, v in enumerate(x)]  # type: ignore[arg-type]
    return client.add_embeddings(embeddings, create_umap=False, wait_for_completion=True)


def test_add_index_and_search_similar_assets(admin: SceneEngineClient, images: list[str]) -> None:
    x = _vectors()
    ids = _add(admin, x)
    assert len(ids) == N and ids[0] == Embedding(x[0], "img_0").id
    image = admin.get_metadata("img_3", "images")
    assert image["embeddings"] == {"similarity_images_default_v1": ids[3]}
    for i in (0, 7, 21):
        found = admin.search_similar_assets(f"img_{i}", similar_asset_count=5)
        assert found == _exact(x, i, 5) and f"img_{i}" not in found
    half_a = {"filters": [{"field": "aux.half", "values": ["a"]}]}
    found = admin.search_similar_assets("img_30", similar_asset_count=4, search=half_a)
    assert found == _exact(x, 30, 4, among=list(range(N // 2)))
    raw = admin.search_similar_assets(None, vector=x[9] * 3, embedding_space="similarity_images_default_v1",
                                      similar_asset_count=3)  # fmt: skip
    assert raw[0] == "img_9"
    # vectors are stored, never searchable
    doc = admin.get_metadata(ids[0], "embeddings")
    assert doc["ndim"] == DIM and doc["asset_id"] == "img_0" and "vector" in doc
    with pytest.raises(SceneBaseError, match="vectors are never searchable"):
        admin.search_assets("embeddings", {"filters": [{"field": "vector", "values": [doc["vector"]]}]})
    assert len(admin.search_assets("embeddings", {"filters": [{"field": "asset_id", "values": ["img_0"]}]})) == 1


def test_readding_replaces_everywhere_and_deleted_assets_never_come_back(
    admin: SceneEngineClient, images: list[str]
) -> None:
    x = _vectors()
    _add(admin, x)
    moved = x.copy()
    moved[0] = x[25] * 2  # img_0 now sits on img_25
    embeddings = [Embedding(moved[0], "img_0")]
    # not re-indexed by a job: the add itself replaces the indexed vector
    admin.add_embeddings(embeddings, similarity_ingest=False, create_umap=False)
    assert admin.search_similar_assets("img_25", similar_asset_count=1) == ["img_0"]
    assert len(admin.search_assets("embeddings", {"filters": [{"field": "asset_id", "values": ["img_0"]}]})) == 1
    got = {e.asset_id: e.vector for e in admin.get_embeddings("similarity_images_default_v1", asset_ids=["img_0"])}
    assert np.array_equal(got["img_0"], moved[0])
    admin.get_asset_manager("images").delete_assets(["img_0", "img_26"])
    found = admin.search_similar_assets("img_25", similar_asset_count=N)
    assert "img_0" not in found and "img_26" not in found and len(found) == N - 3
    every = {e.asset_id for e in admin.get_embeddings("similarity_images_default_v1")}
    assert len(every) == N - 2 and not {"img_0", "img_26"} & every


def test_get_embeddings_and_delete_embeddings(admin: SceneEngineClient, images: list[str]) -> None:
    x = _vectors()
    _add(admin, x, model="m", version="v2")
    got = admin.get_embeddings("similarity_images_m_v2")
    assert sorted(e.asset_id for e in got) == sorted(f"img_{i}" for i in range(N))
    for e in got:
        assert np.array_equal(e.vector, x[int(e.asset_id.split("_")[1])])
    some = admin.get_embeddings("similarity_images_m_v2", search={"filters": [{"field": "aux.half", "values": ["b"]}]})
    assert sorted(e.asset_id for e in some) == sorted(f"img_{i}" for i in range(N // 2, N))
    assert len(admin.get_embeddings("similarity_images_m_v2", max_number_of_embeddings=5)) == 5
    admin.delete_embeddings("similarity_images_m_v2")
    assert admin.search_assets("embeddings", {}) == []
    assert not admin.get_metadata("img_1", "images").get("embeddings")
    with pytest.raises(SimilaritySearchError, match="no embeddings"):
        admin.search_similar_assets("img_1")
    with pytest.raises(EmbeddingError, match="no embedding space"):
        admin.get_embeddings("similarity_images_m_v2")


def test_embedding_space_rules(admin: SceneEngineClient, images: list[str]) -> None:
    x = _vectors()
    _add(admin, x)
    with pytest.raises(SimilaritySearchError, match="no embedding in space 'other'"):
        admin.search_similar_assets("img_1", embedding_space="other")
    _add(admin, _vectors(seed=5)[:, :8], model="small")
    with pytest.raises(SimilaritySearchError, match="several spaces"):
        admin.search_similar_assets("img_1")
    assert admin.search_similar_assets("img_1", embedding_space="similarity_images_small_v1", similar_asset_count=2)
    with pytest.raises(SimilaritySearchError, match="no images with id 'nope'"):
        admin.search_similar_assets("nope")


def test_bad_input_is_refused_and_nothing_is_half_added(admin: SceneEngineClient, images: list[str]) -> None:
    x = _vectors()
    _add(admin, x[:10])
    with pytest.raises(EmbeddingError, match="holds 16-dimensional vectors; these have 8"):
        admin.add_embeddings([Embedding(np.ones(8), "img_11")], create_umap=False)
    with pytest.raises(EmbeddingError, match=r"no images with ids \['ghost'\]"):
        admin.add_embeddings([Embedding(x[11], "img_11"), Embedding(x[12], "ghost")], create_umap=False)
    with pytest.raises(EmbeddingError, match="share ndim and index_name"):
        admin.add_embeddings([Embedding(x[11], "img_11"), Embedding(np.ones(3), "img_12")], create_umap=False)
    with pytest.raises(EmbeddingError, match="no embeddings"):
        admin.add_embeddings([], create_umap=False)
    assert "embeddings" not in admin.get_metadata("img_11", "images")
    assert len(admin.search_assets("embeddings", {})) == 10
    with pytest.raises(SimilaritySearchError, match="3 values, but ndim is 16"):
        admin.search_similar_assets(None, vector=np.ones(3), embedding_space="similarity_images_default_v1")
    with pytest.raises(SimilaritySearchError, match="similar_asset_count"):
        admin.search_similar_assets("img_1", similar_asset_count=0)


def test_server_refuses_nan_and_mismatched_vectors(server: InProcessServer, admin: SceneEngineClient,
                                                   images: list[str]) -> None:  # fmt: skip
    http = server.http()
    headers = {"Authorization": f"Bearer {admin.auth_token}"}
    bad = np.array([[1.0, np.nan]], dtype="<f4")
    import base64

    body = {"embeddings": [{"asset_id": "img_1"}], "ndim": 2, "vectors": base64.b64encode(bad.tobytes()).decode()}
    resp = http.post("/v1/embeddings/add/", json=body, headers=headers)
    assert resp.status_code == 400 and "NaN" in resp.json()["error"]["message"]
    body["vectors"] = base64.b64encode(bad.tobytes()[:4]).decode()
    resp = http.post("/v1/embeddings/add/", json=body, headers=headers)
    assert resp.status_code == 400 and "vectors" in resp.json()["error"]["message"]
    assert admin.search_assets("embeddings", {}) == []
    body["vectors"] = base64.b64encode(np.ones((1, 2), "<f4").tobytes()).decode()
    first = http.post("/v1/embeddings/add/", json=body, headers=headers)
    assert first.status_code == 200 and "x-scenebase-warning" not in first.headers  # no "unknown field" noise


def test_binary_adds_refuse_malformed_bodies_clearly(server: InProcessServer, admin: SceneEngineClient,
                                                     images: list[str]) -> None:  # fmt: skip
    http = server.http()
    headers = {"Authorization": f"Bearer {admin.auth_token}", "Content-Type": "application/octet-stream"}

    def body(header: object, vectors: bytes, length: int | None = None) -> bytes:
        raw = json.dumps(header).encode()
        return (len(raw) if length is None else length).to_bytes(4, "little") + raw + vectors

    good = {"embeddings": [{"asset_id": "img_1"}, {"asset_id": "img_2"}], "ndim": 2}
    cases = {
        b"ab": "4-byte length",
        body(good, b"", length=10_000): "said to hold 10000 bytes",
        body([1], b""): "non-empty list 'embeddings'",
        body({**good, "ndim": 0}, b""): "'ndim' must be an integer",
        body(good, np.ones((1, 2), "<f4").tobytes()): "1 vectors of 2 values for 2 embeddings",
        body(good, np.float32([[1, 2], [np.inf, 0]]).tobytes()): "NaN or infinite",
        body({**good, "embeddings": [{"asset_id": "img_1"}, {"asset_id": "ghost"}]}, np.ones((2, 2), "<f4").tobytes()):
            "no images with ids ['ghost']",
    }  # fmt: skip
    for payload, problem in cases.items():
        resp = http.post("/v1/embeddings/add_binary/", content=payload, headers=headers)
        assert resp.status_code in (400, 404) and problem in resp.json()["error"]["message"], (problem, resp.text)
    assert admin.search_assets("embeddings", {}) == [] and "embeddings" not in admin.get_metadata("img_1", "images")
    ok = http.post("/v1/embeddings/add_binary/", content=body(good, np.ones((2, 2), "<f4").tobytes()), headers=headers)
    assert ok.status_code == 200 and len(ok.json()["ids"]) == 2


def test_organizations_do_not_see_each_others_spaces(world: World, admin: SceneEngineClient) -> None:
    a = world.client(world.a.tokens["admin"])
    b = world.client(world.b.tokens["admin"])
    x = _vectors(10)
    for client in (a, b):
        client.add_images([Image(id=f"img_{i}", bytes=_png(i)) for i in range(10)], client.create_set("s", "images"))
    _add(a, x)
    with pytest.raises(SimilaritySearchError, match="no embeddings"):
        b.search_similar_assets("img_1")
    with pytest.raises(SceneBaseError):
        b.search_similar_assets(None, vector=x[1], embedding_space="similarity_images_default_v1")
    assert b.search_assets("embeddings", {}) == []
    reader = world.client(world.a.tokens["data_user"])
    assert reader.search_similar_assets("img_1", similar_asset_count=1)


@pytest.mark.postgres
def test_postgresql_catalog_searches_with_pgvector(tmp_path: Path, postgres_server: PostgresServer) -> None:
    catalog = postgres_server.create_database(f"emb_{uuid.uuid4().hex[:12]}")
    with InProcessServer(tmp_path / "data", catalog_url=catalog) as srv:
        assert srv.runtime.embeddings.index.kind == "pgvector"
        client = srv.client()
        client.add_images([Image(id=f"img_{i}", bytes=_png(i)) for i in range(N)], client.create_set("s", "images"))
        x = _vectors()
        _add(client, x)
        assert client.search_similar_assets("img_4", similar_asset_count=5) == _exact(x, 4, 5)
        client.add_embeddings([Embedding(x[30] * 2, "img_4")], similarity_ingest=False, create_umap=False)
        assert client.search_similar_assets("img_30", similar_asset_count=1) == ["img_4"]
        client.get_asset_manager("images").delete_assets(["img_4"])
        assert "img_4" not in client.search_similar_assets("img_30", similar_asset_count=N)
        org = client.whoami()["organization_id"]
        index = srv.runtime.embeddings.index
        assert index.contains(org, "similarity_images_default_v1", ["img_4", "img_5"]) == {"img_5"}
        set_id = client.get_metadata("img_5", "images")["sets"][0]
        client.add_image(id="img_5", image_bytes=_png(99), set_id=set_id, overwrite=True)
        assert client.search_similar_assets("img_5", similar_asset_count=3) == [
            a for a in _exact(x, 5, 4) if a != "img_4"][:3]  # fmt: skip
        client.delete_embeddings("similarity_images_default_v1")
        assert not client.get_metadata("img_5", "images").get("embeddings")
        assert srv.runtime.embeddings.index.dim(org, "similarity_images_default_v1") is None
        with pytest.raises(SimilaritySearchError, match="no embeddings"):
            client.search_similar_assets("img_30")


def test_service_lists_spaces_and_reads_vectors(server: InProcessServer, admin: SceneEngineClient,
                                                images: list[str]) -> None:  # fmt: skip
    x = _vectors()
    _add(admin, x)
    admin.add_embeddings([Embedding(np.ones(3), "img_2", model="tiny")], similarity_ingest=False, create_umap=False)
    scope = server.runtime.identity.authenticate(admin.auth_token).scope
    service = server.runtime.embeddings
    assert service.spaces(scope) == {
        "similarity_images_default_v1": {"count": N, "asset_types": ["images"], "indexed": N},
        "similarity_images_tiny_v1": {"count": 1, "asset_types": ["images"], "indexed": 0},
    }
    assert service.spaces(scope, "objects") == {}
    ids, matrix = service.vectors(scope, "similarity_images_default_v1", asset_ids=["img_5", "img_1", "ghost"])
    assert ids == ["img_5", "img_1"] and np.array_equal(matrix, x[[5, 1]]) and matrix.dtype == np.float32
    ids, matrix = service.vectors(scope, "similarity_images_tiny_v1")
    assert ids == ["img_2"] and matrix.tolist() == [[1.0, 1.0, 1.0]]
    assert service.space_dim(scope, "similarity_images_tiny_v1") == 3 and service.space_dim(scope, "nope") is None


def test_an_overwritten_image_keeps_its_embeddings_and_a_deleted_one_loses_them(
    server: InProcessServer, admin: SceneEngineClient, images: list[str]
) -> None:
    x = _vectors()
    ids = _add(admin, x)
    space = "similarity_images_default_v1"
    set_id = admin.get_metadata("img_3", "images")["sets"][0]
    admin.add_image(id="img_3", image_bytes=_png(99), aux_metadata={"half": "new"}, set_id=set_id, overwrite=True)
    image = admin.get_metadata("img_3", "images")
    assert image["aux"] == {"half": "new"} and image["embeddings"] == {space: ids[3]}
    linked = {"filters": [{"field": f"embeddings.{space}", "values": [ids[3]]}]}
    assert admin.search_assets("images", linked) == ["img_3"]
    assert admin.search_similar_assets("img_3", similar_asset_count=5) == _exact(x, 3, 5)

    org = admin.whoami()["organization_id"]
    index = server.runtime.embeddings.index
    assert index.contains(org, space, ["img_5", "img_6"]) == {"img_5", "img_6"}
    admin.get_asset_manager("images").delete_assets(["img_5"])
    # the row and the indexed vector go with the asset, not only filtered out on read
    assert index.contains(org, space, ["img_5", "img_6"]) == {"img_6"} and index.count(org, space) == N - 1
    assert admin.search_assets("embeddings", {"filters": [{"field": "asset_id", "values": ["img_5"]}]}) == []
    scope = server.runtime.identity.authenticate(admin.auth_token).scope
    assert server.runtime.embeddings.spaces(scope)[space]["count"] == N - 1


def test_a_long_id_list_is_indexed_in_consecutive_jobs(
    admin: SceneEngineClient, images: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000,000 ids do not fit one request body: they go as jobs of BULK_INDEX_IDS, every vector indexed."""
    import scenebase.clients.embeddings as client_embeddings

    monkeypatch.setattr(client_embeddings, "BULK_INDEX_IDS", 7)
    posted: list[int] = []
    request = admin._request

    def counting(method: str, path: str, **kw: object) -> object:
        if path.startswith("/v1/similarity_search/bulk_index"):
            posted.append(len(kw["json"]["embedding_ids"]))  # type: ignore[index]
        return request(method, path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(admin, "_request", counting)
    x = _vectors()
    ids = _add(admin, x)
    assert posted == [7, 7, 7, 7, 7, 5] and len(ids) == N
    for i in (0, 13, 39):  # from the first, a middle and the last job
        assert admin.search_similar_assets(f"img_{i}", similar_asset_count=5) == _exact(x, i, 5)


def test_an_embedding_re_added_in_another_space_leaves_the_old_one(admin: SceneEngineClient, images: list[str]) -> None:
    """The same embedding id re-added under another index_name moves: the assets' links to the old space go."""
    x = _vectors()
    first = admin.add_embeddings([Embedding(x[i], f"img_{i}", index_name="space_a") for i in (1, 2)],
                                 similarity_ingest=False, create_umap=False)  # fmt: skip
    again = admin.add_embeddings([Embedding(x[i], f"img_{i}", index_name="space_b") for i in (1, 2)],
                                 similarity_ingest=False, create_umap=False)  # fmt: skip
    assert again == first
    for i in (1, 2):
        assert admin.get_metadata(f"img_{i}", "images")["embeddings"] == {"space_b": first[i - 1]}
