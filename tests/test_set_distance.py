"""Sliced Wasserstein distance between sets (FACTS 5.6), checked against POT on the same points and directions."""

from __future__ import annotations

import numpy as np
import ot
import pytest

from scenebase.domain import set_distance
from scenebase.domain.set_distance import (
    SetDistanceError,
    pairwise_sliced_wasserstein,
    random_projections,
    sliced_wasserstein,
)


def _clouds(n: int, m: int, ndim: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(n, ndim)).astype(np.float32)
    second = (rng.normal(size=(m, ndim)) * 1.5 + 0.7).astype(np.float32)
    return first, second


@pytest.mark.parametrize(("n", "m"), [(1, 1), (1, 7), (5, 5), (7, 3), (100, 250), (999, 1000)])
def test_matches_pot_on_the_same_points_and_directions(n: int, m: int) -> None:
    first, second = _clouds(n, m, seed=n * 1000 + m)
    theta = random_projections(first.shape[1], 30, seed=n + m)
    ours = sliced_wasserstein(first, second, theta)
    reference = ot.sliced_wasserstein_distance(
        first.astype(np.float64), second.astype(np.float64), projections=theta, p=1
    )
    assert ours == pytest.approx(float(reference), rel=1e-9, abs=1e-12)


def test_directions_are_unit_vectors_and_seeded() -> None:
    theta = random_projections(64, 25, seed=7)
    assert theta.shape == (64, 25)
    np.testing.assert_allclose(np.linalg.norm(theta, axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(theta, random_projections(64, 25, seed=7))
    assert not np.array_equal(theta, random_projections(64, 25, seed=8))


def test_a_translated_copy_is_at_the_mean_projected_shift() -> None:
    """Independent of POT: moving every point by t moves each projection by <theta, t>, so W1 = |<theta, t>|."""
    points = np.random.default_rng(3).normal(size=(200, 8))
    shift = np.arange(8, dtype=np.float64) / 4.0
    theta = random_projections(8, 40, seed=1)
    assert sliced_wasserstein(points, points + shift, theta) == pytest.approx(np.abs(theta.T @ shift).mean())
    assert sliced_wasserstein(points, points[::-1], theta) == 0.0


def test_pairwise_gives_mean_and_spread_over_seeds_as_pot_per_seed() -> None:
    rng = np.random.default_rng(5)
    sets = [rng.normal(size=(size, 6)) + offset for size, offset in ((40, 0.0), (55, 0.5), (30, 2.0))]
    result = pairwise_sliced_wasserstein(sets, num_projections=10, num_seeds=4, seed=100)
    assert [(p.first, p.second) for p in result] == [(0, 1), (0, 2), (1, 2)]
    for pair in result:
        per_seed = [
            ot.sliced_wasserstein_distance(
                sets[pair.first], sets[pair.second], projections=random_projections(6, 10, 100 + s), p=1
            )
            for s in range(4)
        ]
        assert pair.mean == pytest.approx(np.mean(per_seed), rel=1e-9)
        assert pair.std == pytest.approx(np.std(per_seed), rel=1e-9, abs=1e-12)
    assert result[0].mean < result[2].mean < result[1].mean  # offsets 0.5 < 1.5 < 2.0 apart


def test_seed_chunks_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    sets = [rng.normal(size=(300, 5)), rng.normal(size=(200, 5)) + 1.0]
    whole = pairwise_sliced_wasserstein(sets, num_projections=7, num_seeds=6)
    monkeypatch.setattr(set_distance, "PROJECTION_BUDGET_BYTES", 1)  # one seed per chunk
    fractions: list[float] = []
    chunked = pairwise_sliced_wasserstein(sets, num_projections=7, num_seeds=6, progress=fractions.append)
    assert chunked[0].mean == pytest.approx(whole[0].mean, rel=1e-12)
    assert chunked[0].std == pytest.approx(whole[0].std, rel=1e-9)
    assert fractions == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])


@pytest.mark.parametrize(
    ("sets", "kwargs", "message"),
    [
        ([np.zeros((3, 2))], {}, "at least two sets"),
        ([], {}, "at least two sets"),
        ([np.zeros((3, 2)), np.zeros((3, 4))], {}, "set #1: 4-dimensional points, but set #0 has 2"),
        ([np.zeros((3, 2)), np.zeros((0, 2))], {}, "set #1: no points"),
        ([np.zeros((3, 2)), np.array([[0.0, np.nan]])], {}, "set #1: points contain NaN"),
        ([np.zeros((3, 2)), np.array([[0.0, np.inf]])], {}, "NaN or infinite"),
        ([np.zeros(3), np.zeros(3)], {}, "2-D array"),
        ([np.array([["a"]]), np.zeros((1, 1))], {}, "must be numbers"),
        ([np.zeros((3, 2)), np.zeros((3, 2))], {"num_projections": 0}, "num_projections must be a positive"),
        ([np.zeros((3, 2)), np.zeros((3, 2))], {"num_seeds": 2.5}, "num_seeds must be a positive"),
    ],
)
def test_bad_input_is_a_clear_error(sets: list[np.ndarray], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SetDistanceError, match=message.replace("#", r"\#")):
        pairwise_sliced_wasserstein(sets, **kwargs)  # type: ignore[arg-type]


def test_names_appear_in_errors() -> None:
    with pytest.raises(SetDistanceError, match="set-b: points contain NaN"):
        pairwise_sliced_wasserstein([np.zeros((2, 2)), np.full((2, 2), np.nan)], names=["set-a", "set-b"])


def test_wrong_projection_shape_is_an_error() -> None:
    first, second = _clouds(4, 4, ndim=3)
    with pytest.raises(SetDistanceError, match=r"projections must be \(3, k>0\)"):
        sliced_wasserstein(first, second, np.ones((4, 2)))
