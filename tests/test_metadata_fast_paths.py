"""The fast paths of every write (issue 9, add_annotations speed) against the plain definitions they replace:
``check_document``'s quick walk must accept exactly what the naming walk accepts, and ``changed_terms`` must give
the set differences of the two documents' full ``indexed_terms``."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenebase.domain import annotations as rules
from scenebase.domain.metadata import (
    MAX_TERMS_PER_DOC,
    DocumentTooLarge,
    InvalidDocument,
    changed_terms,
    check_document,
    indexed_terms,
    merge,
)
from scenebase.domain.timeutil import to_epoch

NESTED = frozenset({"annotations_meta", "aux.boxes"})
SKIP = frozenset({"aux.skipped"})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers().map(lambda n: n * 2**1020),  # beyond the float range now and then
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),  # NUL characters and lone surrogates included
    st.sampled_from(["2026-11-30T10:00:00+00:00", "2026-11-30 10:00", "car", "x\x00", "\udcff"]),
)
keys = st.one_of(st.sampled_from(["a", "b", "boxes", "skipped", "label", "\x00k"]), st.text(max_size=3))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4), st.tuples(inner, inner)
    ),
    max_leaves=25,
)


def _outcome(doc: Any, max_depth: int) -> str | None:
    try:
        check_document(doc, "metadata", max_depth)
    except InvalidDocument as e:
        return str(e)
    return None


@settings(max_examples=400, deadline=None)
@given(doc=st.dictionaries(keys | st.integers(0, 3), values, max_size=5), max_depth=st.integers(1, 5))
def test_quick_walk_accepts_exactly_what_the_naming_walk_accepts(doc: dict[Any, Any], max_depth: int) -> None:
    fast = _outcome(doc, max_depth)
    with mock.patch("scenebase.domain.metadata._certainly_valid", lambda _doc, _depth: False):
        slow = _outcome(doc, max_depth)
    assert fast == slow


def test_quick_walk_leaves_the_naming_to_the_slow_walk() -> None:
    with pytest.raises(InvalidDocument, match=r"aux.l\[1\]: nan is not a number"):
        check_document({"aux": {"l": [1.0, math.nan]}})
    with pytest.raises(InvalidDocument, match="an integer of 1025 bits is too large"):
        check_document({"aux": {"n": 2**1024}})
    check_document({"aux": {"n": 2**1001, "t": "日本語"}})  # large but a float: the naming walk lets it pass


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-2, 2, allow_nan=False),
    st.sampled_from(["car", "bus", "2026-11-30T10:00:00+00:00"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)
top_keys = st.sampled_from(["aux", "aux.a", "annotations_meta", "tags", "n", "t"])
documents = st.dictionaries(top_keys, json_values, max_size=5)


@settings(max_examples=300, deadline=None)
@given(old=documents, patch=documents, replace_lists=st.booleans(), copy_some=st.booleans())
def test_changed_terms_are_the_differences_of_the_full_terms(
    old: dict[str, Any], patch: dict[str, Any], replace_lists: bool, copy_some: bool
) -> None:
    # a merge shares the untouched values of ``old`` (the case the fast path takes); a copy shares nothing.
    # ``aux.a`` and ``aux: {a: ...}`` give terms of one path from two top-level keys
    new = merge(old, patch, replace_lists)
    if copy_some:
        new = {k: (v if k == "n" else _copy(v)) for k, v in new.items()}
    old_t, old_e = indexed_terms(old, SKIP, NESTED)
    new_t, new_e = indexed_terms(new, SKIP, NESTED)
    diff = changed_terms(old, new, SKIP, NESTED)
    assert diff.gone == old_t - new_t
    assert diff.added == new_t - old_t
    assert diff.gone_elements == old_e - new_e
    assert diff.added_elements == new_e - old_e


def test_a_value_equal_but_not_identical_is_compared_by_its_terms() -> None:
    old = {"aux": {"flag": 1}}
    new = {"aux": {"flag": True}}  # 1 == True, but the terms differ
    diff = changed_terms(old, new)
    assert diff.gone == {("aux.flag", None, 1.0)}
    assert diff.added == {("aux.flag", "true", None)}


def test_changed_terms_keeps_the_document_limit() -> None:
    old = {"tags": [f"t{i}" for i in range(MAX_TERMS_PER_DOC)]}
    new = {"tags": old["tags"], "aux": {"one": "more"}}
    with pytest.raises(DocumentTooLarge):
        changed_terms(old, new)


def test_fast_points_equal_the_checked_points() -> None:
    entity = {"label": "car", "coordinates": [{"x": 1.5, "y": 2.0}, {"x": 3, "y": 4.25}, {"x": 3.0, "y": 4.0},
                                              {"x": 1.0, "y": 2.5}]}  # fmt: skip
    out = rules.normalize_entity(entity, "e", "two_d_bounding_box")
    assert out["coordinates"] == [{"x": 1.5, "y": 2.0}, {"x": 3.0, "y": 4.25}, {"x": 3.0, "y": 4.0},
                                  {"x": 1.0, "y": 2.5}]  # fmt: skip
    assert all(type(v) is float for p in out["coordinates"] for v in p.values())
    bad = {"label": "car", "coordinates": [{"x": 1.0, "y": 2.0}, {"x": math.inf, "y": 1.0}, {"x": 0.0, "y": 0.0},
                                           {"x": 1.0, "y": 1.0}]}  # fmt: skip
    with pytest.raises(rules.AnnotationProblem, match=r"coordinates\[1\].x must be finite"):
        rules.normalize_entity(bad, "e", "two_d_bounding_box")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def test_a_term_a_kept_field_also_gives_is_neither_added_nor_removed() -> None:
    old = {"aux.a": "x", "aux": {"b": 1}}
    new = merge(old, {"aux": {"a": "x"}})  # ``aux.a`` stays the same object; ``aux`` changes
    assert new["aux.a"] is old["aux.a"]
    diff = changed_terms(old, new)
    assert diff.added == set()  # ("aux.a", "x") was there already, from the kept key
    gone = changed_terms(new, {"aux.a": new["aux.a"], "aux": {"b": 1}})
    assert gone.gone == set()  # and it stays, from the kept key


@settings(max_examples=200, deadline=None)
@given(moment=st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5))]) | st.none()))
def test_remembered_times_equal_parsed_times(moment: dt.datetime) -> None:
    # to_epoch remembers strings it parsed: the second answer must be the first, and equal a fresh parse
    text = moment.isoformat()
    expected = (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
    assert to_epoch(text) == expected
    assert to_epoch(text) == expected
    assert to_epoch(text.replace("+00:00", "Z")) == expected


def test_a_bad_time_string_fails_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="not an ISO-8601 time: 'soon'"):
            to_epoch("soon")
