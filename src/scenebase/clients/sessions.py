"""Sessions and their timelines (FACTS 4): sessions, entities, events, measurement tables, resolution, scenario
search, timeseries downloads and deletion.

Times must carry a time zone (``datetime`` with tzinfo, or ISO strings with an offset); naive ones are refused.
Entity batches keep their valid part: rejected entities are logged and listed in ``client.last_errors``.
Tables (``add_df``, ``add_timeseries_csv``, ``session_intervals_dataframe``) need pandas
(``pip install 'scenebase[pandas]'``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from scenebase.clients.core import ClientCore
from scenebase.clients.encoding import iso_utc
from scenebase.domain.ids import new_id, standardize_id
from scenebase.errors import InvalidArgumentsError, InvalidTimeError, ResponseError, SessionError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("scenebase.client")

#: entities per request (the seed sends 100; larger requests keep 20,000 entities/s within reach)
ENTITY_BATCH = 5000
#: cells (rows x value columns) per ``add_df`` request: about 5 MB of JSON, well under the server's 16 MB limit
MEASUREMENT_BATCH_CELLS = 250_000


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("this method needs pandas: pip install 'scenebase[pandas]'") from None
    return pandas


def _iso(value: Any, what: str) -> str:
    if isinstance(value, datetime):
        try:
            return iso_utc(value)
        except InvalidTimeError as e:
            raise InvalidTimeError(f"{what}: {e.message}") from None
    if isinstance(value, str):
        text = value.strip()
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        if parsed.tzinfo is None:
            raise InvalidTimeError(f"{what}: {value!r} has no time zone; add an offset such as +00:00")
        return iso_utc(parsed)
    raise InvalidTimeError(f"{what}: expected a datetime with a time zone or an ISO string, got {value!r}")


def _dt(value: Any, what: str) -> datetime:
    return datetime.fromisoformat(_iso(value, what))


class SessionsMixin(ClientCore):
    last_errors: list[dict[str, Any]]

    # ------------------------------------------------------------------ sessions

    def get_standardized_session_name(self, session_name: str) -> str:
        body = {"session_name": session_name}
        return str(
            self._request("POST", "/v1/sessions/standardize_name/", json=body, error=SessionError)["session_name"]
        )

    def add_session(
        self,
        session_name: str,
        session_type: str = "generic",
        resolution: float | None = None,
        session_aux_metadata: dict[str, Any] | None = None,
    ) -> str:
        """Create a session and return its uid; a session of the same (standardized) name already there is
        returned with a warning (``create_session`` also takes status, set_id and raise_if_session_exists)."""
        return self.create_session(session_name, session_type, resolution, session_aux_metadata)

    def create_session(
        self,
        session_name: str,
        session_type: str = "generic",
        resolution: float | None = None,
        session_aux_metadata: dict[str, Any] | None = None,
        status: str = "ready",
        set_id: str | None = None,
        raise_if_session_exists: bool = False,
    ) -> str:
        """``add_session`` with the rest of the server's options (not in the seed): ``status`` ("in progress" or
        "ready"), a ``sessions`` set to join, and ``SessionError`` instead of reuse for an existing name."""
        body = {"session_name": session_name, "session_type": session_type, "resolution": resolution,
                "session_aux_metadata": session_aux_metadata, "status": status, "set_id": set_id,
                "raise_if_session_exists": raise_if_session_exists}  # fmt: skip
        out = self._request("POST", "/v1/sessions/add/", json=body, error=SessionError)
        if not out.get("created"):
            log.warning("a session named %r already exists: using it (uid %s)", session_name, out["session_uid"])
        return str(out["session_uid"])

    def update_time_span(self, session_uid: str, session_start_time: Any, session_end_time: Any) -> dict[str, Any]:
        body = {"session_uid": session_uid, "session_start_time": _iso(session_start_time, "session_start_time"),
                "session_end_time": _iso(session_end_time, "session_end_time")}  # fmt: skip
        return dict(self._request("POST", "/v1/sessions/update_time_span/", json=body, error=SessionError))

    def add_source_data(
        self, session_uid: str, source_data: list[dict[str, Any]], sensors: list[dict[str, Any]], replace: bool = True
    ) -> dict[str, Any]:
        body = {"session_uid": session_uid, "source_data": source_data, "sensors": sensors, "replace": replace}
        return dict(self._request("POST", "/v1/sessions/add_source_data/", json=body, error=SessionError))

    def add_auxiliary_session_data(
        self, session_uid: str, auxiliary_data: list[dict[str, Any]], replace: bool = True
    ) -> dict[str, Any]:
        body = {"session_uid": session_uid, "auxiliary_data": auxiliary_data, "replace": replace}
        return dict(self._request("POST", "/v1/sessions/add_auxiliary_data/", json=body, error=SessionError))

    def add_enrichments_configs(
        self, session_uid: str, enrichments_configs: list[dict[str, Any]], replace: bool = True
    ) -> dict[str, Any]:
        body = {"session_uid": session_uid, "enrichments_configs": enrichments_configs, "replace": replace}
        return dict(self._request("POST", "/v1/sessions/add_enrichments_configs/", json=body, error=SessionError))

    # ------------------------------------------------------------------ entities

    def add_entities(self, entity_dicts: list[dict[str, Any]]) -> dict[str, Any]:
        """Store entities (5,000 per request); their sessions resolve by themselves once writes pause.
        Returns ``{"acknowledged", "accepted", "rejected"}``; see ``_add_entities``."""
        return self._add_entities(entity_dicts, urgent=False)

    def _add_entities(self, entity_dicts: list[dict[str, Any]], urgent: bool = False) -> dict[str, Any]:
        """Store entities (5,000 per request). Returns ``{"acknowledged", "accepted", "rejected"}``; rejected
        entities (index, entity id, error) are logged and listed in ``client.last_errors``."""
        accepted, rejected = 0, []
        for start in range(0, len(entity_dicts), ENTITY_BATCH):
            part = entity_dicts[start : start + ENTITY_BATCH]
            out = self._request("POST", "/v1/session_manager/add_entities/", params={"urgent": urgent},
                                json={"entity_dicts": part}, error=SessionError)  # fmt: skip
            accepted += int(out["accepted"])
            rejected += [{**r, "index": r["index"] + start} for r in out["rejected"]]
        self.last_errors = rejected
        for r in rejected:
            log.warning("entity %s (%s) not added: %s", r["index"], r.get("entity_id"), r["error"])
        return {"acknowledged": True, "accepted": accepted, "rejected": rejected}

    def add_entity(self, entity_dict: dict[str, Any], urgent: bool = False) -> dict[str, Any]:
        """Store one entity; a refused one raises ``SessionError`` naming the problem."""
        out = self._add_entities([entity_dict], urgent=urgent)
        if out["rejected"]:
            raise SessionError(out["rejected"][0]["error"], details=out["rejected"])
        return {"acknowledged": True}

    def add_event_interval(
        self, event_name: str, event_value: Any, start_time: Any, end_time: Any, session_uid: str, urgent: bool = False
    ) -> str:
        """A ``state_set`` entity over [start, end]; returns its entity id."""
        start, end = _dt(start_time, "start_time"), _dt(end_time, "end_time")
        if start > end:
            raise InvalidTimeError(f"start_time {start.isoformat()} is after end_time {end.isoformat()}")
        entity_id = new_id()
        values = [event_value] if isinstance(event_value, str) else list(event_value)
        self.add_entity({"session": session_uid, "entity_id": entity_id, "entity_name": event_name,
                         "entity_type": "state_set", "entity_value": values, "influence": "interval",
                         "start_time": start, "end_time": end, "timestamp": start}, urgent=urgent)  # fmt: skip
        return entity_id

    def add_event_intervals(
        self,
        event_name: str,
        event_values: Sequence[Any],
        start_times: Sequence[Any],
        end_times: Sequence[Any],
        session_uid: str,
        epsilon: float = 0,
    ) -> list[str]:
        """Several ``state_set`` intervals (affect_forward with end, extending the session), each shrunk by
        ``epsilon`` seconds at both ends; returns their entity ids."""
        if not len(event_values) == len(start_times) == len(end_times):
            raise IndexError(f"event_values ({len(event_values)}), start_times ({len(start_times)}) and end_times "
                             f"({len(end_times)}) must have the same length")  # fmt: skip
        eps = timedelta(seconds=epsilon)
        entities, ids = [], []
        for i, (value, s, e) in enumerate(zip(event_values, start_times, end_times, strict=True)):
            start, end = _dt(s, f"start_times[{i}]") + eps, _dt(e, f"end_times[{i}]") - eps
            if start > end:
                raise InvalidTimeError(f"interval {i}: start {start.isoformat()} is after end {end.isoformat()}"
                                       + (f" once shrunk by epsilon={epsilon}" if epsilon else ""))  # fmt: skip
            ids.append(new_id())
            entities.append({"session": session_uid, "entity_id": ids[-1], "entity_name": event_name,
                             "entity_type": "state_set", "entity_value": [value] if isinstance(value, str) else value,
                             "influence": "affect_forward", "extend_session": True, "enrichments": [],
                             "start_time": start, "end_time": end, "timestamp": start})  # fmt: skip
        out = self.add_entities(entities)
        rejected = {r["index"] for r in out["rejected"]}
        return [entity_id for i, entity_id in enumerate(ids) if i not in rejected]

    def add_geolocation_entity(
        self, latitude: float, longitude: float, timestamp: Any, session_uid: str
    ) -> dict[str, Any]:
        """A geo fix (geo_interpolation, enriched with visibility, weather and location where configured)."""
        return self.add_entity({"session": session_uid, "entity_name": "geolocation", "entity_type": "geo",
                                "entity_value": [latitude, longitude], "geolocation": None,
                                "influence": "geo_interpolation", "timestamp": _iso(timestamp, "timestamp"),
                                "enrichments": ["visibility", "weather", "location"]})  # fmt: skip

    def add_media_entity(
        self,
        session_uid: str,
        media_asset_id: str,
        timestamp: Any,
        entity_name: str = "image",
        start_time: Any = None,
        end_time: Any = None,
        influence: str = "interval",
        extend_session: bool = False,
        urgent: bool = False,
    ) -> dict[str, Any]:
        """Put a media asset on its session's timeline (a ``media`` entity). Not in the seed: ``add_image`` /
        ``add_images`` with ``add_to_session`` call it, and so can video and LIDAR ingestion."""
        asset_id = standardize_id(media_asset_id)
        entity: dict[str, Any] = {"session": session_uid, "entity_id": asset_id, "entity_name": entity_name,
                                  "entity_type": "media", "entity_value": asset_id, "influence": influence,
                                  "timestamp": _iso(timestamp, "timestamp"),
                                  "extend_session": extend_session}  # fmt: skip
        if start_time is not None:
            entity["start_time"] = _iso(start_time, "start_time")
        if end_time is not None:
            entity["end_time"] = _iso(end_time, "end_time")
        return self.add_entity(entity, urgent=urgent)

    def add_comments(
        self, comments: str | list[str], start_time: Any, end_time: Any, session_uid: str,
        wait_for_completion: bool = False,
    ) -> str:  # fmt: skip
        """Comments over [start, end] (a job; returns its id)."""
        texts = [comments] if isinstance(comments, str) else list(comments)
        body = {"intervals": [{"start_time": _iso(start_time, "start_time"), "end_time": _iso(end_time, "end_time")}],
                "texts": texts}  # fmt: skip
        path = f"/v1/sessions/{quote(standardize_id(session_uid), safe='')}/comments"
        job_id = str(self._request("POST", path, json=body, error=SessionError)["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    # ------------------------------------------------------------------ tables

    def add_df(self, measurement_df: pd.DataFrame, session_uid: str, timestamps: Any = None) -> str:
        """Measurements from a DataFrame (FACTS 4.4), column by column: numeric columns become scalars named
        ``column.lower()``, ``lat``/``lon`` together geo fixes, other columns point events; times from a
        ``timestamp`` or ``timestamps`` column, or ``timestamps``. Then resolves; returns the resolution job id."""
        pd = _pandas()
        df = measurement_df
        if timestamps is not None:
            times = pd.Series(list(timestamps) if not isinstance(timestamps, pd.Series) else timestamps)
            if len(times) != len(df):
                raise InvalidArgumentsError(f"{len(times)} timestamps for {len(df)} rows")
        else:
            col = next((c for c in ("timestamp", "timestamps") if c in df.columns), None)
            if col is None:
                raise KeyError(f"no 'timestamp' or 'timestamps' column (columns: {list(df.columns)}) and no "
                               "timestamps argument")  # fmt: skip
            times = df[col]
            df = df.drop(columns=[col])
        epochs = _epochs(pd, times)
        columns: dict[str, Any] = {}
        if "lat" in df.columns and "lon" in df.columns:
            columns["geolocation"] = {"entity_type": "geo", "lat": _numbers(df["lat"]), "lon": _numbers(df["lon"])}
            df = df.drop(columns=["lat", "lon"])
        for name in df.columns:
            series = df[name]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                columns[str(name).lower()] = {"entity_type": "scalar", "values": _numbers(series)}
            else:
                values = series.astype(object).where(series.notna(), None).tolist()
                columns[str(name)] = {"entity_type": "state", "values": [None if v is None else str(v) for v in values]}
        if not columns:
            raise InvalidArgumentsError("the table has no measurement columns besides its timestamps")
        self._send_measurements(session_uid, epochs, columns)
        return self.resolve_session(session_uid)

    def _send_measurements(self, session_uid: str, epochs: list[float], columns: dict[str, Any]) -> None:
        """Send a table in row batches of at most ``MEASUREMENT_BATCH_CELLS`` cells, so that a large table fits
        the server's request size limit (a batch the server still finds too large is halved). The batches are
        stored in order: when one is refused, the error names its rows and says which rows were stored."""
        path = f"/v1/session_manager/add_measurements/{quote(standardize_id(session_uid), safe='')}"
        width = 1 + sum(2 if "lat" in col else 1 for col in columns.values())
        rows = max(1, MEASUREMENT_BATCH_CELLS // width)
        skipped: dict[str, int] = {}
        pending = [(a, min(a + rows, len(epochs))) for a in range(0, len(epochs), rows)]
        while pending:
            a, b = pending.pop(0)
            body = {"timestamps": epochs[a:b], "columns": {name: _rows_of(col, a, b) for name, col in columns.items()}}
            try:
                out = self._request("POST", path, json=body, error=SessionError)
            except SessionError as e:
                if e.code == "payload_too_large" and b - a > 1:
                    pending[:0] = [(a, (a + b) // 2), ((a + b) // 2, b)]
                    continue
                if a == 0:
                    raise
                raise SessionError(f"rows {a} to {b - 1} of the table: {e.message} (rows 0 to {a - 1} were stored)",
                                   status_code=e.status_code, code=e.code, details=e.details) from None  # fmt: skip
            for name, n in (out.get("skipped_missing") or {}).items():
                skipped[name] = skipped.get(name, 0) + int(n)
        for name, n in skipped.items():
            log.info("add_df: %d empty cells of column %r skipped", n, name)

    def add_timeseries_csv(self, session_uid: str, csv_filepath: str, df_labels: list[str] | None = None) -> str:
        """``add_df`` of a CSV file (``df_labels``: the column names to use)."""
        pd = _pandas()
        df = pd.read_csv(csv_filepath, names=df_labels) if df_labels else pd.read_csv(csv_filepath)
        return self.add_df(df, session_uid)

    # ------------------------------------------------------------------ resolution, status, deletion

    def resolve_session(
        self, session_uid: str, resolution: float | None = None, wait_for_completion: bool = False
    ) -> str:
        path = f"/v1/session_manager/resolve_session/{quote(standardize_id(session_uid), safe='')}"
        job_id = str(self._request("POST", path, params={"resolution": resolution}, error=SessionError)["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    def get_session_resolution_status(self, session_uid: str) -> str:
        path = f"/v1/session_manager/resolution_status/{quote(standardize_id(session_uid), safe='')}"
        return str(self._request("GET", path, error=SessionError)["status"])

    def delete_session(
        self, session_uid: str, delete_assets_contents: bool = True, wait_for_completion: bool = False
    ) -> str:
        path = f"/v1/session_manager/delete_session/{quote(standardize_id(session_uid), safe='')}"
        params = {"delete_assets_contents": delete_assets_contents}
        job_id = str(self._request("DELETE", path, params=params, error=SessionError)["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    # ------------------------------------------------------------------ search and timeseries

    def download_timeseries(
        self, search_dic: dict[str, Any] | None = None, fields: list[str] | None = None
    ) -> dict[str, Any]:
        """``{session_uid: [{"start_time", "end_time", "timestamp": [...], <field>: [...]}, ...]}`` for every
        interval the search matches (``fields`` None: every entity name)."""
        body = {"search": search_dic or {}, "fields": fields}
        return dict(self._request("POST", "/v1/session_manager/timeseries/", json=body, error=SessionError))

    def search_session_intervals(
        self, search: dict[str, Any] | None = None, min_duration: float | None = None
    ) -> dict[str, list[tuple[datetime, datetime]]]:
        """The maximal intervals per session where every condition of ``search`` holds (beyond the seed; see
        docs/sessions.md for the conditions), at least ``min_duration`` seconds long."""
        body = dict(search or {})
        if min_duration is not None:
            body["min_duration"] = min_duration
        out = self._request("POST", "/v1/session_manager/search/", json=body, error=SessionError)
        return {uid: [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in v["intervals"]]
                for uid, v in out.items()}  # fmt: skip

    def session_intervals_dataframe(
        self, search: dict[str, Any] | None = None, fields: list[str] | None = None, min_duration: float | None = None
    ) -> pd.DataFrame:
        """The matching intervals' resolved values as one DataFrame: a row per bucket with ``session_uid``,
        ``interval`` (its number within the session), ``interval_start``, ``interval_end``, ``timestamp`` and a
        column per field (beyond the seed)."""
        pd = _pandas()
        body = dict(search or {})
        if min_duration is not None:
            body["min_duration"] = min_duration
        data = self.download_timeseries(body, fields)
        frames = []
        for uid, intervals in data.items():
            for n, iv in enumerate(intervals):
                cols = {k: v for k, v in iv.items() if k not in ("start_time", "end_time")}
                frame = pd.DataFrame(cols)
                frame.insert(0, "interval_end", pd.Timestamp(iv["end_time"]))
                frame.insert(0, "interval_start", pd.Timestamp(iv["start_time"]))
                frame.insert(0, "interval", n)
                frame.insert(0, "session_uid", uid)
                frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
                frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=["session_uid", "interval", "interval_start", "interval_end", "timestamp"])
        return pd.concat(frames, ignore_index=True)

    def _session_metadata(self, doc: dict[str, Any]) -> dict[str, Any]:
        """What ``get_metadata(with_session_metadata=True)`` adds: a session's raw entities, or for an asset in a
        session the resolved values of every entity name at the asset's time."""
        if "session_name" in doc and "resolution" in doc:
            path = f"/v1/session_manager/entities/{quote(doc['id'], safe='')}"
            return {"entities": self._request("GET", path, error=SessionError)}
        uid = doc.get("session_uid")
        if not uid:
            return {}
        when = _iso(doc.get("timestamp"), "timestamp")
        path = f"/v1/session_manager/field_data/{quote(standardize_id(uid), safe='')}"
        body = {"search_dic": {"time_range": {"start_time": when, "end_time": when}}, "session_fields": ["*"]}
        try:
            data = self._request("POST", path, json=body, error=SessionError)
        except ResponseError as e:
            return {"session_uid": uid, "error": e.message}
        return {"session_uid": uid, **{k: (v[0] if v else None) for k, v in data.items() if k != "time_index"}}


def _epochs(pd: Any, times: Any) -> list[float]:
    """Epoch seconds of a column of times (vectorized); naive times and unparseable rows are refused by row."""
    series = pd.Series(times).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(series):
        raise InvalidTimeError("timestamps are numbers: give times with a time zone (datetimes or ISO strings)")
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        if isinstance(series.dtype, pd.api.types.DatetimeTZDtype | type(None)) or pd.api.types.is_datetime64_dtype(
            series
        ):
            raise InvalidTimeError("timestamps have no time zone; localize them (Series.dt.tz_localize('UTC'))")
        text = series.astype(str).str.strip()
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        bad = parsed.isna() & series.notna()
        if bad.any():
            row = int(bad.idxmax())
            raise InvalidTimeError(f"timestamp of row {row}: {series[row]!r} is not a time")
        naive = ~text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True) & series.notna()
        if naive.any():
            row = int(naive.idxmax())
            raise InvalidTimeError(f"timestamp of row {row}: {series[row]!r} has no time zone; add an offset")
        series = parsed
    missing = series.isna()
    if missing.any():
        raise InvalidTimeError(f"timestamp of row {int(missing.idxmax())} is missing")
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    return ((series.dt.tz_convert("UTC") - epoch) / pd.Timedelta(seconds=1)).astype(float).tolist()


def _rows_of(column: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """A measurement column of ``add_df`` cut to rows ``[start, stop)``."""
    return {k: v[start:stop] if isinstance(v, list) else v for k, v in column.items()}


def _numbers(series: Any) -> list[float | None]:
    values = series.astype(float).tolist()
    return [None if math.isnan(v) else v for v in values]
