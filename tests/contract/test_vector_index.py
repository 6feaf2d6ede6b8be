"""Contract tests for every :class:`VectorIndex`: the embedded FAISS index and pgvector (a PostgreSQL catalog).

Data are clustered unit vectors (what embeddings look like; on uniform noise every HNSW graph answers badly), and
every answer is checked against exact search in numpy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from scenebase.storage.catalog import Catalog
from scenebase.storage.vectors import VectorIndex, VectorIndexError, faiss_index, pgvector_index
from scenebase.storage.vectors.faiss_index import FaissVectorIndex
from scenebase.storage.vectors.pgvector_index import PgVectorIndex
from servers import PostgresServer

DIM = 32


def clustered(n: int, dim: int = DIM, seed: int = 0, clusters: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    x = centers[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact(vectors: np.ndarray, keys: list[str], q: np.ndarray, k: int) -> list[str]:
    scores = vectors @ (q / np.linalg.norm(q))
    return [keys[i] for i in np.argsort(-scores, kind="stable")[:k]]


@pytest.fixture(params=["faiss", "faiss-ivf", "pgvector"])
def index(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VectorIndex]:
    if request.param == "faiss":
        yield FaissVectorIndex(tmp_path / "vectors")
        return
    if request.param == "faiss-ivf":
        # the layout of large spaces at the tests' sizes, where nprobe covers every list: these tests check what
        # is answered (filters, tombstones, exclusions); recall with fewer lists is the growth test's business
        monkeypatch.setattr(faiss_index, "IVF_MIN_SIZE", 1)
        yield FaissVectorIndex(tmp_path / "vectors")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"v_{uuid.uuid4().hex}"
    catalog = Catalog(server.create_database(name))
    try:
        yield PgVectorIndex(catalog)
    finally:
        catalog.dispose()
        server.drop_database(name)


def test_search_finds_the_exact_neighbours(index: VectorIndex) -> None:
    x = clustered(600)
    keys = [f"a{i}" for i in range(len(x))]
    index.upsert("org", "space", keys, x)
    assert index.count("org", "space") == 600
    assert index.dim("org", "space") == DIM
    recalls = []
    for i in range(0, 600, 60):
        hits = index.search("org", "space", x[i], 10)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert hits[0].key == keys[i] and hits[0].score == pytest.approx(1.0, abs=1e-4)
        recalls.append(len({h.key for h in hits} & set(exact(x, keys, x[i], 10))) / 10)
    assert np.mean(recalls) >= 0.95


def test_spaces_are_per_organization_and_name(index: VectorIndex) -> None:
    x = clustered(50)
    index.upsert("org", "one", [f"a{i}" for i in range(50)], x)
    index.upsert("other", "one", ["b0"], x[:1])
    assert {h.key for h in index.search("other", "one", x[0], 10)} == {"b0"}
    assert index.search("org", "two", x[0], 10) == []
    assert index.count("org", "two") == 0 and index.dim("org", "two") is None


def test_upsert_replaces_and_deleted_keys_never_come_back(index: VectorIndex) -> None:
    x = clustered(200)
    keys = [f"a{i}" for i in range(200)]
    index.upsert("org", "s", keys, x)
    index.upsert("org", "s", ["a0"], x[150:151])  # a0 moves to a150's place
    assert index.count("org", "s") == 200
    assert {h.key for h in index.search("org", "s", x[150], 2)} == {"a0", "a150"}
    assert "a0" not in {h.key for h in index.search("org", "s", x[0], 5) if h.score > 0.9999}
    assert index.delete("org", "s", ["a150", "a0", "nope"]) == 2
    assert index.contains("org", "s", ["a0", "a1", "a150"]) == {"a1"}
    for q in (x[150], x[0]):
        found = {h.key for h in index.search("org", "s", q, 198)}
        assert "a0" not in found and "a150" not in found and len(found) == 198


def test_many_deletions_rebuild_and_keep_answers_exact(index: VectorIndex) -> None:
    x = clustered(3000, seed=3)
    keys = [f"k{i}" for i in range(3000)]
    index.upsert("org", "s", keys, x)
    gone = keys[:2500]
    index.delete("org", "s", gone)
    live = np.arange(2500, 3000)
    hits = index.search("org", "s", x[0], 10)
    assert [h.key for h in hits][:5] == exact(x[live], [keys[i] for i in live], x[0], 5)
    assert not {h.key for h in hits} & set(gone)
    index.delete("org", "s", [h.key for h in hits[:3]])  # tombstones after the rebuild are excluded too
    again = index.search("org", "s", x[0], 10)
    assert not {h.key for h in again} & ({h.key for h in hits[:3]} | set(gone)) and len(again) == 10


@pytest.fixture(params=["exact", "graph"])
def filter_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Filters small enough for exact search, and (limit 0) the same filters as a restricted graph walk."""
    if request.param == "graph":
        for module in (faiss_index, pgvector_index):
            monkeypatch.setattr(module, "EXACT_FILTER_LIMIT", 0)
    return str(request.param)


def test_filters_and_exclusions(index: VectorIndex, filter_path: str) -> None:
    x = clustered(400, seed=1)
    keys = [f"a{i}" for i in range(400)]
    index.upsert("org", "s", keys, x)
    allowed = keys[::7]
    hits = index.search("org", "s", x[0], 5, allowed=allowed, exclude=["a0"])
    sub = np.arange(0, 400, 7)[1:]
    assert [h.key for h in hits] == exact(x[sub], [keys[i] for i in sub], x[0], 5)
    assert index.search("org", "s", x[0], 5, allowed=[]) == []
    unfiltered = index.search("org", "s", x[0], 3, exclude=["a0"])
    assert "a0" not in {h.key for h in unfiltered} and len(unfiltered) == 3


def test_raw_query_vectors_are_not_required_to_be_unit_length(index: VectorIndex) -> None:
    x = clustered(100, seed=2)
    keys = [f"a{i}" for i in range(100)]
    index.upsert("org", "s", keys, x * 7.5)
    hits = index.search("org", "s", x[3] * 0.01, 1)
    assert hits[0].key == "a3" and hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_bad_input_is_refused_and_changes_nothing(index: VectorIndex) -> None:
    x = clustered(10)
    index.upsert("org", "s", [f"a{i}" for i in range(10)], x)
    bad = x[:2].copy()
    bad[1, 3] = np.nan
    with pytest.raises(VectorIndexError, match="NaN"):
        index.upsert("org", "s", ["a0", "new"], bad)
    with pytest.raises(VectorIndexError, match="32-dimensional"):
        index.upsert("org", "s", ["a0"], np.ones((1, 16), np.float32))
    with pytest.raises(VectorIndexError, match="32-dimensional"):
        index.search("org", "s", np.ones(8, np.float32), 3)
    with pytest.raises(VectorIndexError, match="twice"):
        index.upsert("org", "s", ["a1", "a1"], x[:2])
    assert index.count("org", "s") == 10 and not index.contains("org", "s", ["new"])
    assert index.search("org", "s", x[0], 1)[0].key == "a0"


def test_drop_removes_the_space(index: VectorIndex) -> None:
    x = clustered(20)
    index.upsert("org", "s", [f"a{i}" for i in range(20)], x)
    assert index.drop("org", "s") is True
    assert index.drop("org", "s") is False
    assert index.count("org", "s") == 0 and index.search("org", "s", x[0], 3) == []
    index.upsert("org", "s", ["z"], np.ones((1, 8), np.float32))  # a new space may have another dimension
    assert index.dim("org", "s") == 8


def test_faiss_index_persists_and_sees_other_processes_writes(tmp_path: Path) -> None:
    x = clustered(100)
    first = FaissVectorIndex(tmp_path / "v")
    first.upsert("org", "s", [f"a{i}" for i in range(100)], x)
    second = FaissVectorIndex(tmp_path / "v")  # another server process on the same data folder
    assert second.search("org", "s", x[5], 1)[0].key == "a5"
    first.delete("org", "s", ["a5"])
    assert second.search("org", "s", x[5], 1)[0].key != "a5"
    assert sorted(p.name for p in (tmp_path / "v" / "org" / "s").iterdir() if p.suffix == ".faiss") == ["index-2.faiss"]


def test_nlist_follows_the_square_root_of_the_size_within_training_limits() -> None:
    assert [faiss_index.nlist_for(n) for n in (1, 10, 600, 50_000, 100_000, 1_000_000)] == [1, 1, 8, 1024, 1024, 4096]
    nlists = [faiss_index.nlist_for(n) for n in range(1, 3_000_000, 7919)]
    assert nlists == sorted(nlists)


def _layout_on_disk(folder: Path) -> int:
    (path,) = folder.glob("index-*.faiss")
    index = faiss.read_index(str(path))
    return int(index.nlist) if isinstance(index, faiss.IndexIVF) else 0


def test_faiss_space_changes_layout_as_it_grows_and_shrinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_index, "IVF_MIN_SIZE", 1000)
    x = clustered(8000, seed=4, clusters=60)
    keys = [f"a{i}" for i in range(8000)]
    index = FaissVectorIndex(tmp_path / "v", nprobe=8)
    folder = tmp_path / "v" / "org" / "s"

    def recall(n: int, reader: FaissVectorIndex) -> float:
        found = {i: {h.key for h in reader.search("org", "s", x[i], 10)} for i in range(0, n, n // 40)}
        return float(np.mean([len(f & set(exact(x[:n], keys[:n], x[i], 10))) / 10 for i, f in found.items()]))

    index.upsert("org", "s", keys[:600], x[:600])
    assert _layout_on_disk(folder) == 0  # a small space is a graph
    index.upsert("org", "s", keys[600:2000], x[600:2000])
    assert _layout_on_disk(folder) == faiss_index.nlist_for(2000) == 32  # crossed IVF_MIN_SIZE: rebuilt as IVF
    assert recall(2000, index) >= 0.95 and recall(2000, FaissVectorIndex(tmp_path / "v", nprobe=8)) >= 0.95
    index.upsert("org", "s", keys[2000:2500], x[2000:2500])
    assert _layout_on_disk(folder) == 32  # added to the trained lists
    index.upsert("org", "s", keys[2500:], x[2500:])
    assert _layout_on_disk(folder) == faiss_index.nlist_for(8000) == 128  # grown past its lists' range: retrained
    assert index.count("org", "s") == 8000 and recall(8000, index) >= 0.95
    # a filter keeping a third of the rows scans three times the lists (with one list: recall 0.83 instead of 0.99)
    monkeypatch.setattr(faiss_index, "EXACT_FILTER_LIMIT", 0)  # the filtered scan, not exact search
    index.nprobe, allowed, filtered = 1, keys[::3], []
    for i in range(5, 8000, 100):
        hits = {h.key for h in index.search("org", "s", x[i], 10, allowed=allowed)}
        assert hits <= set(allowed)
        filtered.append(len(hits & set(exact(x[::3], allowed, x[i], 10))) / 10)
    assert np.mean(filtered) >= 0.95
    index.nprobe = 8
    with monkeypatch.context() as patched:  # a large k scans more lists instead of falling back to exact search
        patched.setattr(FaissVectorIndex, "_exact", lambda *args: pytest.fail("exact fallback for a large k"))
        many = index.search("org", "s", x[0], 3000)
    assert len({h.key for h in many}) == 3000 and [h.score for h in many] == sorted(
        (h.score for h in many), reverse=True
    )
    index.upsert("org", "s", ["a1"], x[7999:8000])  # a replaced key is a tombstone in an IVF space too
    assert {h.key for h in index.search("org", "s", x[1], 3)}.isdisjoint({"a1"})
    assert {"a1", "a7999"} <= {h.key for h in index.search("org", "s", x[7999], 2)}
    index.delete("org", "s", keys[:7500])  # tombstones outnumber the live rows: rebuilt for 500, a graph again
    assert _layout_on_disk(folder) == 0 and index.count("org", "s") == 500
    hits = index.search("org", "s", x[7600], 5)
    assert [h.key for h in hits] == exact(x[7500:], keys[7500:], x[7600], 5)


@pytest.mark.parametrize("ivf_min_size", [1_000_000, 1])
def test_faiss_write_that_fails_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ivf_min_size: int
) -> None:
    monkeypatch.setattr(faiss_index, "IVF_MIN_SIZE", ivf_min_size)
    x = clustered(300, seed=5)
    index = FaissVectorIndex(tmp_path / "v")
    index.upsert("org", "s", [f"a{i}" for i in range(200)], x[:200])

    def full_disk(*args: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(faiss, "write_index", full_disk)
    with pytest.raises(OSError, match="No space"):
        index.upsert("org", "s", ["a0", *(f"a{i}" for i in range(200, 300))], x[100:201])
    assert index.count("org", "s") == 200 and not index.contains("org", "s", ["a250"])
    assert index.search("org", "s", x[0], 1)[0].key == "a0"  # a0 was not replaced
    with pytest.raises(OSError, match="No space"):
        index.delete("org", "s", ["a1"])
    assert index.contains("org", "s", ["a1"]) == {"a1"}
