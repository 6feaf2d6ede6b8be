"""Unit tests of the limits on documents, times and searches (the API-level attacks are in
tests/api/test_hostile_input.py), and a check that docs/security.md names every limit an operator sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scenebase.domain.metadata import MAX_DEPTH, MAX_VALUES, InvalidDocument, check_document, text_problem
from scenebase.domain.search import MAX_CONDITIONS, MAX_FILTER_VALUES, QueryError, parse_query
from scenebase.domain.timeutil import to_epoch, to_iso
from scenebase.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def nested(depth: int) -> Any:
    doc: Any = "leaf"
    for _ in range(depth):
        doc = {"a": doc}
    return doc


def test_depth_limit_is_exact() -> None:
    check_document(nested(MAX_DEPTH))  # the document itself counts as the first level
    with pytest.raises(InvalidDocument, match=f"nested more than {MAX_DEPTH} levels deep"):
        check_document(nested(MAX_DEPTH + 1))


def test_a_document_nested_100000_deep_is_an_error_not_a_recursion_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidDocument, match=r"\[0\]\[0\]"):
        check_document({"aux": deep})


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"aux": {"n": 10**400}}, "aux.n: an integer of 1329 bits is too large"),
        ({"aux": {"n": float("nan")}}, "aux.n: nan is not a number"),
        ({"aux": {"n": [1, float("inf")]}}, r"aux.n\[1\]: inf"),
        ({"aux": {"t": "a\x00b"}}, "aux.t contains a NUL character"),
        ({"aux": {1: "x"}}, "keys must be strings"),
        ({"aux": list(range(MAX_VALUES))}, f"more than {MAX_VALUES} values"),
    ],
)
def test_unstorable_values_are_named(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidDocument, match=expected):
        check_document(doc, "metadata")


def test_ordinary_documents_pass() -> None:
    check_document({"aux": {"n": 2**62, "f": 1e300, "t": "日本語", "l": [[1, 2], {"k": None}], "b": True}})
    assert text_problem("fine \U0001f600") is None


@pytest.mark.parametrize("value", [1e300, -1e18, 10**20])
def test_times_outside_years_1_to_9999_are_value_errors(value: float) -> None:
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        to_iso(to_epoch(value))


def test_epoch_of_huge_and_non_finite_numbers_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="number too large"):
        to_epoch(10**400)
    with pytest.raises(ValueError, match="not a finite number"):
        to_epoch(float("inf"))
    assert to_iso(to_epoch(253402300799)) == "9999-12-31T23:59:59.000000+00:00"


def test_search_caps() -> None:
    parse_query({"filters": [{"field": f"f{i}", "values": ["x"]} for i in range(MAX_CONDITIONS)]})
    with pytest.raises(QueryError, match=f"at most {MAX_CONDITIONS}"):
        parse_query({"filters": [{"field": f"f{i}", "values": ["x"]} for i in range(MAX_CONDITIONS + 1)]})
    parse_query({"id": [f"i{i}" for i in range(MAX_FILTER_VALUES)]})
    with pytest.raises(QueryError, match=f"at most {MAX_FILTER_VALUES}"):
        parse_query({"id": [f"i{i}" for i in range(MAX_FILTER_VALUES // 2 + 1)],
                     "sets": [f"s{i}" for i in range(MAX_FILTER_VALUES // 2)]})  # fmt: skip


def test_security_doc_names_every_limit_setting() -> None:
    doc = (REPO / "docs" / "security.md").read_text()
    limits = [n for n in Settings.model_fields if n.startswith(("max_", "decode", "sweep", "fetch", "allowed_"))]
    assert len(limits) >= 12
    for name in limits:
        assert f"SCENEBASE_{name.upper()}" in doc, name
    assert "(docs/security.md)" in (REPO / "README.md").read_text()
