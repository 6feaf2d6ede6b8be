"""Sliced Wasserstein distance between sets of embeddings (FACTS 5.6, ``compare_sets``).

For one seed: draw ``num_projections`` random directions uniformly on the unit sphere (normal samples, normalised),
project both point clouds onto each direction and take the 1-D Wasserstein-1 distance between the two projected
empirical distributions (uniform weights); the seed's distance is the mean over directions. ``compare`` repeats
this for ``num_seeds`` seeds and reports the mean and the population standard deviation over seeds. This is
POT's ``ot.sliced_wasserstein_distance(a, b, projections=theta, p=1)`` for each seed's ``theta``
(tests/test_set_distance.py checks it).

The 1-D distance is exact for clouds of different sizes n and m: W1 = integral over t in (0, 1] of
|F^-1(t) - G^-1(t)|, where both quantile functions are step functions with breaks at k/n and l/m. The breaks are
merged once per pair in integer arithmetic (units of 1/(n*m)), which gives, for every piece, the index of the
sorted sample on each side and the piece's length; a piece's contribution is then a gather and a dot product for
every direction at once. No per-direction sort of the merged clouds is needed: each set's projections are sorted
once per seed and reused by every pair the set is in.

Memory is bounded: vectors are projected in row blocks (float64 for accuracy, the float32 input is never copied
whole), and directions are processed in chunks of whole seeds sized to :data:`PROJECTION_BUDGET_BYTES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_NUM_PROJECTIONS",
    "DEFAULT_NUM_SEEDS",
    "PairDistance",
    "SetDistanceError",
    "pairwise_sliced_wasserstein",
    "random_projections",
    "sliced_wasserstein",
]

DEFAULT_NUM_PROJECTIONS = 25
DEFAULT_NUM_SEEDS = 50
#: the sorted projections of all sets held at once (a chunk of seeds); bigger chunks reuse each pair's merged breaks
PROJECTION_BUDGET_BYTES = 256 * 1024 * 1024
_ROW_BLOCK = 8192  # rows projected at a time (float64 copy of a block, not of the whole set)
_COLUMN_BLOCK = 16  # directions gathered at a time per pair: a (16, n+m) float64 temporary

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class SetDistanceError(ValueError):
    """Point sets or parameters the distance cannot be computed for; the message names the set and the problem."""


@dataclass(frozen=True, slots=True)
class PairDistance:
    """Distance between sets ``first`` and ``second`` (positions in the input): mean and spread over seeds."""

    first: int
    second: int
    mean: float
    #: population standard deviation over the seeds (0.0 for one seed)
    std: float


def random_projections(ndim: int, num_projections: int, seed: int) -> FloatArray:
    """``num_projections`` directions uniform on the unit sphere of R^ndim, as the columns of an
    (ndim, num_projections) float64 array; the same seed gives the same directions."""
    directions = np.random.default_rng(seed).standard_normal((ndim, num_projections))
    norms = np.linalg.norm(directions, axis=0, keepdims=True)
    norms[norms == 0.0] = 1.0  # probability zero, but a zero column must not become NaN
    return directions / norms


def sliced_wasserstein(first: npt.ArrayLike, second: npt.ArrayLike, projections: npt.ArrayLike) -> float:
    """Sliced Wasserstein-1 distance of two point clouds for the given directions (columns of ``projections``):
    the mean over directions of the 1-D W1 between the projected clouds."""
    a, b = _checked_sets([first, second], ["first", "second"])
    theta = np.asarray(projections, dtype=np.float64)
    if theta.ndim != 2 or theta.shape[0] != a.shape[1] or theta.shape[1] == 0:
        raise SetDistanceError(
            f"projections must be ({a.shape[1]}, k>0) for {a.shape[1]}-dimensional points, got {theta.shape}"
        )
    merged = _MergedBreaks(a.shape[0], b.shape[0])
    return float(merged.distances(_sorted_projections(a, theta), _sorted_projections(b, theta)).mean())


def pairwise_sliced_wasserstein(
    sets: Sequence[npt.ArrayLike],
    num_projections: int = DEFAULT_NUM_PROJECTIONS,
    num_seeds: int = DEFAULT_NUM_SEEDS,
    *,
    seed: int = 0,
    names: Sequence[str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[PairDistance]:
    """Sliced Wasserstein-1 distance between every pair of ``sets`` (each an (n_i, d) array, n_i >= 1, the same d).

    Seeds ``seed, seed + 1, ..., seed + num_seeds - 1`` each draw ``num_projections`` directions
    (:func:`random_projections`); the result per pair (i < j, in order) is the mean and standard deviation of the
    per-seed distances. ``names`` (e.g. set ids) are used in error messages. ``progress`` gets the fraction done
    (0..1) after each chunk of seeds.
    """
    labels = list(names) if names is not None else [f"set #{i}" for i in range(len(sets))]
    if len(labels) != len(sets):
        raise SetDistanceError(f"{len(labels)} names for {len(sets)} sets")
    if len(sets) < 2:
        raise SetDistanceError(f"at least two sets are needed for a comparison, got {len(sets)}")
    for value, what in ((num_projections, "num_projections"), (num_seeds, "num_seeds")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SetDistanceError(f"{what} must be a positive integer, got {value!r}")
    arrays = _checked_sets(sets, labels)
    ndim = arrays[0].shape[1]
    total_points = sum(a.shape[0] for a in arrays)
    seeds_per_chunk = max(1, min(num_seeds, PROJECTION_BUDGET_BYTES // (8 * total_points * num_projections)))

    pairs = [(i, j) for i in range(len(arrays)) for j in range(i + 1, len(arrays))]
    per_seed = np.empty((len(pairs), num_seeds), dtype=np.float64)
    for start in range(0, num_seeds, seeds_per_chunk):
        chunk = range(start, min(num_seeds, start + seeds_per_chunk))
        theta = np.concatenate([random_projections(ndim, num_projections, seed + s) for s in chunk], axis=1)
        projected = [_sorted_projections(a, theta) for a in arrays]
        for row, (i, j) in enumerate(pairs):
            distances = _MergedBreaks(arrays[i].shape[0], arrays[j].shape[0]).distances(projected[i], projected[j])
            per_seed[row, chunk.start : chunk.stop] = distances.reshape(len(chunk), num_projections).mean(axis=1)
        if progress is not None:
            progress(chunk.stop / num_seeds)
    return [
        PairDistance(i, j, float(per_seed[row].mean()), float(per_seed[row].std())) for row, (i, j) in enumerate(pairs)
    ]


# --------------------------------------------------------------------------------------------------------------------
# internals


def _checked_sets(sets: Sequence[npt.ArrayLike], labels: Sequence[str]) -> list[npt.NDArray[np.floating]]:
    arrays: list[npt.NDArray[np.floating]] = []
    for points, label in zip(sets, labels, strict=True):
        array = np.asarray(points)
        if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
            raise SetDistanceError(f"{label}: points must be numbers, got dtype {array.dtype}")
        if array.ndim != 2:
            raise SetDistanceError(f"{label}: points must be a 2-D array (n, d), got shape {array.shape}")
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise SetDistanceError(f"{label}: no points (shape {array.shape}); an empty set has no distribution")
        if array.dtype.kind != "f":
            array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise SetDistanceError(f"{label}: points contain NaN or infinite values")
        if arrays and array.shape[1] != arrays[0].shape[1]:
            raise SetDistanceError(
                f"{label}: {array.shape[1]}-dimensional points, but {labels[0]} has {arrays[0].shape[1]} dimensions"
            )
        arrays.append(array)
    return arrays


def _sorted_projections(points: npt.NDArray[np.floating], theta: FloatArray) -> FloatArray:
    """Projections of every point onto every direction, as (directions, points), each row sorted."""
    out = np.empty((theta.shape[1], points.shape[0]), dtype=np.float64)
    for top in range(0, points.shape[0], _ROW_BLOCK):
        block = points[top : top + _ROW_BLOCK].astype(np.float64, copy=False)
        out[:, top : top + block.shape[0]] = theta.T @ block.T
    out.sort(axis=1)
    return out


class _MergedBreaks:
    """The pieces of (0, 1] on which both empirical quantile functions (n and m samples) are constant.

    In units of 1/(n*m) the breaks are k*m (k = 1..n) and l*n (l = 1..m); a piece ending at T takes the sample of
    rank ceil(T/m) of the first set and ceil(T/n) of the second (1-based), and has length (T - T_prev)/(n*m).
    """

    def __init__(self, n: int, m: int) -> None:
        scale = n * m
        if scale >= 2**62:
            raise SetDistanceError(f"sets of {n} and {m} points are too large to compare exactly")
        g = math.gcd(n, m)  # breaks shared by both sides appear once
        ends: IntArray = np.union1d(np.arange(1, n + 1, dtype=np.int64) * (m // g),
                                    np.arange(1, m + 1, dtype=np.int64) * (n // g))  # fmt: skip
        unit = scale // g  # ends are in units of 1/unit
        self.first_index: IntArray = (ends * g + m - 1) // m - 1
        self.second_index: IntArray = (ends * g + n - 1) // n - 1
        self.lengths: FloatArray = np.diff(ends, prepend=0).astype(np.float64) / unit

    def distances(self, first: FloatArray, second: FloatArray) -> FloatArray:
        """W1 per direction between sorted projections ``first`` (k, n) and ``second`` (k, m)."""
        out = np.empty(first.shape[0], dtype=np.float64)
        for top in range(0, first.shape[0], _COLUMN_BLOCK):
            rows = slice(top, top + _COLUMN_BLOCK)
            gap = first[rows][:, self.first_index] - second[rows][:, self.second_index]
            np.abs(gap, out=gap)
            out[rows] = gap @ self.lengths
        return out
