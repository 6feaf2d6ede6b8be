"""Search, metadata, summaries and field statistics through the client (FACTS 3).

Documents are written straight through the runtime (fast); everything else goes over HTTP with the client.
"""

from __future__ import annotations

from typing import Any

import pytest

from scenebase.clients import SceneEngineClient
from scenebase.domain.timeutil import to_epoch, to_iso
from scenebase.errors import ResponseError, SceneBaseError, SearchError
from scenebase.storage.scope import Scope
from scenebase.testing import InProcessServer

BASE = 1_600_000_000.0
N = 2_500
SENSORS = ["cam_a", "cam_b", "cam_c"]
PROVIDERS = ["p1", "p2"]


def _docs(n: int) -> list[dict[str, Any]]:
    docs = []
    for i in range(n):
        doc: dict[str, Any] = {
            "id": f"img_{i:05d}",
            "timestamp": to_iso(BASE + (i * 7919) % n),  # a permutation: insertion order != time order
            "sensor": SENSORS[i % 3],
            "tags": ["even"] if i % 2 == 0 else ["odd"],
            "aux": {"speed": round((i % 50) * 0.5, 1), "flag": i % 4 == 0, "weather": "rain" if i % 5 == 0 else "sun"},
        }
        if i % 10 < 4:
            doc["annotations_meta"] = [{"provider": PROVIDERS[i % 2], "type": "box"}]
        if i % 10 == 0:
            doc["annotations_meta"].append({"provider": "p3", "type": "polygon"})
        docs.append(doc)
    return docs


def _put(server: InProcessServer, docs: list[dict[str, Any]], asset_type: str = "images") -> list[dict[str, Any]]:
    return server.runtime.assets.put(Scope.of("default", username="admin"), asset_type, docs)


@pytest.fixture
def many(server: InProcessServer) -> list[dict[str, Any]]:
    docs = _docs(N)
    _put(server, docs)
    return docs


@pytest.fixture
def few(server: InProcessServer) -> list[dict[str, Any]]:
    docs = _docs(40)
    _put(server, docs)
    return docs


# --------------------------------------------------------------------------------------------- search


def test_search_assets_paging_sorting_and_scan(admin: SceneEngineClient, many: list[dict[str, Any]]) -> None:
    ids = [d["id"] for d in many]
    # default: 50 hits in insertion order
    assert admin.search_assets("images") == ids[:50]
    assert admin.search_assets("images", size=10, offset=100) == ids[100:110]
    assert admin.search_assets("images", size=0) == []
    # sorting by time, both directions, with paging
    by_time = [d["id"] for d in sorted(many, key=lambda d: to_epoch(d["timestamp"]))]
    assert admin.search_assets("images", size=100, offset=200, sort_field="timestamp") == by_time[200:300]
    assert admin.search_assets("images", size=100, sort_field="timestamp", sort_order="desc") == by_time[::-1][:100]
    assert admin.search_assets("images", size=5, sort_field="id", sort_order="desc") == sorted(ids)[::-1][:5]
    # an aux field: smallest speed first, ties by insertion order
    by_speed = [d["id"] for d in sorted(many, key=lambda d: d["aux"]["speed"])]
    assert admin.search_assets("images", size=300, sort_field="aux.speed") == by_speed[:300]
    # a filter with more hits than one page, and the whole window at once
    cam_a = [d["id"] for d in many if d["sensor"] == "cam_a"]
    assert admin.search_assets("images", {"sensor": ["cam_a"]}, size=10_000) == cam_a
    assert len(admin.search_assets("images", size=10_000)) == N
    # scan: every hit, once, in insertion order, whatever size says
    assert admin.search_assets("images", scan=True) == ids
    assert admin.search_assets("images", {"sensor": ["cam_a"]}, size=3, scan=True) == cam_a
    rain_even = [d["id"] for d in many if d["aux"]["weather"] == "rain" and "even" in d["tags"]]
    query = {
        "filters": [
            {"field": "aux.weather", "values": ["rain"]},
            {"field": "tags", "values": ["odd"], "filter_out": True},
        ]
    }
    assert admin.search_assets("images", query, scan=True) == rain_even
    assert admin.search_assets("images", {"sensor": ["nobody"]}, scan=True) == []


def test_search_meta_scan_and_projection(admin: SceneEngineClient, many: list[dict[str, Any]]) -> None:
    metas = admin.search_meta("images", scan=True)
    assert [m["id"] for m in metas] == [d["id"] for d in many]
    first = metas[0]
    assert first["sensor"] == many[0]["sensor"] and first["aux"] == many[0]["aux"]
    assert first["owner"] == "default" and first["timestamp"] == many[0]["timestamp"]
    projected = admin.search_meta(
        "images", {"source_selected_fields": ["sensor", "aux.speed"], "aux.flag": [True]}, scan=True
    )
    flagged = [d for d in many if d["aux"]["flag"]]
    assert projected == [{"id": d["id"], "sensor": d["sensor"], "aux": {"speed": d["aux"]["speed"]}} for d in flagged]
    page = admin.search_meta(
        "images", {"source_selected_fields": ["timestamp"]}, size=3, sort_field="timestamp", sort_order="desc"
    )
    latest = sorted(many, key=lambda d: to_epoch(d["timestamp"]), reverse=True)[:3]
    assert page == [{"id": d["id"], "timestamp": d["timestamp"]} for d in latest]


def test_search_meta_filters_nested_and_ranges(admin: SceneEngineClient, few: list[dict[str, Any]]) -> None:
    def ids(q: dict[str, Any]) -> list[str]:
        return [m["id"] for m in admin.search_meta("images", q, size=1000)]

    p3 = [d["id"] for d in few if any(a["provider"] == "p3" for a in d.get("annotations_meta", []))]
    assert p3 and ids({"filters": [{"field": "annotations_meta.provider", "values": ["p3"]}]}) == p3
    fast = [d["id"] for d in few if 5 <= d["aux"]["speed"] <= 10]
    assert fast and ids({"ranges": [{"field": "aux.speed", "min": 5, "max": 10}]}) == fast
    window = [d["id"] for d in few if BASE + 10 <= to_epoch(d["timestamp"]) <= BASE + 20]
    tr = {"start_time": to_iso(BASE + 10), "end_time": to_iso(BASE + 20)}
    assert window and ids({"time_range": tr}) == window
    no_ann = [d["id"] for d in few if "annotations_meta" not in d]
    assert ids({"exists_filters": [{"field": "annotations_meta", "filter_out": True}]}) == no_ann
    assert ids({"id": ["IMG_00003", "img_00005"]}) == ["img_00003", "img_00005"]  # ids are standardized


def test_plain_search_window_is_capped(admin: SceneEngineClient, few: list[dict[str, Any]]) -> None:
    for size, offset in [(10_001, 0), (5_000, 5_001), (1, 10_000)]:
        for method in (admin.search_assets, admin.search_meta):
            with pytest.raises(SearchError) as info:
                method("images", None, size=size, offset=offset)
            err = info.value
            assert isinstance(err, ResponseError)
            assert err.status_code == 400 and err.code == "invalid_argument"
            assert "10000" in err.message and "scan" in err.message
    assert len(admin.search_assets("images", size=10_000)) == 40
    assert len(admin.search_assets("images", size=10_001, scan=True)) == 40  # scan ignores size


@pytest.mark.parametrize(
    ("query", "needles"),
    [
        pytest.param({"$or": [{"sensor": ["cam_a"]}]}, ["$or"], id="unknown-operator"),
        pytest.param(
            {"filters": [{"field": "sensor", "values": ["cam_a"], "op": "eq"}]}, ["filters[0]", "op"], id="op"
        ),
        pytest.param({"filters": [{"field": "sensor", "values": [{"a": 1}]}]}, ["filters[0]", "sensor"], id="dict"),
        pytest.param({"filters": [{"field": "sensor", "values": []}]}, ["filters[0]", "empty"], id="empty"),
        pytest.param(
            {"filters": [{"field": "sensor", "values": ["a"], "filter_out": "yes"}]}, ["filter_out"], id="filter_out"
        ),
        pytest.param({"ranges": [{"field": "aux.speed", "min": 9, "max": 1}]}, ["ranges[0]", "min"], id="min>max"),
        pytest.param({"ranges": [{"field": "aux.speed", "min": "fast"}]}, ["ranges[0]", "fast"], id="not-time"),
        pytest.param(
            {"time_range": {"start_time": to_iso(BASE + 5), "end_time": to_iso(BASE)}}, ["time_range"], id="inverted"
        ),
        pytest.param({"source_selected_fields": "sensor"}, ["source_selected_fields"], id="ssf"),
        pytest.param([{"field": "sensor", "values": ["a"]}], ["JSON object"], id="list-query"),
        pytest.param("sensor:cam_a", ["JSON object"], id="string-query"),
    ],
)
def test_malformed_queries_are_400_naming_the_problem(
    admin: SceneEngineClient, few: list[dict[str, Any]], query: Any, needles: list[str]
) -> None:
    calls = [
        lambda: admin.search_assets("images", query),
        lambda: admin.search_meta("images", query),
        lambda: admin.search_assets("images", query, scan=True),
        lambda: admin.search_meta("images", query, scan=True),
        lambda: admin.summary_meta("images", {"search": query, "dimensions": ["sensor"]}),
    ]
    for call in calls:
        with pytest.raises(SearchError) as info:
            call()
        assert info.value.status_code == 400, info.value
        assert info.value.code == "invalid_argument"
        for needle in needles:
            assert needle in info.value.message, (needle, info.value.message)


def test_bad_sort_order_is_400(admin: SceneEngineClient, few: list[dict[str, Any]]) -> None:
    with pytest.raises(SearchError, match="sort_order") as info:
        admin.search_assets("images", sort_field="timestamp", sort_order="sideways")
    assert info.value.status_code == 400


def test_unknown_asset_type_is_400(admin: SceneEngineClient, few: list[dict[str, Any]]) -> None:
    calls = [
        lambda: admin.search_assets("pictures"),
        lambda: admin.search_meta("pictures"),
        lambda: admin.search_assets("pictures", scan=True),
        lambda: admin.summary_meta("pictures", {"dimensions": ["sensor"]}),
        lambda: admin.get_searchable_field_statistics("pictures"),
    ]
    for call in calls:
        with pytest.raises(SearchError) as info:
            call()
        assert info.value.status_code == 400
        assert "pictures" in info.value.message and "unknown asset type" in info.value.message
    with pytest.raises(SceneBaseError) as info2:
        admin.get_metadata("img_00001", "pictures")
    assert info2.value.status_code == 400


def test_get_metadata(admin: SceneEngineClient, few: list[dict[str, Any]]) -> None:
    meta = admin.get_metadata("IMG_00007", "images")
    assert meta["id"] == "img_00007" and meta["aux"] == few[7]["aux"]


# --------------------------------------------------------------------------------------------- summaries


def test_summary_meta_shape_with_nested_dimensions(admin: SceneEngineClient, many: list[dict[str, Any]]) -> None:
    request = {
        "search": {"filters": [{"field": "sensor", "values": ["cam_a", "cam_b"]}]},
        "dimensions": ["sensor", "aux.flag"],
        "nested_dimensions": ["annotations_meta.provider"],
    }
    summary = admin.summary_meta("images", request)
    hits = [d for d in many if d["sensor"] in ("cam_a", "cam_b")]
    assert set(summary) == {"total", "aggregations"}
    assert summary["total"] == len(hits)
    assert [a["dimension"] for a in summary["aggregations"]] == ["sensor", "aux.flag", "annotations_meta.provider"]
    for agg in summary["aggregations"]:
        assert set(agg) == {"dimension", "buckets"}
        for b in agg["buckets"]:
            assert set(b) == {"key", "doc_count"}
        counts = [b["doc_count"] for b in agg["buckets"]]
        assert counts == sorted(counts, reverse=True)
    sensor, flag, provider = ({b["key"]: b["doc_count"] for b in a["buckets"]} for a in summary["aggregations"])
    assert sensor == {s: sum(d["sensor"] == s for d in hits) for s in ("cam_a", "cam_b")}
    assert flag == {"true": sum(d["aux"]["flag"] for d in hits), "false": sum(not d["aux"]["flag"] for d in hits)}
    expected_providers: dict[str, int] = {}
    for d in hits:
        for p in {a["provider"] for a in d.get("annotations_meta", [])}:
            expected_providers[p] = expected_providers.get(p, 0) + 1
    assert provider == expected_providers
    # the count form (FACTS 3.4): no dimensions
    assert admin.summary_meta("images", {"dimensions": []}) == {"total": N, "aggregations": []}
    # max_size_for_agg limits buckets
    limited = admin.summary_meta("images", {"dimensions": ["aux.speed"], "max_size_for_agg": 3})
    assert len(limited["aggregations"][0]["buckets"]) == 3


@pytest.mark.parametrize(
    ("request_body", "needle"),
    [
        pytest.param({"dimensions": "sensor"}, "dimensions", id="dims-not-list"),
        pytest.param({"nested_dimensions": [1]}, "nested_dimensions", id="nested-not-names"),
        pytest.param({"dimensions": ["sensor"], "aggregation_type": "avg"}, "aggregation_type", id="unsupported"),
        pytest.param({"dimensions": ["sensor"], "max_size_for_agg": 0}, "max_size_for_agg", id="bad-size"),
        pytest.param({"dimensions": ["timestamp"]}, "timestamp", id="column-dimension"),
        pytest.param(["sensor"], "object", id="not-an-object"),
    ],
)
def test_malformed_summary_requests_are_400(
    admin: SceneEngineClient, few: list[dict[str, Any]], request_body: Any, needle: str
) -> None:
    with pytest.raises(SearchError) as info:
        admin.summary_meta("images", request_body)
    assert info.value.status_code == 400
    assert needle in info.value.message


# --------------------------------------------------------------------------------------------- field statistics


def test_searchable_field_statistics_shape(admin: SceneEngineClient, few: list[dict[str, Any]]) -> None:
    stats = admin.get_searchable_field_statistics("images")
    for name, entry in stats.items():
        assert entry["field"] == name
        assert entry["type"] in {"time", "tag", "text", "number", "geo", "boolean", "dict", "nested"}
        assert isinstance(entry["count"], int) and entry["count"] > 0
        if entry["type"] in ("number", "time"):
            assert entry["min"] <= entry["max"]
        else:
            assert all(set(v) == {"key", "doc_count"} for v in entry["values"])
    assert not {"id", "owner"} & set(stats)
    speed = stats["aux.speed"]
    assert speed["type"] == "number" and speed["count"] == 40
    assert speed["min"] == min(d["aux"]["speed"] for d in few) and speed["max"] == max(d["aux"]["speed"] for d in few)
    ts = stats["timestamp"]
    assert ts["type"] == "time" and ts["count"] == 40
    assert to_epoch(ts["min"]) == min(to_epoch(d["timestamp"]) for d in few)
    assert to_epoch(ts["max"]) == max(to_epoch(d["timestamp"]) for d in few)
    assert stats["aux.flag"]["type"] == "boolean"
    sensor = stats["sensor"]
    assert sensor["type"] == "tag"
    assert {v["key"]: v["doc_count"] for v in sensor["values"]} == {
        s: sum(d["sensor"] == s for d in few) for s in SENSORS
    }
    assert stats["annotations_meta.provider"]["type"] == "tag"


def test_field_statistics_follow_writes(
    server: InProcessServer, admin: SceneEngineClient, few: list[dict[str, Any]]
) -> None:
    before = admin.get_searchable_field_statistics("images")
    assert before["aux.speed"]["max"] < 99.5
    _put(server, [{"id": "late", "timestamp": to_iso(BASE - 100), "aux": {"speed": 99.5, "lane": "left"}}])
    after = admin.get_searchable_field_statistics("images")
    assert after["aux.speed"]["max"] == 99.5 and after["aux.speed"]["count"] == 41
    assert after["aux.lane"]["type"] == "tag"
    assert to_epoch(after["timestamp"]["min"]) == BASE - 100
    # another type has its own statistics
    assert admin.get_searchable_field_statistics("videos") == {}
