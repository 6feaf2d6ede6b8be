"""UMAP maps (FACTS 7.4): fit on a sample, transform the rest, a saved reducer for transform_only."""

from __future__ import annotations

import numpy as np
import pytest

from scenebase.domain.umap_maps import ExactNeighbours, UmapError, UmapMap, UmapParams, fit_map, transform_map

CLUSTERS = 3


def _clustered(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(CLUSTERS, 32)) * 6.0
    labels = rng.integers(0, CLUSTERS, n)
    return (centres[labels] + rng.normal(size=(n, 32))).astype(np.float32), labels


@pytest.fixture(scope="module")
def fitted() -> tuple[UmapMap, np.ndarray, list[tuple[str, float]]]:
    vectors, labels = _clustered(900, seed=1)
    calls: list[tuple[str, float]] = []
    params = UmapParams(n_neighbors=10, train_size=300, n_epochs=100)
    result = fit_map(vectors, params, lambda stage, fraction: calls.append((stage, fraction)))
    return result, labels, calls


def _nearest_centre_accuracy(coordinates: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    distances = np.linalg.norm(coordinates[:, None, :] - centres[None, :, :], axis=2)
    return float((distances.argmin(axis=1) == labels).mean())


def test_every_vector_gets_a_point_and_clusters_stay_apart(fitted: tuple[UmapMap, np.ndarray, list]) -> None:
    result, labels, _ = fitted
    assert result.coordinates.shape == (900, 2)
    assert result.coordinates.dtype == np.float32
    assert np.isfinite(result.coordinates).all()
    assert len(result.train_rows) == 300
    assert np.all(np.diff(result.train_rows) > 0)
    centres = np.array([result.coordinates[labels == c].mean(axis=0) for c in range(CLUSTERS)])
    # the transformed (not sampled) vectors land with their own cluster
    rest = np.setdiff1d(np.arange(900), result.train_rows)
    assert _nearest_centre_accuracy(result.coordinates[rest], labels[rest], centres) > 0.98
    spread = max(float(result.coordinates[labels == c].std(axis=0).max()) for c in range(CLUSTERS))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(CLUSTERS) for b in range(a + 1, CLUSTERS)]
    assert min(gaps) > 3 * spread


def test_progress_goes_from_sampling_to_done(fitted: tuple[UmapMap, np.ndarray, list]) -> None:
    _, _, calls = fitted
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0
    assert fractions[-1] == pytest.approx(1.0)
    stages = " | ".join(s for s, _ in calls)
    assert "sampled 300 of 900" in stages
    assert "fitted on 300" in stages
    assert "placed 600 of 600" in stages


def test_transform_only_places_new_vectors_on_the_saved_map(fitted: tuple[UmapMap, np.ndarray, list]) -> None:
    result, labels, _ = fitted
    centres = np.array([result.coordinates[labels == c].mean(axis=0) for c in range(CLUSTERS)])
    new_vectors, new_labels = _clustered(200, seed=2)
    fractions: list[float] = []
    placed = transform_map(result.reducer, new_vectors, lambda _s, f: fractions.append(f))
    assert placed.shape == (200, 2)
    assert _nearest_centre_accuracy(placed, new_labels, centres) > 0.98
    assert fractions[-1] == 1.0


def test_small_spaces_fit_without_a_transform() -> None:
    vectors, _ = _clustered(6, seed=3)
    result = fit_map(vectors, UmapParams(n_neighbors=20))
    assert result.coordinates.shape == (6, 2)
    assert np.isfinite(result.coordinates).all()
    assert list(result.train_rows) == list(range(6))


def test_exact_neighbours_match_brute_force() -> None:
    rng = np.random.default_rng(4)
    sample = rng.normal(size=(50, 8)).astype(np.float32)
    queries = rng.normal(size=(7, 8)).astype(np.float32)
    rows, distances = ExactNeighbours(sample).query(queries, 5)
    brute = np.linalg.norm(queries[:, None, :] - sample[None, :, :], axis=2)
    np.testing.assert_array_equal(rows, np.argsort(brute, axis=1)[:, :5])
    np.testing.assert_allclose(distances, np.sort(brute, axis=1)[:, :5], rtol=1e-4)


@pytest.mark.parametrize(
    ("vectors", "params", "message"),
    [
        (np.zeros((3, 4)), UmapParams(), "at least 4 vectors"),
        (np.zeros(5), UmapParams(), "2-D array"),
        (np.array([[1.0, np.nan]] * 5), UmapParams(), "vector #0 contains NaN"),
        (np.zeros((5, 2)), UmapParams(n_neighbors=1), "n_neighbors must be an integer >= 2"),
        (np.zeros((5, 2)), UmapParams(min_dist=2.0), "min_dist must be between 0 and 1"),
        (np.zeros((5, 2)), UmapParams(train_size=0), "train_size must be an integer >= 1"),
        (np.zeros((5, 2)), UmapParams(train_size=3), "train_size must be at least 4"),
    ],
)
def test_bad_input_is_a_clear_error(vectors: np.ndarray, params: UmapParams, message: str) -> None:
    with pytest.raises(UmapError, match=message):
        fit_map(vectors, params)


def test_a_saved_map_refuses_other_dimensions_and_foreign_bytes(fitted: tuple[UmapMap, np.ndarray, list]) -> None:
    result, _, _ = fitted
    with pytest.raises(UmapError, match="fitted on 32-dimensional vectors, got 8"):
        transform_map(result.reducer, np.zeros((2, 8)))
    with pytest.raises(UmapError, match="cannot be read"):
        transform_map(b"not a pickle", np.zeros((2, 32)))
