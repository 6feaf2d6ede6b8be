"""Vector indexes: approximate nearest-neighbour search per (organization, index_name) (FACTS 7.3).

One protocol, two implementations run against the same contract tests (``tests/contract/test_vector_index.py``):

- :class:`~scenebase.storage.vectors.faiss_index.FaissVectorIndex` — the embedded default: a FAISS index per space
  (an HNSW graph, an IVF from 50,000 vectors), persisted in the data folder (chosen by measurement:
  docs/architecture.md);
- :class:`~scenebase.storage.vectors.pgvector_index.PgVectorIndex` — when the catalog is PostgreSQL: one table
  with a partial HNSW index per space (pgvector).

Keys are asset ids: an asset has at most one vector per space; upserting a key replaces its vector. Similarity is
cosine (vectors are L2-normalized when stored; scores are inner products of unit vectors, 1 = same direction).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from scenebase.storage.catalog import Catalog

#: a filter allowing at most this many keys is answered by exact search over those keys (an HNSW walk restricted
#: to a few keys explores most of the graph for nothing, and misses neighbours)
EXACT_FILTER_LIMIT = 20_000


class VectorIndexError(ValueError):
    """A request the index cannot serve (dimension mismatch, bad vectors); the message says why."""


@dataclass(frozen=True)
class Hit:
    key: str
    score: float


class VectorIndex(Protocol):
    """What the embeddings service needs from a vector index."""

    #: short name shown in status and docs ("faiss", "pgvector")
    kind: str

    def upsert(self, org: str, index_name: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Add or replace the vectors (``(n, d)`` float32) of ``keys``; the first write fixes the space's ``d``."""
        ...

    def delete(self, org: str, index_name: str, keys: Sequence[str]) -> int:
        """Remove keys; returns how many were there. Removed keys never come back from a search."""
        ...

    def drop(self, org: str, index_name: str) -> bool:
        """Remove the whole space; False when there was none."""
        ...

    def search(
        self,
        org: str,
        index_name: str,
        query: np.ndarray,
        k: int,
        allowed: Collection[str] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        """The ``k`` keys most similar to ``query`` (most similar first), among ``allowed`` when given, never one
        of ``exclude``."""
        ...

    def count(self, org: str, index_name: str) -> int:
        """How many keys the space holds (0 when there is no such space)."""
        ...

    def dim(self, org: str, index_name: str) -> int | None:
        """The space's dimension, None when it has no vectors yet."""
        ...

    def contains(self, org: str, index_name: str, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` the space holds."""
        ...


def open_vector_index(catalog: Catalog, data_dir: Path) -> VectorIndex:
    """pgvector when the catalog is PostgreSQL, else FAISS files under ``data_dir/vectors``."""
    if catalog.dialect == "postgresql":
        from scenebase.storage.vectors.pgvector_index import PgVectorIndex

        return PgVectorIndex(catalog)
    from scenebase.storage.vectors.faiss_index import FaissVectorIndex

    return FaissVectorIndex(data_dir / "vectors")


def check_matrix(keys: Sequence[str], vectors: np.ndarray, dim: int | None) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``(len(keys), d)`` matrix with finite values and ``d == dim``."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != len(keys):
        raise VectorIndexError(f"{len(keys)} keys need a ({len(keys)}, d) matrix, got shape {tuple(arr.shape)}")
    if arr.shape[1] == 0:
        raise VectorIndexError("vectors are empty")
    if dim is not None and arr.shape[1] != dim:
        raise VectorIndexError(f"the space holds {dim}-dimensional vectors, got {arr.shape[1]}")
    if not np.isfinite(arr).all():
        raise VectorIndexError("vectors contain NaN or infinite values")
    if len(set(keys)) != len(keys):
        raise VectorIndexError("a key appears twice in one write")
    return arr
