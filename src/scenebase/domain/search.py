"""The search query language (FACTS 3), parsed and validated into a small typed AST.

Accepted keys::

    {"filters":        [{"field": "aux.weather", "values": ["rain", "snow"], "filter_out": false}],
     "exists_filters": [{"field": "embeddings.clip", "filter_out": false}],
     "ranges":         [{"field": "aux.speed", "min": 3, "max": 9.5, "filter_out": false}],   # proposed
     "time_range":     {"start_time": "2021-01-01T00:00:00+00:00", "end_time": "..."},
     "source_selected_fields": ["id", "sensor"],
     "<field>": [values]}                                      # shorthand for a filter

Values inside one filter are OR-ed, filters are AND-ed, ``filter_out`` negates. Dotted paths reach into
nested dicts and lists. Anything else is rejected with a message naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scenebase.domain.ids import standardize_id
from scenebase.domain.timeutil import to_epoch

KNOWN_KEYS = {"filters", "exists_filters", "ranges", "time_range", "source_selected_fields"}
FILTER_KEYS = {"field", "values", "filter_out"}
EXISTS_KEYS = {"field", "filter_out"}
RANGE_KEYS = {"field", "min", "max", "filter_out"}
#: fields whose values are ids, standardized like ids on lookup (FACTS 1.1)
ID_FIELDS = {"id", "sets", "session_uid", "annotations", "asset_id"}
#: fields kept in dedicated columns
COLUMN_FIELDS = {"id", "timestamp"}


class QueryError(ValueError):
    """A malformed search query; the message names the offending part."""


Scalar = str | float | int | bool


@dataclass(frozen=True)
class ValuesFilter:
    field: str
    strings: tuple[str, ...]
    numbers: tuple[float, ...]
    negate: bool = False


@dataclass(frozen=True)
class ExistsFilter:
    field: str
    negate: bool = False


@dataclass(frozen=True)
class RangeFilter:
    field: str
    low: float | None
    high: float | None
    negate: bool = False


@dataclass
class Query:
    values: list[ValuesFilter] = field(default_factory=list)
    exists: list[ExistsFilter] = field(default_factory=list)
    ranges: list[RangeFilter] = field(default_factory=list)
    selected_fields: list[str] | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.values or self.exists or self.ranges)


def _field_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise QueryError(f"{where}: 'field' must be a non-empty string, got {raw!r}")
    if raw.startswith("$") or ".." in raw or raw.startswith(".") or raw.endswith("."):
        raise QueryError(f"{where}: invalid field name {raw!r}")
    return raw.strip()


def _bool(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise QueryError(f"{where}: 'filter_out' must be true or false, got {raw!r}")
    return raw


def _values_filter(fld: str, values: Any, negate: bool, where: str) -> ValuesFilter:
    if not isinstance(values, list | tuple):
        values = [values]
    strings: list[str] = []
    numbers: list[float] = []
    for v in values:
        if isinstance(v, bool):
            strings.append("true" if v else "false")
        elif isinstance(v, int | float):
            numbers.append(float(v))
        elif isinstance(v, str):
            strings.append(standardize_id(v) if fld in ID_FIELDS else v)
        else:
            raise QueryError(f"{where}: values of {fld!r} must be strings, numbers or booleans, got {v!r}")
    if fld == "timestamp":
        try:
            numbers.extend(to_epoch(s) for s in strings)
        except ValueError as e:
            raise QueryError(f"{where}: {e}") from None
        strings = []
    if not strings and not numbers:
        raise QueryError(f"{where}: 'values' of {fld!r} is empty")
    return ValuesFilter(fld, tuple(strings), tuple(numbers), negate)


def _bound(raw: Any, where: str, name: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise QueryError(f"{where}: '{name}' must be a number or an ISO-8601 time, got {raw!r}")
    try:
        return to_epoch(raw)
    except ValueError:
        raise QueryError(f"{where}: '{name}' must be a number or an ISO-8601 time, got {raw!r}") from None


def parse_query(raw: Any) -> Query:
    """Validate a search dict (None or {} matches everything)."""
    if raw is None:
        return Query()
    if not isinstance(raw, dict):
        raise QueryError(f"a search must be a JSON object, got {type(raw).__name__}")
    q = Query()
    for key, value in raw.items():
        if key in KNOWN_KEYS:
            continue
        if not isinstance(key, str) or key.startswith("$"):
            raise QueryError(f"unknown search key {key!r}; known keys: {sorted(KNOWN_KEYS)} or '<field>': [values]")
        q.values.append(_values_filter(_field_name(key, f"shorthand {key!r}"), value, False, f"shorthand {key!r}"))

    for i, f in enumerate(_list(raw.get("filters"), "filters")):
        where = f"filters[{i}]"
        if not isinstance(f, dict):
            raise QueryError(f"{where}: must be an object with 'field' and 'values'")
        unknown = set(f) - FILTER_KEYS
        if unknown:
            raise QueryError(f"{where}: unknown key(s) {sorted(unknown)}; a filter has {sorted(FILTER_KEYS)}")
        if "values" not in f:
            raise QueryError(f"{where}: missing 'values'")
        fld = _field_name(f.get("field"), where)
        q.values.append(_values_filter(fld, f["values"], _bool(f.get("filter_out", False), where), where))

    for i, f in enumerate(_list(raw.get("exists_filters"), "exists_filters")):
        where = f"exists_filters[{i}]"
        if not isinstance(f, dict):
            raise QueryError(f"{where}: must be an object with 'field'")
        unknown = set(f) - EXISTS_KEYS
        if unknown:
            raise QueryError(f"{where}: unknown key(s) {sorted(unknown)}")
        q.exists.append(ExistsFilter(_field_name(f.get("field"), where), _bool(f.get("filter_out", False), where)))

    for i, f in enumerate(_list(raw.get("ranges"), "ranges")):
        where = f"ranges[{i}]"
        if not isinstance(f, dict):
            raise QueryError(f"{where}: must be an object with 'field', 'min' and/or 'max'")
        unknown = set(f) - RANGE_KEYS
        if unknown:
            raise QueryError(f"{where}: unknown key(s) {sorted(unknown)}; a range has {sorted(RANGE_KEYS)}")
        low, high = _bound(f.get("min"), where, "min"), _bound(f.get("max"), where, "max")
        if low is None and high is None:
            raise QueryError(f"{where}: give 'min', 'max' or both")
        if low is not None and high is not None and low > high:
            raise QueryError(f"{where}: 'min' is greater than 'max'")
        fld = _field_name(f.get("field"), where)
        if fld == "id":
            raise QueryError(f"{where}: 'id' is not a number or time field; filter ids with 'values'")
        q.ranges.append(RangeFilter(fld, low, high, _bool(f.get("filter_out", False), where)))

    tr = raw.get("time_range")
    if tr is not None:
        if not isinstance(tr, dict) or not set(tr) <= {"start_time", "end_time"}:
            raise QueryError("time_range: must be an object with 'start_time' and/or 'end_time'")
        low, high = (
            _bound(tr.get("start_time"), "time_range", "start_time"),
            _bound(tr.get("end_time"), "time_range", "end_time"),
        )
        if low is not None or high is not None:
            if low is not None and high is not None and low > high:
                raise QueryError("time_range: 'start_time' is after 'end_time'")
            q.ranges.append(RangeFilter("timestamp", low, high))

    sel = raw.get("source_selected_fields")
    if sel is not None:
        if not isinstance(sel, list) or not all(isinstance(s, str) and s for s in sel):
            raise QueryError("source_selected_fields: must be a list of field names")
        q.selected_fields = list(sel)
    return q


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise QueryError(f"{name}: must be a list")
    return value
