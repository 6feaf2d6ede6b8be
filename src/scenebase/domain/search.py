"""The search query language, parsed and validated into a small typed AST (reference: docs/search.md).

Accepted keys::

    {"filters":        [{"field": "aux.weather", "values": ["rain", "snow"], "filter_out": false}],
     "exists_filters": [{"field": "embeddings.clip", "filter_out": false}],
     "ranges":         [{"field": "aux.speed", "min": 3, "max": 9.5, "filter_out": false}],   # proposed
     "nested_filters": [{"path": "annotations_meta", "filter_out": false,                     # proposed
                         "filters": [{"field": "provider", "values": ["p1"]}],
                         "ranges": [...], "exists_filters": [...]}],
     "time_range":     {"start_time": "2021-01-01T00:00:00+00:00", "end_time": "..."},
     "source_selected_fields": ["id", "sensor"],
     "<field>": [values]}                                      # shorthand for a filter

Values inside one filter are OR-ed, filters are AND-ed, ``filter_out`` negates. Dotted paths reach into
nested dicts and lists. A nested filter binds its conditions to one element of the list of objects at ``path``
(fields relative to the path, or spelled out in full): provider p1 AND type polygon in the same
``annotations_meta`` entry. Anything else is rejected with a message naming the problem; a key that is a near
miss of a reserved one (``filter``, ``time_ranges``, ``size``) is an error unless assets have a field so named.
"""

from __future__ import annotations

import difflib
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scenebase.domain.ids import standardize_id
from scenebase.domain.metadata import text_problem
from scenebase.domain.timeutil import to_epoch

KNOWN_KEYS = {"filters", "exists_filters", "ranges", "time_range", "source_selected_fields", "nested_filters"}
FILTER_KEYS = {"field", "values", "filter_out"}
EXISTS_KEYS = {"field", "filter_out"}
RANGE_KEYS = {"field", "min", "max", "filter_out"}
TIME_RANGE_KEYS = {"start_time", "end_time"}
NESTED_KEYS = {"path", "filters", "ranges", "exists_filters", "filter_out"}
#: keys people put in a search body by mistake, with what to do instead
MISPLACED_KEYS = {
    **dict.fromkeys(
        ("size", "offset", "sort_field", "sort_order", "scan"),
        "is a query parameter of the search routes (e.g. ?size=100&sort_field=timestamp), not a search key",
    ),
    "search": "wraps a query only in a summary request; the body of a search route is the query itself",
    **dict.fromkeys(("start_time", "end_time"), 'belongs inside "time_range": {"start_time": ..., "end_time": ...}'),
}
#: how close (difflib ratio) a key must be to a reserved one to count as a misspelling of it
NEAR_MISS_CUTOFF = 0.8
#: words from other query languages, and what this one calls them
KEY_SYNONYMS = {
    **dict.fromkeys(("gte", "gt", "from", "minimum"), "min"),
    **dict.fromkeys(("lte", "lt", "to", "maximum"), "max"),
    **dict.fromkeys(("value", "in"), "values"),
    **dict.fromkeys(("negate", "not", "exclude"), "filter_out"),
    **dict.fromkeys(("key", "name"), "field"),
    "start": "start_time",
    "end": "end_time",
}
#: how close (difflib ratio) a known field must be to an unknown one to be suggested for it
CLOSE_FIELD_CUTOFF = 0.7
#: roots of user-defined metadata (FACTS 1.3): ``weather`` is suggested as ``aux.weather``
USER_FIELD_ROOTS = ("aux", "session_aux")
#: fields whose values are ids, standardized like ids on lookup (FACTS 1.1)
ID_FIELDS = {"id", "sets", "session_uid", "annotations", "asset_id", "annotations_meta.id"}
#: most conditions (filters, exists filters, ranges, shorthands, nested conditions and the time range together) in
#: one search: each is a sub-query the database nests, and SQLite refuses expressions nested more than 1,000 deep
MAX_CONDITIONS = 100
#: most values in all the filters of one search together (each is a bound parameter)
MAX_FILTER_VALUES = 10_000
#: most fields ``source_selected_fields`` may name
MAX_SELECTED_FIELDS = 1_000
#: longest field name
MAX_FIELD_LENGTH = 1_024
#: fields kept in dedicated columns
COLUMN_FIELDS = {"id", "timestamp"}
#: fields never reported as unknown: every asset has them, or (``sets``) an empty answer on them is normal
PLATFORM_FIELDS = COLUMN_FIELDS | {"sets", "owner"}


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


Condition = ValuesFilter | RangeFilter | ExistsFilter


@dataclass(frozen=True)
class NestedFilter:
    """Conditions (full field names) that one element of the list of objects at ``path`` must meet together;
    ``negate``: no element meets them all. At least one condition is positive (it picks the element)."""

    path: str
    conditions: tuple[Condition, ...]
    negate: bool = False


@dataclass
class Query:
    values: list[ValuesFilter] = field(default_factory=list)
    exists: list[ExistsFilter] = field(default_factory=list)
    ranges: list[RangeFilter] = field(default_factory=list)
    nested: list[NestedFilter] = field(default_factory=list)
    selected_fields: list[str] | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.values or self.exists or self.ranges or self.nested)


def _field_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise QueryError(f"{where}: 'field' must be a non-empty string, got {raw!r}")
    if raw.startswith("$") or ".." in raw or raw.startswith(".") or raw.endswith("."):
        raise QueryError(f"{where}: invalid field name {raw!r}")
    if len(raw) > MAX_FIELD_LENGTH:
        raise QueryError(f"{where}: a field name has at most {MAX_FIELD_LENGTH} characters, got {len(raw)}")
    problem = text_problem(raw)
    if problem:
        raise QueryError(f"{where}: the field name {problem}")
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
            try:
                numbers.append(to_epoch(v))  # a finite float, or a ValueError naming the problem
            except ValueError as e:
                raise QueryError(f"{where}: values of {fld!r}: {e}") from None
        elif isinstance(v, str):
            problem = text_problem(v)
            if problem:
                raise QueryError(f"{where}: a value of {fld!r} {problem}")
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
    shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:60] + "..."  # echo a 400-digit bound shortened
    if isinstance(raw, bool):
        raise QueryError(f"{where}: '{name}' must be a number or an ISO-8601 time, got {shown}")
    try:
        return to_epoch(raw)
    except ValueError as e:
        raise QueryError(f"{where}: '{name}' must be a number or an ISO-8601 time, got {shown} ({e})") from None


def did_you_mean(unknown: Iterable[str], allowed: Iterable[str]) -> str:
    """`` (did you mean 'values'?)`` for the unknown keys that resemble an allowed one, else ''."""
    allowed = sorted(allowed)
    guesses: list[str] = []
    for key in sorted(unknown, key=str):
        text = str(key).strip().lower()
        guess = KEY_SYNONYMS.get(text)
        if guess is None or guess not in allowed:
            close = difflib.get_close_matches(text, allowed, n=1, cutoff=0.7)
            guess = close[0] if close else None
        if guess is not None and guess not in guesses:
            guesses.append(guess)
    return f" (did you mean {' or '.join(repr(g) for g in guesses)}?)" if guesses else ""


def _unknown_keys(where: str, unknown: set[Any], allowed: set[str], what: str) -> QueryError:
    return QueryError(
        f"{where}: unknown key(s) {sorted(unknown, key=str)}{did_you_mean(unknown, allowed)}; "
        f"{what} has {sorted(allowed)}"
    )


def _check_not_misspelt(key: str, is_field: Callable[[str], bool] | None) -> None:
    """Reject a top-level key that looks like a reserved key (or a query parameter) rather than a field name,
    unless assets have a field so named: then it is the shorthand filter it reads as."""
    text = key.strip().lower()
    close = difflib.get_close_matches(text, [*KNOWN_KEYS, *MISPLACED_KEYS], n=1, cutoff=NEAR_MISS_CUTOFF)
    if not close or (is_field is not None and is_field(key)):
        return
    guess = close[0]
    if guess in KNOWN_KEYS:
        problem = f"unknown search key {key!r}: did you mean {guess!r}?"
    elif guess == text:
        problem = f"search key {key!r} {MISPLACED_KEYS[guess]}."
    else:
        problem = f"unknown search key {key!r}: did you mean {guess!r}? {guess!r} {MISPLACED_KEYS[guess]}."
    raise QueryError(
        f"{problem} Valid keys: {sorted(KNOWN_KEYS)}, or '<field>': [values] for a field your assets have "
        f"(none has a field {key!r}; docs/search.md has the grammar)"
    )


def parse_query(raw: Any, is_field: Callable[[str], bool] | None = None) -> Query:
    """Validate a search dict (None or {} matches everything).

    ``is_field(name)`` says whether assets have a field ``name``. It is asked only about top-level keys that
    resemble a reserved key: those are shorthand filters if such a field exists, else errors (without
    ``is_field``: always errors; the long form ``{"filters": [{"field": ...}]}`` reaches any field).
    """
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
        _check_not_misspelt(key, is_field)
        q.values.append(_values_filter(_field_name(key, f"shorthand {key!r}"), value, False, f"shorthand {key!r}"))

    q.values.extend(_values_filters(raw.get("filters"), "filters"))
    q.exists.extend(_exists_filters(raw.get("exists_filters"), "exists_filters"))
    q.ranges.extend(_range_filters(raw.get("ranges"), "ranges"))
    for i, n in enumerate(_list(raw.get("nested_filters"), "nested_filters")):
        q.nested.append(_nested_filter(n, f"nested_filters[{i}]"))

    tr = raw.get("time_range")
    if tr is not None:
        if not isinstance(tr, dict):
            raise QueryError("time_range: must be an object with 'start_time' and/or 'end_time'")
        if not set(tr) <= TIME_RANGE_KEYS:
            raise _unknown_keys("time_range", set(tr) - TIME_RANGE_KEYS, TIME_RANGE_KEYS, "time_range")
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
        if len(sel) > MAX_SELECTED_FIELDS:
            raise QueryError(f"source_selected_fields: at most {MAX_SELECTED_FIELDS} fields, got {len(sel)}")
        q.selected_fields = list(sel)
    _check_size(q)
    return q


def _check_size(q: Query) -> None:
    nested = [c for n in q.nested for c in n.conditions]
    conditions = len(q.values) + len(q.exists) + len(q.ranges) + len(nested)
    if conditions > MAX_CONDITIONS:
        raise QueryError(
            f"the search has {conditions} conditions (filters, exists filters, ranges, nested filters, time range); "
            f"at most {MAX_CONDITIONS} are allowed: put alternatives for one field into one filter's 'values'"
        )
    filters = [*q.values, *(c for c in nested if isinstance(c, ValuesFilter))]
    values = sum(len(f.strings) + len(f.numbers) for f in filters)
    if values > MAX_FILTER_VALUES:
        raise QueryError(f"the search's filters hold {values} values; at most {MAX_FILTER_VALUES} are allowed")


def _values_filters(raw: Any, name: str, prefix: str = "") -> list[ValuesFilter]:
    out = []
    for i, f in enumerate(_list(raw, name)):
        where = f"{name}[{i}]"
        if not isinstance(f, dict):
            raise QueryError(f"{where}: must be an object with 'field' and 'values'")
        unknown = set(f) - FILTER_KEYS
        if unknown:
            raise _unknown_keys(where, unknown, FILTER_KEYS, "a filter")
        if "values" not in f:
            raise QueryError(f"{where}: missing 'values'")
        fld = _under(prefix, _field_name(f.get("field"), where), where)
        out.append(_values_filter(fld, f["values"], _bool(f.get("filter_out", False), where), where))
    return out


def _exists_filters(raw: Any, name: str, prefix: str = "") -> list[ExistsFilter]:
    out = []
    for i, f in enumerate(_list(raw, name)):
        where = f"{name}[{i}]"
        if not isinstance(f, dict):
            raise QueryError(f"{where}: must be an object with 'field'")
        unknown = set(f) - EXISTS_KEYS
        if unknown:
            raise _unknown_keys(where, unknown, EXISTS_KEYS, "an exists filter")
        fld = _under(prefix, _field_name(f.get("field"), where), where)
        out.append(ExistsFilter(fld, _bool(f.get("filter_out", False), where)))
    return out


def _range_filters(raw: Any, name: str, prefix: str = "") -> list[RangeFilter]:
    out = []
    for i, f in enumerate(_list(raw, name)):
        where = f"{name}[{i}]"
        if not isinstance(f, dict):
            raise QueryError(f"{where}: must be an object with 'field', 'min' and/or 'max'")
        unknown = set(f) - RANGE_KEYS
        if unknown:
            raise _unknown_keys(where, unknown, RANGE_KEYS, "a range (bounds inclusive)")
        low, high = _bound(f.get("min"), where, "min"), _bound(f.get("max"), where, "max")
        if low is None and high is None:
            raise QueryError(f"{where}: give 'min', 'max' or both")
        if low is not None and high is not None and low > high:
            raise QueryError(f"{where}: 'min' is greater than 'max'")
        fld = _under(prefix, _field_name(f.get("field"), where), where)
        if fld == "id":
            raise QueryError(f"{where}: 'id' is not a number or time field; filter ids with 'values'")
        out.append(RangeFilter(fld, low, high, _bool(f.get("filter_out", False), where)))
    return out


def _under(prefix: str, fld: str, where: str) -> str:
    """A nested filter's field as a full name: relative names get the path in front."""
    if not prefix:
        return fld
    return fld if fld.startswith(prefix + ".") else f"{prefix}.{fld}"


def _nested_filter(raw: Any, where: str) -> NestedFilter:
    if not isinstance(raw, dict):
        raise QueryError(f"{where}: must be an object with 'path' and 'filters' (and/or 'ranges', 'exists_filters')")
    unknown = set(raw) - NESTED_KEYS
    if unknown:
        raise _unknown_keys(where, unknown, NESTED_KEYS, "a nested filter")
    path = _field_name(raw.get("path"), f"{where}.path")
    if path in COLUMN_FIELDS:
        raise QueryError(f"{where}: path {path!r} is not a list of objects")
    conditions: list[Condition] = [
        *_values_filters(raw.get("filters"), f"{where}.filters", path),
        *_range_filters(raw.get("ranges"), f"{where}.ranges", path),
        *_exists_filters(raw.get("exists_filters"), f"{where}.exists_filters", path),
    ]
    if not conditions:
        raise QueryError(f"{where}: give at least one condition in 'filters', 'ranges' or 'exists_filters'")
    if all(c.negate for c in conditions):
        raise QueryError(
            f"{where}: every condition is filtered out; one must pick the element (use the group's 'filter_out' "
            "to exclude assets having such an element)"
        )
    return NestedFilter(path, tuple(conditions), _bool(raw.get("filter_out", False), where))


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise QueryError(f"{name}: must be a list")
    if len(value) > MAX_CONDITIONS:
        raise QueryError(f"{name}: at most {MAX_CONDITIONS} entries, got {len(value)}")
    return value


# --------------------------------------------------------------------------------------------- field names


@dataclass(frozen=True)
class KnownFields:
    """The searchable field names the assets of one type have: the keys of its searchable-field statistics."""

    names: tuple[str, ...] = ()  # sorted, unique

    @classmethod
    def of(cls, names: Iterable[str]) -> KnownFields:
        return cls(tuple(sorted(set(names))))

    def has(self, name: str) -> bool:
        """``name`` itself, a platform field, or a dict/list above a known field (``aux`` covers ``aux.speed``)."""
        if name in PLATFORM_FIELDS:
            return True
        i = bisect_left(self.names, name)
        if i < len(self.names) and self.names[i] == name:
            return True
        prefix = name + "."
        j = bisect_left(self.names, prefix)
        return j < len(self.names) and self.names[j].startswith(prefix)

    def closest(self, name: str, n: int = 3) -> list[str]:
        """Known fields ``name`` may have meant: ``aux.<name>`` first, then the most similar names. A name without
        a dot is also compared with the last part of dotted ones (``speeed`` finds ``aux.speed``)."""
        out = [f"{root}.{name}" for root in USER_FIELD_ROOTS if self.has(f"{root}.{name}")]
        parents = {known.rsplit(".", i)[0] for known in self.names for i in range(1, known.count(".") + 1)}
        matcher = difflib.SequenceMatcher()
        matcher.set_seq2(name)
        scored: list[tuple[float, str]] = []
        for candidate in [*self.names, *sorted(parents)]:
            best = 0.0
            for text in {candidate, candidate.rsplit(".", 1)[-1] if "." not in name else candidate}:
                matcher.set_seq1(text)
                if matcher.real_quick_ratio() >= CLOSE_FIELD_CUTOFF and matcher.quick_ratio() >= CLOSE_FIELD_CUTOFF:
                    best = max(best, matcher.ratio())
            if best >= CLOSE_FIELD_CUTOFF and candidate not in out:
                scored.append((best, candidate))
        out += [c for _, c in sorted(scored, key=lambda sc: (-sc[0], sc[1]))]
        return out[:n]


def query_fields(query: Query) -> list[str]:
    """Every field a parsed query names (filters, exists filters, ranges, projection), first mention first."""
    names = [f.field for f in query.values] + [e.field for e in query.exists] + [r.field for r in query.ranges]
    names += [c.field for n in query.nested for c in n.conditions]
    return list(dict.fromkeys([*names, *(query.selected_fields or [])]))


def unknown_field_warnings(fields: Iterable[str], known: KnownFields, asset_type: str) -> list[str]:
    """A warning for each of ``fields`` that no asset of ``asset_type`` has, naming the closest known fields.
    None at all when the type has no assets yet: every field would be unknown, and none would be a mistake."""
    if not known.names:
        return []
    out = []
    for name in dict.fromkeys(fields):
        if known.has(name):
            continue
        close = known.closest(name)
        hint = (
            f"closest known fields: {', '.join(repr(c) for c in close)}"
            if close
            else f"GET /v1/{asset_type}/meta/searchable_field_statistics/ lists the known fields"
        )
        out.append(f"no {asset_type} asset has a field {name!r}; {hint}")
    return out
