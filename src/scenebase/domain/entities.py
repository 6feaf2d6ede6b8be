"""Validation of raw session entities (FACTS 4.2) and their grouping into columnar chunks.

An entity dict is checked on its own (:func:`parse_entity` raises :class:`EntityError` naming the key and the
problem); what needs the session (does it exist, would it stretch it past its length limit) is the service's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from scenebase.constants import EnrichmentTypes, EntityInfluenceTypes, EntityTypes
from scenebase.domain.ids import new_id, standardize_id
from scenebase.domain.timeline_data import VALUE_KIND, EntityChunk

ENTITY_TYPES = (*EntityTypes.VALID_TYPES, EntityTypes.MEDIA)
KNOWN_KEYS = {
    "session", "session_uid", "entity_id", "entity_name", "entity_type", "entity_value", "timestamp", "start_time",
    "end_time", "influence", "extend_session", "enrichments", "geolocation", "media_asset_id",
    "influence_radius_in_seconds", "duration",
}  # fmt: skip
#: influences that need numbers
NUMERIC_INFLUENCES = {
    EntityInfluenceTypes.LINEAR_INTERPOLATION: (EntityTypes.SCALAR,),
    EntityInfluenceTypes.LINEAR_INTERPOLATION_INTEGER: (EntityTypes.SCALAR,),
    EntityInfluenceTypes.GEO_INTERPOLATION: (EntityTypes.GEO,),
}


class EntityError(ValueError):
    """An entity that cannot be stored; the message names the key and the problem."""


def aware_epoch(value: Any, key: str) -> float:
    """Epoch seconds of an ISO-8601 time with an explicit offset (or a number of epoch seconds). A time without a
    time zone is refused: guessing UTC would shift a local recording by hours."""
    if isinstance(value, bool):
        raise EntityError(f"{key}: not a time: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise EntityError(f"{key}: not a finite time: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise EntityError(f"{key}: expected an ISO-8601 time with a time zone, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise EntityError(f"{key}: not an ISO-8601 time: {value!r}") from None
    if dt.tzinfo is None:
        raise EntityError(f"{key}: {value!r} has no time zone; add an offset such as +00:00")
    return dt.timestamp()


@dataclass
class ParsedEntity:
    session: str
    entity_id: str
    name: str
    entity_type: str
    influence: str
    timestamp: float
    start: float | None
    end: float | None
    radius: float | None
    value: Any  # float | str | list[str] | (lat, lon) | list[float]
    extend_session: bool
    enrichments: tuple[str, ...]

    def bounds(self, default_radius: float) -> tuple[float, float]:
        """The time span the entity covers directly (used for session extension and length checks)."""
        if self.start is not None and self.end is not None:
            return self.start, self.end
        if self.influence == EntityInfluenceTypes.INTERVAL:
            r = self.radius if self.radius is not None else default_radius
            return self.timestamp - r, self.timestamp + r
        return self.timestamp, self.end if self.end is not None else self.timestamp


def _finite(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EntityError(f"{key}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise EntityError(f"{key}: {value!r} is not a finite number")
    return float(value)


def _value(raw: dict[str, Any], etype: str) -> Any:
    value = raw.get("entity_value")
    if etype == EntityTypes.SCALAR:
        return _finite(value, "entity_value")
    if etype == EntityTypes.STATE:
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise EntityError(f"entity_value: a state is a non-empty string, got {value!r}")
        return str(value)
    if etype in (EntityTypes.STATE_SET, EntityTypes.STATE_VECTOR):
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise EntityError(f"entity_value: a {etype} is a non-empty list of non-empty strings, got {value!r}")
        return list(dict.fromkeys(values))
    if etype == EntityTypes.MEDIA:
        media = value if value is not None else raw.get("media_asset_id")
        if not isinstance(media, str) or not media:
            raise EntityError(f"entity_value: a media entity names its asset id, got {media!r}")
        return standardize_id(media)
    if etype == EntityTypes.GEO:
        if value is None and isinstance(raw.get("geolocation"), dict):
            value = [raw["geolocation"].get("lat"), raw["geolocation"].get("lon")]
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise EntityError(f"entity_value: a geo entity is [lat, lon], got {value!r}")
        lat, lon = _finite(value[0], "entity_value[0] (lat)"), _finite(value[1], "entity_value[1] (lon)")
        if not -90 <= lat <= 90 or not -180 <= lon <= 180:
            raise EntityError(f"entity_value: [lat, lon] = {[lat, lon]} is outside [-90, 90] x [-180, 180]")
        return (lat, lon)
    if not isinstance(value, list) or not value:
        raise EntityError(f"entity_value: a vector is a non-empty list of numbers, got {value!r}")
    return [_finite(v, f"entity_value[{i}]") for i, v in enumerate(value)]


def parse_entity(raw: Any) -> ParsedEntity:
    if not isinstance(raw, dict):
        raise EntityError(f"an entity is an object, got {type(raw).__name__}")
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise EntityError(f"unknown key(s) {sorted(unknown)}; entity keys: {sorted(KNOWN_KEYS)}")
    session = raw.get("session", raw.get("session_uid"))
    if not isinstance(session, str) or not session.strip():
        raise EntityError("session: every entity names its session uid")
    name = raw.get("entity_name")
    if not isinstance(name, str) or not name.strip():
        raise EntityError(f"entity_name: a non-empty string is required, got {name!r}")
    etype = raw.get("entity_type")
    if etype not in ENTITY_TYPES:
        raise EntityError(f"entity_type: unknown type {etype!r}; types: {list(ENTITY_TYPES)}")
    influence = raw.get("influence") or EntityInfluenceTypes.POINT
    if influence not in EntityInfluenceTypes.VALID_TYPES:
        raise EntityError(
            f"influence: unknown influence {influence!r}; influences: {list(EntityInfluenceTypes.VALID_TYPES)}"
        )
    if influence in NUMERIC_INFLUENCES and etype not in NUMERIC_INFLUENCES[influence]:
        raise EntityError(f"influence: {influence!r} applies to {NUMERIC_INFLUENCES[influence][0]} entities, "
                          f"not {etype!r}")  # fmt: skip
    start = aware_epoch(raw["start_time"], "start_time") if raw.get("start_time") is not None else None
    end = aware_epoch(raw["end_time"], "end_time") if raw.get("end_time") is not None else None
    if raw.get("timestamp") is not None:
        ts = aware_epoch(raw["timestamp"], "timestamp")
    elif start is not None:
        ts = start
    else:
        raise EntityError("timestamp: every entity needs a timestamp (or a start_time)")
    if start is not None and end is not None and start > end:
        raise EntityError("start_time is after end_time")
    radius = None
    if raw.get("influence_radius_in_seconds") is not None:
        radius = _finite(raw["influence_radius_in_seconds"], "influence_radius_in_seconds")
        if radius < 0:
            raise EntityError("influence_radius_in_seconds must be >= 0")
    extend = raw.get("extend_session", False)
    if not isinstance(extend, bool):
        raise EntityError(f"extend_session must be true or false, got {extend!r}")
    enrichments = raw.get("enrichments") or []
    if not isinstance(enrichments, list) or not all(e in EnrichmentTypes.VALID_TYPES for e in enrichments):
        raise EntityError(f"enrichments: a list of {list(EnrichmentTypes.VALID_TYPES)}, got {enrichments!r}")
    entity_id = raw.get("entity_id")
    if entity_id is not None and (not isinstance(entity_id, str) or not entity_id):
        raise EntityError(f"entity_id must be a non-empty string, got {entity_id!r}")
    return ParsedEntity(
        session=standardize_id(session.strip()), entity_id=entity_id or new_id(), name=name.strip(),
        entity_type=etype, influence=influence, timestamp=ts, start=start, end=end, radius=radius,
        value=_value(raw, etype), extend_session=extend, enrichments=tuple(enrichments),
    )  # fmt: skip


def build_chunks(entities: list[ParsedEntity], urgent: bool) -> list[EntityChunk]:
    """Group entities of one session into chunks (one per name, type, influence and flags), keeping order."""
    groups: dict[tuple[Any, ...], list[ParsedEntity]] = {}
    for e in entities:
        key = (e.name, e.entity_type, e.influence, e.extend_session, e.enrichments)
        groups.setdefault(key, []).append(e)
    chunks = []
    for (name, etype, influence, extend, enrichments), group in groups.items():
        nan = math.nan
        chunk = EntityChunk(
            name=name, entity_type=etype, influence=influence,
            timestamps=np.array([e.timestamp for e in group], dtype=np.float64),
            entity_ids=[e.entity_id for e in group],
            starts=np.array([nan if e.start is None else e.start for e in group], dtype=np.float64),
            ends=np.array([nan if e.end is None else e.end for e in group], dtype=np.float64),
            radius=np.array([nan if e.radius is None else e.radius for e in group], dtype=np.float64),
            urgent=urgent, extend_session=extend, enrichments=enrichments,
        )  # fmt: skip
        kind = VALUE_KIND[etype]
        if kind == "scalar":
            chunk.num = np.array([e.value for e in group], dtype=np.float64)
        elif kind == "geo":
            chunk.lat = np.array([e.value[0] for e in group], dtype=np.float64)
            chunk.lon = np.array([e.value[1] for e in group], dtype=np.float64)
        elif kind == "vector":
            width = max(len(e.value) for e in group)
            chunk.matrix = np.array([e.value + [nan] * (width - len(e.value)) for e in group], dtype=np.float64)
        else:
            values = [[e.value] if isinstance(e.value, str) else e.value for e in group]
            chunk.labels = sorted({v for vs in values for v in vs})
            position = {label: i for i, label in enumerate(chunk.labels)}
            flat = [position[v] for vs in values for v in vs]
            chunk.codes = np.array(flat, dtype=np.int32)
            if kind == "set":
                chunk.offsets = np.concatenate([[0], np.cumsum([len(vs) for vs in values])]).astype(np.int64)
        chunks.append(chunk)
    return chunks


def columns_chunks(
    name_types: dict[str, str], timestamps: np.ndarray, columns: dict[str, np.ndarray], influence: dict[str, str],
    urgent: bool = False,
) -> list[EntityChunk]:  # fmt: skip
    """Chunks from a table of measurements (``add_df``): one timestamp array, one value array per name. Rows whose
    value is missing (NaN / None) are skipped for that name only."""
    chunks = []
    for name, values in columns.items():
        etype = name_types[name]
        keep = np.ones(len(timestamps), dtype=bool)
        if etype == EntityTypes.SCALAR:
            keep &= ~np.isnan(values)
        elif etype == EntityTypes.GEO:
            keep &= ~np.isnan(values[:, 0]) & ~np.isnan(values[:, 1])
        else:
            keep &= np.array([v is not None and v != "" for v in values], dtype=bool)
        idx = np.flatnonzero(keep)
        if not len(idx):
            continue
        ts = timestamps[idx]
        chunk = EntityChunk(name=name, entity_type=etype, influence=influence[name], timestamps=ts, entity_ids=[],
                            id_prefix=new_id(), urgent=urgent)  # fmt: skip
        if etype == EntityTypes.SCALAR:
            chunk.num = values[idx].astype(np.float64)
        elif etype == EntityTypes.GEO:
            chunk.lat, chunk.lon = values[idx, 0].astype(np.float64), values[idx, 1].astype(np.float64)
            chunk.enrichments = (EnrichmentTypes.VISIBILITY, EnrichmentTypes.WEATHER, EnrichmentTypes.LOCATION)
        else:
            labels, codes = np.unique(np.asarray([str(v) for v in values[idx]]), return_inverse=True)
            chunk.labels = [str(label) for label in labels]
            chunk.codes = codes.astype(np.int32)
        chunks.append(chunk)
    return chunks
