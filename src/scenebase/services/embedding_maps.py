"""What is computed from embedding spaces: UMAP maps (FACTS 7.4), set comparisons (FACTS 5.6) and the offline
``histogram`` model of ``model_inference`` (FACTS 12), each as a job.

* ``umap_creation``: reads the space's vectors of the chosen assets, fits a map on a sample (or places them on the
  saved map with ``transform_only``), stores ``umap.<index_name>.coordinates = [x, y]`` on every asset and keeps
  the map in the blob store (``embedding_maps/<org>/<asset type>/<index_name>.npz``) for later transforms.
* ``compare_sets``: the sliced Wasserstein distance between every pair of sets in a space; one ``sets_comparisons``
  document per pair (``{id, sets, index_name, metric_type, metric_params, value, std, counts, timestamp}``),
  replaced when the same pair is compared again in the same space; ``comparison_matrix`` returns them.
* ``image_inference`` with ``model="histogram"``: the histogram embedding of every chosen image, added through the
  embeddings service (space ``similarity_<type>_histogram_intensities``) and indexed for similarity search.

Vectors are read through :class:`~scenebase.services.embeddings.EmbeddingService`, never from its storage.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np

from scenebase.domain.embeddings import EMBEDDING_ASSET_TYPES, InvalidVector, check_index_name
from scenebase.domain.set_distance import (
    DEFAULT_NUM_PROJECTIONS,
    DEFAULT_NUM_SEEDS,
    SetDistanceError,
    pairwise_sliced_wasserstein,
)
from scenebase.domain.timeutil import now_iso
from scenebase.domain.umap_maps import UmapError, UmapParams, fit_map, transform_map
from scenebase.media.budget import DecodeBusy
from scenebase.media.histogram_embedding import HISTOGRAM_MODEL, HISTOGRAM_VERSION, histogram_embedding
from scenebase.media.images import ImageDecodeError
from scenebase.services.assets import AssetService
from scenebase.services.embeddings import MAX_ADD_BATCH, EmbeddingService
from scenebase.services.errors import InvalidArgument, NotFound, ServiceError
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.kinds.images import MAX_IMAGE_BYTES
from scenebase.services.media import MediaService
from scenebase.services.sets import SetService
from scenebase.services.similarity import SimilarityService
from scenebase.storage.blobs import BlobNotFound, BlobStore
from scenebase.storage.scope import Scope

COMPARISONS = "sets_comparisons"
METRICS = ("wasserstein",)
#: most vectors one map is made of (1,000,000 x 512 float32 = 2 GB in memory)
MAX_MAP_VECTORS = 1_000_000
#: models of FACTS 12; only these are built here
MODELS = ("histogram", "mask_rcnn", "stardist")
BUILT_MODELS = ("histogram",)
#: images read and embedded per batch of the histogram job (and written per add)
INFERENCE_BATCH = 256
INFERENCE_THREADS = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
#: assets whose coordinates are written per catalog transaction
WRITE_BATCH = 10_000
_LIMITS = {"num_projections": 10_000, "num_seeds": 1_000}


def _bad(message: str, resource: str = "embeddings") -> InvalidArgument:
    return InvalidArgument(message, resource=resource)


def map_key(scope: Scope, asset_type: str, index_name: str) -> str:
    return f"embedding_maps/{scope.org_id}/{asset_type}/{index_name}.npz"


class EmbeddingMapService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("umap_creation", "compare_sets", "image_inference")

    def __init__(
        self,
        assets: AssetService,
        embeddings: EmbeddingService,
        similarity: SimilarityService,
        sets: SetService,
        media: MediaService,
        blobs: BlobStore,
        jobs: JobService,
    ) -> None:
        self.assets = assets
        self.embeddings = embeddings
        self.similarity = similarity
        self.sets = sets
        self.media = media
        self.blobs = blobs
        self.jobs = jobs

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("umap_creation", self._umap_job)
        registry.register("compare_sets", self._compare_job)
        registry.register("image_inference", self._inference_job)

    # ------------------------------------------------------------------ UMAP maps

    def create_umap(
        self,
        scope: Scope,
        asset_type: str,
        index_name: str,
        search: dict[str, Any] | None,
        params: UmapParams,
        transform_only: bool,
    ) -> str:
        """Start a ``umap_creation`` job; everything is checked here so that the job only fails on data."""
        space = self._space(scope, asset_type, index_name)
        try:
            params.validated()
        except UmapError as e:
            raise _bad(str(e)) from None
        if search:
            self.assets.parse_for(scope, asset_type, search)
        if transform_only and not self.blobs.exists(map_key(scope, asset_type, space)):
            raise _bad(f"no saved map of {asset_type} in {space!r} to transform with; fit one first")
        job_params = {"asset_type": asset_type, "index_name": space, "search": search or None,
                      "n_neighbors": params.n_neighbors, "min_dist": params.min_dist, "train_size": params.train_size,
                      "transform_only": bool(transform_only)}  # fmt: skip
        row = self.jobs.submit(scope, "umap_creation", job_params, description=f"UMAP map of {space}",
                               asset_type=asset_type)  # fmt: skip
        return str(row["id"])

    def _space(self, scope: Scope, asset_type: str, index_name: Any) -> str:
        if asset_type not in EMBEDDING_ASSET_TYPES:
            raise _bad(f"asset_type must be one of {list(EMBEDDING_ASSET_TYPES)}, got {asset_type!r}")
        if not isinstance(index_name, str) or not index_name:
            raise _bad("index_name is required")
        try:
            space = check_index_name(index_name)
        except InvalidVector as e:
            raise _bad(str(e)) from None
        if self.embeddings.space_dim(scope, space) is None:
            raise NotFound(f"no embedding space {index_name!r}", resource="embeddings")
        return space

    def _umap_job(self, ctx: JobContext) -> dict[str, Any]:
        p, scope = ctx.params, ctx.scope
        asset_type, space = str(p["asset_type"]), str(p["index_name"])
        ctx.progress(0.0, stage=f"reading the vectors of {asset_type} in {space}")
        ids, vectors = self.embeddings.vectors(scope, space, None, p.get("search"), asset_type, MAX_MAP_VECTORS)
        if not ids:
            raise _bad(f"no {asset_type} matching the search have an embedding in {space!r}")

        def report(stage: str, fraction: float) -> None:
            ctx.progress(5.0 + 80.0 * fraction, stage=stage)

        key = map_key(scope, asset_type, space)
        try:
            if p.get("transform_only"):
                coordinates, trained = transform_map(self.blobs.get(key), vectors, report), 0
            else:
                params = UmapParams(int(p["n_neighbors"]), float(p["min_dist"]), int(p["train_size"]))
                fitted = fit_map(vectors, params, report)
                self.blobs.put(key, fitted.reducer, "application/octet-stream")
                coordinates, trained = fitted.coordinates, len(fitted.train_rows)
        except UmapError as e:
            raise _bad(f"{space}: {e}") from None
        except BlobNotFound:
            gone = f"the saved map of {asset_type} in {space!r} is gone; fit a new one"
            raise NotFound(gone, resource=asset_type) from None
        written = self._write_coordinates(ctx, asset_type, space, ids, coordinates)
        return {"index_name": space, "asset_type": asset_type, "mapped": written, "trained_on": trained,
                "transform_only": bool(p.get("transform_only"))}  # fmt: skip

    def _write_coordinates(
        self, ctx: JobContext, asset_type: str, space: str, ids: list[str], coordinates: np.ndarray
    ) -> int:
        """Each asset's point as ``umap.<space>.coordinates``, set in place on many assets at once: no document is
        read or rewritten, only that field's two index rows (the web app's map finds mapped assets with an
        ``exists`` filter on it)."""
        written = 0
        for start in range(0, len(ids), WRITE_BATCH):
            ctx.check_cancelled()
            chunk = ids[start : start + WRITE_BATCH]
            points = dict(zip(chunk, coordinates[start : start + WRITE_BATCH].tolist(), strict=True))

            def write(conn: Any, points: dict[str, Any] = points) -> int:
                alive = self.assets.repo.pks_for(conn, ctx.scope, asset_type, list(points))  # deleted meanwhile
                kept = {k: v for k, v in points.items() if k in alive}
                self.assets.repo.set_field_many(conn, ctx.scope, asset_type, ("umap", space, "coordinates"), kept)
                return len(kept)

            written += self.assets.repo.catalog.write_retrying(write)
            ctx.progress(85.0 + 15.0 * (start + len(chunk)) / len(ids), stage=f"stored {written} points")
        self.assets.written(ctx.scope, asset_type)
        return written

    # ------------------------------------------------------------------ set comparisons

    def compare_sets(self, scope: Scope, set_ids: Any, index_name: Any, metric_type: Any, metric_params: Any) -> str:
        """Start a ``compare_sets`` job over every pair of ``set_ids`` in the space ``index_name``."""
        if not isinstance(set_ids, list) or not all(isinstance(s, str) and s for s in set_ids):
            raise _bad("sets must be a list of set ids", COMPARISONS)
        unique = list(dict.fromkeys(set_ids))
        if len(unique) < 2:
            raise _bad(f"at least two different sets are needed for a comparison, got {unique}", COMPARISONS)
        metric = metric_type or "wasserstein"
        if metric not in METRICS:
            raise _bad(f"unknown metric_type {metric!r}; metrics: {list(METRICS)}", COMPARISONS)
        settings = _metric_params(metric_params)
        if not isinstance(index_name, str) or not index_name:
            raise _bad("index_name is required", COMPARISONS)
        docs = [self.sets.get(scope, s) for s in unique]
        types = {d.get("assets_type") for d in docs}
        asset_type = docs[0].get("assets_type")
        if len(types) > 1 or asset_type not in EMBEDDING_ASSET_TYPES:
            raise _bad(f"sets to compare must all hold images or all hold objects, got {sorted(map(str, types))}",
                       COMPARISONS)  # fmt: skip
        space = self._space(scope, str(asset_type), index_name)
        for doc in docs:
            if self.sets.member_count(scope, doc) == 0:
                raise _bad(f"set {doc['id']!r} ({doc.get('name')!r}) is empty: it has no points to compare",
                           COMPARISONS)  # fmt: skip
        params = {"sets": [d["id"] for d in docs], "index_name": space, "asset_type": asset_type,
                  "metric_type": metric, "metric_params": settings}  # fmt: skip
        row = self.jobs.submit(scope, "compare_sets", params, description=f"compare {len(docs)} sets in {space}",
                               asset_type=COMPARISONS)  # fmt: skip
        return str(row["id"])

    def _compare_job(self, ctx: JobContext) -> dict[str, Any]:
        p, scope = ctx.params, ctx.scope
        space, asset_type, settings = str(p["index_name"]), str(p["asset_type"]), dict(p["metric_params"])
        clouds: list[np.ndarray] = []
        for n, set_id in enumerate(p["sets"]):
            ctx.progress(10.0 * n / len(p["sets"]), stage=f"reading the vectors of set {set_id!r}")
            members = self.sets.within(scope, set_id, None, ids_only=True)
            ids, vectors = (self.embeddings.vectors(scope, space, members, None, asset_type, MAX_MAP_VECTORS)
                            if members else ([], None))  # fmt: skip
            if not ids or vectors is None:
                raise _bad(f"set {set_id!r} has no {asset_type} with an embedding in {space!r}", COMPARISONS)
            clouds.append(vectors)
        ctx.progress(10.0, stage=f"comparing {len(clouds)} sets ({len(clouds) * (len(clouds) - 1) // 2} pairs)")
        try:
            pairs = pairwise_sliced_wasserstein(
                clouds, settings["num_projections"], settings["num_seeds"], names=[f"set {s!r}" for s in p["sets"]],
                progress=lambda fraction: ctx.progress(10.0 + 85.0 * fraction),
            )  # fmt: skip
        except SetDistanceError as e:
            raise _bad(str(e), COMPARISONS) from None
        now = now_iso()
        docs = []
        for pair in pairs:
            a, b = p["sets"][pair.first], p["sets"][pair.second]
            docs.append({"id": comparison_id(space, a, b), "timestamp": now, "sets": [a, b], "index_name": space,
                         "metric_type": p["metric_type"], "metric_params": settings, "value": pair.mean,
                         "std": pair.std, "counts": [len(clouds[pair.first]), len(clouds[pair.second])],
                         "job_id": ctx.id})  # fmt: skip
        self.assets.put(scope, COMPARISONS, docs, mode="replace")
        return {"comparisons": [d["id"] for d in docs], "index_name": space}

    def comparison_matrix(self, scope: Scope, search: Any, index_name: Any) -> list[dict[str, Any]]:
        """The stored pair documents matching ``search`` (a search over ``sets_comparisons``), of ``index_name``
        when given; newest first is not promised, pairs come in catalog order."""
        query = dict(search or {})
        if index_name is not None:
            if not isinstance(index_name, str) or not index_name:
                raise _bad("index_name must be a non-empty string", COMPARISONS)
            query["filters"] = [*(query.get("filters") or []), {"field": "index_name", "values": [index_name]}]
        out: list[dict[str, Any]] = []
        for batch in self.assets.scan(scope, COMPARISONS, query, ids_only=False):
            out.extend(batch)
        return out

    # ------------------------------------------------------------------ model inference (histogram)

    def model_inference(
        self,
        scope: Scope,
        asset_type: str,
        ids: Any,
        search: Any,
        model: Any,
        obtain: dict[str, bool],
        additional_params: Any,
    ) -> str:
        """Start an ``image_inference`` job. Only the ``histogram`` model is built: it computes embeddings."""
        name = "mask_rcnn" if model == "mrcnn" else model
        if name not in MODELS:
            raise _bad(f"unknown model {model!r}; models: {list(MODELS)}", "models")
        if name not in BUILT_MODELS:
            raise _bad(f"model {name!r} is not available on this server yet; built: {list(BUILT_MODELS)}", "models")
        if asset_type not in EMBEDDING_ASSET_TYPES:
            raise _bad(f"asset_type must be one of {list(EMBEDDING_ASSET_TYPES)}, got {asset_type!r}", "models")
        if ids is None and search is None:
            raise _bad("give ids or a search", "models")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)):
            raise _bad("ids must be a list of asset ids", "models")
        if search is not None:
            self.assets.parse_for(scope, asset_type, search)
        if not obtain.get("obtain_embeddings"):
            raise _bad("the histogram model only computes embeddings: pass obtain_embeddings=True", "models")
        ignored = sorted(k for k, v in obtain.items() if v and k != "obtain_embeddings")
        similarity_ingest = (additional_params or {}).get("similarity_ingest", True) if isinstance(
            additional_params, dict) else True  # fmt: skip
        params = {"asset_type": asset_type, "ids": ids, "search": search, "model": name, "ignored": ignored,
                  "similarity_ingest": bool(similarity_ingest)}  # fmt: skip
        row = self.jobs.submit(scope, "image_inference", params, description=f"{name} embeddings of {asset_type}",
                               asset_type=asset_type)  # fmt: skip
        return str(row["id"])

    def _inference_job(self, ctx: JobContext) -> dict[str, Any]:
        p, scope = ctx.params, ctx.scope
        asset_type = str(p["asset_type"])
        for option in p.get("ignored") or []:
            ctx.note(f"{option} is not computed by the histogram model (it only gives embeddings)")
        ids = self.assets.resolve_ids(scope, asset_type, p.get("ids"), p.get("search"))
        ctx.progress(0.0, stage=f"histogram embeddings of {len(ids)} {asset_type}")
        added: list[str] = []
        failed: list[str] = []
        with ThreadPoolExecutor(INFERENCE_THREADS, thread_name_prefix="scenebase-histogram") as pool:
            for start in range(0, len(ids), min(INFERENCE_BATCH, MAX_ADD_BATCH)):
                ctx.check_cancelled()
                chunk = ids[start : start + INFERENCE_BATCH]
                docs = self.assets.get_many(scope, asset_type, chunk)
                present = []
                for asset_id in chunk:
                    if asset_id in docs:
                        present.append(asset_id)
                    else:
                        failed.append(asset_id)
                        ctx.item_failed(asset_id, f"no {asset_type} with this id")
                futures = {i: pool.submit(self._histogram_of, asset_type, docs[i]) for i in present}
                metas, rows = [], []
                for asset_id, future in futures.items():
                    try:
                        rows.append(future.result())
                    except (ImageDecodeError, DecodeBusy, ServiceError) as e:
                        failed.append(asset_id)
                        ctx.item_failed(asset_id, str(getattr(e, "message", None) or e))
                        continue
                    metas.append({"asset_id": asset_id, "media_type": asset_type, "model": HISTOGRAM_MODEL,
                                  "version": HISTOGRAM_VERSION})  # fmt: skip
                if metas:
                    added.extend(self.embeddings.add(scope, metas, np.stack(rows)))
                ctx.progress(95.0 * (start + len(chunk)) / max(1, len(ids)))
        index_job = self.similarity.bulk_index(scope, added, None) if added and p.get("similarity_ingest") else None
        return {"model": HISTOGRAM_MODEL, "version": HISTOGRAM_VERSION, "embeddings": len(added), "failed": failed,
                "index_job_id": index_job}  # fmt: skip

    def _histogram_of(self, asset_type: str, doc: dict[str, Any]) -> np.ndarray:
        with self.media.open_original(asset_type, doc) as media:
            data = media.read_bytes(MAX_IMAGE_BYTES)
        return histogram_embedding(data, name=str(doc["id"]))


def comparison_id(index_name: str, first: str, second: str) -> str:
    """The id of a pair's comparison document: the same for (a, b) and (b, a) in one space."""
    key = json.dumps({"index_name": index_name, "sets": sorted([first, second])}, sort_keys=True)
    return "cmp_" + hashlib.md5(key.encode()).hexdigest()


def _metric_params(given: Any) -> dict[str, int]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise _bad("metric_params must be an object", COMPARISONS)
    unknown = sorted(set(given) - set(_LIMITS))
    if unknown:
        raise _bad(f"unknown metric_params {unknown}; wasserstein takes {sorted(_LIMITS)}", COMPARISONS)
    out = {"num_projections": DEFAULT_NUM_PROJECTIONS, "num_seeds": DEFAULT_NUM_SEEDS}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _LIMITS[name]:
            raise _bad(f"metric_params.{name} must be an integer from 1 to {_LIMITS[name]}, got {value!r}",
                       COMPARISONS)  # fmt: skip
        out[name] = value
    return out
