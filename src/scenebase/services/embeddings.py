"""Embeddings (FACTS 2.6, 7.1, 7.2, 7.4): vectors of images and objects, grouped in spaces (``index_name``).

An embedding is a row of the ``embeddings`` table (``storage/embedding_repo.py``: asset, model, version, layer,
dims, space and the raw float32 vector) and, once indexed, a vector in the space's vector index
(``storage/vectors``); its asset links to it with ``embeddings.<index_name> = <id>``, set on all the batch's
assets at once without rewriting them. An asset has one vector per space: adding one (or re-adding an id) replaces
the row, the link and, when the asset is indexed already, the indexed vector. Everything in a call is checked
before anything is written, and the write is one transaction: nothing is half-added.

Public methods other services use (UMAP maps, set comparison, model inference, similarity search): :meth:`add`,
:meth:`vectors`, :meth:`vectors_of`, :meth:`spaces`, :meth:`space_dim`, :meth:`forget_assets_in`.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
from sqlalchemy import Connection

from scenebase.domain.embeddings import (
    EMBEDDING_ASSET_TYPES,
    InvalidVector,
    check_index_name,
    check_vectors,
    embedding_id,
    index_name_for,
)
from scenebase.domain.ids import standardize_id
from scenebase.domain.search import Query, QueryError
from scenebase.domain.timeutil import to_epoch
from scenebase.services.assets import AssetService, normalize_timestamp
from scenebase.services.errors import InvalidArgument, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.storage.embedding_repo import COLUMNS, EmbeddingRepo
from scenebase.storage.scope import Scope
from scenebase.storage.vectors import VectorIndex, VectorIndexError

KIND = "embeddings"
#: most embeddings one add request may carry
MAX_ADD_BATCH = 10_000
#: ``get_embeddings``' default cap (FACTS 7.4)
MAX_EMBEDDINGS_READ = 200_000
#: rows read per catalog round trip
READ_BATCH = 5000


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(message, resource=KIND)


class EmbeddingService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("embedding_removal",)

    def __init__(self, assets: AssetService, vectors: VectorIndex, jobs: JobService, repo: EmbeddingRepo) -> None:
        self.assets = assets
        self.index = vectors
        self.jobs = jobs
        self.repo = repo
        assets.virtual[KIND] = EmbeddingStore(repo)
        # adds in this process take turns here rather than in SQLite's busy handler, which sleeps up to 100 ms
        # between tries: a request waiting for another's write starts the moment it commits
        self._write_turn = threading.Lock()

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("embedding_removal", self._remove_job)

    # ------------------------------------------------------------------ adding

    def add(self, scope: Scope, embeddings: Sequence[dict[str, Any]], vectors: np.ndarray) -> list[str]:
        """Store embeddings (metadata as ``Embedding.metadata()`` gives it, one row of ``vectors`` each); returns
        their ids. All must share ``ndim`` and ``index_name``, and their assets must exist. Raises InvalidArgument
        (NotFound for unknown assets) naming the embedding at fault; nothing is written then."""
        if not embeddings:
            raise _bad("no embeddings given")
        if len(embeddings) > MAX_ADD_BATCH:
            raise _bad(f"at most {MAX_ADD_BATCH} embeddings per request, got {len(embeddings)}")
        if vectors.ndim != 2 or vectors.shape[0] != len(embeddings):
            raise _bad(f"{len(embeddings)} embeddings need {len(embeddings)} vectors, got shape {vectors.shape}")
        rows = self._rows(embeddings, vectors)
        index_name, ndim = rows[0]["index_name"], rows[0]["dims"]
        known = self.space_dim(scope, index_name)
        if known is not None and known != ndim:
            raise _bad(f"embedding space {index_name!r} holds {known}-dimensional vectors; these have {ndim}")
        # an asset has one vector per space: the last embedding of an asset in the call wins, as its link does
        last = {(r["asset_type"], r["asset_id"]): n for n, r in enumerate(rows)}
        kept = [rows[n] for n in sorted(last.values())]
        by_type: dict[str, list[str]] = defaultdict(list)
        for r in kept:
            by_type[r["asset_type"]].append(r["asset_id"])

        def write(conn: Connection) -> None:
            for asset_type, ids in by_type.items():
                found = self.assets.repo.pks_for(conn, scope, asset_type, ids)
                missing = [i for i in ids if i not in found]
                if missing:
                    raise NotFound(f"no {asset_type} with ids {missing[:10]}{' ...' if len(missing) > 10 else ''}",
                                   resource=KIND)  # fmt: skip
            unlinked: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
            for space, asset_type, asset_id in self.repo.put_in(conn, scope, kept):  # ids moved from another space
                unlinked[(space, asset_type)][asset_id] = None
            for (space, asset_type), gone in unlinked.items():  # one statement per space, not per asset
                self.assets.repo.set_field_many(conn, scope, asset_type, ("embeddings", space), gone)
            for asset_type in by_type:
                links = {r["asset_id"]: r["id"] for r in kept if r["asset_type"] == asset_type}
                self.assets.repo.set_field_many(conn, scope, asset_type, ("embeddings", index_name), links)

        with self._write_turn:
            self.assets.repo.catalog.write_retrying(write)
        for asset_type in by_type:
            self.assets.written(scope, asset_type)
        # a vector already in the index is replaced now, so that no search answers with the old one meanwhile
        keys = [r["asset_id"] for r in kept]
        indexed = self.index.contains(scope.org_id, index_name, keys)
        if indexed:
            chosen = [n for n, k in enumerate(keys) if k in indexed]
            matrix = np.stack([np.frombuffer(kept[n]["vector"], "<f4") for n in chosen])
            self.index.upsert(scope.org_id, index_name, [keys[n] for n in chosen], matrix)
        return [r["id"] for r in rows]

    def _rows(self, embeddings: Sequence[dict[str, Any]], vectors: np.ndarray) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        ndim = int(vectors.shape[1])
        now = to_epoch(normalize_timestamp(None))
        names: dict[Any, str] = {}
        for n, meta in enumerate(embeddings):
            if not isinstance(meta, dict):
                raise _bad(f"embedding #{n} must be an object")
            asset_id = meta.get("asset_id")
            if not isinstance(asset_id, str) or not asset_id:
                raise _bad(f"embedding #{n}: asset_id must be a non-empty string")
            asset_id = standardize_id(asset_id)
            asset_type = meta.get("media_type") or meta.get("asset_type") or "images"
            if asset_type not in EMBEDDING_ASSET_TYPES:
                raise _bad(f"embedding #{n} of {asset_id!r}: asset type must be one of {list(EMBEDDING_ASSET_TYPES)}")
            model, version, layer = str(meta.get("model") or "default"), str(meta.get("version") or "v1"), None
            if meta.get("layer") is not None:
                layer = str(meta["layer"])
            raw_name = meta.get("index_name") or (asset_type, model, version)
            index_name = names.get(raw_name) if isinstance(raw_name, str | tuple) else None
            if index_name is None:  # a batch names one space: check it once, not per embedding
                try:
                    given_name = raw_name if not isinstance(raw_name, tuple) else index_name_for(*raw_name)
                    index_name = check_index_name(given_name)
                except InvalidVector as e:
                    raise _bad(f"embedding #{n} of {asset_id!r}: {e}") from None
                if isinstance(raw_name, str | tuple):
                    names[raw_name] = index_name
            given = meta.get("ndim")
            if given is not None and given != ndim:
                raise _bad(f"embedding #{n} of {asset_id!r}: ndim is {given!r} but its vector has {ndim} values")
            try:
                ts = now if meta.get("timestamp") is None else to_epoch(normalize_timestamp(meta["timestamp"]))
            except InvalidArgument as e:
                raise _bad(f"embedding #{n} of {asset_id!r}: {e.message}") from None
            session = meta.get("session_uid")
            rows.append({"id": embedding_id(asset_id, layer, model, ndim, version), "index_name": index_name,
                         "asset_type": asset_type, "asset_id": asset_id, "dims": ndim, "model": model,
                         "version": version, "layer": layer, "session_uid": None if session is None else str(session),
                         "timestamp": ts, "created_at": now})  # fmt: skip
        try:
            check_vectors(vectors, [f"embedding #{n} of {r['asset_id']!r}" for n, r in enumerate(rows)])
        except InvalidVector as e:
            raise _bad(str(e)) from None
        spaces = {r["index_name"] for r in rows}
        if len(spaces) > 1:
            raise _bad(f"all embeddings of a call must share one index_name, got {sorted(spaces)}")
        seen: dict[str, int] = {}
        raw = np.ascontiguousarray(vectors, dtype="<f4")
        for n, row in enumerate(rows):
            if row["id"] in seen:
                raise _bad(f"embeddings #{seen[row['id']]} and #{n} are the same embedding of {row['asset_id']!r}")
            seen[row["id"]] = n
            row["vector"] = raw[n].tobytes()
        return rows

    # ------------------------------------------------------------------ reading

    def space_dim(self, scope: Scope, index_name: str) -> int | None:
        """The dimension of a space (from its index, else from one of its embeddings); None for a new space."""
        dim = self.index.dim(scope.org_id, index_name)
        return dim if dim is not None else self.repo.space_dim(scope, index_name)

    def spaces(self, scope: Scope, asset_type: str | None = None) -> dict[str, dict[str, Any]]:
        """``index_name -> {"count", "asset_types", "indexed"}`` of the organization's embedding spaces."""
        out: dict[str, dict[str, Any]] = {}
        for name, types in sorted(self.repo.spaces(scope).items()):
            if asset_type is not None and asset_type not in types:
                continue
            out[name] = {"count": sum(types.values()), "asset_types": sorted(types),
                         "indexed": self.index.count(scope.org_id, name)}  # fmt: skip
        return out

    def vectors_of(self, scope: Scope, index_name: str, asset_type: str, asset_ids: Sequence[str]) -> dict[str, Any]:
        """``asset_id -> float32 vector`` of the given assets in a space (assets without one are left out)."""
        found = self.repo.vectors_of(scope, index_name, asset_type, asset_ids)
        return {k: np.frombuffer(v, "<f4").reshape(d).astype(np.float32) for k, (d, v) in found.items()}

    def vectors(
        self,
        scope: Scope,
        index_name: str,
        asset_ids: Sequence[str] | None = None,
        search: Any = None,
        asset_type: str | None = None,
        limit: int = MAX_EMBEDDINGS_READ,
    ) -> tuple[list[str], np.ndarray]:
        """``(asset ids, (n, d) float32 vectors)`` of a space: of ``asset_ids`` and/or the assets matching
        ``search`` (of ``asset_type``), or every embedding of the space when neither is given; at most ``limit``."""
        dim = self.space_dim(scope, index_name)
        if dim is None:
            raise NotFound(f"no embedding space {index_name!r}", resource=KIND)
        keys: list[str] = []
        parts: list[bytes] = []
        if asset_ids is None and search is None:
            for batch in self.repo.scan_space(scope, index_name, asset_type, READ_BATCH):
                for key, raw in batch[: max(limit - len(keys), 0)]:
                    keys.append(key)
                    parts.append(raw)
                if len(keys) >= limit:
                    break
        else:
            kind = asset_type or "images"
            ids = self.assets.resolve_ids(scope, kind, list(asset_ids or []), search)[: max(limit, 0)]
            for start in range(0, len(ids), READ_BATCH):
                chunk = ids[start : start + READ_BATCH]
                found = self.repo.vectors_of(scope, index_name, kind, chunk)
                for key in chunk:
                    if key in found:
                        keys.append(key)
                        parts.append(found[key][1])
        if not keys:
            return [], np.zeros((0, dim), np.float32)
        matrix = np.frombuffer(b"".join(parts), "<f4").reshape(len(keys), dim).astype(np.float32)
        return keys, matrix

    # ------------------------------------------------------------------ deleted assets

    def forget_assets_in(self, conn: Connection, scope: Scope, asset_type: str, asset_ids: Sequence[str]) -> Any:
        """Delete the embeddings of assets being deleted, in the caller's transaction; returns what to pass to
        :meth:`forget_indexed` after it commits."""
        if asset_type not in EMBEDDING_ASSET_TYPES:
            return {}
        return self.repo.delete_for_assets(conn, scope, asset_type, asset_ids)

    def forget_indexed(self, scope: Scope, gone: dict[str, list[str]]) -> None:
        """Remove deleted assets' vectors from their spaces' indexes (they never come back from a search)."""
        for space, keys in gone.items():
            self.index.delete(scope.org_id, space, keys)

    # ------------------------------------------------------------------ removing a space

    def remove_space(self, scope: Scope, index_name: str, asset_type: str | None) -> str:
        """Start an ``embedding_removal`` job deleting a space: its embeddings, links and index."""
        name = check_index_name(index_name) if isinstance(index_name, str) and index_name else None
        if name is None:
            raise _bad("index_name is required")
        if self.space_dim(scope, name) is None:
            raise NotFound(f"no embedding space {index_name!r}", resource=KIND)
        row = self.jobs.submit(scope, "embedding_removal", {"index_name": name, "asset_type": asset_type},
                               description=f"remove embedding space {name}", asset_type=KIND)  # fmt: skip
        return str(row["id"])

    def _remove_job(self, ctx: JobContext) -> dict[str, Any]:
        scope, name = ctx.scope, ctx.params["index_name"]
        ctx.stage("dropping the vector index")
        self.index.drop(scope.org_id, name)
        removed = 0
        total = max(sum(self.repo.spaces(scope).get(name, {}).values()), 1)
        while True:
            ctx.check_cancelled()
            batch = self.repo.space_assets(scope, name, READ_BATCH)
            if not batch:
                break
            by_type: dict[str, list[str]] = defaultdict(list)
            for asset_type, asset_id in batch:
                by_type[asset_type].append(asset_id)

            def write(conn: Connection, by_type: dict[str, list[str]] = by_type) -> None:
                for asset_type, ids in by_type.items():
                    links: dict[str, Any] = dict.fromkeys(ids)
                    self.assets.repo.set_field_many(conn, scope, asset_type, ("embeddings", name), links)
                    self.repo.delete_in_space(conn, scope, name, asset_type, ids)

            self.assets.repo.catalog.write_retrying(write)
            removed += len(batch)
            ctx.progress(100.0 * removed / total)
        for asset_type in EMBEDDING_ASSET_TYPES:
            self.assets.written(scope, asset_type)
        return {"index_name": name, "removed": removed}


class EmbeddingStore:
    """The generic asset reads (``/v1/embeddings/meta/...``, search, count) answered from the embeddings table;
    registered in ``AssetService.virtual``. Embeddings are written only by ``add_embeddings``."""

    fields = tuple(sorted(COLUMNS))

    def __init__(self, repo: EmbeddingRepo) -> None:
        self.repo = repo

    def get_many(self, scope: Scope, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.repo.get_many(scope, ids)

    def search(
        self, scope: Scope, query: Query, size: int, offset: int, sort_field: str | None, sort_order: str | None,
        ids_only: bool,
    ) -> list[Any]:  # fmt: skip
        return self.repo.search(scope, query, size, offset, sort_field, sort_order, ids_only)

    def scan(self, scope: Scope, query: Query, ids_only: bool) -> Iterator[list[Any]]:
        return self.repo.scan(scope, query, ids_only)

    def count(self, scope: Scope, query: Query) -> int:
        return self.repo.count(scope, query)


__all__ = ["KIND", "EmbeddingService", "EmbeddingStore", "QueryError", "VectorIndexError"]
