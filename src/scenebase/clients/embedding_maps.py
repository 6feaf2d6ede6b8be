"""UMAP maps, set comparisons and model inference (FACTS 5.6, 7.4, 12): create_umap, compare_sets,
get_comparison_matrix and model_inference (model='histogram' with obtain_embeddings=True)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scenebase.clients.core import ClientCore
from scenebase.errors import EmbeddingError, InvalidArgumentsError, JobError, SetsError

#: models of FACTS 12 that this client knows but the server does not compute yet
NOT_BUILT_MODELS = ("mask_rcnn", "mrcnn", "stardist")


class EmbeddingMapsMixin(ClientCore):
    def create_umap(
        self,
        asset_type: str,
        index_name: str,
        search_dic: dict[str, Any] | None = None,
        n_neighbors: int = 20,
        min_dist: float = 0.3,
        train_size: int = 10000,
        progress_callback: Callable[..., Any] | None = None,
        transform_only: bool = False,
        wait_for_completion: bool = False,
    ) -> str:
        """Map the space ``index_name`` of ``asset_type`` to 2-D with UMAP (a job; returns its id): fitted on a
        random sample of ``train_size`` vectors of the assets matching ``search_dic`` (all when empty), the rest
        placed on the fitted map; every asset gets ``umap.<index_name>.coordinates = [x, y]``. ``transform_only``
        places the assets on the map saved by the last fit instead of fitting a new one."""
        if not index_name:
            raise InvalidArgumentsError("index_name is required")
        body = {"search": search_dic or {}, "n_neighbors": n_neighbors, "min_dist": min_dist,
                "index_name": index_name, "asset_type": asset_type, "train_size": train_size,
                "transform_only": transform_only}  # fmt: skip
        response = self._request("POST", "/v1/embeddings/create_umap_from_assets/", json=body, error=EmbeddingError)
        job_id = str(response["job_id"])
        self._wait(job_id, wait_for_completion, progress_callback=progress_callback)
        return job_id

    def compare_sets(
        self,
        sets: list[str],
        index_name: str,
        metric_type: str | None = None,
        metric_params: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
    ) -> str:
        """Compare every pair of ``sets`` in the embedding space ``index_name`` (a job; returns its id): the
        sliced Wasserstein distance (``metric_type`` 'wasserstein', ``metric_params`` num_projections 25 and
        num_seeds 50 by default), mean and spread over seeds; read the results with ``get_comparison_matrix``."""
        if not sets or len(set(sets)) < 2:
            raise InvalidArgumentsError(f"compare_sets needs at least two different sets, got {sets!r}")
        if not index_name:
            raise InvalidArgumentsError("index_name is required")
        body = {"sets": list(sets), "index_name": index_name, "metric_type": metric_type,
                "metric_params": metric_params}  # fmt: skip
        job_id = str(self._request("POST", "/v1/sets_comparisons/compare_sets/", json=body, error=SetsError)["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    def get_comparison_matrix(
        self, search: dict[str, Any] | None = None, index_name: str | None = None
    ) -> list[dict[str, Any]]:
        """The stored set comparisons (one document per pair: sets, index_name, metric_type, metric_params,
        value, std, counts) matching ``search``, of ``index_name`` when given."""
        body = {"search": search, "index_name": index_name}
        return list(self._request("POST", "/v1/sets_comparisons/comparison_matrix/", json=body, error=SetsError))

    def model_inference(
        self,
        asset_type: str = "images",
        ids: list[str] | None = None,
        search: dict[str, Any] | None = None,
        model: str = "mask_rcnn",
        obtain_mask: bool = False,
        obtain_bbox: bool = False,
        obtain_object_entities: bool = False,
        obtain_embeddings: bool = False,
        threshold: float | None = None,
        classes_of_interest: list[str] | None = None,
        wait_for_completion: bool = False,
        progress_callback: Callable[..., Any] | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> str:
        """Run a model over images or objects (a job; returns its id). Built: ``model='histogram'`` with
        ``obtain_embeddings=True``, a colour and intensity histogram embedding (256 values) added to the space
        ``similarity_<asset_type>_histogram_intensities`` and indexed for similarity search (pass
        ``additional_params={'similarity_ingest': False}`` to skip the index). mask_rcnn and stardist raise
        NotImplementedError."""
        if model in NOT_BUILT_MODELS:
            raise NotImplementedError(f"model_inference with model={model!r} is not built yet; model='histogram' is")
        if ids is None and search is None:
            raise InvalidArgumentsError("give ids or a search")
        body: dict[str, Any] = {**(additional_params or {}), "model": model, "asset_type": asset_type, "ids": ids,
                                "search": search, "obtain_mask": obtain_mask, "obtain_bbox": obtain_bbox,
                                "obtain_object_entities": obtain_object_entities,
                                "obtain_embeddings": obtain_embeddings}  # fmt: skip
        if threshold is not None:
            body["threshold"] = threshold
        if classes_of_interest is not None:
            body["classes_of_interest"] = classes_of_interest
        job_id = str(self._request("POST", "/v1/models/model_inference/", json=body, error=JobError)["job_id"])
        self._wait(job_id, wait_for_completion, progress_callback=progress_callback)
        return job_id
