"""Time conversions (FACTS 1.2): ISO-8601 strings with an explicit offset on the wire, epochs inside."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

#: the start of an ISO-8601 time (a cheap test before parsing)
ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def looks_like_iso(value: str) -> bool:
    return bool(ISO_START.match(value))


def to_epoch(value: object) -> float:
    """Epoch seconds from a datetime, an ISO-8601 string, or a number. Naive times are taken as UTC."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(f"number too large: an integer of {int(value).bit_length()} bits") from None
        if not math.isfinite(number):
            raise ValueError(f"not a finite number: {value!r}")
        return number
    if isinstance(value, str):
        return _text_epoch(value)
    if isinstance(value, datetime):
        return _aware(value).timestamp()
    raise ValueError(f"not a time: {value!r}")


@functools.lru_cache(maxsize=4096)
def _text_epoch(value: str) -> float:
    """``to_epoch`` of a string, remembered: a write reads the same few times again and again (an annotation's
    timestamp is parsed by its check, its terms and its row; a rewritten image's times by every difference)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return _aware(datetime.fromisoformat(text)).timestamp()
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {value!r}") from None


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def to_iso(epoch: float) -> str:
    """``2020-08-01T12:46:15.700000+00:00`` (microseconds always present, as SceneBox writes them)."""
    try:
        return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="microseconds")
    except (OverflowError, OSError, ValueError):  # which one depends on the platform's time_t
        raise ValueError(f"{epoch!r} seconds since 1970 is outside the years 1 to 9999") from None


#: the years ``to_iso`` can write, as epoch seconds: 0001-01-01 and 10000-01-01
_FIRST_EPOCH, _END_EPOCH = -62135596800.0, 253402300800.0


def to_iso_many(epochs: Sequence[float] | np.ndarray) -> list[str]:
    """``to_iso`` of many epochs in a few numpy calls, rounding to the microsecond exactly as ``datetime`` does
    (the fraction's microseconds rounded half to even)."""
    t = np.asarray(epochs, dtype=np.float64)
    if len(t) == 0:
        return []
    if not (np.isfinite(t).all() and t.min() >= _FIRST_EPOCH and t.max() < _END_EPOCH):
        return [to_iso(float(x)) for x in t]  # the one-by-one path names the epoch that cannot be written
    frac, whole = np.modf(t)
    micros = np.round(frac * 1e6)
    whole = whole + np.where(micros >= 1e6, 1, 0) - np.where(micros < 0, 1, 0)
    micros = micros - np.where(micros >= 1e6, 1e6, 0) + np.where(micros < 0, 1e6, 0)
    stamps = (whole.astype(np.int64) * 1_000_000 + micros.astype(np.int64)).astype("datetime64[us]")
    return [text + "+00:00" for text in np.datetime_as_string(stamps, unit="us").tolist()]


def now_iso() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="microseconds")
