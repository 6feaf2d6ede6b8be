"""Similarity search (FACTS 7.3): bulk indexing of embeddings into their space's vector index (a job), and
nearest-neighbour queries by asset or by a raw vector, optionally restricted by a search.

Deleting an asset removes its vectors from the indexes (``EmbeddingService.forget_indexed``); a hit is still
returned only if its asset exists and the caller can read it (an asset deleted while a search runs).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

import numpy as np

from scenebase.domain.embeddings import EMBEDDING_ASSET_TYPES, InvalidVector, as_float32
from scenebase.domain.ids import standardize_id
from scenebase.domain.search import QueryError
from scenebase.services.assets import AssetService
from scenebase.services.embeddings import KIND, READ_BATCH, EmbeddingService
from scenebase.services.errors import InvalidArgument, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.storage.embedding_repo import conditions
from scenebase.storage.scope import Scope

AREA = "similarity_search"
#: vectors handed to the index per call (each call saves the embedded index once)
INDEX_CHUNK = 100_000
#: most neighbours one query may ask for
MAX_K = 1000


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(message, resource=AREA)


class SimilarityService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("similarity_bulk_index",)

    def __init__(self, assets: AssetService, embeddings: EmbeddingService, jobs: JobService) -> None:
        self.assets = assets
        self.embeddings = embeddings
        self.index = embeddings.index
        self.jobs = jobs

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("similarity_bulk_index", self._bulk_index_job)

    # ------------------------------------------------------------------ indexing

    def bulk_index(self, scope: Scope, embedding_ids: list[str] | None, search: Any) -> str:
        """Start a ``similarity_bulk_index`` job over the given embeddings and/or those matching ``search``
        (a search over embeddings, e.g. by ``index_name``); neither: every embedding of the organization."""
        if embedding_ids is not None and not all(isinstance(i, str) and i for i in embedding_ids):
            raise _bad("embedding_ids must be a list of ids")
        if search is not None:
            try:  # a bad search fails the request, not the job
                conditions(self.assets.parse_for(scope, KIND, search))
            except QueryError as e:
                raise _bad(f"search_dic: {e}") from None
        params = {"embedding_ids": embedding_ids, "search": search}
        count = len(embedding_ids) if embedding_ids is not None else None
        row = self.jobs.submit(scope, "similarity_bulk_index", params, asset_type=KIND,
                               description=f"index {count if count is not None else 'all'} embeddings")  # fmt: skip
        return str(row["id"])

    def _bulk_index_job(self, ctx: JobContext) -> dict[str, Any]:
        scope, p = ctx.scope, ctx.params
        ctx.stage("finding the embeddings")
        given, search = p.get("embedding_ids"), p.get("search")
        ids = self.assets.resolve_ids(scope, KIND, given, {} if given is None and search is None else search)
        pending: dict[str, tuple[list[str], list[np.ndarray]]] = defaultdict(lambda: ([], []))
        indexed, missing = 0, 0
        total = max(len(ids), 1)

        def flush(space: str) -> None:
            nonlocal indexed
            keys, parts = pending.pop(space)
            last = {k: i for i, k in enumerate(keys)}  # an asset has one vector per space: the last one wins
            rows = np.concatenate(parts)[list(last.values())]
            self.index.upsert(scope.org_id, space, list(last), rows)
            indexed += len(last)

        ctx.stage("indexing")
        for start in range(0, len(ids), READ_BATCH):
            ctx.check_cancelled()
            chunk = ids[start : start + READ_BATCH]
            rows = self.embeddings.repo.rows_by_id(scope, chunk)
            missing += len(chunk) - len(rows)
            order = {i: n for n, i in enumerate(chunk)}
            for row in sorted(rows, key=lambda r: order[r.id]):
                keys, parts = pending[row.index_name]
                keys.append(row.asset_id)
                parts.append(np.frombuffer(bytes(row.vector), "<f4").reshape(1, int(row.dims)))
                if len(keys) >= INDEX_CHUNK:
                    flush(row.index_name)
            ctx.progress(95.0 * min(start + READ_BATCH, len(ids)) / total)
        for space in list(pending):
            flush(space)
        if missing:
            ctx.note(f"{missing} embeddings were not found (or their assets were deleted) and were skipped")
        return {"indexed": indexed, "not_found": missing}

    # ------------------------------------------------------------------ queries

    def resolve_space(self, scope: Scope, asset: dict[str, Any], embedding_space: str | None) -> str:
        """FACTS 7.3: the asset's only space when none is named; the named one when the asset has it."""
        spaces = sorted((asset.get("embeddings") or {}).keys())
        if not spaces:
            raise NotFound(f"asset {asset['id']!r} has no embeddings", resource=AREA)
        if embedding_space is None:
            if len(spaces) > 1:
                raise _bad(f"asset {asset['id']!r} has embeddings in several spaces {spaces}: name one")
            return spaces[0]
        name = standardize_id(embedding_space)
        if name not in spaces:
            raise NotFound(f"asset {asset['id']!r} has no embedding in space {embedding_space!r}; it has {spaces}",
                           resource=AREA)  # fmt: skip
        return name

    def search_similar(
        self,
        scope: Scope,
        ids: list[str] | None,
        k: int,
        asset_type: str,
        index_name: str | None = None,
        search: Any = None,
        vector: Any = None,
    ) -> list[list[str]]:
        """For each query asset (or the raw ``vector``), the ids of the ``k`` most similar assets of
        ``asset_type`` in the space, most similar first, the query asset left out; among the assets matching
        ``search`` when given."""
        if asset_type not in EMBEDDING_ASSET_TYPES:
            raise _bad(f"asset_type must be one of {list(EMBEDDING_ASSET_TYPES)}, got {asset_type!r}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise _bad(f"similar_asset_count must be an integer in [1, {MAX_K}], got {k!r}")
        if (vector is None) == (not ids):
            raise _bad("give either ids of query assets or one query vector")
        allowed = self.assets.resolve_ids(scope, asset_type, None, search) if search is not None else None
        queries: list[tuple[str | None, str, np.ndarray]] = []
        if vector is not None:
            if not index_name:
                raise _bad("a query vector needs the index_name of its space")
            space = standardize_id(index_name)
            dim = self.index.dim(scope.org_id, space)
            if dim is None:
                raise NotFound(f"no indexed embedding space {index_name!r}", resource=AREA)
            try:
                q = as_float32(vector, "query vector", dim)
            except InvalidVector as e:
                raise _bad(str(e)) from None
            queries.append((None, space, q))
        else:
            for raw in ids or []:
                asset = self.assets.get(scope, asset_type, raw)
                space = self.resolve_space(scope, asset, index_name)
                found = self.embeddings.vectors_of(scope, space, asset_type, [asset["id"]])
                if asset["id"] not in found:
                    raise NotFound(f"the embedding of {asset['id']!r} in {space!r} is gone", resource=AREA)
                queries.append((asset["id"], space, found[asset["id"]]))
        return [self._neighbours(scope, asset_type, space, q, k, own, allowed) for own, space, q in queries]

    def _neighbours(
        self, scope: Scope, asset_type: str, space: str, q: np.ndarray, k: int, own: str | None,
        allowed: list[str] | None,
    ) -> list[str]:  # fmt: skip
        """The index's answer with hits of deleted or unreadable assets dropped, asking for more until ``k``
        remain or the index has no more."""
        ask = k
        while True:
            hits = self.index.search(scope.org_id, space, q, ask, allowed=allowed, exclude=[own] if own else [])
            alive = self.assets.repo.get_many(scope, asset_type, [h.key for h in hits])
            found = [h.key for h in hits if h.key in alive]
            if len(found) >= k or len(hits) < ask or ask >= 8 * k + 100:
                return found[:k]
            ask = min(ask * 2 + 10, 8 * k + 100)
