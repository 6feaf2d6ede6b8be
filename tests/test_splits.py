"""``split_sizes`` and ``split_ids`` (FACTS 5.4), checked against the seed's wording and the helper's examples."""

from __future__ import annotations

import math
import random

import pytest

from scenebase.domain.splits import split_ids, split_sizes


def _reference_sizes(n: int, spec: int | list[float]) -> list[int]:
    """An independent reading of the seed text (``split_set``) plus the helper's leftover rule (FACTS 5.4)."""
    if isinstance(spec, int):
        base, first = int(n / spec), int(n % spec)
        return [base + 1] * first + [base] * (spec - first)
    sizes = [math.floor(p * n) for p in spec]
    leftover = n - sum(sizes)
    k = len(spec)
    extra = [leftover // k + 1] * (leftover % k) + [leftover // k] * (k - leftover % k)
    return [s + e for s, e in zip(sizes, extra, strict=True)]


# ---------------------------------------------------------------------------------------------- split_sizes


@pytest.mark.parametrize(
    ("n", "spec", "expected"),
    [
        # the examples of FACTS 5.4
        (10, [0.5], [10]),
        (10, [0.2, 0.3], [5, 5]),
        (11, 3, [4, 4, 3]),
        # divisible cases
        (12, 3, [4, 4, 4]),
        (10, 5, [2, 2, 2, 2, 2]),
        (10, [0.5, 0.5], [5, 5]),
        (100, [0.25, 0.25, 0.5], [25, 25, 50]),
        (10, 1, [10]),
        # the first N mod n sections get one more
        (10, 3, [4, 3, 3]),
        (7, 4, [2, 2, 2, 1]),
        (2, 5, [1, 1, 0, 0, 0]),
        (0, 3, [0, 0, 0]),
        # fractions: floors, then the leftover spread from the first subset on
        (10, [0.5, 0.3], [6, 4]),  # 5 + 3, leftover 2 -> +1, +1
        (10, [0.33, 0.33, 0.33], [4, 3, 3]),  # 3 + 3 + 3, leftover 1
        (7, [0.5, 0.5], [4, 3]),  # 3 + 3, leftover 1 (floor remainders only)
        (9, [0.7, 0.2, 0.1], [7, 2, 0]),  # 6 + 1 + 0 (0.1 * 9 = 0.9), leftover 2 -> +1, +1, +0
        (11, [0.6, 0.3], [7, 4]),  # 6 + 3, leftover 2
        (10, [1.0], [10]),
        (10, [0.1], [10]),  # Σp < 1: the uncovered mass is spread too
        (0, [0.5, 0.5], [0, 0]),
    ],
)
def test_split_sizes_examples(n: int, spec: int | list[float], expected: list[int]) -> None:
    assert split_sizes(n, spec) == expected
    assert sum(expected) == n
    assert _reference_sizes(n, spec) == expected


def test_split_sizes_accepts_any_sequence_of_fractions() -> None:
    assert split_sizes(10, (0.5, 0.3)) == [6, 4]


def test_split_sizes_matches_the_seed_rule_on_many_inputs() -> None:
    rng = random.Random(20240531)
    for _ in range(3000):
        n = rng.choice([0, 1, 2, rng.randint(0, 50), rng.randint(0, 100_000)])
        k = rng.randint(1, 12)
        if rng.random() < 0.5:
            spec: int | list[float] = k
        else:
            weights = [rng.uniform(0.01, 1.0) for _ in range(k)]
            total = rng.uniform(0.05, 1.0)  # Σp ≤ 1, sometimes well below
            spec = [w / sum(weights) * total for w in weights]
            if sum(spec) > 1 or any(p <= 0 for p in spec):  # float noise at the edge: leave this draw out
                continue
        sizes = split_sizes(n, spec)
        assert sizes == _reference_sizes(n, spec), (n, spec)
        assert sum(sizes) == n, (n, spec)
        assert len(sizes) == k
        assert all(s >= 0 for s in sizes)
        if isinstance(spec, int):
            assert max(sizes) - min(sizes) <= (1 if n else 0)
            assert sizes == sorted(sizes, reverse=True)
        else:
            # every subset gets at least its floor share, and at most its floor share + ⌈leftover / k⌉
            floors = [math.floor(p * n) for p in spec]
            leftover = n - sum(floors)
            for s, f in zip(sizes, floors, strict=True):
                assert f <= s <= f + -(-leftover // k)


@pytest.mark.parametrize(
    "spec",
    [
        0,
        -1,
        True,
        False,
        [],
        [0.0],
        [-0.2],
        [0.5, 0.0],
        [1.5],
        [1.01],
        [0.6, 0.5],
        [0.5, 0.3, 0.3],
        [True],
        [0.5, False],
        ["0.5"],
        [None],
        None,
        0.5,
    ],
)
def test_split_sizes_rejects_bad_specs(spec: object) -> None:
    with pytest.raises(ValueError):
        split_sizes(10, spec)  # type: ignore[arg-type]


def test_split_sizes_tolerates_float_noise_in_the_sum() -> None:
    # 0.1 * 10 sums to 0.9999999999999999 and [0.7, 0.2, 0.1] to 1.0000000000000002 or so
    assert sum(split_sizes(100, [0.1] * 10)) == 100
    assert split_sizes(100, [0.7, 0.2, 0.1]) == _reference_sizes(100, [0.7, 0.2, 0.1])


# ---------------------------------------------------------------------------------------------- split_ids


def _ids(n: int) -> list[str]:
    return [f"asset_{i:04d}" for i in range(n)]


def test_split_ids_partitions_the_input() -> None:
    ids = _ids(53)
    for spec in (3, [0.5, 0.3], [0.2, 0.2, 0.2, 0.2], 53, 1):
        sizes = split_sizes(len(ids), spec)
        parts = split_ids(ids, sizes, seed=42)
        assert [len(p) for p in parts] == sizes
        flat = [i for p in parts for i in p]
        assert len(flat) == len(set(flat)), "subsets overlap"
        assert set(flat) == set(ids)


def test_split_ids_is_deterministic_for_a_seed() -> None:
    ids = _ids(40)
    sizes = split_sizes(len(ids), 4)
    first = split_ids(ids, sizes, seed=7)
    assert split_ids(ids, sizes, seed=7) == first
    assert split_ids(list(ids), sizes, 7) == first


def test_split_ids_changes_with_the_seed() -> None:
    ids = _ids(40)
    sizes = split_sizes(len(ids), 4)
    assert split_ids(ids, sizes, seed=1) != split_ids(ids, sizes, seed=2)
    # and the shuffle really shuffles: the first subset is not just the first ten ids in order
    assert split_ids(ids, sizes, seed=42)[0] != ids[:10]


def test_split_ids_does_not_depend_on_the_input_order() -> None:
    ids = _ids(37)
    sizes = split_sizes(len(ids), [0.5, 0.25])
    expected = split_ids(ids, sizes, seed=42)
    rng = random.Random(5)
    for _ in range(20):
        shuffled = list(ids)
        rng.shuffle(shuffled)
        assert split_ids(shuffled, sizes, seed=42) == expected
    assert split_ids(list(reversed(ids)), sizes, seed=42) == expected
    assert split_ids(tuple(ids), sizes, seed=42) == expected


def test_split_ids_does_not_modify_its_input() -> None:
    ids = list(reversed(_ids(10)))
    before = list(ids)
    split_ids(ids, [5, 5], seed=3)
    assert ids == before


def test_split_ids_of_nothing() -> None:
    assert split_ids([], [0, 0, 0], seed=42) == [[], [], []]
