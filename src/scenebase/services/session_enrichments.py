"""Enrichments of geo entities (FACTS 4.7), derived when a session is resolved.

A geo entity that lists an enrichment, in a session whose ``enrichments_configs`` has an entry of that type, yields
derived ``interval`` entities around each fix (radius from the config, default one resolution), at most one fix per
bucket:

* ``location``: ``country``, ``state`` and ``city`` states from an offline reverse geocoder (``reverse-geocode``,
  which ships GeoNames data; cities of 1,000+ inhabitants, so "city" is the nearest such place).
* ``visibility``: ``visibility`` state (``day`` above -0.833° sun elevation, ``twilight`` down to -6°, ``night``
  below) and ``sun_elevation`` scalar in degrees, from ``astral`` at that place and time.
* ``weather``: ``weather_conditions`` state and ``weather_descriptions`` set, plus ``temperature`` and
  ``precipitation`` scalars, from a :class:`WeatherProvider`. The one built is Open-Meteo's historical archive
  API (``SCENEBASE_WEATHER_URL``); without it, weather is "not configured" and nothing is invented.

Derived entities are not stored: they are recomputed at each resolution from the raw geo entities.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from typing import Any, Protocol

import httpx
import numpy as np

from scenebase.constants import EnrichmentTypes, EntityTypes, SessionConstants
from scenebase.domain.timeline_data import EntityChunk, bucket_of

log = logging.getLogger("scenebase.enrichments")

#: WMO weather interpretation codes (as Open-Meteo reports them) -> (condition, description)
WMO_CODES: dict[int, tuple[str, str]] = {
    0: ("clear", "clear sky"), 1: ("clear", "mainly clear"), 2: ("cloudy", "partly cloudy"), 3: ("cloudy", "overcast"),
    45: ("fog", "fog"), 48: ("fog", "depositing rime fog"), 51: ("drizzle", "light drizzle"),
    53: ("drizzle", "moderate drizzle"), 55: ("drizzle", "dense drizzle"), 56: ("drizzle", "light freezing drizzle"),
    57: ("drizzle", "dense freezing drizzle"), 61: ("rain", "slight rain"), 63: ("rain", "moderate rain"),
    65: ("rain", "heavy rain"), 66: ("rain", "light freezing rain"), 67: ("rain", "heavy freezing rain"),
    71: ("snow", "slight snow fall"), 73: ("snow", "moderate snow fall"), 75: ("snow", "heavy snow fall"),
    77: ("snow", "snow grains"), 80: ("rain", "slight rain showers"), 81: ("rain", "moderate rain showers"),
    82: ("rain", "violent rain showers"), 85: ("snow", "slight snow showers"), 86: ("snow", "heavy snow showers"),
    95: ("thunderstorm", "thunderstorm"), 96: ("thunderstorm", "thunderstorm with slight hail"),
    99: ("thunderstorm", "thunderstorm with heavy hail"),
}  # fmt: skip


class WeatherError(Exception):
    """The weather provider could not answer (the message says why)."""


class WeatherProvider(Protocol):
    name: str

    def hourly(self, lat: float, lon: float, start: dt.date, end: dt.date) -> dict[str, np.ndarray]:
        """Hourly records around a place: ``time`` (epoch s), ``weather_code``, ``temperature``,
        ``precipitation`` arrays. Raises WeatherError."""
        ...


class OpenMeteoArchive:
    """Open-Meteo's historical weather API (``/v1/archive``), free for non-commercial use; one request per place
    (rounded to 0.1°) and date range, kept in memory."""

    name = "open-meteo"

    def __init__(self, base_url: str, timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._cache: dict[tuple[float, float, str, str], dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()

    def hourly(self, lat: float, lon: float, start: dt.date, end: dt.date) -> dict[str, np.ndarray]:
        key = (round(lat, 1), round(lon, 1), start.isoformat(), end.isoformat())
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        params: dict[str, Any] = {"latitude": key[0], "longitude": key[1], "start_date": key[2], "end_date": key[3],
                  "hourly": "weather_code,temperature_2m,precipitation", "timezone": "GMT",
                  "timeformat": "unixtime"}  # fmt: skip
        try:
            resp = httpx.get(f"{self.base_url}/v1/archive", params=params, timeout=self.timeout)
        except httpx.HTTPError as e:
            raise WeatherError(f"{self.name}: request failed: {e}") from None
        if resp.status_code != 200:
            raise WeatherError(f"{self.name}: HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            hourly = resp.json()["hourly"]
            out = {"time": np.array(hourly["time"], dtype=np.float64)}
            for ours, theirs in (("weather_code", "weather_code"), ("temperature", "temperature_2m"),
                                 ("precipitation", "precipitation")):  # fmt: skip
                out[ours] = np.array([math.nan if v is None else v for v in hourly[theirs]], dtype=np.float64)
        except (ValueError, KeyError, TypeError) as e:
            raise WeatherError(f"{self.name}: unexpected answer ({type(e).__name__}: {e})") from None
        with self._lock:
            self._cache[key] = out
        return out


def sun_visibility(elevation: float) -> str:
    if elevation > -0.833:
        return "day"
    return "twilight" if elevation > -6.0 else "night"


def _state_chunk(name: str, ts: np.ndarray, values: list[str | None], radius: float) -> EntityChunk | None:
    keep = [i for i, v in enumerate(values) if v]
    if not keep:
        return None
    labels = sorted({str(values[i]) for i in keep})
    codes = np.array([labels.index(str(values[i])) for i in keep], dtype=np.int32)
    return EntityChunk(name, EntityTypes.STATE, "interval", ts[keep], [], radius=np.full(len(keep), radius),
                       labels=labels, codes=codes, id_prefix=f"derived_{name}")  # fmt: skip


def _scalar_chunk(name: str, ts: np.ndarray, values: np.ndarray, radius: float) -> EntityChunk | None:
    keep = np.flatnonzero(~np.isnan(values))
    if not len(keep):
        return None
    return EntityChunk(name, EntityTypes.SCALAR, "interval", ts[keep], [], radius=np.full(len(keep), radius),
                       num=values[keep], id_prefix=f"derived_{name}")  # fmt: skip


class GeoEnricher:
    def __init__(self, weather: WeatherProvider | None = None) -> None:
        self.weather = weather

    def derive(self, doc: dict[str, Any], chunks: list[EntityChunk]) -> tuple[list[EntityChunk], list[str]]:
        res = float(doc.get("resolution") or SessionConstants.DEFAULT_RESOLUTION)
        configs = {c.get("type"): c for c in doc.get("enrichments_configs") or [] if isinstance(c, dict)}
        out: list[EntityChunk] = []
        notes: list[str] = []
        geo = [c for c in chunks if c.entity_type == EntityTypes.GEO and c.enrichments and c.lat is not None]
        wanted = {e for c in geo for e in c.enrichments} & set(configs)
        if not wanted:
            return out, notes
        ts = np.concatenate([c.timestamps for c in geo if set(c.enrichments) & wanted])
        lat = np.concatenate([c.lat for c in geo if set(c.enrichments) & wanted and c.lat is not None])
        lon = np.concatenate([c.lon for c in geo if set(c.enrichments) & wanted and c.lon is not None])
        order = np.argsort(ts, kind="stable")
        ts, lat, lon = ts[order], lat[order], lon[order]
        _, first = np.unique(bucket_of(ts, res), return_index=True)  # one fix per bucket
        ts, lat, lon = ts[first], lat[first], lon[first]

        def radius(kind: str) -> float:
            r = (configs[kind].get("configuration") or {}).get("influence_radius_in_seconds")
            return float(r) if r is not None else res

        if EnrichmentTypes.LOCATION in wanted:
            import reverse_geocode

            places = reverse_geocode.search(list(zip(lat.tolist(), lon.tolist(), strict=True)))
            for name, key in (("country", "country"), ("state", "state"), ("city", "city")):
                chunk = _state_chunk(name, ts, [p.get(key) for p in places], radius(EnrichmentTypes.LOCATION))
                if chunk is not None:
                    out.append(chunk)
        if EnrichmentTypes.VISIBILITY in wanted:
            from astral import Observer
            from astral.sun import elevation

            elev = np.array([elevation(Observer(a, b), dt.datetime.fromtimestamp(t, dt.UTC))
                             for a, b, t in zip(lat.tolist(), lon.tolist(), ts.tolist(), strict=True)])  # fmt: skip
            r = radius(EnrichmentTypes.VISIBILITY)
            for chunk in (_state_chunk("visibility", ts, [sun_visibility(e) for e in elev], r),
                          _scalar_chunk("sun_elevation", ts, elev, r)):  # fmt: skip
                if chunk is not None:
                    out.append(chunk)
        if EnrichmentTypes.WEATHER in wanted:
            if self.weather is None:
                notes.append("weather enrichment: not configured (no weather provider: set SCENEBASE_WEATHER_URL)")
            else:
                try:
                    out += self._weather(ts, lat, lon, radius(EnrichmentTypes.WEATHER))
                except WeatherError as e:
                    notes.append(f"weather enrichment failed: {e}")
        return out, notes

    def _weather(self, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, r: float) -> list[EntityChunk]:
        assert self.weather is not None
        n = len(ts)
        code = np.full(n, np.nan)
        temp = np.full(n, np.nan)
        rain = np.full(n, np.nan)
        places = np.round(lat, 1) * 1000 + np.round(lon, 1)
        for place in np.unique(places):
            sel = np.flatnonzero(places == place)
            days = [dt.datetime.fromtimestamp(float(t), dt.UTC).date() for t in (ts[sel].min(), ts[sel].max())]
            rec = self.weather.hourly(float(lat[sel[0]]), float(lon[sel[0]]), days[0], days[1])
            if not len(rec["time"]):
                continue
            nearest = np.clip(np.searchsorted(rec["time"], ts[sel] - 1800.0), 0, len(rec["time"]) - 1)
            code[sel], temp[sel], rain[sel] = rec["weather_code"][nearest], rec["temperature"][nearest], \
                rec["precipitation"][nearest]  # fmt: skip
        conditions = [WMO_CODES.get(int(c), (None, None))[0] if not math.isnan(c) else None for c in code]
        descriptions = [WMO_CODES.get(int(c), (None, None))[1] if not math.isnan(c) else None for c in code]
        out = [c for c in (_state_chunk("weather_conditions", ts, conditions, r),
                           _scalar_chunk("temperature", ts, temp, r), _scalar_chunk("precipitation", ts, rain, r))
               if c is not None]  # fmt: skip
        keep = [i for i, d in enumerate(descriptions) if d]
        if keep:
            labels = sorted({str(descriptions[i]) for i in keep})
            codes = np.array([labels.index(str(descriptions[i])) for i in keep], np.int32)
            offsets = np.arange(len(keep) + 1, dtype=np.int64)
            out.append(
                EntityChunk(
                    "weather_descriptions",
                    EntityTypes.STATE_SET,
                    "interval",
                    ts[keep],
                    [],
                    radius=np.full(len(keep), r),
                    labels=labels,
                    codes=codes,
                    offsets=offsets,
                    id_prefix="derived_weather",
                )
            )
        return out
