"""Embeddings (FACTS 2.6, 7.1, 7.2, 7.4): vectors of images and objects, grouped in spaces (``index_name``).

An embedding is an ``embeddings`` document (asset id, model, version, layer, ndim, index name) whose vector is
kept in the never-indexed field ``vector`` (base64 of the raw little-endian float32 bytes, FACTS 2.6) and in the
space's vector index (``storage/vectors``); its asset links to it with ``embeddings.<index_name> = <id>``.
Adding an embedding with an existing id replaces the document, the link and, when the asset is indexed already,
the indexed vector. Everything in a call is checked before anything is written: nothing is half-added.

Public methods other services use (UMAP maps, set comparison, model inference): :meth:`add`, :meth:`vectors`,
:meth:`spaces`, :meth:`space_dim`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from scenebase.domain.embeddings import (
    EMBEDDING_ASSET_TYPES,
    InvalidVector,
    check_index_name,
    check_vectors,
    decode_vectors,
    embedding_id,
    encode_vector,
    index_name_for,
)
from scenebase.domain.ids import standardize_id
from scenebase.domain.timeutil import now_iso
from scenebase.services.assets import AssetService
from scenebase.services.errors import InvalidArgument, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.storage.scope import Scope
from scenebase.storage.vectors import VectorIndex, VectorIndexError

KIND = "embeddings"
#: the never-indexed field holding the vector
VECTOR_FIELD = "vector"
#: most embeddings one add request may carry
MAX_ADD_BATCH = 10_000
#: ``get_embeddings``' default cap (FACTS 7.4)
MAX_EMBEDDINGS_READ = 200_000
#: documents read per catalog round trip
READ_BATCH = 2000


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(message, resource=KIND)


def space_filter(index_name: str) -> dict[str, Any]:
    return {"filters": [{"field": "index_name", "values": [index_name]}]}


class EmbeddingService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("embedding_removal",)

    def __init__(self, assets: AssetService, vectors: VectorIndex, jobs: JobService) -> None:
        self.assets = assets
        self.index = vectors
        self.jobs = jobs

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("embedding_removal", self._remove_job)

    # ------------------------------------------------------------------ adding

    def add(self, scope: Scope, embeddings: Sequence[dict[str, Any]], vectors: np.ndarray) -> list[str]:
        """Store embeddings (metadata as ``Embedding.metadata()`` gives it, one row of ``vectors`` each); returns
        their ids. All must share ``ndim`` and ``index_name``, and their assets must exist. Raises InvalidArgument
        naming the embedding at fault; nothing is written then."""
        if not embeddings:
            raise _bad("no embeddings given")
        if len(embeddings) > MAX_ADD_BATCH:
            raise _bad(f"at most {MAX_ADD_BATCH} embeddings per request, got {len(embeddings)}")
        if vectors.ndim != 2 or vectors.shape[0] != len(embeddings):
            raise _bad(f"{len(embeddings)} embeddings need {len(embeddings)} vectors, got shape {vectors.shape}")
        docs, parents = self._documents(scope, embeddings, vectors)
        index_name, ndim = docs[0]["index_name"], docs[0]["ndim"]
        known = self.space_dim(scope, index_name)
        if known is not None and known != ndim:
            raise _bad(f"embedding space {index_name!r} holds {known}-dimensional vectors; these have {ndim}")
        links: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for doc in docs:
            parent = parents[(doc["media_type"], doc["asset_id"])]
            links[doc["media_type"]].append(
                {"id": parent["id"], "timestamp": parent["timestamp"], "embeddings": {index_name: doc["id"]}}
            )

        def write(conn: Any) -> None:
            self.assets.put_in(conn, scope, KIND, docs, "replace")
            for asset_type, rows in links.items():
                self.assets.put_in(conn, scope, asset_type, _last_per_id(rows), "merge")

        self.assets.repo.catalog.write_retrying(write)
        for asset_type in (KIND, *links):
            self.assets.written(scope, asset_type)
        # a vector already in the index is replaced now, so that no search answers with the old one meanwhile
        keys = [d["asset_id"] for d in docs]
        indexed = self.index.contains(scope.org_id, index_name, keys)
        if indexed:
            rows = {k: i for i, k in enumerate(keys)}  # the last embedding of an asset wins, as in the links
            chosen = [k for k in rows if k in indexed]
            self.index.upsert(scope.org_id, index_name, chosen, vectors[[rows[k] for k in chosen]])
        return [d["id"] for d in docs]

    def _documents(
        self, scope: Scope, embeddings: Sequence[dict[str, Any]], vectors: np.ndarray
    ) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
        docs: list[dict[str, Any]] = []
        wanted: dict[str, set[str]] = defaultdict(set)
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
            try:
                index_name = check_index_name(meta.get("index_name") or index_name_for(asset_type, model, version))
            except InvalidVector as e:
                raise _bad(f"embedding #{n} of {asset_id!r}: {e}") from None
            ndim = int(vectors.shape[1])
            given = meta.get("ndim")
            if given is not None and given != ndim:
                raise _bad(f"embedding #{n} of {asset_id!r}: ndim is {given!r} but its vector has {ndim} values")
            doc = {"id": embedding_id(asset_id, layer, model, ndim, version), "timestamp": meta.get("timestamp"),
                   "tags": [layer] if layer else [], "media_type": asset_type, "asset_id": asset_id, "model": model,
                   "version": version, "ndim": ndim, "index_name": index_name, "layer": layer,
                   "session_uid": meta.get("session_uid")}  # fmt: skip
            docs.append({k: v for k, v in doc.items() if v is not None})
            wanted[asset_type].add(asset_id)
        names = [f"embedding #{n} of {d['asset_id']!r}" for n, d in enumerate(docs)]
        try:
            check_vectors(vectors, names)
        except InvalidVector as e:
            raise _bad(str(e)) from None
        spaces = {d["index_name"] for d in docs}
        if len(spaces) > 1:
            raise _bad(f"all embeddings of a call must share one index_name, got {sorted(spaces)}")
        seen: dict[str, int] = {}
        for n, doc in enumerate(docs):
            if doc["id"] in seen:
                raise _bad(f"embeddings #{seen[doc['id']]} and #{n} are the same embedding of {doc['asset_id']!r}")
            seen[doc["id"]] = n
            doc[VECTOR_FIELD] = encode_vector(vectors[n])
        parents: dict[tuple[str, str], dict[str, Any]] = {}
        for asset_type, ids in wanted.items():
            found = self.assets.repo.get_many(scope, asset_type, sorted(ids))
            missing = sorted(ids - set(found))
            if missing:
                raise NotFound(f"no {asset_type} with ids {missing[:10]}{' ...' if len(missing) > 10 else ''}",
                               resource=KIND)  # fmt: skip
            parents.update({(asset_type, i): d for i, d in found.items()})
        return docs, parents

    # ------------------------------------------------------------------ reading

    def space_dim(self, scope: Scope, index_name: str) -> int | None:
        """The dimension of a space (from its index, else from one of its embeddings); None for a new space."""
        dim = self.index.dim(scope.org_id, index_name)
        if dim is not None:
            return dim
        found = self.assets.repo.get_many(
            scope, KIND, self.assets.search(scope, KIND, space_filter(index_name), size=1)
        )
        return int(next(iter(found.values()))["ndim"]) if found else None

    def spaces(self, scope: Scope, asset_type: str | None = None) -> dict[str, dict[str, Any]]:
        """``index_name -> {"count", "asset_types", "indexed"}`` of the organization's embedding spaces."""
        summary = self.assets.summary(scope, KIND, {"dimensions": ["index_name", "media_type"],
                                                    "max_size_for_agg": 10_000})  # fmt: skip
        names = _buckets(summary, "index_name")
        out: dict[str, dict[str, Any]] = {}
        for name, count in names.items():
            types = _buckets(
                self.assets.summary(scope, KIND, {"search": space_filter(name), "dimensions": ["media_type"]}),
                "media_type",
            )
            if asset_type is not None and asset_type not in types:
                continue
            out[name] = {"count": count, "asset_types": sorted(types), "indexed": self.index.count(scope.org_id, name)}
        return out

    def embedding_docs(self, scope: Scope, index_name: str, asset_type: str, asset_ids: Sequence[str]) -> list[Any]:
        """The embedding documents of ``asset_ids`` in a space (assets without one are left out), in order."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(asset_ids), READ_BATCH):
            parents = self.assets.repo.get_many(scope, asset_type, list(asset_ids[start : start + READ_BATCH]))
            links = [str((p.get("embeddings") or {}).get(index_name)) for p in parents.values()]
            found = self.assets.repo.get_many(scope, KIND, [i for i in links if i != "None"])
            for asset_id in asset_ids[start : start + READ_BATCH]:
                parent = parents.get(asset_id)
                doc = found.get(str((parent or {}).get("embeddings", {}).get(index_name)))
                if doc is not None and doc.get("asset_id") == asset_id:
                    out.append(doc)
        return out

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
        if asset_ids is None and search is None:
            docs: list[dict[str, Any]] = []
            for batch in self.assets.scan(scope, KIND, space_filter(index_name), ids_only=False):
                docs.extend(d for d in batch if asset_type is None or d.get("media_type") == asset_type)
                if len(docs) >= limit:
                    break
        else:
            kind = asset_type or "images"
            ids = self.assets.resolve_ids(scope, kind, list(asset_ids or []), search)
            docs = self.embedding_docs(scope, index_name, kind, ids[: max(limit, 0)])
        docs = docs[:limit]
        if not docs:
            return [], np.zeros((0, dim), np.float32)
        matrix = np.empty((len(docs), dim), np.float32)
        for n, doc in enumerate(docs):
            matrix[n] = decode_vectors(doc[VECTOR_FIELD], dim, 1, f"embedding {doc['id']!r}")[0]
        return [str(d["asset_id"]) for d in docs], matrix

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
        total = max(self.assets.count(scope, KIND, space_filter(name)), 1)
        while True:
            batch = self.assets.search(scope, KIND, space_filter(name), size=READ_BATCH, ids_only=False)
            if not batch:
                break
            by_type: dict[str, list[str]] = defaultdict(list)
            for doc in batch:
                by_type[doc.get("media_type", "images")].append(doc["asset_id"])

            def write(conn: Any, batch: list[dict[str, Any]] = batch, by_type: dict[str, list[str]] = by_type) -> None:
                for asset_type, ids in by_type.items():
                    for _pk, parent in self.assets.repo.get_for_update(conn, scope, asset_type, ids).values():
                        links = dict(parent.get("embeddings") or {})
                        if links.pop(name, None) is not None:
                            self.assets.repo.upsert_in(conn, scope, asset_type, [{**parent, "embeddings": links,
                                                       "updated_at": now_iso()}], "replace")  # fmt: skip
                self.assets.repo.delete_in(conn, scope, KIND, [d["id"] for d in batch])

            self.assets.repo.catalog.write_retrying(write)
            removed += len(batch)
            ctx.progress(100.0 * removed / total)
        for asset_type in (KIND, *EMBEDDING_ASSET_TYPES):
            self.assets.written(scope, asset_type)
        return {"index_name": name, "removed": removed}


def _last_per_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({r["id"]: r for r in rows}.values())


def _buckets(summary: dict[str, Any], dimension: str) -> dict[str, int]:
    """``value -> count`` of one dimension of an ``AssetService.summary`` answer."""
    for agg in summary.get("aggregations") or []:
        if agg.get("dimension") == dimension:
            return {str(b["key"]): int(b["doc_count"]) for b in agg.get("buckets") or []}
    return {}


__all__ = ["KIND", "VECTOR_FIELD", "EmbeddingService", "VectorIndexError"]
