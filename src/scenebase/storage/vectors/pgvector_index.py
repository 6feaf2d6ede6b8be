"""The vector index of a PostgreSQL catalog: pgvector, with one partial HNSW index per space.

Tables (created on first use, ``IF NOT EXISTS``, so that no catalog migration depends on the ``vector``
extension, which only PostgreSQL catalogs have): ``embedding_spaces`` (a serial number, organization, index name
and dimension per space) and ``embedding_vectors`` (space number, key, unit-length vector). A column of type
``vector`` without a dimension can hold every space; each space gets the partial index
``ix_vec_<n> ON embedding_vectors USING hnsw ((vec::vector(d)) vector_cosine_ops) WHERE space = n``, and queries
repeat that expression and predicate (with the space number written into the SQL: an integer the catalog
assigned, never user text) so that the planner uses it.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence

import numpy as np
from sqlalchemy import Connection, text

from scenebase.domain.embeddings import normalized
from scenebase.storage.catalog import Catalog
from scenebase.storage.vectors import EXACT_FILTER_LIMIT, Hit, VectorIndexError, check_matrix

#: the same graph parameters as the embedded index (docs/architecture.md, "Vector search")
HNSW_M = 16
EF_CONSTRUCTION = 128
EF_SEARCH = 128
_SCHEMA = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE IF NOT EXISTS embedding_spaces (
        id SERIAL PRIMARY KEY, owner VARCHAR(255) NOT NULL, index_name VARCHAR(255) NOT NULL, dim INTEGER NOT NULL,
        UNIQUE (owner, index_name))""",
    """CREATE TABLE IF NOT EXISTS embedding_vectors (
        space INTEGER NOT NULL, key VARCHAR(255) COLLATE "C" NOT NULL, vec vector NOT NULL,
        PRIMARY KEY (space, key))""",
)


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(map(str, vector.tolist())) + "]"


class PgVectorIndex:
    kind = "pgvector"

    def __init__(self, catalog: Catalog, ef_search: int = EF_SEARCH) -> None:
        self.catalog = catalog
        self.ef_search = ef_search
        self._ready = False
        self._lock = threading.Lock()

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._lock, self.catalog.write() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(7462)"))  # servers starting together
            for statement in _SCHEMA:
                conn.execute(text(statement))
            self._ready = True

    def _space(self, conn: Connection, org: str, index_name: str) -> tuple[int, int] | None:
        row = conn.execute(
            text("SELECT id, dim FROM embedding_spaces WHERE owner = :o AND index_name = :i"),
            {"o": org, "i": index_name},
        ).first()
        return (int(row[0]), int(row[1])) if row else None

    # ------------------------------------------------------------------ writes

    def upsert(self, org: str, index_name: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self._ensure_schema()
        with self.catalog.write() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:o || '/' || :i))"), {"o": org, "i": index_name})
            found = self._space(conn, org, index_name)
            arr = normalized(check_matrix(keys, vectors, found[1] if found else None))
            if found is None:
                space = int(conn.execute(
                    text("INSERT INTO embedding_spaces (owner, index_name, dim) VALUES (:o, :i, :d) RETURNING id"),
                    {"o": org, "i": index_name, "d": arr.shape[1]},
                ).scalar_one())  # fmt: skip
                # pgvector's HNSW holds at most 2,000 dimensions; wider spaces are searched exactly
                if arr.shape[1] <= 2000:
                    conn.execute(text(
                        f"CREATE INDEX ix_vec_{space} ON embedding_vectors USING hnsw "
                        f"((vec::vector({arr.shape[1]})) vector_cosine_ops) WITH (m = {HNSW_M}, "
                        f"ef_construction = {EF_CONSTRUCTION}) WHERE space = {space}"
                    ))  # fmt: skip
            else:
                space = found[0]
            conn.execute(
                text(
                    "INSERT INTO embedding_vectors (space, key, vec) VALUES (:s, :k, CAST(:v AS vector)) "
                    "ON CONFLICT (space, key) DO UPDATE SET vec = EXCLUDED.vec"
                ),
                [{"s": space, "k": key, "v": _literal(v)} for key, v in zip(keys, arr, strict=True)],
            )

    def delete(self, org: str, index_name: str, keys: Sequence[str]) -> int:
        self._ensure_schema()
        with self.catalog.write() as conn:
            found = self._space(conn, org, index_name)
            if found is None or not keys:
                return 0
            result = conn.execute(
                text("DELETE FROM embedding_vectors WHERE space = :s AND key = ANY(:k)"),
                {"s": found[0], "k": list(keys)},
            )
            return int(result.rowcount or 0)

    def drop(self, org: str, index_name: str) -> bool:
        self._ensure_schema()
        with self.catalog.write() as conn:
            found = self._space(conn, org, index_name)
            if found is None:
                return False
            conn.execute(text(f"DROP INDEX IF EXISTS ix_vec_{found[0]}"))
            conn.execute(text("DELETE FROM embedding_vectors WHERE space = :s"), {"s": found[0]})
            conn.execute(text("DELETE FROM embedding_spaces WHERE id = :s"), {"s": found[0]})
            return True

    # ------------------------------------------------------------------ reads

    def count(self, org: str, index_name: str) -> int:
        self._ensure_schema()
        with self.catalog.read() as conn:
            found = self._space(conn, org, index_name)
            if found is None:
                return 0
            return int(
                conn.execute(text("SELECT count(*) FROM embedding_vectors WHERE space = :s"), {"s": found[0]}).scalar()
                or 0
            )

    def dim(self, org: str, index_name: str) -> int | None:
        self._ensure_schema()
        with self.catalog.read() as conn:
            found = self._space(conn, org, index_name)
            return found[1] if found else None

    def contains(self, org: str, index_name: str, keys: Sequence[str]) -> set[str]:
        self._ensure_schema()
        with self.catalog.read() as conn:
            found = self._space(conn, org, index_name)
            if found is None or not keys:
                return set()
            rows = conn.execute(
                text("SELECT key FROM embedding_vectors WHERE space = :s AND key = ANY(:k)"),
                {"s": found[0], "k": list(keys)},
            )
            return {r[0] for r in rows}

    def search(
        self,
        org: str,
        index_name: str,
        query: np.ndarray,
        k: int,
        allowed: Collection[str] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        self._ensure_schema()
        with self.catalog.write() as conn:  # SET LOCAL needs a transaction of its own
            found = self._space(conn, org, index_name)
            if found is None or k <= 0:
                return []
            space, dim = found
            q = _literal(normalized(check_matrix(["query"], np.asarray(query, np.float32).reshape(1, -1), dim))[0])
            expr = f"vec::vector({dim})"
            distance = f"{expr} <=> CAST(:q AS vector({dim}))"
            params = {"q": q, "k": k, "x": list(exclude)}
            if (allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT) or dim > 2000:
                # exact: the candidates are materialized first, so the HNSW index cannot be used on them
                where = "AND key = ANY(:a)" if allowed is not None else ""
                sql = (
                    f"WITH c AS MATERIALIZED (SELECT key, vec FROM embedding_vectors WHERE space = {space} {where} "
                    f"AND NOT key = ANY(:x)) SELECT key, {distance} AS d FROM c ORDER BY d LIMIT :k"
                )
                params["a"] = list(allowed or ())
            else:
                conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(self.ef_search, min(k, 1000))}"))
                # a filter drops candidates after the walk: let the walk continue until k rows pass it
                conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
                where = "AND key = ANY(:a)" if allowed is not None else ""
                sql = (
                    f"SELECT key, {distance} AS d FROM embedding_vectors WHERE space = {space} {where} "
                    f"AND NOT key = ANY(:x) ORDER BY {distance} LIMIT :k"
                )
                if allowed is not None:
                    params["a"] = list(allowed)
            rows = conn.execute(text(sql), params).all()
        hits = sorted(((str(r[0]), 1.0 - float(r[1])) for r in rows), key=lambda h: -h[1])
        return [Hit(key, score) for key, score in hits]


__all__ = ["PgVectorIndex", "VectorIndexError"]
