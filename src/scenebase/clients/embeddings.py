"""Embeddings and similarity search (FACTS 7): add_embeddings, similarity_search_bulk_index,
search_similar_assets, and from the later public client get_embeddings and delete_embeddings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from scenebase.clients.core import ClientCore
from scenebase.clients.encoding import encode_json
from scenebase.domain.embeddings import decode_vectors
from scenebase.domain.ids import standardize_id
from scenebase.errors import EmbeddingError, ResponseError, SimilaritySearchError
from scenebase.models.embedding import Embedding

log = logging.getLogger("scenebase.client")
#: embedding ids per bulk-index request: 100,000 ids are ~4.5 MB of JSON, far below the server's request limit
#: (SCENEBASE_MAX_REQUEST_BYTES, 16 MiB by default)
BULK_INDEX_IDS = 100_000

#: float values per add request (5,859 x 512: 12 MB of raw float32 plus ~1.5 MB of metadata, under the server's
#: 16 MB body limit); at most ADD_BATCH_EMBEDDINGS embeddings (the server's cap) however small the vectors
ADD_BATCH_VALUES = 3_000_000
ADD_BATCH_EMBEDDINGS = 10_000
#: add requests in flight at once: the client encodes the next batch while the server writes one
ADD_PARALLEL = 2
DEFAULT_UMAP_PARAMS = {"n_neighbors": 20, "min_dist": 0.3, "train_size": 10_000}


class EmbeddingsMixin(ClientCore):
    def add_embeddings(
        self,
        embeddings: Sequence[Embedding],
        similarity_ingest: bool = True,
        create_umap: bool = True,
        wait_for_completion: bool = False,
        add_to_cache: bool = False,
        umap_params: dict[str, Any] | None = None,
        *,
        disable_tqdm: bool = False,
    ) -> list[str]:
        """Store embeddings (``scenebase.models.assets.Embedding``) and link them to their assets; returns their
        ids. All must share ``ndim`` and ``index_name``. ``similarity_ingest`` indexes them for similarity search
        (a job); ``create_umap`` then waits for it and computes the space's UMAP map (FACTS 7.2)."""
        embeddings = list(embeddings)
        if not embeddings:
            raise EmbeddingError("no embeddings given")
        for n, e in enumerate(embeddings):
            if not isinstance(e, Embedding):
                raise EmbeddingError(f"embedding #{n} is a {type(e).__name__}, not an Embedding")
        ndims = {e.ndim for e in embeddings}
        spaces = {e.index_name for e in embeddings}
        if len(ndims) > 1 or len(spaces) > 1:
            raise EmbeddingError(
                f"all embeddings of a call must share ndim and index_name, got ndim {sorted(ndims)}, "
                f"index_name {sorted(spaces)}"
            )
        ndim, index_name = ndims.pop(), spaces.pop()
        batch = max(1, min(ADD_BATCH_EMBEDDINGS, ADD_BATCH_VALUES // ndim))
        parts = [embeddings[start : start + batch] for start in range(0, len(embeddings), batch)]

        def send(part: list[Embedding]) -> list[str]:
            # the raw float32 bytes after a JSON header: no base64 (a third larger) or JSON lists (~4x) to make
            header = encode_json({"embeddings": [e.metadata() for e in part], "ndim": ndim})
            body = b"".join([len(header).to_bytes(4, "little"), header, *(e.data for e in part)])
            found = self._request("POST", "/v1/embeddings/add_binary/", content=body, error=EmbeddingError,
                                  content_type="application/octet-stream")  # fmt: skip
            return list(found["ids"])

        ids: list[str] = []
        bar = tqdm(total=len(embeddings), desc="adding embeddings", unit="embedding", disable=disable_tqdm or None)
        with bar, ThreadPoolExecutor(max_workers=min(ADD_PARALLEL, len(parts))) as pool:
            for part, added in zip(parts, pool.map(send, parts), strict=True):  # in order; the first error raises
                ids.extend(added)
                bar.update(len(part))
        job_id = None
        if similarity_ingest:
            job_id = self.similarity_search_bulk_index(embedding_ids=ids)
            if wait_for_completion or create_umap:
                self._wait(job_id, True, timeout=max(10 * len(ids), 60))
        if create_umap:
            self._umap_after_add(embeddings[0].asset_type, index_name, umap_params, wait_for_completion)
        return ids

    def _umap_after_add(self, asset_type: str, index_name: str, umap_params: dict[str, Any] | None, wait: bool) -> None:
        params = {**DEFAULT_UMAP_PARAMS, **(umap_params or {})}
        create = getattr(self, "create_umap")  # noqa: B009  (comes from another mixin)
        try:
            create(asset_type=asset_type, index_name=index_name, search_dic={}, wait_for_completion=wait, **params)
        except NotImplementedError as e:
            log.warning("embeddings added; no UMAP map made: %s", e)

    def similarity_search_bulk_index(
        self,
        embedding_ids: list[str] | None = None,
        search_dic: dict[str, Any] | None = None,
        wait_for_completion: bool = False,
    ) -> str:
        """Index embeddings (by id and/or a search over embeddings) for similarity search; returns the job id.
        More than ``BULK_INDEX_IDS`` ids go as consecutive jobs of that many (a request body has a size limit): the
        call waits for each but the last, and returns the last one's id (with ``search_dic`` in that last job)."""
        chunks: list[list[str] | None] = (
            [list(embedding_ids[i : i + BULK_INDEX_IDS]) for i in range(0, len(embedding_ids), BULK_INDEX_IDS)]
            if embedding_ids
            else [embedding_ids]
        )
        job_id = ""
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            body = {"embedding_ids": chunk, "search_dic": search_dic if last else None}
            job_id = str(self._request("POST", "/v1/similarity_search/bulk_index/", json=body, error=ResponseError)[
                "job_id"])  # fmt: skip
            timeout = 2 * len(chunk) if chunk else None
            self._wait(job_id, wait_for_completion or not last, timeout=max(timeout, 60) if timeout else None)
        return job_id

    def search_similar_assets(
        self,
        id: str | None,
        similar_asset_count: int = 10,
        asset_type: str = "images",
        embedding_space: str | None = None,
        *,
        search: dict[str, Any] | None = None,
        vector: Any = None,
    ) -> list[str]:
        """The ids of the ``similar_asset_count`` assets most similar to asset ``id`` (itself left out), most
        similar first. ``embedding_space`` is needed when the asset has embeddings in several spaces. Beyond the
        seed: ``search`` restricts the candidates; ``vector`` (with ``id=None`` and ``embedding_space``) queries a
        raw vector."""
        body: dict[str, Any] = {"similar_asset_count": similar_asset_count, "asset_type": asset_type,
                                "index_name": embedding_space, "search": search}  # fmt: skip
        if vector is not None:
            if id is not None:
                raise SimilaritySearchError("give either an asset id or a query vector, not both")
            if embedding_space is None:
                raise SimilaritySearchError("a query vector needs embedding_space")
            body["vector"] = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        elif id is None:
            raise SimilaritySearchError("give an asset id (or a query vector)")
        else:
            body["ids"] = [standardize_id(id)]
        found = self._request("POST", "/v1/similarity_search/similarity_search/", json=body,
                              error=SimilaritySearchError)  # fmt: skip
        return list(found[0]) if found else []

    def get_embeddings(
        self,
        embedding_space: str,
        asset_type: str = "images",
        asset_ids: list[str] | None = None,
        use_umap_as_embedding: bool = False,
        max_number_of_embeddings: int = 200_000,
        search: dict[str, Any] | None = None,
    ) -> list[Embedding]:
        """The embeddings of a space as ``Embedding`` objects (``.asset_id``, ``.vector`` float32 numpy), of
        ``asset_ids`` and/or assets matching ``search`` (every one when neither is given). With
        ``use_umap_as_embedding`` the 2-D UMAP points (``umap.<space>.coordinates``) come back, with model
        ``umap``."""
        space = standardize_id(embedding_space)
        if use_umap_as_embedding:
            return self._umap_points(space, asset_type, asset_ids, max_number_of_embeddings, search)
        body = {"index_name": space, "asset_type": asset_type, "ids": asset_ids, "search": search,
                "max_number_of_embeddings": max_number_of_embeddings}  # fmt: skip
        out = self._request("POST", "/v1/embeddings/vectors/", json=body, error=EmbeddingError)
        matrix = decode_vectors(out["vectors"], int(out["ndim"]), len(out["asset_ids"]))
        return [Embedding(v, a, asset_type=asset_type, index_name=space) for a, v in zip(out["asset_ids"], matrix,
                                                                                         strict=True)]  # fmt: skip

    def _umap_points(
        self, space: str, asset_type: str, asset_ids: list[str] | None, limit: int, search: dict[str, Any] | None
    ) -> list[Embedding]:
        field = f"umap.{space}.coordinates"
        query: dict[str, Any] = {**(search or {}), "source_selected_fields": ["id", field]}
        query.setdefault("exists_filters", [])
        query["exists_filters"] = [*query["exists_filters"], {"field": field}]
        if asset_ids is not None:
            query.setdefault("filters", [])
            query["filters"] = [*query["filters"], {"field": "id", "values": [standardize_id(i) for i in asset_ids]}]
        docs = self._request("POST", f"/v1/{asset_type}/meta/", params={"scan": True}, json=query,
                             error=EmbeddingError)  # fmt: skip
        out = []
        for doc in list(docs)[:limit]:
            point = (((doc.get("umap") or {}).get(space)) or {}).get("coordinates")
            if point:
                out.append(Embedding(point, doc["id"], asset_type=asset_type, model="umap", index_name=space))
        return out

    def delete_embeddings(
        self, embedding_space: str, asset_type: str = "images", wait_for_completion: bool = True
    ) -> str:
        """Remove an embedding space: its embeddings, their links on assets and its similarity index (a job)."""
        body = {"index_name": standardize_id(embedding_space), "asset_type": asset_type}
        job_id = str(self._request("POST", "/v1/embeddings/remove_embedding_space/", json=body, error=EmbeddingError)[
            "job_id"])  # fmt: skip
        self._wait(job_id, wait_for_completion)
        return job_id
