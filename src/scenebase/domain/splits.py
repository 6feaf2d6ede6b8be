"""``split_set`` allocation (FACTS 5.4), exactly as SceneBox's helper computes it."""

from __future__ import annotations

import random
from collections.abc import Sequence


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + 1 if i < extra else base for i in range(parts)]


def split_sizes(n: int, percentages_or_sections: int | Sequence[float]) -> list[int]:
    """Subset sizes for a set of ``n`` assets.

    An integer k gives k near-equal sections (the first ``n mod k`` get one more). A list of fractions
    p_i ∈ (0, 1] with Σp ≤ 1 gives ⌊p_i·n⌋ each, and the leftover (floor remainders *and* any mass not
    covered when Σp < 1) is spread like the integer case, so every asset lands in some subset:
    n=10, [0.5] → [10]; [0.2, 0.3] → [5, 5]; n=11, 3 → [4, 4, 3].
    """
    if isinstance(percentages_or_sections, bool):
        raise ValueError("percentages_or_sections must be an integer or a list of fractions")
    if isinstance(percentages_or_sections, int):
        if percentages_or_sections <= 0:
            raise ValueError("the number of sections must be > 0")
        return _spread(n, percentages_or_sections)
    try:
        fractions = list(percentages_or_sections)
    except TypeError:
        raise ValueError("percentages_or_sections must be an integer or a list of fractions") from None
    if not fractions:
        raise ValueError("percentages_or_sections must not be empty")
    for p in fractions:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1:
            raise ValueError(f"every percentage must be in (0, 1], got {p!r}")
    if sum(fractions) > 1 + 1e-9:
        raise ValueError(f"percentages sum to {sum(fractions)}; they must sum to at most 1")
    sizes = [int(p * n) for p in fractions]
    leftover = n - sum(sizes)
    return [s + extra for s, extra in zip(sizes, _spread(leftover, len(sizes)), strict=True)]


def split_ids(ids: Sequence[str], sizes: Sequence[int], seed: int) -> list[list[str]]:
    """Sort ids, shuffle them with a seeded PRNG, and cut consecutive slices of ``sizes``."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    out, start = [], 0
    for size in sizes:
        out.append(order[start : start + size])
        start += size
    return out
