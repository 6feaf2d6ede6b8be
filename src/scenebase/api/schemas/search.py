"""The search language and the search answers as typed models, so that ``/openapi.json`` documents them.

The models document; they do not validate. The search routes take the body as sent (``SearchBody``,
``SummaryBody``) and ``domain/search.py`` validates it, with messages that name the offending part and suggest
the key that was meant (a pydantic error would replace them with generic ones). Tests check real answers
against the response models, so the documented shapes cannot drift from what the routes return.
Reference with examples: docs/search.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, PlainValidator

Value = str | float | bool
#: an ISO-8601 time with a UTC offset, or epoch seconds (ranges also take plain numbers)
TimeOrNumber = str | float

_SHORTHAND: dict[str, JsonValue] = {
    "description": "Shorthand: any other key is a field name, and `{<field>: [values]}` means "
    '`{"filters": [{"field": <field>, "values": [values]}]}`.',
    "anyOf": [
        {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
        {"type": ["string", "number", "boolean"]},
    ],
}


class Filter(BaseModel):
    """Assets whose ``field`` has any of ``values`` (for a list field: any element does)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"field": "aux.weather", "values": ["rain", "snow"]}]}
    )
    field: str = Field(description="Dotted path into the metadata, e.g. `sensor`, `aux.weather`, `tags`.")
    values: list[Value] | Value = Field(description="OR-ed; ids are standardized; booleans match true/false.")
    filter_out: bool = Field(False, description="Keep the assets that do NOT match instead.")


class ExistsFilter(BaseModel):
    """Assets that have ``field`` (or any field below it: ``aux`` covers ``aux.speed``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"field": "annotations_meta"}]})
    field: str
    filter_out: bool = Field(False, description="Keep the assets that do NOT have the field instead.")


class Range(BaseModel):
    """Assets whose number or time ``field`` lies in ``[min, max]`` (bounds inclusive; give one or both)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"field": "aux.speed", "min": 3, "max": 9.5}]}
    )
    field: str
    min: TimeOrNumber | None = Field(None, description="A number, or an ISO-8601 time for time fields.")
    max: TimeOrNumber | None = None
    filter_out: bool = False


class TimeRange(BaseModel):
    """Assets whose ``timestamp`` lies in ``[start_time, end_time]`` (either may be left out)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"start_time": "2021-01-01T00:00:00+00:00", "end_time": "2021-01-02T00:00:00+00:00"}]
        },
    )
    start_time: TimeOrNumber | None = None
    end_time: TimeOrNumber | None = None


class NestedFilter(BaseModel):
    """Assets with one element of the list of objects at ``path`` that meets every condition at once (FACTS 3.2):
    provider p1 AND type polygon in the same ``annotations_meta`` entry. Fields are relative to ``path`` (or
    spelled out in full); at least one condition must not be filtered out."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "path": "annotations_meta",
                    "filters": [{"field": "provider", "values": ["p1"]}, {"field": "type", "values": ["polygon"]}],
                }
            ]
        },
    )
    path: str = Field(description="A list of objects, e.g. `annotations_meta` or `annotation_entities`.")
    filters: list[Filter] | None = None
    ranges: list[Range] | None = None
    exists_filters: list[ExistsFilter] | None = None
    filter_out: bool = Field(False, description="Keep the assets that have NO such element instead.")


class SearchQuery(BaseModel):
    """A search: every part is optional and the parts are AND-ed; `{}` (or no body) matches every asset.
    Reference: docs/search.md."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "additionalProperties": _SHORTHAND,
            "examples": [
                {
                    "filters": [{"field": "aux.weather", "values": ["rain"]}],
                    "ranges": [{"field": "aux.speed", "min": 3}],
                    "time_range": {"start_time": "2021-01-01T00:00:00+00:00"},
                    "sensor": ["cam_front"],
                }
            ],
        },
    )
    filters: list[Filter] | None = None
    exists_filters: list[ExistsFilter] | None = None
    ranges: list[Range] | None = None
    nested_filters: list[NestedFilter] | None = None
    time_range: TimeRange | None = None
    source_selected_fields: list[str] | None = Field(
        None, description="Metadata routes only: return just these (dotted) fields, plus `id`."
    )


class SummaryRequest(BaseModel):
    """Counts of the matching assets per value of each dimension."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "search": {"sensor": ["cam_a"]},
                    "dimensions": ["aux.weather"],
                    "nested_dimensions": ["annotations_meta.provider"],
                }
            ]
        },
    )
    search: SearchQuery | None = None
    dimensions: list[str] = Field(default_factory=list, description="Fields to count values of; `[]`: total only.")
    nested_dimensions: list[str] = Field(
        default_factory=list, description="Fields inside lists of objects (e.g. `annotations_meta.provider`)."
    )
    max_size_for_agg: int = Field(100, ge=1, le=10_000, description="Most buckets per dimension.")


# ------------------------------------------------------------------------------------------------ answers


class AssetDocument(BaseModel):
    """A metadata document: ``id`` and whatever the asset has (only the selected fields with
    ``source_selected_fields``)."""

    model_config = ConfigDict(extra="allow")
    id: str


class Bucket(BaseModel):
    key: str | float
    doc_count: int


class Aggregation(BaseModel):
    dimension: str
    buckets: list[Bucket] = Field(description="Most frequent first.")


class SummaryResponse(BaseModel):
    total: int
    aggregations: list[Aggregation]


class FieldStatistic(BaseModel):
    field: str
    type: Literal["time", "tag", "text", "number", "geo", "boolean", "dict", "nested"]
    count: int = Field(description="Assets with the field.")
    min: float | str | None = Field(None, description="Numbers and times (ISO-8601) only.")
    max: float | str | None = None
    values: list[Bucket] | None = Field(None, description="Tags and booleans: the most frequent values.")


IdList = list[str]
DocumentList = list[AssetDocument]
FieldStatistics = dict[str, FieldStatistic]


def _as_sent(value: Any) -> Any:
    return value


#: a route body typed as ``SearchQuery`` in the OpenAPI document, handed to the route exactly as sent
SearchBody = Annotated[Any, PlainValidator(_as_sent, json_schema_input_type=SearchQuery | None)]
SummaryBody = Annotated[Any, PlainValidator(_as_sent, json_schema_input_type=SummaryRequest)]
#: a search inside a request model (``{"search": {...}}``): any object, checked by the service, documented as
#: ``SearchQuery``
SearchObject = Annotated[dict[str, Any], BeforeValidator(_as_sent, json_schema_input_type=SearchQuery)]
