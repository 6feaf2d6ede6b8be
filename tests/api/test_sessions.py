"""Sessions through the client against an in-process server (issue 11): documents, entities and their bad input,
resolution (manual, urgent, debounced), scenario search, timeseries and DataFrames, tables, images on the
timeline, deletion, real GNSS/CAN data and enrichments."""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage
from pydantic import TypeAdapter

from sample_data import require_shared_data
from scenebase.api.schemas.sessions import FieldValues, SessionDocument, SessionEntity, TimeseriesInterval
from scenebase.clients import SceneEngineClient
from scenebase.errors import InvalidTimeError, SessionError
from scenebase.models.assets import Image
from scenebase.testing import ADMIN_TOKEN, InProcessServer

T0 = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[InProcessServer]:
    with InProcessServer(tmp_path / "data", session_resolution_debounce_seconds=0.2) as s:
        yield s


@pytest.fixture
def client(srv: InProcessServer) -> SceneEngineClient:
    return srv.client()


def wait_ready(client: SceneEngineClient, uid: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while client.get_session_resolution_status(uid) != "ready":
        assert time.monotonic() < deadline, client.get_session_resolution_status(uid)
        time.sleep(0.05)


def scalar(uid: str, name: str, t: float, value: Any, **kw: Any) -> dict[str, Any]:
    return {
        "session": uid,
        "entity_name": name,
        "entity_type": "scalar",
        "entity_value": value,
        "influence": "linear_interpolation",
        "timestamp": at(t),
        **kw,
    }


# ------------------------------------------------------------------------------------------------ documents


def test_session_documents(client: SceneEngineClient) -> None:
    uid = client.add_session("Drive 1: Highway", resolution=0.5, session_aux_metadata={"car": "a", "n": 2})
    assert client.add_session("drive 1_ highway") == uid  # same standardized name: the same session
    with pytest.raises(SessionError, match="already exists"):
        client.create_session("Drive 1: Highway", raise_if_session_exists=True)
    assert client.get_standardized_session_name("Drive 1: Highway") == "drive_1__highway"
    doc = client.get_metadata(uid, "sessions")
    assert (doc["session_name"], doc["resolution"], doc["session_aux"], doc["status"]) == (
        "Drive 1: Highway",
        0.5,
        {"car": "a", "n": 2},
        "ready",
    )
    doc = client.update_time_span(uid, at(0), at(100))
    assert (doc["start_time"], doc["end_time"]) == (
        at(0).isoformat(timespec="microseconds"),
        at(100).isoformat(timespec="microseconds"),
    )
    with pytest.raises(InvalidTimeError, match="no time zone"):
        client.update_time_span(uid, "2021-06-01T12:00:00", at(5))
    with pytest.raises(SessionError, match="at most 5400 s"):
        client.update_time_span(uid, at(0), at(6000))  # 10,800 buckets of 0.5 s
    cams = [{"name": "cam_1", "type": "camera"}]
    doc = client.add_source_data(uid, [{"sensor": "cam_1", "id": "v1", "type": "videos"}], cams)
    doc = client.add_source_data(
        uid, [{"sensor": "cam_2", "id": "v2", "type": "videos"}], [{"name": "cam_2", "type": "camera"}], replace=False
    )
    assert [s["id"] for s in doc["source_data"]] == ["v1", "v2"] and len(doc["sensors"]) == 2
    with pytest.raises(SessionError, match=r"sensors\[0\].type"):
        client.add_source_data(uid, [], [{"name": "x", "type": "sonar"}])
    doc = client.add_auxiliary_session_data(uid, [{"id": "c1", "type": "concatenated_video", "tags": ["cam_1"]}])
    assert doc["auxiliary_data"][0]["id"] == "c1"
    configs = [
        {
            "input_event": "geo_locations",
            "type": "location",
            "configuration": {"influence_type": "interval", "influence_radius_in_seconds": 0.5},
        }
    ]
    assert client.add_enrichments_configs(uid, configs)["enrichments_configs"] == configs
    with pytest.raises(SessionError, match="unknown 'sunshine'"):
        client.add_enrichments_configs(uid, [{"type": "sunshine"}])
    # sessions are searchable documents
    assert client.search_assets("sessions", {"filters": [{"field": "session_aux.car", "values": ["a"]}]}) == [uid]


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_entities_are_reported_and_the_rest_kept(client: SceneEngineClient) -> None:
    uid = client.add_session("bad input")
    client.update_time_span(uid, at(0), at(60))
    good = scalar(uid, "speed", 1, 3.0)
    batch = [
        good,
        scalar("no_such_session", "speed", 1, 1.0),
        {**good, "timestamp": "2021-06-01T12:00:01"},
        {**good, "entity_value": float("nan")},
        {**good, "entity_type": "colour"},
        {**good, "influence": "sideways"},
        {**good, "influence": "interval", "start_time": at(5), "end_time": at(2)},
        {**good, "timestamp": at(20000), "extend_session": True},
        {**good, "entity_type": "state", "entity_value": "x"},  # linear interpolation of a state
        scalar(uid, "speed", 2, 4.0),
    ]
    out = client.add_entities(batch)
    assert out["accepted"] == 2
    problems = {r["index"]: r["error"] for r in out["rejected"]}
    assert set(problems) == set(range(1, 9))
    assert "unknown session 'no_such_session'" in problems[1]
    assert "has no time zone" in problems[2]
    assert "not a finite number" in problems[3]
    assert "unknown type 'colour'" in problems[4]
    assert "unknown influence 'sideways'" in problems[5]
    assert "start_time is after end_time" in problems[6]
    assert "would stretch session" in problems[7] and "at most 10800 s" in problems[7]
    assert "applies to scalar entities" in problems[8]
    assert client.last_errors == out["rejected"]
    with pytest.raises(SessionError, match="unknown session"):
        client.add_entity(scalar("nope", "speed", 1, 1.0))
    with pytest.raises(InvalidTimeError, match="after end_time"):
        client.add_event_interval("weather", "rain", at(5), at(1), uid)
    with pytest.raises(IndexError, match="same length"):
        client.add_event_intervals("weather", ["a", "b"], [at(1)], [at(2), at(3)], uid)
    with pytest.raises(InvalidTimeError, match="epsilon"):
        client.add_event_intervals("weather", ["a"], [at(1)], [at(1.5)], uid, epsilon=0.5)
    entities = client.get_metadata(uid, "sessions", with_session_metadata=True)["session_metadata"]["entities"]
    assert [e["entity_value"] for e in entities] == [3.0, 4.0]


def test_tables_bad_input(client: SceneEngineClient, tmp_path: Path) -> None:
    uid = client.add_session("tables")
    no_time = tmp_path / "no_time.csv"
    no_time.write_text("speed,gear\n1.0,2\n")
    with pytest.raises(KeyError, match="no 'timestamp' or 'timestamps' column"):
        client.add_timeseries_csv(uid, str(no_time))
    garbled = tmp_path / "garbled.csv"
    garbled.write_text("timestamp,speed\n2021-06-01T12:00:00+00:00,1\nyesterday,2\n")
    with pytest.raises(InvalidTimeError, match="row 1: 'yesterday' is not a time"):
        client.add_timeseries_csv(uid, str(garbled))
    naive = tmp_path / "naive.csv"
    naive.write_text("timestamps,speed\n2021-06-01T12:00:00,1\n")
    with pytest.raises(InvalidTimeError, match=r"row 0.*no time zone"):
        client.add_timeseries_csv(uid, str(naive))
    with pytest.raises(SessionError, match="no session"):
        client.add_df(pd.DataFrame({"timestamp": [at(0)], "speed": [1.0]}), "nope")


# ------------------------------------------------------------------------------------------------ resolution


def test_resolution_manual_urgent_and_debounced(client: SceneEngineClient) -> None:
    uid = client.add_session("resolution")
    client._add_entities([scalar(uid, "speed", 0, 0.0), scalar(uid, "speed", 10, 10.0)], urgent=True)
    assert client.get_session_resolution_status(uid) == "unresolved"  # urgent: waits for a manual resolve
    client.resolve_session(uid, wait_for_completion=True)
    assert client.get_session_resolution_status(uid) == "ready"
    data = client.download_timeseries({"ranges": [{"field": "speed", "min": 4, "max": 6}]}, ["speed"])
    assert [iv["speed"] for iv in data[uid]] == [[4.0, 5.0, 6.0]]
    # non-urgent writes resolve by themselves once writes pause
    client.add_event_interval("weather", "rain", at(2), at(5), uid)
    wait_ready(client, uid)
    hits = client.search_session_intervals({"filters": [{"field": "weather", "values": ["rain"]}]})
    assert hits == {uid: [(at(2), at(5))]}
    # a new resolution re-grids the session
    client.resolve_session(uid, resolution=2.0, wait_for_completion=True)
    data = client.download_timeseries({"filters": [{"field": "weather", "values": ["rain"]}]}, ["speed"])
    assert data[uid][0]["timestamp"] == [
        at(2).isoformat(timespec="microseconds"),
        at(4).isoformat(timespec="microseconds"),
    ]


def test_scenario_search_timeseries_and_dataframe(client: SceneEngineClient) -> None:
    uids = [client.add_session(f"drive {i}") for i in range(3)]
    for i, uid in enumerate(uids):
        speeds = [scalar(uid, "speed", t, float(t * (i + 1))) for t in range(0, 31, 5)]  # 0..30*(i+1)
        events = [
            {
                "session": uid,
                "entity_name": "weather",
                "entity_type": "state",
                "entity_value": "rain",
                "influence": "affect_forward",
                "timestamp": at(10),
            },
            {
                "session": uid,
                "entity_name": "weather",
                "entity_type": "state",
                "entity_value": "sun",
                "influence": "affect_forward",
                "timestamp": at(20),
            },
            {
                "session": uid,
                "entity_name": "objects",
                "entity_type": "state_set",
                "entity_value": ["pedestrian", "car"],
                "influence": "interval",
                "start_time": at(12),
                "end_time": at(25),
            },
        ]
        client._add_entities(speeds + events, urgent=True)
        client.resolve_session(uid, wait_for_completion=True)
    search = {
        "filters": [{"field": "weather", "values": ["rain"]}, {"field": "objects", "values": ["pedestrian"]}],
        "ranges": [{"field": "speed", "min": 25}],
    }
    hits = client.search_session_intervals(search)
    # rain 10..19, pedestrian 12..24; speed >= 25 from t=25 (drive 0: never), 12.5 (drive 1), 8.33 (drive 2)
    assert hits == {uids[1]: [(at(13), at(20))], uids[2]: [(at(12), at(20))]}
    assert client.search_session_intervals(search, min_duration=7) == hits  # 7 and 8 buckets of 1 s
    assert client.search_session_intervals(search, min_duration=7.5) == {uids[2]: [(at(12), at(20))]}
    windowed = {**search, "time_range": {"start_time": at(15), "end_time": at(17)}}
    assert client.search_session_intervals(windowed)[uids[2]] == [(at(15), at(17))]
    only = {**search, "filters": [*search["filters"], {"field": "session_uid", "values": [uids[1]]}]}
    assert list(client.search_session_intervals(only)) == [uids[1]]
    data = client.download_timeseries(search, ["speed", "weather"])
    first = data[uids[1]][0]
    assert set(first) == {"start_time", "end_time", "timestamp", "speed", "weather"}
    assert first["speed"][0] == pytest.approx(26.0) and first["weather"] == ["rain"] * 7
    df = client.session_intervals_dataframe(search, ["speed", "objects"])
    assert len(df) == 7 + 8 and set(df["session_uid"]) == {uids[1], uids[2]}
    assert list(df.columns) == [
        "session_uid",
        "interval",
        "interval_start",
        "interval_end",
        "timestamp",
        "speed",
        "objects",
    ]
    assert df["objects"].iloc[0] == ["car", "pedestrian"]
    with pytest.raises(SessionError, match="did you mean 'ranges'"):
        client.search_session_intervals({"range": []})


def test_add_df_and_csv(client: SceneEngineClient, tmp_path: Path) -> None:
    uid = client.add_session("table")
    times = [at(t) for t in range(0, 100)]
    df = pd.DataFrame(
        {
            "timestamps": times,
            "Speed": np.linspace(0, 99, 100),
            "gear": ["D"] * 50 + ["N"] * 50,
            "lat": np.linspace(37.0, 37.1, 100),
            "lon": np.linspace(-122.0, -122.1, 100),
        }
    )
    df.loc[5, "Speed"] = np.nan  # a missing cell: skipped for that column only
    client.add_df(df, uid)
    wait_ready(client, uid)
    data = client.download_timeseries({"filters": [{"field": "gear", "values": ["N"]}]}, ["speed", "geolocation"])
    (iv,) = data[uid]
    assert iv["start_time"] == at(49).isoformat(timespec="microseconds")  # point events cover ± one resolution
    assert iv["speed"][1] == pytest.approx(50.0) and iv["geolocation"][1][0] == pytest.approx(37.0 + 0.1 * 50 / 99)
    csv = tmp_path / "m.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in times], "rpm": range(100)}).to_csv(csv, index=False)
    client.add_timeseries_csv(uid, str(csv))
    wait_ready(client, uid)
    hits = client.search_session_intervals({"ranges": [{"field": "rpm", "min": 90}]})
    assert hits == {uid: [(at(90), at(100))]}


def test_add_df_of_a_table_larger_than_one_request(tmp_path: Path) -> None:
    """A table over the server's request size limit goes in row batches (halved while the server says a batch
    is too large) and resolves as one table would; a refused batch names its rows and those already stored."""
    with InProcessServer(tmp_path / "data", max_request_bytes=20_000, session_resolution_debounce_seconds=0.2) as s:
        client = s.client()
        uid = client.add_session("big table")
        n = 1500
        df = pd.DataFrame({"timestamp": [at(t) for t in range(n)], "rpm": np.arange(n) * 2.0,
                           "gear": ["D" if t < 1000 else "N" for t in range(n)]})  # fmt: skip
        client.resolve_session(uid, wait_for_completion=True)
        client.get_job(client.add_df(df, uid)).wait(timeout=60)
        wait_ready(client, uid)
        hits = client.search_session_intervals({"ranges": [{"field": "rpm", "min": 2900}]})
        assert hits == {uid: [(at(1450), at(n))]}
        data = client.download_timeseries({"filters": [{"field": "gear", "values": ["N"]}]}, ["rpm"])
        assert data[uid][0]["rpm"][1:-1] == [2.0 * t for t in range(1000, n - 1)]
        owner = client.get_metadata(uid, "sessions")["owner"]
        assert s.runtime.timeline.repo.count_entities(owner, uid) == 2 * n  # every row once, none twice

        bad = df.assign(rpm=df["rpm"].where(df.index != 1400, np.inf))
        other = client.add_session("refused rows")
        with pytest.raises(SessionError, match=r"rows \d+ to \d+ of the table: .*row \d+.*not a finite number.*"
                                               r"\(rows 0 to \d+ were stored\)"):  # fmt: skip
            client.add_df(bad, other)


def test_images_on_their_session(client: SceneEngineClient) -> None:
    uid = client.add_session("with images")
    client.update_time_span(uid, at(0), at(60))
    set_id = client.create_set("imgs", "images")
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    one = client.add_image(
        image_bytes=buf.getvalue(), id="img_1", timestamp=at(10), session_uid=uid, set_id=set_id, add_to_session=True
    )
    ids = client.add_images(
        [Image(id=f"img_{i}", bytes=buf.getvalue(), timestamp=at(20 + i), session_uid=uid) for i in (2, 3)],
        set_id,
        add_to_session=True,
    )
    assert [one, *ids] == ["img_1", "img_2", "img_3"]
    wait_ready(client, uid)
    hits = client.search_session_intervals({"filters": [{"field": "image", "values": ["img_2"]}]})
    assert hits == {uid: [(at(21), at(23))]}  # interval ± one resolution
    meta = client.get_metadata("img_3", "images", with_session_metadata=True)["session_metadata"]
    assert meta["session_uid"] == uid and meta["image"] == ["img_3"]  # img_2 covers 21..22, img_3 22..23
    assert client.download_timeseries({"time_range": {"start_time": at(22), "end_time": at(23)}}, ["image"])[uid][0][
        "image"
    ] == [["img_2", "img_3"]]


def test_delete_session(client: SceneEngineClient) -> None:
    set_id = client.create_set("imgs", "images")
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buf, "PNG")
    uids = []
    for i in range(3):
        uid = client.add_session(f"s{i}")
        client._add_entities([scalar(uid, "speed", 0, 1.0), scalar(uid, "speed", 5, 2.0)], urgent=True)
        client.resolve_session(uid, wait_for_completion=True)
        client.add_image(image_bytes=buf.getvalue(), id=f"img_{i}", timestamp=at(1), session_uid=uid, set_id=set_id)
        uids.append(uid)
    client.delete_session(uids[0], wait_for_completion=True)
    client.delete_session(uids[1], delete_assets_contents=False, wait_for_completion=True)
    assert client.search_assets("sessions") == [uids[2]]
    assert sorted(client.search_assets("images")) == ["img_1", "img_2"]
    assert list(client.search_session_intervals({"exists_filters": [{"field": "speed"}]})) == [uids[2]]
    with pytest.raises(SessionError, match="no session"):
        client.get_session_resolution_status(uids[0])
    assert client.add_session("s0") != uids[0]  # the name is free again


# ------------------------------------------------------------------------------------------------ real data


def test_real_gnss_and_can_speed(client: SceneEngineClient) -> None:
    seg = require_shared_data("timeseries/comma2k19_segment")
    gnss = np.load(seg / "processed_log__GNSS__live_gnss_ublox__value.npy")  # lat, lon, speed, utc ms, alt, bearing
    gnss_t = np.load(seg / "processed_log__GNSS__live_gnss_ublox__t.npy")
    can_t = np.load(seg / "processed_log__CAN__speed__t.npy")
    can_v = np.load(seg / "processed_log__CAN__speed__value.npy")[:, 0]
    # boot-relative times onto UTC with the GNSS receiver's clock (utc_timestamp is in ms)
    offset = float(np.median(gnss[:, 3] / 1000.0 - gnss_t))
    uid = client.add_session("comma2k19 segment", resolution=1.0)
    client.add_enrichments_configs(
        uid,
        [
            {
                "input_event": "geo_locations",
                "type": t,
                "configuration": {"influence_type": "interval", "influence_radius_in_seconds": 1.0},
            }
            for t in ("location", "visibility")
        ],
    )
    fixes = pd.DataFrame(
        {"timestamp": pd.to_datetime(gnss_t + offset, unit="s", utc=True), "lat": gnss[:, 0], "lon": gnss[:, 1]}
    )
    client.add_df(fixes, uid)
    speed = pd.DataFrame({"timestamp": pd.to_datetime(can_t + offset, unit="s", utc=True), "speed": can_v})
    client.add_df(speed, uid)
    wait_ready(client, uid)
    threshold = 18.0
    hits = client.search_session_intervals({"ranges": [{"field": "speed", "min": threshold}]})
    # the oracle: buckets whose start-time speed (interpolated in the raw CAN log) reaches the threshold
    buckets = np.arange(np.floor(can_t[0] + offset), np.floor(can_t[-1] + offset) + 1)
    clamped = np.clip(buckets, can_t[0] + offset, can_t[-1] + offset)
    above = np.interp(clamped, can_t + offset, can_v) >= threshold
    edges = np.diff(np.concatenate([[0], above.astype(int), [0]]))
    want = [
        (datetime.fromtimestamp(buckets[a], UTC), datetime.fromtimestamp(buckets[b - 1] + 1, UTC))
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    ]
    assert want, "the segment must have stretches above the threshold"
    assert hits[uid] == want
    # enrichments: the drive is in the SF Bay Area in the afternoon (UTC 15:34)
    data = client.download_timeseries(
        {"filters": [{"field": "state", "values": ["California"]}]}, ["country", "visibility", "geolocation"]
    )
    (iv,) = data[uid]
    assert set(iv["country"]) == {"United States"} and set(iv["visibility"]) == {"day"}


class _Recorded(http.server.BaseHTTPRequestHandler):
    """Serves a response in Open-Meteo's archive format (written for this test: nothing is fetched)."""

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        start = int(T0.timestamp()) - 3600
        body = {
            "latitude": 37.7,
            "longitude": -122.5,
            "timezone": "GMT",
            "utc_offset_seconds": 0,
            "hourly_units": {
                "time": "unixtime",
                "weather_code": "wmo code",
                "temperature_2m": "°C",
                "precipitation": "mm",
            },
            "hourly": {
                "time": [start + 3600 * i for i in range(4)],
                "weather_code": [3, 63, 63, 0],
                "temperature_2m": [14.1, 12.5, 12.0, 15.2],
                "precipitation": [0.0, 1.2, 0.8, 0.0],
            },
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def weather_api() -> Iterator[tuple[str, list[str]]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Recorded))
    httpd.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.paths  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _weather_session(client: SceneEngineClient) -> str:
    uid = client.add_session("weather")
    client.update_time_span(uid, at(0), at(7200))
    client.add_enrichments_configs(
        uid,
        [{"input_event": "geo_locations", "type": "weather", "configuration": {"influence_radius_in_seconds": 1.0}}],
    )
    for t in range(0, 7200, 600):
        client.add_geolocation_entity(37.72, -122.47, at(t), uid)
    client.resolve_session(uid, wait_for_completion=True)
    return uid


def test_weather_provider_against_a_recorded_answer(tmp_path: Path, weather_api: tuple[str, list[str]]) -> None:
    url, paths = weather_api
    with InProcessServer(tmp_path / "data", weather_url=url) as s:
        client = s.client()
        uid = _weather_session(client)
        data = client.download_timeseries(
            {"filters": [{"field": "weather_conditions", "values": ["rain"]}]},
            ["weather_descriptions", "precipitation"],
        )
        # hour 1 (12:00-13:00) is rain 63 at 1.2 mm, hour 2 still rain at 0.8 mm
        rain = [v for iv in data[uid] for v in iv["precipitation"]]
        assert sorted(set(rain)) == [0.8, 1.2]
        assert {d for iv in data[uid] for ds in iv["weather_descriptions"] for d in ds} == {"moderate rain"}
        # one request per place and day (an automatic and the manual resolution may each ask once)
        assert len(set(paths)) == 1 and "latitude=37.7" in paths[0] and "timeformat=unixtime" in paths[0]


def test_weather_not_configured_invents_nothing(client: SceneEngineClient) -> None:
    uid = _weather_session(client)
    job = client.get_job(client.resolve_session(uid, wait_for_completion=True))
    assert any("weather enrichment: not configured" in n for n in job.notes)
    data = client.download_timeseries({}, None)
    assert set(data[uid][0]) == {"start_time", "end_time", "timestamp", "geolocation"}


def test_large_answers_match_their_documented_models(srv: InProcessServer, client: SceneEngineClient) -> None:
    """Entities, field data and time series are documented in /openapi.json but not re-validated by the server
    (they can be large): real answers must still have the documented shapes."""
    uid = client.add_session("typed answers")
    objects = {"session": uid, "entity_name": "objects", "entity_type": "state_set", "entity_value": ["car"],
               "influence": "interval", "start_time": at(2), "end_time": at(6)}  # fmt: skip
    client._add_entities([scalar(uid, "speed", 0, 1.0), scalar(uid, "speed", 10, 3.0), objects], urgent=True)
    client.resolve_session(uid, wait_for_completion=True)
    http, auth = srv.http(), {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    span = {"session_uid": uid, "session_start_time": at(0).isoformat(), "session_end_time": at(10).isoformat()}
    doc = http.post("/v1/sessions/update_time_span/", json=span, headers=auth).json()
    assert SessionDocument.model_validate(doc).start_time == at(0).isoformat(timespec="microseconds")
    sensors = {"session_uid": uid, "sensors": [{"name": "cam", "type": "camera"}]}
    doc = http.post("/v1/sessions/add_source_data/", json=sensors, headers=auth).json()
    assert SessionDocument.model_validate(doc).sensors == [{"name": "cam", "type": "camera"}]
    entities = http.get(f"/v1/session_manager/entities/{uid}", headers=auth).json()
    assert [e.entity_name for e in TypeAdapter(list[SessionEntity]).validate_python(entities)] == [
        "speed",
        "speed",
        "objects",
    ]
    assert entities[2]["start_time"] == at(2).isoformat(timespec="microseconds")
    fields = http.post(f"/v1/session_manager/field_data/{uid}", json={"session_fields": ["speed"]}, headers=auth)
    values = FieldValues.model_validate(fields.json())
    assert set(fields.json()) == {"time_index", "timestamp", "speed"}
    assert len(values.time_index) == len(values.timestamp) == len(fields.json()["speed"]) > 0
    body = {"search": {"ranges": [{"field": "speed", "min": 2}]}, "fields": ["speed"]}
    series = http.post("/v1/session_manager/timeseries/", json=body, headers=auth).json()
    (interval,) = TypeAdapter(dict[str, list[TimeseriesInterval]]).validate_python(series)[uid]
    assert set(series[uid][0]) == {"start_time", "end_time", "timestamp", "speed"} and interval.timestamp
