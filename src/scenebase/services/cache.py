"""A per-organization, per-partition in-process cache that services use for derived, re-computable
answers (e.g. field statistics). ``clear_cache`` empties it; nothing in it is ever the only copy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from scenebase.constants import AssetsConstants
from scenebase.services.errors import InvalidArgument

T = TypeVar("T")

VALID_PARTITIONS = frozenset(AssetsConstants.VALID_ASSETS) | {"*"}


class OrgCache:
    def __init__(self, ttl_seconds: float = 60.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._data: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, org_id: str, partition: str, key: str, compute: Callable[[], T]) -> T:
        k = (org_id, partition, key)
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(k)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = compute()
        with self._lock:
            if len(self._data) >= self.max_entries:
                self._data.clear()
            self._data[k] = (now + self.ttl, value)
        return value

    def clear(self, org_id: str | None, partitions: Iterable[str] | None) -> int:
        """Drop entries of ``org_id`` (None: every organization) in ``partitions`` (None or "*": all)."""
        parts = set(partitions or ["*"])
        unknown = parts - VALID_PARTITIONS
        if unknown:
            raise InvalidArgument(f"unknown cache partitions {sorted(unknown)}; valid: {sorted(VALID_PARTITIONS)}")
        with self._lock:
            doomed = [k for k in self._data if (org_id is None or k[0] == org_id) and ("*" in parts or k[1] in parts)]
            for k in doomed:
                del self._data[k]
        return len(doomed)
