"""2-D UMAP maps of an embedding space (FACTS 7.4, ``create_umap``): fit on a sample, place the rest.

:func:`fit_map` draws a seeded random sample of at most ``train_size`` vectors, fits umap-learn on it and places
every other vector on the fitted map in batches, the way umap-learn's ``transform`` does; :func:`transform_map`
places new vectors on a map saved by an earlier fit (``transform_only``). A map is saved as bytes (an ``.npz`` of
the sample, its 2-D points and the fit's constants) for the caller to keep in a blob.

Why the nearest neighbours are exact and computed here (FAISS's flat index) instead of by umap-learn's own
NN-descent: umap-learn's neighbour search is numba code compiled in every new process, and that compile alone took
45-70 s of CPU on this machine, more than the whole budget for a 100,000-vector map. An exact search of a
10,000-vector sample is a few BLAS calls (about 1 s of CPU per 10,000 queries at 512 dimensions) and gives
umap-learn the same kind of graph (exact instead of approximate) through ``precomputed_knn``.

Why new vectors are placed here instead of by ``UMAP.transform``: that needs pynndescent's index (the compile
above), initialises points in a Python loop over rows (about 2 s per 10,000 vectors) and would have to be saved
with pickle. :meth:`_Layout.place` is the same computation for the Euclidean metric, with umap-learn's own
membership and layout functions, vectorised, and its state is plain arrays.

Progress: ``progress(stage, fraction)`` is called between stages (sampling, neighbours, fit) and after every
batch of placed vectors; ``fraction`` weighs the fit like :data:`FIT_WEIGHT` placed vectors per sampled vector.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "TRANSFORM_BATCH",
    "UmapError",
    "UmapMap",
    "UmapParams",
    "fit_map",
    "transform_map",
]

#: vectors placed at a time (each batch: one neighbour search and :data:`TRANSFORM_EPOCHS` epochs)
TRANSFORM_BATCH = 10_000
#: progress weight of one sampled (fitted) vector relative to one transformed vector
FIT_WEIGHT = 3.0
#: fewer vectors than this cannot be laid out (umap-learn's spectral initialisation needs a few points)
MIN_VECTORS = 4
#: epochs when placing new vectors: umap-learn's own choice for transforming more than 10,000 vectors at once
TRANSFORM_EPOCHS = 30
_FORMAT = "scenebase-umap-1"
#: the fit's constants saved with a map, in this order
_CONSTANTS = ("a", "b", "n_neighbors", "local_connectivity", "repulsion_strength", "initial_alpha", "negative_rate")

FloatArray = npt.NDArray[np.float32]
Progress = Callable[[str, float], None]


class UmapError(ValueError):
    """Vectors or parameters a map cannot be made from, or a saved reducer that cannot be used."""


@dataclass(frozen=True, slots=True)
class UmapParams:
    """The seed's ``create_umap`` parameters (defaults as there) plus the epochs of the fit and the sample's seed.

    ``n_epochs`` = 200 is umap-learn's own choice for large data; for samples of at most 10,000 vectors umap-learn
    would pick 500, which costs 2.5 times as long for a map that looks the same.
    """

    n_neighbors: int = 20
    min_dist: float = 0.3
    train_size: int = 10_000
    n_epochs: int = 200
    seed: int = 0

    def validated(self) -> UmapParams:
        for name in ("n_neighbors", "train_size", "n_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "n_neighbors" else 1):
                raise UmapError(f"{name} must be an integer >= {2 if name == 'n_neighbors' else 1}, got {value!r}")
        if isinstance(self.min_dist, bool) or not isinstance(self.min_dist, int | float):
            raise UmapError(f"min_dist must be a number, got {self.min_dist!r}")
        if not 0.0 <= float(self.min_dist) <= 1.0:
            raise UmapError(f"min_dist must be between 0 and 1, got {self.min_dist!r}")
        if self.train_size < MIN_VECTORS:
            raise UmapError(f"train_size must be at least {MIN_VECTORS}, got {self.train_size}")
        return self


@dataclass(frozen=True, slots=True)
class UmapMap:
    """A fitted map: one (x, y) per input vector, which rows were the training sample, and the saved reducer."""

    coordinates: FloatArray
    train_rows: npt.NDArray[np.int64]
    reducer: bytes


def fit_map(vectors: npt.ArrayLike, params: UmapParams | None = None, progress: Progress | None = None) -> UmapMap:
    """Fit a 2-D UMAP on a random sample of at most ``params.train_size`` of ``vectors`` (n, d) and place them all."""
    params = (params or UmapParams()).validated()
    data = _checked_vectors(vectors)
    report = progress or _no_progress
    n = data.shape[0]
    if n < MIN_VECTORS:
        raise UmapError(f"a map needs at least {MIN_VECTORS} vectors, got {n}")
    rng = np.random.default_rng(params.seed)
    train_rows = np.sort(rng.choice(n, size=min(n, params.train_size), replace=False)).astype(np.int64)
    rest_rows = np.setdiff1d(np.arange(n, dtype=np.int64), train_rows, assume_unique=True)
    total_work = FIT_WEIGHT * len(train_rows) + len(rest_rows)
    report(f"sampled {len(train_rows)} of {n} vectors for the fit", 0.0)

    umap = _import_umap()
    train = np.ascontiguousarray(data[train_rows])
    neighbours = min(params.n_neighbors, len(train_rows) - 1)
    index = ExactNeighbours(train)
    knn_rows, knn_distances = index.query(train, neighbours)
    report("nearest neighbours of the sample found", 0.1 * FIT_WEIGHT * len(train_rows) / total_work)
    reducer = umap.UMAP(
        n_neighbors=neighbours,
        min_dist=float(params.min_dist),
        n_epochs=params.n_epochs,
        precomputed_knn=(knn_rows, knn_distances),
    )
    with warnings.catch_warnings():
        # "knn_search_index is not an NNDescent object": new vectors are placed here, not by umap-learn
        warnings.filterwarnings("ignore", message=r".*knn_search_index.*", category=UserWarning)
        # well separated clusters make a disconnected graph; the layout handles it (components are placed apart)
        warnings.filterwarnings("ignore", message=r"Graph is not fully connected", category=UserWarning)
        train_coordinates = np.asarray(reducer.fit_transform(train), dtype=np.float32)
    layout = _Layout.of(reducer, train, train_coordinates, index)
    done = FIT_WEIGHT * len(train_rows)
    report(f"fitted on {len(train_rows)} vectors", done / total_work)

    coordinates = np.empty((n, 2), dtype=np.float32)
    coordinates[train_rows] = train_coordinates
    for start in range(0, len(rest_rows), TRANSFORM_BATCH):
        rows = rest_rows[start : start + TRANSFORM_BATCH]
        coordinates[rows] = layout.place(data[rows])
        done += len(rows)
        report(f"placed {start + len(rows)} of {len(rest_rows)} other vectors", done / total_work)
    return UmapMap(coordinates, train_rows, layout.to_bytes())


def transform_map(reducer: bytes, vectors: npt.ArrayLike, progress: Progress | None = None) -> FloatArray:
    """Place ``vectors`` (n, d) on a map saved by :func:`fit_map` (its ``reducer`` bytes); (n, 2) float32."""
    data = _checked_vectors(vectors)
    layout = _Layout.from_bytes(reducer)
    if data.shape[1] != layout.sample.shape[1]:
        raise UmapError(
            f"the saved map was fitted on {layout.sample.shape[1]}-dimensional vectors, got {data.shape[1]} dimensions"
        )
    report = progress or _no_progress
    out = np.empty((data.shape[0], 2), dtype=np.float32)
    for start in range(0, data.shape[0], TRANSFORM_BATCH):
        stop = min(data.shape[0], start + TRANSFORM_BATCH)
        out[start:stop] = layout.place(data[start:stop])
        report(f"placed {stop} of {data.shape[0]} vectors", stop / data.shape[0])
    return out


class ExactNeighbours:
    """Exact Euclidean k-nearest-neighbour search over a fixed sample (FAISS flat index, built on first use)."""

    def __init__(self, vectors: FloatArray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._index: Any = None

    def query(self, points: npt.ArrayLike, k: int) -> tuple[npt.NDArray[np.int32], FloatArray]:
        """(rows, distances) of the ``k`` nearest sample vectors of each point, nearest first."""
        if self._index is None:
            import faiss

            self._index = faiss.IndexFlatL2(self.vectors.shape[1])
            self._index.add(self.vectors)
        squared, rows = self._index.search(np.ascontiguousarray(points, dtype=np.float32), k)
        np.maximum(squared, 0.0, out=squared)  # rounding can make a zero distance slightly negative
        return rows.astype(np.int32), np.sqrt(squared, dtype=np.float32)


@dataclass
class _Layout:
    """What placing new vectors on a fitted map needs: the sample, its 2-D points and the fit's constants. Saved
    as an ``.npz`` of plain arrays (no pickle: loading it runs no code)."""

    sample: FloatArray
    embedding: FloatArray
    constants: npt.NDArray[np.float64]  # see _CONSTANTS
    index: ExactNeighbours

    @classmethod
    def of(cls, reducer: Any, sample: FloatArray, embedding: FloatArray, index: ExactNeighbours) -> _Layout:
        values = [reducer._a, reducer._b, reducer._n_neighbors, reducer.local_connectivity,
                  reducer.repulsion_strength, reducer._initial_alpha, reducer.negative_sample_rate]  # fmt: skip
        return cls(sample, embedding, np.array(values, dtype=np.float64), index)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, format=np.array(_FORMAT), sample=self.sample, embedding=self.embedding,
                 constants=self.constants)  # fmt: skip
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> _Layout:
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
                if str(saved["format"]) != _FORMAT:
                    raise UmapError("the saved map is not in a format this version can read; fit the map again")
                sample, embedding, constants = saved["sample"], saved["embedding"], saved["constants"]
        except UmapError:
            raise
        except Exception as exc:
            raise UmapError(f"the saved map cannot be read ({type(exc).__name__}: {exc})") from exc
        if sample.ndim != 2 or embedding.shape != (sample.shape[0], 2) or constants.shape != (len(_CONSTANTS),):
            raise UmapError(f"the saved map is inconsistent: sample {sample.shape}, points {embedding.shape}")
        return cls(sample.astype(np.float32), embedding.astype(np.float32), constants, ExactNeighbours(sample))

    def place(self, vectors: FloatArray, seed: int = 42) -> FloatArray:
        """umap-learn's ``transform`` for the Euclidean metric: fuzzy memberships of each vector's nearest sample
        vectors, start at the nearest one's point (or the membership-weighted mean), then :data:`TRANSFORM_EPOCHS`
        epochs of the layout optimisation with the sample's points held fixed. Vectorised where umap-learn loops
        over rows in Python (about 2 s per 10,000 vectors)."""
        from umap.layouts import optimize_layout_euclidean
        from umap.umap_ import compute_membership_strengths, make_epochs_per_sample, smooth_knn_dist

        a, b, n_neighbors, local_connectivity, gamma, initial_alpha, negative_rate = self.constants
        k = min(int(n_neighbors), self.sample.shape[0])
        n = vectors.shape[0]
        rows, distances = self.index.query(vectors, k)
        sigmas, rhos = smooth_knn_dist(distances, float(k), local_connectivity=max(0.0, local_connectivity - 1.0))
        _, cols, strengths, _ = compute_membership_strengths(rows, distances, sigmas, rhos, bipartite=True)
        cols, strengths = cols.reshape(n, k), strengths.reshape(n, k).astype(np.float32)
        start = np.einsum("nk,nkd->nd", strengths, self.embedding[cols]) / strengths.sum(axis=1, keepdims=True)
        exact = strengths == 1.0  # as umap-learn: a vector with a membership of 1 starts at that sample's point
        has_exact = exact.any(axis=1)
        start[has_exact] = self.embedding[cols[has_exact, exact[has_exact].argmax(axis=1)]]
        start = np.ascontiguousarray(start, dtype=np.float32)

        keep = strengths.ravel() >= strengths.max() / TRANSFORM_EPOCHS  # umap-learn drops edges sampled < once
        head = np.repeat(np.arange(n, dtype=np.int32), k)[keep]
        tail = cols.ravel()[keep].astype(np.int32)
        epochs_per_sample = make_epochs_per_sample(strengths.ravel()[keep].astype(np.float64), TRANSFORM_EPOCHS)
        rng_state = np.random.RandomState(seed).randint(-(2**31) + 1, 2**31 - 1, 3).astype(np.int64)
        placed = optimize_layout_euclidean(
            start,
            self.embedding.copy(),  # the sample's points are the fixed tail; umap-learn copies them too
            head,
            tail,
            TRANSFORM_EPOCHS,
            self.sample.shape[0],
            epochs_per_sample,
            float(a),
            float(b),
            rng_state,
            float(gamma),
            float(initial_alpha) / 4.0,
            float(negative_rate),
            True,  # parallel epochs (numba threads), as umap-learn without a random_state
        )
        return np.asarray(placed, dtype=np.float32)


# --------------------------------------------------------------------------------------------------------------------
# internals


def _no_progress(stage: str, fraction: float) -> None:
    del stage, fraction


def _import_umap() -> Any:
    """umap-learn, imported on first use (numba makes it slow); its warning that TensorFlow (ParametricUMAP) is
    missing is expected and silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ImportWarning)
        import umap
    return umap


def _checked_vectors(vectors: npt.ArrayLike) -> FloatArray:
    data = np.asarray(vectors)
    if data.dtype.kind not in "fiu" or data.dtype == np.bool_:
        raise UmapError(f"vectors must be numbers, got dtype {data.dtype}")
    if data.ndim != 2 or data.shape[1] == 0:
        raise UmapError(f"vectors must be a 2-D array (n, d) with d > 0, got shape {data.shape}")
    data = np.asarray(data, dtype=np.float32)
    if not np.isfinite(data).all():
        bad = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        raise UmapError(f"vector #{bad} contains NaN or infinite values")
    return data
