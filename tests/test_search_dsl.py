"""The search query language (docs/search.md) and the metadata write/index rules it searches (FACTS 1.5).

``parse_query`` must accept every documented form and reject everything else with a ``QueryError`` whose
message names the offending part; ``merge`` and ``index_terms`` are pure functions checked on examples.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from scenebase.domain.metadata import (
    DEFAULT_NESTED_FIELDS,
    MAX_ELEMENT_TERMS_PER_DOC,
    MAX_TERM_LENGTH,
    MAX_TERMS_PER_DOC,
    index_terms,
    indexed_terms,
    merge,
    project,
)
from scenebase.domain.search import (
    KNOWN_KEYS,
    ExistsFilter,
    KnownFields,
    Query,
    QueryError,
    RangeFilter,
    ValuesFilter,
    parse_query,
    query_fields,
    unknown_field_warnings,
)
from scenebase.domain.timeutil import to_epoch

T0 = "2021-03-04T05:06:07.000000+00:00"
T1 = "2021-03-05T05:06:07.000000+00:00"

# --------------------------------------------------------------------------------------------- accepted forms


@pytest.mark.parametrize("raw", [None, {}])
def test_empty_search_matches_everything(raw: Any) -> None:
    q = parse_query(raw)
    assert q.is_empty
    assert q.selected_fields is None


def test_filters_values_or_and_filter_out() -> None:
    q = parse_query(
        {
            "filters": [
                {"field": "aux.weather", "values": ["rain", "snow"]},
                {"field": "sensor", "values": ["cam_front"], "filter_out": True},
                {"field": "aux.speed", "values": [3, 4.5]},
                {"field": "aux.flag", "values": [True, False]},
                {"field": "aux.mixed", "values": ["a", 1]},
            ]
        }
    )
    assert q.values == [
        ValuesFilter("aux.weather", ("rain", "snow"), (), False),
        ValuesFilter("sensor", ("cam_front",), (), True),
        ValuesFilter("aux.speed", (), (3.0, 4.5), False),
        ValuesFilter("aux.flag", ("true", "false"), (), False),
        ValuesFilter("aux.mixed", ("a",), (1.0,), False),
    ]
    assert not q.is_empty


def test_filter_out_defaults_to_false_and_accepts_false() -> None:
    q = parse_query(
        {"filters": [{"field": "a", "values": ["x"], "filter_out": False}, {"field": "b", "values": ["y"]}]}
    )
    assert [f.negate for f in q.values] == [False, False]


def test_id_fields_are_standardized_like_ids() -> None:
    q = parse_query({"filters": [{"field": "id", "values": ["Some ID-1"]}, {"field": "sets", "values": ["My Set"]}]})
    assert q.values[0].strings == ("some_id_1",)
    assert q.values[1].strings == ("my_set",)
    # other fields keep their case
    assert parse_query({"sensor": ["Cam Front"]}).values[0].strings == ("Cam Front",)


def test_timestamp_values_become_epochs() -> None:
    q = parse_query({"filters": [{"field": "timestamp", "values": [T0, 12.5]}]})
    (f,) = q.values
    assert f.strings == ()
    assert sorted(f.numbers) == sorted([to_epoch(T0), 12.5])


def test_shorthand_field_values() -> None:
    q = parse_query({"id": ["A", "b"], "aux.weather": "rain", "filters": [{"field": "sensor", "values": ["c"]}]})
    assert ValuesFilter("id", ("a", "b"), (), False) in q.values
    assert ValuesFilter("aux.weather", ("rain",), (), False) in q.values
    assert ValuesFilter("sensor", ("c",), (), False) in q.values
    assert len(q.values) == 3


def test_exists_filters() -> None:
    q = parse_query({"exists_filters": [{"field": "embeddings.clip"}, {"field": "aux.x", "filter_out": True}]})
    assert q.exists == [ExistsFilter("embeddings.clip", False), ExistsFilter("aux.x", True)]
    assert not q.is_empty


def test_ranges_numbers_and_times() -> None:
    q = parse_query(
        {
            "ranges": [
                {"field": "aux.speed", "min": 3, "max": 9.5},
                {"field": "aux.speed", "min": 1},
                {"field": "aux.speed", "max": 2, "filter_out": True},
                {"field": "aux.when", "min": T0, "max": T1},
                {"field": "aux.z", "min": 5, "max": 5},
            ]
        }
    )
    assert q.ranges == [
        RangeFilter("aux.speed", 3.0, 9.5, False),
        RangeFilter("aux.speed", 1.0, None, False),
        RangeFilter("aux.speed", None, 2.0, True),
        RangeFilter("aux.when", to_epoch(T0), to_epoch(T1), False),
        RangeFilter("aux.z", 5.0, 5.0, False),
    ]


def test_time_range_is_a_timestamp_range() -> None:
    q = parse_query({"time_range": {"start_time": T0, "end_time": T1}})
    assert q.ranges == [RangeFilter("timestamp", to_epoch(T0), to_epoch(T1), False)]
    only_start = parse_query({"time_range": {"start_time": "2021-03-04T05:06:07Z"}})
    assert only_start.ranges == [RangeFilter("timestamp", to_epoch(T0), None, False)]
    assert parse_query({"time_range": {}}).ranges == []


def test_source_selected_fields() -> None:
    q = parse_query({"source_selected_fields": ["id", "aux.weather"]})
    assert q.selected_fields == ["id", "aux.weather"]
    assert q.is_empty  # a projection does not restrict the hits


def test_every_documented_key_together() -> None:
    q = parse_query(
        {
            "filters": [{"field": "sets", "values": ["s1"], "filter_out": False}],
            "exists_filters": [{"field": "umap.idx"}],
            "ranges": [{"field": "aux.speed", "min": 0}],
            "time_range": {"start_time": T0, "end_time": T1},
            "source_selected_fields": ["id"],
            "sensor": ["cam"],
        }
    )
    assert isinstance(q, Query)
    assert len(q.values) == 2 and len(q.exists) == 1 and len(q.ranges) == 2
    assert q.selected_fields == ["id"]


# --------------------------------------------------------------------------------------------- rejected forms


@pytest.mark.parametrize(
    ("raw", "needles"),
    [
        pytest.param({"$or": [{"sensor": ["a"]}]}, ["$or", "unknown search key"], id="unknown-operator"),
        pytest.param({"$and": []}, ["$and"], id="unknown-operator-and"),
        pytest.param(
            {"filters": [{"field": "a", "values": ["x"], "op": "eq"}]}, ["filters[0]", "op", "unknown"], id="op-key"
        ),
        pytest.param({"filters": [{"field": "a", "values": [{"x": 1}]}]}, ["filters[0]", "'a'"], id="dict-value"),
        pytest.param({"filters": [{"field": "a", "values": [["x"]]}]}, ["filters[0]", "'a'"], id="list-value"),
        pytest.param({"filters": [{"field": "a", "values": [None]}]}, ["filters[0]", "None"], id="null-value"),
        pytest.param({"filters": [{"field": "a", "values": []}]}, ["filters[0]", "empty"], id="empty-values"),
        pytest.param({"filters": [{"field": "a"}]}, ["filters[0]", "values"], id="missing-values"),
        pytest.param({"filters": [{"values": ["x"]}]}, ["filters[0]", "field"], id="missing-field"),
        pytest.param({"filters": [{"field": "", "values": ["x"]}]}, ["filters[0]", "field"], id="empty-field"),
        pytest.param({"filters": [{"field": 3, "values": ["x"]}]}, ["filters[0]", "field"], id="non-string-field"),
        pytest.param({"filters": [{"field": "a..b", "values": ["x"]}]}, ["filters[0]", "a..b"], id="bad-path"),
        pytest.param({"filters": [{"field": "$where", "values": ["x"]}]}, ["$where"], id="dollar-field"),
        pytest.param(
            {"filters": [{"field": "a", "values": ["x"], "filter_out": "yes"}]},
            ["filters[0]", "filter_out"],
            id="filter_out-string",
        ),
        pytest.param(
            {"filters": [{"field": "a", "values": ["x"], "filter_out": 1}]}, ["filter_out"], id="filter_out-int"
        ),
        pytest.param({"filters": {"field": "a", "values": ["x"]}}, ["filters", "list"], id="filters-not-list"),
        pytest.param({"filters": ["sensor"]}, ["filters[0]"], id="filter-not-object"),
        pytest.param({"exists_filters": [{"field": "a", "x": 1}]}, ["exists_filters[0]", "x"], id="exists-unknown"),
        pytest.param({"exists_filters": ["a"]}, ["exists_filters[0]"], id="exists-not-object"),
        pytest.param(
            {"exists_filters": [{"field": "a", "filter_out": "no"}]},
            ["exists_filters[0]", "filter_out"],
            id="exists-fo",
        ),
        pytest.param({"ranges": [{"field": "a", "min": 5, "max": 1}]}, ["ranges[0]", "min", "max"], id="min>max"),
        pytest.param(
            {"ranges": [{"field": "a", "min": "yesterday"}]}, ["ranges[0]", "min", "yesterday"], id="bad-time"
        ),
        pytest.param({"ranges": [{"field": "a", "max": "soon"}]}, ["ranges[0]", "max", "soon"], id="bad-time-max"),
        pytest.param({"ranges": [{"field": "a", "min": True}]}, ["ranges[0]", "min"], id="bool-bound"),
        pytest.param({"ranges": [{"field": "a"}]}, ["ranges[0]", "min", "max"], id="no-bounds"),
        pytest.param({"ranges": [{"field": "a", "min": 1, "gte": 2}]}, ["ranges[0]", "gte"], id="range-unknown"),
        pytest.param({"ranges": [{"min": 1}]}, ["ranges[0]", "field"], id="range-no-field"),
        pytest.param({"ranges": [{"field": "id", "min": "a"}]}, ["ranges[0]", "min"], id="range-on-id-text"),
        pytest.param({"ranges": [{"field": "id", "min": 1}]}, ["ranges[0]", "'id'"], id="range-on-id"),
        pytest.param(
            {"time_range": {"start_time": T1, "end_time": T0}}, ["time_range", "start_time", "end_time"], id="inverted"
        ),
        pytest.param({"time_range": {"start_time": "not a time"}}, ["time_range", "start_time"], id="tr-bad-time"),
        pytest.param({"time_range": {"start": T0}}, ["time_range"], id="tr-unknown-key"),
        pytest.param({"time_range": [T0, T1]}, ["time_range"], id="tr-not-object"),
        pytest.param({"source_selected_fields": "id"}, ["source_selected_fields", "list"], id="ssf-string"),
        pytest.param({"source_selected_fields": ["id", 3]}, ["source_selected_fields"], id="ssf-non-string"),
        pytest.param({"source_selected_fields": ["id", ""]}, ["source_selected_fields"], id="ssf-empty-name"),
        pytest.param({"aux.weather": []}, ["aux.weather", "empty"], id="shorthand-empty"),
        pytest.param({"aux.weather": {"eq": "rain"}}, ["aux.weather"], id="shorthand-dict"),
        pytest.param({"timestamp": ["not a time"]}, ["timestamp", "not a time"], id="timestamp-value"),
        pytest.param([{"field": "a", "values": ["x"]}], ["JSON object", "list"], id="list-query"),
        pytest.param("sensor:cam", ["JSON object", "str"], id="string-query"),
        pytest.param(42, ["JSON object", "int"], id="int-query"),
    ],
)
def test_rejected_with_a_message_naming_the_problem(raw: Any, needles: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(raw)
    message = str(info.value)
    for needle in needles:
        assert needle in message, (needle, message)


def test_query_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown search key"):
        parse_query({"$or": []})


def test_parse_does_not_modify_its_input() -> None:
    raw = {"id": ["A b"], "filters": [{"field": "sets", "values": ["X Y"]}], "ranges": [{"field": "a", "min": T0}]}
    before = copy.deepcopy(raw)
    parse_query(raw)
    assert raw == before


# --------------------------------------------------------------------------------------------- misspellings

VALID = str(sorted(KNOWN_KEYS))


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("filter", "did you mean 'filters'?"),
        ("FILTERS", "did you mean 'filters'?"),
        ("range", "did you mean 'ranges'?"),
        ("time_ranges", "did you mean 'time_range'?"),
        ("timerange", "did you mean 'time_range'?"),
        ("exist_filters", "did you mean 'exists_filters'?"),
        ("selected_fields", "did you mean 'source_selected_fields'?"),
        ("size", "'size' is a query parameter"),
        ("offsets", "did you mean 'offset'? 'offset' is a query parameter"),
        ("sort_order", "'sort_order' is a query parameter"),
        ("scan", "'scan' is a query parameter"),
        ("search", "wraps a query only in a summary request"),
        ("end_time", 'belongs inside "time_range"'),
    ],
)
def test_near_miss_top_level_keys_say_what_was_meant(key: str, needle: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query({key: ["x"]})
    message = str(info.value)
    assert repr(key) in message and needle in message and VALID in message, message
    # the same with a field lookup that does not know the key
    with pytest.raises(QueryError, match=r"did you mean|query parameter|summary request|time_range"):
        parse_query({key: ["x"]}, is_field=lambda name: False)


def test_a_near_miss_key_that_is_a_known_field_is_a_shorthand() -> None:
    asked: list[str] = []

    def is_field(name: str) -> bool:
        asked.append(name)
        return name == "filter"

    q = parse_query({"sensor": ["a"], "filter": ["polarizer"], "weather": "rain"}, is_field=is_field)
    assert ValuesFilter("filter", ("polarizer",), (), False) in q.values and len(q.values) == 3
    assert asked == ["filter"]  # only near misses are looked up


@pytest.mark.parametrize("key", ["sensor", "sets", "tags", "fields", "exists", "time", "weather", "aux.filters"])
def test_ordinary_field_names_stay_shorthand_filters(key: str) -> None:
    assert parse_query({key: ["x"]}).values[0].field == key


@pytest.mark.parametrize(
    ("raw", "needles"),
    [
        ({"filters": [{"field": "a", "value": ["x"]}]}, ["filters[0]", "['value']", "did you mean 'values'?"]),
        ({"filters": [{"field": "a", "values": ["x"], "filterout": True}]}, ["did you mean 'filter_out'?"]),
        ({"filters": [{"key": "a", "values": ["x"]}]}, ["did you mean 'field'?"]),
        ({"exists_filters": [{"field": "a", "not": True}]}, ["exists_filters[0]", "did you mean 'filter_out'?"]),
        ({"ranges": [{"field": "a", "gte": 1, "lte": 2}]}, ["ranges[0]", "did you mean 'min' or 'max'?", "inclusive"]),
        ({"ranges": [{"field": "a", "minimum": 1}]}, ["did you mean 'min'?"]),
        ({"time_range": {"start": 1, "end_time": 2}}, ["time_range", "did you mean 'start_time'?"]),
        ({"filters": [{"field": "a", "values": ["x"], "op": "eq"}]}, ["['op']; a filter has"]),  # no guess
    ],
)
def test_unknown_inner_keys_suggest_the_key_meant(raw: Any, needles: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(raw)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


# --------------------------------------------------------------------------------------------- known fields

FIELDS = KnownFields.of(["sensor", "user", "tags", "aux.weather", "aux.speed", "aux.wind_speed",
                         "annotations_meta.provider", "annotations_meta.type", "session_aux.road"])  # fmt: skip


def test_known_fields_cover_exact_names_parents_and_platform_fields() -> None:
    for name in ("sensor", "aux.speed", "aux", "annotations_meta", "id", "timestamp", "sets", "owner"):
        assert FIELDS.has(name), name
    for name in ("sensr", "aux.spee", "au", "aux.speed.max", "weather", "annotations"):
        assert not FIELDS.has(name), name
    assert not KnownFields().has("sensor") and KnownFields().has("id")


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("sensr", ["sensor"]),
        ("Sensor", ["sensor"]),
        ("weather", ["aux.weather"]),
        ("road", ["session_aux.road"]),
        ("speeed", ["aux.speed"]),
        ("aux.wether", ["aux.weather"]),
        ("provider", ["annotations_meta.provider"]),
        ("annotation_meta", ["annotations_meta", "annotations_meta.type", "annotations_meta.provider"]),
        ("zzz", []),
    ],
)
def test_closest_known_fields(name: str, closest: list[str]) -> None:
    assert FIELDS.closest(name) == closest


def test_unknown_field_warnings() -> None:
    q = parse_query(
        {
            "sensr": ["a"],
            "filters": [{"field": "sensor", "values": ["a"]}],
            "exists_filters": [{"field": "aux"}],
            "ranges": [{"field": "sensr", "min": 1}, {"field": "speeed", "max": 3}],
            "time_range": {"start_time": T0},
            "source_selected_fields": ["zzz", "id"],
        }
    )
    fields = query_fields(q)
    assert fields == ["sensr", "sensor", "aux", "speeed", "timestamp", "zzz", "id"]
    assert unknown_field_warnings(fields, FIELDS, "images") == [
        "no images asset has a field 'sensr'; closest known fields: 'sensor'",
        "no images asset has a field 'speeed'; closest known fields: 'aux.speed'",
        "no images asset has a field 'zzz'; GET /v1/images/meta/searchable_field_statistics/ lists the known fields",
    ]
    # a type without assets: nothing to compare with, nothing reported
    assert unknown_field_warnings(fields, KnownFields(), "images") == []


def test_reserved_keys_are_never_looked_up_as_fields() -> None:
    def is_field(name: str) -> bool:
        raise AssertionError(f"looked up {name!r}")

    for key in KNOWN_KEYS:
        assert parse_query({key: None}, is_field=is_field).is_empty


# --------------------------------------------------------------------------------------------- merge (FACTS 1.5)


def test_merge_dicts_merged_lists_unioned_scalars_overwritten() -> None:
    old = {
        "id": "a",
        "sensor": "cam_front",
        "sets": ["s1", "s2"],
        "aux": {"weather": "rain", "labels": ["car"], "deep": {"x": 1, "y": 2}},
        "annotations_meta": [{"provider": "p1", "type": "box"}],
    }
    new = {
        "sensor": "cam_rear",
        "sets": ["s2", "s3"],
        "aux": {"labels": ["car", "bus"], "deep": {"y": 3, "z": 4}, "speed": 1.5},
        "annotations_meta": [{"provider": "p1", "type": "box"}, {"provider": "p2", "type": "polygon"}],
        "tags": ["t"],
    }
    old_copy, new_copy = copy.deepcopy(old), copy.deepcopy(new)
    out = merge(old, new)
    assert out == {
        "id": "a",
        "sensor": "cam_rear",
        "sets": ["s1", "s2", "s3"],
        "aux": {"weather": "rain", "labels": ["car", "bus"], "deep": {"x": 1, "y": 3, "z": 4}, "speed": 1.5},
        "annotations_meta": [{"provider": "p1", "type": "box"}, {"provider": "p2", "type": "polygon"}],
        "tags": ["t"],
    }
    assert old == old_copy and new == new_copy  # inputs untouched


def test_merge_replace_lists_overwrites_lists_at_every_depth() -> None:
    old = {"sets": ["s1", "s2"], "aux": {"labels": ["car"], "keep": 1}, "annotations_meta": [{"provider": "p1"}]}
    new = {"sets": ["s3"], "aux": {"labels": []}, "annotations_meta": [{"provider": "p2"}]}
    out = merge(old, new, replace_lists=True)
    assert out == {"sets": ["s3"], "aux": {"labels": [], "keep": 1}, "annotations_meta": [{"provider": "p2"}]}


def test_merge_type_changes_overwrite() -> None:
    old = {"a": [1, 2], "b": {"x": 1}, "c": "s", "d": None}
    new = {"a": "now a string", "b": [1], "c": {"k": "v"}, "d": [1]}
    assert merge(old, new) == new
    # and a list replaces a scalar / None without union
    assert merge({"a": None}, {"a": [1]}) == {"a": [1]}


def test_merge_unions_without_duplicating_existing_items() -> None:
    assert merge({"l": [1, 1, 2]}, {"l": [2, 3, 3]}) == {"l": [1, 1, 2, 3]}


# --------------------------------------------------------------------------------------------- index_terms


def test_index_terms_flattens_lists_and_nested_dicts() -> None:
    doc = {
        "id": "img1",
        "sensor": "cam",
        "sets": ["s1", "s2"],
        "aux": {"labels": ["car", "bus"], "nested": {"deep": "x"}, "speed": 3, "ratio": 0.5, "grid": [[1, 2], [3]]},
        "annotations_meta": [{"provider": "p1", "type": "box"}, {"provider": "p2", "type": "box"}],
    }
    assert index_terms(doc) == {
        ("sensor", "cam", None),
        ("sets", "s1", None),
        ("sets", "s2", None),
        ("aux.labels", "car", None),
        ("aux.labels", "bus", None),
        ("aux.nested.deep", "x", None),
        ("aux.speed", None, 3.0),
        ("aux.ratio", None, 0.5),
        ("aux.grid", None, 1.0),
        ("aux.grid", None, 2.0),
        ("aux.grid", None, 3.0),
        ("annotations_meta.provider", "p1", None),
        ("annotations_meta.provider", "p2", None),
        ("annotations_meta.type", "box", None),
    }


def test_index_terms_booleans_are_true_false_strings() -> None:
    terms = index_terms({"aux": {"flag": True, "flags": [False, True]}})
    assert terms == {("aux.flag", "true", None), ("aux.flags", "false", None), ("aux.flags", "true", None)}


def test_index_terms_iso_strings_get_an_epoch() -> None:
    terms = index_terms({"timestamp": T0, "aux": {"seen": "2021-03-04T05:06:07Z", "bad": "2021-13-45T99:99:00"}})
    assert ("timestamp", T0, to_epoch(T0)) in terms
    assert ("aux.seen", "2021-03-04T05:06:07Z", to_epoch(T0)) in terms
    # looks like a time but is not one: a plain string term
    assert ("aux.bad", "2021-13-45T99:99:00", None) in terms
    # ordinary strings never get a number
    assert index_terms({"a": "2021"}) == {("a", "2021", None)}


def test_index_terms_skips_bytes_references_owner_id_none_and_non_finite() -> None:
    doc = {
        "id": "img1",
        "owner": "org",
        "object_access": {"url": "http://x/y.png", "filename": "y.png"},
        "thumbnails": {"small": {"resolution": {"height": 1, "width": 2}, "filename": "t.png"}},
        "aux": {"none": None, "nan": math.nan, "inf": math.inf, "empty": [], "emptyd": {}, "ok": 1},
    }
    assert index_terms(doc) == {("aux.ok", None, 1.0)}


def test_index_terms_skips_long_strings() -> None:
    at_limit = "x" * MAX_TERM_LENGTH
    too_long = "y" * (MAX_TERM_LENGTH + 1)
    terms = index_terms({"a": at_limit, "b": too_long, "c": [too_long, "short"]})
    assert terms == {("a", at_limit, None), ("c", "short", None)}


def test_index_terms_deduplicates_and_limits_terms() -> None:
    assert index_terms({"tags": ["a", "a", "a"]}) == {("tags", "a", None)}
    index_terms({"aux": {"v": list(range(MAX_TERMS_PER_DOC))}})  # exactly at the limit is fine
    with pytest.raises(ValueError, match="limit"):
        index_terms({"aux": {"v": list(range(MAX_TERMS_PER_DOC + 1))}})


def test_element_terms_carry_the_position_in_the_outermost_list_of_objects() -> None:
    doc = {
        "annotations_meta": [{"provider": "p1", "type": "box"}, {"provider": "p1", "type": "polygon", "v": [1, 2]}],
        "aux": {"objects": [{"label": "car", "parts": [{"name": "wheel"}]}], "labels": ["a", "b"], "one": {"x": 1}},
        "tags": ["t"],
    }
    declared = DEFAULT_NESTED_FIELDS | {"aux.objects"}
    terms, elements = indexed_terms(doc, nested=declared)
    assert terms == index_terms(doc)
    assert ("annotations_meta.provider", "p1", None) in terms  # flat terms stay de-duplicated
    assert elements == {
        ("annotations_meta.provider", "p1", None, 0),
        ("annotations_meta.type", "box", None, 0),
        ("annotations_meta.provider", "p1", None, 1),
        ("annotations_meta.type", "polygon", None, 1),
        ("annotations_meta.v", None, 1.0, 1),
        ("annotations_meta.v", None, 2.0, 1),
        ("aux.objects.label", "car", None, 0),
        ("aux.objects.parts.name", "wheel", None, 0),  # a list inside an element stays in that element
    }
    # undeclared lists of objects are indexed flat only
    assert {e[0] for e in indexed_terms(doc)[1]} == {"annotations_meta.provider", "annotations_meta.type",
                                                     "annotations_meta.v"}  # fmt: skip
    # scalar lists and single objects have no elements; skipped paths (dotted too) leave everything below out
    assert indexed_terms({"tags": ["a"], "aux": {"one": {"x": 1}}}, nested=declared)[1] == set()
    terms, elements = indexed_terms(doc, frozenset({"aux.objects.parts", "tags"}), declared)
    assert ("aux.objects.parts.name", "wheel", None, 0) not in elements
    assert not any(t[0] == "tags" for t in terms) and ("aux.objects.label", "car", None) in terms
    indexed_terms({"l": [{"v": 1}] * MAX_ELEMENT_TERMS_PER_DOC}, nested=frozenset({"l"}))  # at the element limit
    with pytest.raises(ValueError, match="inside lists of objects"):
        indexed_terms({"l": [{"v": 1}] * (MAX_ELEMENT_TERMS_PER_DOC + 1)}, nested=frozenset({"l"}))


def test_nested_filters_parse_with_relative_or_full_field_names() -> None:
    q = parse_query(
        {
            "nested_filters": [
                {
                    "path": "annotations_meta",
                    "filters": [
                        {"field": "provider", "values": ["p1"]},
                        {"field": "annotations_meta.type", "values": "polygon", "filter_out": True},
                    ],
                    "ranges": [{"field": "version", "min": 2}],
                    "exists_filters": [{"field": "labels"}],
                    "filter_out": True,
                },
                {"path": "annotations_meta", "filters": [{"field": "id", "values": ["Ann One"]}]},
            ]
        }
    )
    first, second = q.nested
    assert first.path == "annotations_meta" and first.negate
    assert [c.field for c in first.conditions] == [
        "annotations_meta.provider", "annotations_meta.type", "annotations_meta.version", "annotations_meta.labels",
    ]  # fmt: skip
    assert first.conditions[1] == ValuesFilter("annotations_meta.type", ("polygon",), (), True)
    assert second.conditions == (ValuesFilter("annotations_meta.id", ("ann_one",), ()),)  # ids standardized
    assert not q.is_empty and "annotations_meta.version" in query_fields(q)


@pytest.mark.parametrize(
    ("nested", "message"),
    [
        ({"filters": [{"field": "a", "values": [1]}]}, r"nested_filters\[0\].path: 'field' must be"),
        ({"path": "m"}, "give at least one condition"),
        ({"path": "m", "filters": [{"field": "a", "values": [1], "filter_out": True}]}, "every condition is filtered"),
        ({"path": "m", "filter": []}, r"did you mean 'filters'"),
        ({"path": "timestamp", "filters": [{"field": "a", "values": [1]}]}, "not a list of objects"),
        ({"path": "m", "ranges": [{"field": "a"}]}, r"nested_filters\[0\].ranges\[0\]: give 'min'"),
        ("m", "must be an object with 'path'"),
    ],
)
def test_nested_filter_errors_name_the_part(nested: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query({"nested_filters": [nested]})


def test_project_keeps_selected_paths_and_id() -> None:
    doc = {"id": "a", "sensor": "cam", "aux": {"weather": "rain", "speed": 2}, "sets": ["s"]}
    assert project(doc, ["aux.weather", "missing", "aux.nope"]) == {"id": "a", "aux": {"weather": "rain"}}
    assert project(doc, ["sensor", "sets"]) == {"id": "a", "sensor": "cam", "sets": ["s"]}
