"""Bodies of ``/v1/sessions``, ``/v1/session_manager`` and ``/v1/indexing`` (FACTS 4, 11).

Entity lists, field data and time series can be large: their routes document them with these models but do not
re-validate the answers (tests check real answers against the models instead)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator

from scenebase.api.schemas.common import JobStarted, ResponseModel, as_sent
from scenebase.api.schemas.search import ExistsFilter, Filter, Range, TimeRange


class SessionCreated(ResponseModel):
    session_uid: str
    created: bool = Field(description="False when a session of that name existed: `session_uid` is the existing one.")


class SessionName(ResponseModel):
    session_name: str = Field(description="Special characters replaced by `_`, lower case.")


class SessionDocument(ResponseModel):
    """A session's metadata document (also readable as ``GET /v1/sessions/meta/{id}``)."""

    id: str = Field(description="The session uid.")
    session_name: str
    session_type: str = Field(description="generic, videos, rosbag, ...")
    status: str
    resolution: float = Field(description="Seconds per bucket of the session's timeline.")
    timestamp: str
    start_time: str | None = Field(None, description="ISO 8601; set by update_time_span or by entities.")
    end_time: str | None = None
    session_aux: dict[str, Any] = Field(default_factory=dict)
    sets: list[str] = Field(default_factory=list)
    source_data: list[dict[str, Any]] = Field(default_factory=list)
    sensors: list[dict[str, Any]] = Field(default_factory=list)
    auxiliary_data: list[dict[str, Any]] = Field(default_factory=list)
    enrichments_configs: list[dict[str, Any]] = Field(default_factory=list)


class RejectedEntity(ResponseModel):
    index: int = Field(description="Position of the entity in the request's list.")
    entity_id: Any = None
    entity_name: Any = None
    error: str = Field(description="Why it was not stored.")


class EntitiesAdded(ResponseModel):
    acknowledged: bool
    accepted: int = Field(description="Entities stored.")
    rejected: list[RejectedEntity] = Field(description="Entities refused, in request order.")


class MeasurementsAdded(ResponseModel):
    acknowledged: bool
    accepted: int = Field(description="Entities stored (one per column and row with a value).")
    skipped_missing: dict[str, int] = Field(description="Per column, rows skipped for a missing value.")


class SessionEntity(ResponseModel):
    """A raw entity as the seed's entity dicts."""

    session: str
    entity_id: str
    entity_name: str
    entity_type: str = Field(description="scalar, state, geo, ...")
    entity_value: Any
    influence: str
    timestamp: str
    start_time: str | None = None
    end_time: str | None = None


class ResolutionStatus(ResponseModel):
    status: str = Field(description="`ready`, the pending resolution job's status, or `unresolved`.")


class SessionIntervals(ResponseModel):
    intervals: list[list[str]] = Field(description="`[start, end]` ISO 8601 times where every condition holds.")


class FieldValues(ResponseModel):
    """``time_index`` and ``timestamp`` of each bucket, and one list of values (aligned with them) per field."""

    time_index: list[int]
    timestamp: list[str]


class TimeseriesInterval(ResponseModel):
    """One matching interval: its bounds, ``timestamp`` of each bucket, and one list of values per field."""

    start_time: str
    end_time: str
    timestamp: list[str]


class SessionIndexingStarted(JobStarted):
    session_uid: str = Field(description="The session the videos are put on (created when none was named).")


# ------------------------------------------------------------------------------------- request documentation


class GeoFilter(BaseModel):
    """Buckets where the geo entity ``field`` lies in the box."""

    model_config = ConfigDict(extra="forbid")
    field: str
    min_lat: float | None = None
    max_lat: float | None = None
    min_lon: float | None = None
    max_lon: float | None = None
    filter_out: bool = False


class ScenarioSearch(BaseModel):
    """A scenario search over resolved session timelines: every condition holds at once. Fields name timeline
    entities; `session_uid`, `session_name`, `session_type`, `status`, `sets` and `tags` filter sessions."""

    model_config = ConfigDict(extra="forbid")
    filters: list[Filter] | None = None
    ranges: list[Range] | None = None
    geo_filters: list[GeoFilter] | None = None
    exists_filters: list[ExistsFilter] | None = None
    time_range: TimeRange | None = None
    min_duration: float | None = Field(None, description="Seconds an interval lasts at least.")


class EntityInput(BaseModel):
    """An entity dict (the seed's ``add_entities``); a bad one is rejected by itself, naming the problem."""

    model_config = ConfigDict(extra="forbid")
    session: str | None = Field(None, description="The session uid (or `session_uid`).")
    session_uid: str | None = None
    entity_id: str | None = None
    entity_name: str
    entity_type: str = Field(description="geo, scalar, vector, state, state_set or state_vector.")
    entity_value: Any = None
    timestamp: str | float | None = Field(None, description="ISO 8601 with an offset, or epoch seconds.")
    start_time: str | float | None = None
    end_time: str | float | None = None
    duration: float | None = None
    influence: str | None = Field(None, description="point (default), linear_interpolation, interval, ...")
    influence_radius_in_seconds: float | None = None
    extend_session: bool = False
    enrichments: list[Any] | None = None
    geolocation: Any = None
    media_asset_id: str | None = None


class MeasurementColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity_type: str = Field(description="scalar, state or geo.")
    values: list[Any] | None = Field(None, description="One per timestamp (null: missing); not for geo.")
    lat: list[float | None] | None = Field(None, description="Geo columns: latitudes, one per timestamp.")
    lon: list[float | None] | None = None


class Measurements(BaseModel):
    """A table of measurements (``add_df``), column by column."""

    timestamps: list[str | float] = Field(description="ISO 8601 times with an offset, or epoch seconds.")
    columns: dict[str, MeasurementColumn]


MeasurementsBody = Annotated[dict[str, Any], BeforeValidator(as_sent, json_schema_input_type=Measurements)]
ScenarioSearchBody = Annotated[dict[str, Any], BeforeValidator(as_sent, json_schema_input_type=ScenarioSearch)]
#: one entity of a request, handed to the service as sent (it rejects bad entities one by one)
EntityItem = Annotated[Any, PlainValidator(as_sent, json_schema_input_type=EntityInput)]
