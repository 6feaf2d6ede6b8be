"""Hostile input against the API (issue 8 items 13 and 20): each test sends the attack and checks that the answer
is a 4xx naming the problem, that nothing else in the batch is lost, and that the organization's data stays
readable afterwards."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from starlette.testclient import TestClient

from scenebase.domain.metadata import MAX_DEPTH
from scenebase.domain.search import MAX_CONDITIONS
from scenebase.media.budget import DECODE_BUDGET
from scenebase.testing import ADMIN_TOKEN, InProcessServer
from servers import PostgresServer

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {**AUTH, "content-type": "application/json"}


def png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), (seed, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def nested(depth: int, leaf: Any = 1) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


def upload(http: TestClient, manifest: str | dict[str, Any], files: int = 1, **extra_files: bytes) -> Any:
    """POST a batch: ``manifest`` (raw text or a dict) and ``files`` small PNG parts named f0, f1, ..."""
    body = manifest if isinstance(manifest, str) else json.dumps(manifest)
    parts: dict[str, Any] = {"manifest": (None, body, "application/json")}
    for i in range(files):
        parts[f"f{i}"] = (f"p{i}.png", png(i), "image/png")
    for name, data in extra_files.items():
        parts[name] = (f"{name}.bin", data, "application/octet-stream")
    return http.post("/v1/images/add/", headers=AUTH, files=parts)


def nested_lists(depth: int) -> Any:
    leaf: Any = 1
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def two_items(bad_meta: dict[str, Any]) -> dict[str, Any]:
    """A good item and one with ``bad_meta``: the good one must be ingested whatever the bad one holds."""
    return {"items": [{"file": "f0", "name": "good.png", "metadata": {"id": "good"}},
                      {"file": "f1", "name": "bad.png", "metadata": bad_meta}]}  # fmt: skip


@pytest.fixture
def http(server: InProcessServer) -> TestClient:
    return server.http()


def assert_metadata_readable(http: TestClient) -> None:
    answer = http.post("/v1/images/meta/", headers=JSON, json={})
    assert answer.status_code == 200, answer.text


# ---------------------------------------------------------------------------------------- item 13: bad metadata


@pytest.mark.parametrize(
    ("bad_meta", "expected"),
    [
        ({"timestamp": 1e300}, "outside the years 1 to 9999"),
        ({"timestamp": -1e18}, "outside the years 1 to 9999"),
        ({"aux": nested(900)}, f"nested more than {MAX_DEPTH} levels deep"),
        ({"aux": {"list": nested_lists(40)}}, "nested more than"),
        ({"aux": {"blob": "x" * 300_000}}, "bytes of JSON; at most"),
    ],
    ids=["timestamp-1e300", "timestamp-minus-1e18", "aux-900-deep", "lists-deep", "metadata-300kb"],
)
def test_bad_metadata_fails_its_item_only(http: TestClient, bad_meta: dict[str, Any], expected: str) -> None:
    answer = upload(http, two_items(bad_meta), files=2)
    assert answer.status_code == 207, answer.text
    body = answer.json()
    assert body["ids"] == ["good", None]
    [error] = body["errors"]
    assert error["index"] == 1 and error["name"] == "bad.png" and error["status"] == 400
    assert expected in error["error"]
    assert_metadata_readable(http)


def test_aux_integer_beyond_float_range_is_refused(http: TestClient) -> None:
    # written by hand: json.dumps cannot produce it from a float, and a Python int this large is what json.loads
    # makes of it on the server
    raw = (
        '{"items": [{"file": "f0", "name": "good.png", "metadata": {"id": "good"}}, '
        '{"file": "f1", "name": "bad.png", "metadata": {"aux": {"x": 1' + "0" * 400 + "}}}]}"
    )
    answer = upload(http, raw, files=2)
    assert answer.status_code == 207, answer.text
    [error] = answer.json()["errors"]
    assert error["name"] == "bad.png" and "aux.x" in error["error"] and "too large" in error["error"]
    assert_metadata_readable(http)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"items": [{"file": "f0", "metadata": {"aux": ' + '{"a":' * 1000 + "1" + "}" * 1000 + "}}]}", "nested"),
        ('{"items": [' + "[" * 100_000 + "]" * 100_000 + "]}", "nested"),
        ('{"items": [{"file": "f0", "metadata": {"aux": {"x": 1' + "0" * 5000 + "}}}]}", "not valid JSON"),
        ("\udcff", "not valid JSON"),
    ],
    ids=["manifest-1000-deep", "manifest-100000-deep", "5000-digit-integer", "not-utf8"],
)
def test_unreadable_manifest_is_a_400(http: TestClient, raw: str, expected: str) -> None:
    body = raw.encode("utf-8", "surrogateescape")
    answer = http.post(
        "/v1/images/add/",
        headers=AUTH,
        files={"manifest": ("manifest.json", body, "application/json"), "f0": ("a.png", png(), "image/png")},
    )
    assert answer.status_code == 400, answer.text
    assert expected in answer.json()["error"]["message"]


@pytest.mark.parametrize("multipart", [False, True], ids=["json-body", "multipart-manifest"])
@pytest.mark.parametrize(
    "raw",
    [b'{"annotations": [{"provider": "\xff\xfe"}]}', b'{"annotations": [{"x": 1' + b"0" * 5000 + b"}]}"],
    ids=["not-utf8", "5000-digit-integer"],
)
def test_unreadable_annotations_body_is_a_400(http: TestClient, raw: bytes, multipart: bool) -> None:
    """The fuzz test found a body that is not UTF-8 answered 500 (the JSON fallback's UnicodeDecodeError)."""
    if multipart:
        files = {"manifest": ("manifest.json", raw, "application/json"), "f0": ("a.json", b"{}", "application/json")}
        answer = http.post("/v1/annotations/add/", headers=AUTH, files=files)
    else:
        answer = http.post("/v1/annotations/add/", headers=JSON, content=raw)
    assert answer.status_code == 400, answer.text
    assert "not valid JSON" in answer.json()["error"]["message"]


def test_set_ids_must_be_strings(http: TestClient) -> None:
    answer = upload(http, {"items": [{"file": "f0", "metadata": {}}], "set_ids": [123]})
    assert answer.status_code == 400
    assert "set_ids" in answer.json()["error"]["message"]


def test_set_with_deep_aux_is_refused_and_sets_stay_readable(http: TestClient) -> None:
    answer = http.post(
        "/v1/sets/add/", headers=JSON, json={"name": "s", "assets_type": "images", "auxiliary": nested(900)}
    )
    assert answer.status_code == 400, answer.text
    assert "nested more than" in answer.json()["error"]["message"]
    ok = http.post("/v1/sets/add/", headers=JSON, json={"name": "t", "assets_type": "images", "auxiliary": nested(5)})
    assert ok.status_code == 200, ok.text
    assert http.post("/v1/sets/meta/", headers=JSON, json={}).status_code == 200


# ---------------------------------------------------------------------------------------- item 13: bad searches


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ({"ranges": [{"field": "aux.x", "min": int("9" * 400)}]}, "number too large"),
        ({"filters": [{"field": f"aux.f{i}", "values": ["x"]} for i in range(10_000)]}, f"at most {MAX_CONDITIONS}"),
        ({f"aux.f{i}": ["x"] for i in range(MAX_CONDITIONS + 1)}, f"at most {MAX_CONDITIONS} are allowed"),
        ({"aux.x": [int("9" * 400)]}, "number too large"),
        ({"time_range": {"start_time": 1e300}}, None),
        ({"filters": [{"field": "a" * 5000, "values": ["x"]}]}, "at most 1024 characters"),
    ],
    ids=["range-400-digits", "10000-filters", "101-shorthands", "value-400-digits", "time-1e300", "long-field"],
)
def test_hostile_search_is_a_400(http: TestClient, search: dict[str, Any], expected: str | None) -> None:
    for route in ("/v1/images/", "/v1/images/meta/"):
        answer = http.post(route, headers=JSON, content=json.dumps(search))
        if expected is None:  # a valid, if odd, search
            assert answer.status_code == 200, answer.text
            continue
        assert answer.status_code == 400, answer.text
        message = answer.json()["error"]["message"]
        assert expected in message
        assert len(message) < 1000  # the 400-digit number is not echoed whole


def test_ten_thousand_values_in_one_filter_are_fine(http: TestClient) -> None:
    upload(http, {"items": [{"file": "f0", "metadata": {"id": "img-1"}}]})
    ids = [f"img-{i}" for i in range(10_000)]
    answer = http.post("/v1/images/", headers=JSON, json={"id": ids})
    assert answer.status_code == 200, answer.text
    assert answer.json() == ["img_1"]


def test_summary_dimension_count_is_bounded(http: TestClient) -> None:
    answer = http.post("/v1/images/meta/summary/", headers=JSON, json={"dimensions": [f"d{i}" for i in range(10_000)]})
    assert answer.status_code == 400
    assert "at most" in answer.json()["error"]["message"]


def test_deeply_nested_json_body_is_a_4xx(http: TestClient) -> None:
    answer = http.post("/v1/images/", headers=JSON, content=b"[" * 100_000 + b"]" * 100_000)
    assert 400 <= answer.status_code < 500, answer.text


# ---------------------------------------------------------------------------------------- item 20: body limits


@pytest.fixture
def small_limits(tmp_path: Path) -> Iterator[InProcessServer]:
    with InProcessServer(
        tmp_path / "data", workers=0, max_request_bytes=64 * 1024, max_upload_bytes=256 * 1024, max_file_bytes=4096
    ) as srv:
        yield srv


def test_json_body_over_the_limit_is_413_by_content_length(small_limits: InProcessServer) -> None:
    http = small_limits.http()
    body = json.dumps({"aux.x": ["y" * 100_000]}).encode()
    answer = http.post("/v1/images/", headers=JSON, content=body)
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large" and "SCENEBASE_MAX_REQUEST_BYTES" in error["message"]
    assert str(len(body)) in error["message"]


def test_chunked_json_body_is_cut_off_at_the_limit(small_limits: InProcessServer) -> None:
    http = small_limits.http()
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"aux.x": ["'
        for _ in range(10_000):  # 10 MB if it were all read
            sent += 1
            yield b"y" * 1024
        yield b'"]}'

    answer = http.post("/v1/images/", headers=JSON, content=chunks())
    assert answer.status_code == 413, answer.text
    assert "passed 65536 bytes" in answer.json()["error"]["message"]


def test_sixty_megabyte_search_is_refused_with_the_default_limit(http: TestClient) -> None:
    answer = http.post("/v1/images/", headers=JSON, content=b'{"a": "' + b"x" * (60 * 1024 * 1024) + b'"}')
    assert answer.status_code == 413


def test_upload_over_the_total_limit_is_413(small_limits: InProcessServer) -> None:
    http = small_limits.http()
    big = {f"b{i}": b"\0" * 100_000 for i in range(3)}
    answer = upload(http, {"items": [{"file": "f0", "metadata": {}}]}, **big)
    assert answer.status_code == 413, answer.text
    assert "SCENEBASE_MAX_UPLOAD_BYTES" in answer.json()["error"]["message"]


def test_oversized_file_fails_its_item_only(small_limits: InProcessServer) -> None:
    http = small_limits.http()
    manifest = {"items": [{"file": "f0", "name": "ok.png", "metadata": {"id": "ok"}},
                          {"file": "big", "name": "big.png", "metadata": {}}]}  # fmt: skip
    answer = upload(http, manifest, big=b"\x89PNG" + b"\0" * 50_000)
    assert answer.status_code == 207, answer.text
    body = answer.json()
    assert body["ids"] == ["ok", None]
    [error] = body["errors"]
    assert error["status"] == 413 and "50004 bytes" in error["error"] and "4096" in error["error"]


def test_bad_content_length_is_a_400(http: TestClient) -> None:
    answer = http.post("/v1/images/", headers={**JSON, "content-length": "12abc"}, content=b"{}")
    assert answer.status_code == 400


# ---------------------------------------------------------------------------------------- item 5: decode memory


def gray16_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(np.zeros((height, width), dtype=np.uint16)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def small_decode_budget(tmp_path: Path) -> Iterator[InProcessServer]:
    saved = (DECODE_BUDGET.max_bytes, DECODE_BUDGET.max_concurrent, DECODE_BUDGET.wait_seconds)
    try:
        with InProcessServer(
            tmp_path / "data", workers=0, decode_memory_bytes=64 * 1024 * 1024, decode_wait_seconds=0.2
        ) as srv:
            yield srv
    finally:
        DECODE_BUDGET.configure(*saved)  # the budget is per process: leave it as other tests expect it


def test_image_too_large_to_decode_is_refused_at_ingest(small_decode_budget: InProcessServer) -> None:
    http = small_decode_budget.http()
    manifest = {"items": [{"file": "f0", "name": "ok.png", "metadata": {"id": "ok"}},
                          {"file": "bomb", "name": "bomb.png", "metadata": {}}]}  # fmt: skip
    answer = upload(http, manifest, bomb=gray16_png(4000, 4000))  # 96 MB of samples at least
    assert answer.status_code == 207, answer.text
    [error] = answer.json()["errors"]
    assert error["name"] == "bomb.png" and error["status"] == 415
    assert "too large to decode" in error["error"] and "4000x4000 I;16 PNG" in error["error"]


def test_thumbnail_over_the_budget_is_415_and_smaller_ones_work(small_decode_budget: InProcessServer) -> None:
    http = small_decode_budget.http()
    answer = upload(http, {"items": [{"file": "big", "metadata": {"id": "big"}}]}, files=0, big=gray16_png(2000, 2000))
    assert answer.status_code == 200, answer.text
    assert http.get("/v1/images/big/thumbnail/tiny", headers=AUTH).status_code == 200
    full = http.get("/v1/images/big/thumbnail/full_size_png", headers=AUTH)
    assert full.status_code == 415, full.text
    assert "too large to decode" in full.json()["error"]["message"]
    assert DECODE_BUDGET.in_use == (0, 0)


def test_thumbnail_while_the_budget_is_taken_is_503(small_decode_budget: InProcessServer) -> None:
    http = small_decode_budget.http()
    upload(http, {"items": [{"file": "f0", "metadata": {"id": "img"}}]})
    with DECODE_BUDGET.reserve(DECODE_BUDGET.max_bytes, "another request's decode"):
        busy = http.get("/v1/images/img/thumbnail/tiny", headers=AUTH)
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "1"
    assert http.get("/v1/images/img/thumbnail/tiny", headers=AUTH).status_code == 200


# ---------------------------------------------------------------------------------------- found while fuzzing


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"thumbnailize_at_ingest": True, "thumbnail_presets": 5}, "must be a list of preset names"),
        ({"thumbnailize_at_ingest": True, "thumbnail_presets": ["huge"]}, "unknown thumbnail presets ['huge']"),
        ({"thumbnailize_at_ingest": True, "thumbnail_presets": [{}]}, "must be a list of preset names"),
        ({"thumbnailize_at_ingest": "yes", "thumbnail_presets": ["tiny"]}, "must be true or false"),
    ],
)
def test_bad_batch_options_are_refused_before_anything_is_stored(
    http: TestClient, options: dict[str, Any], expected: str
) -> None:
    answer = upload(http, {"items": [{"file": "f0", "metadata": {"id": "never"}}], **options})
    assert answer.status_code == 400, answer.text
    assert expected in answer.json()["error"]["message"]
    assert http.post("/v1/images/", headers=JSON, json={}).json() == []


@pytest.mark.parametrize(
    ("bad_meta", "expected"),
    [
        ({"id": "x" * 300}, "at most 255 characters"),
        ({"aux": {"note": "nul\x00inside"}}, "aux.note contains a NUL character"),
        ({"aux": {"note": "\udcff"}}, "aux.note contains a lone surrogate"),
        ({"aux": {"\x00": 1}}, "a key contains a NUL character"),
        ({"sensor": "\udcff"}, "sensor contains a lone surrogate"),
    ],
    ids=["long-id", "nul", "surrogate", "nul-key", "surrogate-sensor"],
)
def test_unstorable_text_fails_its_item_only(http: TestClient, bad_meta: dict[str, Any], expected: str) -> None:
    answer = upload(http, two_items(bad_meta), files=2)
    assert answer.status_code == 207, answer.text
    [error] = answer.json()["errors"]
    assert error["name"] == "bad.png" and expected in error["error"]
    assert_metadata_readable(http)


@pytest.mark.parametrize(
    "search",
    [{"aux.x": ["a\x00b"]}, {"aux.x": ["\udcff"]}, {"filters": [{"field": "aux.\x00", "values": ["a"]}]}],
    ids=["nul-value", "surrogate-value", "nul-field"],
)
def test_unstorable_text_in_a_search_is_a_400(http: TestClient, search: dict[str, Any]) -> None:
    answer = http.post("/v1/images/", headers=JSON, content=json.dumps(search))
    assert answer.status_code == 400, answer.text


@pytest.mark.parametrize(
    "url", ["/v1/images/meta/a%00b", "/v1/images/?size=1%00", "/v1/sets/x%00/status/", "/v1/jobs/%00"]
)
def test_nul_in_a_url_is_a_400(http: TestClient, url: str) -> None:
    answer = http.request("POST" if url.startswith("/v1/images/?") else "GET", url, headers=JSON)
    assert answer.status_code == 400, answer.text
    assert "NUL" in answer.json()["error"]["message"]


def test_lone_surrogates_in_a_set_are_4xx(http: TestClient) -> None:
    name = http.post("/v1/sets/add/", headers=JSON, content=json.dumps({"name": "\udcff", "assets_type": "images"}))
    assert name.status_code == 422 and "unicode" in name.json()["error"]["message"]
    aux = json.dumps({"name": "s", "assets_type": "images", "auxiliary": {"k": "\udcff"}})
    answer = http.post("/v1/sets/add/", headers=JSON, content=aux)
    assert answer.status_code == 400, answer.text
    assert "aux.k contains a lone surrogate" in answer.json()["error"]["message"]


@pytest.mark.postgres
def test_text_postgresql_refuses_is_a_400(tmp_path: Path, postgres_server: PostgresServer) -> None:
    # a set name is typed text, not metadata: NUL passes validation and only PostgreSQL refuses it
    catalog = postgres_server.create_database(f"nul_{uuid.uuid4().hex[:12]}")
    with InProcessServer(tmp_path / "data", workers=0, catalog_url=catalog) as srv:
        http = srv.http()
        answer = http.post("/v1/sets/add/", headers=JSON, json={"name": "nul\x00name", "assets_type": "images"})
        assert answer.status_code == 400, answer.text
        assert "cannot be stored" in answer.json()["error"]["message"]
        assert (
            http.post("/v1/sets/add/", headers=JSON, json={"name": "fine", "assets_type": "images"}).status_code == 200
        )
