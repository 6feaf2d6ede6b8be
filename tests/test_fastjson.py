"""``fastjson.dumps`` (the catalog's JSON column encoder) against ``json.dumps``: whatever the text, it must decode
to exactly what ``json.dumps``' text decodes to, and refuse what ``json.dumps`` refuses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenebase import fastjson

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),  # beyond 64 bits now and then: orjson refuses those
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),  # lone surrogates included: orjson refuses those
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=3) | st.integers(0, 3), inner, max_size=4),  # int keys: json makes them str
        st.tuples(inner, inner),
    ),
    max_leaves=20,
)


def _decoded(text: str) -> str:
    """The value a text decodes to, written canonically (NaN equals NaN here, 1 differs from 1.0 and True)."""
    return json.dumps(json.loads(text), sort_keys=True)


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_dumps_decodes_to_what_json_dumps_decodes_to(value: Any) -> None:
    assert _decoded(fastjson.dumps(value)) == _decoded(json.dumps(value))


def test_non_finite_numbers_keep_their_value() -> None:
    # orjson alone would write these as null
    back = json.loads(fastjson.dumps({"a": [math.nan, math.inf, -math.inf], "b": None}))
    assert math.isnan(back["a"][0]) and back["a"][1:] == [math.inf, -math.inf] and back["b"] is None


@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize("value", [dt.datetime(2026, 11, 30, tzinfo=dt.UTC), _Point(1), {1, 2}])
def test_what_json_refuses_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        fastjson.dumps(value)
