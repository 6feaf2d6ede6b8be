"""The stored layout of entity chunks and resolved columns: round trips, the earlier ``.npz`` layout still read,
damaged bytes refused with the part named."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from scenebase.domain.timeline_data import Column, EntityChunk, TimelineDataError


def npz_layout(arrays: dict[str, np.ndarray], header: dict[str, object]) -> bytes:
    """What ``to_bytes`` wrote before the current layout."""
    buf = io.BytesIO()
    head = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(buf, __header__=head, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def test_chunks_and_columns_round_trip_writable() -> None:
    chunk = EntityChunk("objects", "state_set", "interval", np.array([1.0, 2.5]), ["a", "b"],
                        starts=np.array([np.nan, 2.0]), ends=np.array([np.nan, 3.0]), labels=["car", "pedestrian"],
                        codes=np.array([0, 1, 1], np.int32), offsets=np.array([0, 1, 3], np.int64))  # fmt: skip
    back = EntityChunk.from_bytes(chunk.to_bytes())
    assert [back.value_of(i) for i in range(len(back))] == [["car"], ["pedestrian", "pedestrian"]]
    assert back.entity_ids == ["a", "b"] and np.array_equal(back.ends, chunk.ends, equal_nan=True)
    back.timestamps[0] = 5.0  # arrays come back writable, as np.load gave them
    vector = Column("v", "vector", 10, 2, matrix=np.array([[1.0, np.nan], [np.nan, np.nan]]))
    assert Column.from_bytes(vector.to_bytes()).values(0, 2) == [[1.0], None]
    empty = Column("s", "scalar", 0, 0, num=np.zeros(0))
    assert Column.from_bytes(empty.to_bytes()).length == 0


def test_the_npz_layout_is_still_read() -> None:
    old = npz_layout({"num": np.array([1.0, np.nan])},
                     {"name": "speed", "kind": "scalar", "start_index": 7, "length": 2, "labels": []})  # fmt: skip
    col = Column.from_bytes(old)
    assert (col.name, col.start_index, col.values(0, 2)) == ("speed", 7, [1.0, None])


@pytest.mark.parametrize("cut", [3, 9, 40, -4])
def test_damaged_bytes_name_the_part(cut: int) -> None:
    data = Column("speed", "scalar", 0, 4, num=np.arange(4.0)).to_bytes()
    with pytest.raises(TimelineDataError, match="resolved column: unreadable stored data"):
        Column.from_bytes(data[:cut])
    with pytest.raises(TimelineDataError, match="entity chunk: unreadable stored data"):
        EntityChunk.from_bytes(b"garbage" + data)
