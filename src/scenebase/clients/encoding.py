"""The one JSON encoder of the client: every request body (``json=`` and upload manifests) goes through it.

Beyond what ``json`` writes itself it takes

* ``datetime`` -> ISO-8601 in UTC with microseconds and offset (``2021-01-02T03:04:05.000000+00:00``), the form
  the server writes. A timezone-naive datetime is an ``InvalidTimeError`` naming where it was: scenebase does
  not guess whether it meant UTC or the local zone (the classic ``datetime.now()`` bug, hours off);
* ``date`` -> midnight UTC of that day, in the same form;
* numpy scalars -> numbers / booleans / strings, numpy arrays -> (nested) lists; tuples and sets -> lists.

Anything else that JSON cannot hold is an ``InvalidArgumentsError`` naming where it was, e.g.
``time_range.start_time`` or ``filters[0].values[2]``. NaN and infinities are written as ``NaN`` / ``Infinity``
as Python does (the server reads them; they are never indexed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from scenebase.errors import InvalidArgumentsError, InvalidTimeError


def encode_json(body: Any) -> bytes:
    """``body`` as UTF-8 JSON bytes, or a clear error naming the part that cannot be sent."""
    try:
        return json.dumps(body, default=_convert, ensure_ascii=False, separators=(",", ":")).encode()
    except (InvalidTimeError, InvalidArgumentsError) as e:
        # json.dumps does not say where the bad value was: look for it (only on this rare path)
        where, _ = next(_unencodable(body, "body"), ("body", None))
        raise type(e)(f"{where}: {e.message}") from None
    except TypeError as e:  # a dict key json cannot write
        where, _ = next(_unencodable(body, "body"), ("body", None))
        raise InvalidArgumentsError(f"{where}: cannot be sent as JSON ({e})") from None
    except ValueError as e:  # a container that holds itself
        raise InvalidArgumentsError(f"body: cannot be sent as JSON ({e})") from None


def iso_utc(value: datetime | date) -> str:
    """The wire form of a time; naive datetimes are an ``InvalidTimeError``."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidTimeError(
                f"datetime {value.isoformat()} has no time zone; give one, e.g. datetime(..., tzinfo=timezone.utc) "
                "or dt.replace(tzinfo=timezone.utc) if it is UTC (scenebase does not guess)"
            )
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return datetime(value.year, value.month, value.day, tzinfo=UTC).isoformat(timespec="microseconds")


def _convert(value: Any) -> Any:
    """``json.dumps``' fallback: called only for values it cannot write itself."""
    if isinstance(value, datetime | date):
        return iso_utc(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        if getattr(getattr(value, "dtype", None), "kind", "") in "mM":
            # datetime64 has no zone, and .tolist() of a nanosecond one is a bare integer
            raise InvalidTimeError(f"numpy {value.dtype} has no time zone; send datetimes with tzinfo or ISO strings")
        return value.tolist()
    raise InvalidArgumentsError(f"cannot be sent as JSON: {type(value).__name__} {value!r:.80}")


def _unencodable(value: Any, where: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Paths of the values (or dict keys) ``encode_json`` refuses, depth first."""
    if depth > 100:  # deeper than any request body; json.dumps would have failed on recursion first
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                yield f"{where} key {key!r}", key
            yield from _unencodable(item, str(key) if where == "body" else f"{where}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _unencodable(item, f"{where}[{i}]", depth + 1)
        return
    if value is None or isinstance(value, str | int | float | bool):
        return
    try:
        converted = _convert(value)
    except (InvalidTimeError, InvalidArgumentsError):
        yield where, value
        return
    yield from _unencodable(converted, where, depth + 1)
