"""Time-series containers of session timelines (FACTS 4): raw entities in columnar chunks, resolved columns.

Raw entities arrive in batches; the entities of one batch that share a session, name, type, influence and flags
are kept together as one :class:`EntityChunk` (arrays of times and values), so writing 100,000 measurements is a
handful of rows, and resolution reads whole arrays instead of decoding one row per entity.

A resolved timeline is one :class:`Column` per entity name: a value per bucket of the session's grid
(``time_index = floor(epoch / resolution)``), held as numpy arrays (NaN or -1 where the name has no value).
Scenario search evaluates conditions on these arrays directly.

Both serialize to a small array container (no pickle; see ``_pack``) for the catalog.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scenebase.constants import EntityTypes

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]

#: how the values of each entity type are held
VALUE_KIND = {
    EntityTypes.SCALAR: "scalar",
    EntityTypes.STATE: "state",
    EntityTypes.STATE_SET: "set",
    EntityTypes.STATE_VECTOR: "set",
    EntityTypes.MEDIA: "set",
    EntityTypes.GEO: "geo",
    EntityTypes.VECTOR: "vector",
}


class TimelineDataError(ValueError):
    """Stored timeline bytes that cannot be read back (names the part)."""


#: the stored layout: this magic, the length of a JSON header (4 bytes, little-endian), the header
#: ``{"h": <the container's header>, "a": [[name, dtype, shape], ...]}``, then each array's bytes in that order,
#: each starting on a multiple of 8. Reading it is a JSON parse and a view per array: an ``.npz`` (the layout
#: before; still read) costs a zip directory and a ``literal_eval`` per array, about a millisecond a container,
#: which made resolving 2,000 chunks and the first search over 3,000 columns take seconds.
_MAGIC = b"SBTL\x01"
_NPZ_MAGIC = b"PK\x03\x04"
_DTYPE_KINDS = set("fiubU")  # never objects


def _pack(arrays: dict[str, np.ndarray], header: dict[str, Any]) -> bytes:
    parts: list[bytes] = []
    meta: list[list[Any]] = []
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        meta.append([name, arr.dtype.str, list(arr.shape)])
        data = arr.tobytes()
        pad = -len(data) % 8
        parts.append(data + b"\0" * pad)
    head = json.dumps({"h": header, "a": meta}, separators=(",", ":")).encode()
    head += b" " * (-(len(_MAGIC) + 4 + len(head)) % 8)
    return b"".join([_MAGIC, len(head).to_bytes(4, "little"), head, *parts])


def _unpack(data: bytes, what: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if data[: len(_NPZ_MAGIC)] == _NPZ_MAGIC:
        return _unpack_npz(data, what)
    if data[: len(_MAGIC)] != _MAGIC:
        raise TimelineDataError(f"{what}: unreadable stored data (neither this version's layout nor .npz)")
    try:
        size = int.from_bytes(data[len(_MAGIC) : len(_MAGIC) + 4], "little")
        at = len(_MAGIC) + 4 + size
        doc = json.loads(data[len(_MAGIC) + 4 : at])
        buf = bytearray(data)  # one copy, so that the arrays are writable like those np.load returns
        arrays: dict[str, np.ndarray] = {}
        for name, dtype_str, shape in doc["a"]:
            dtype = np.dtype(dtype_str)
            if dtype.kind not in _DTYPE_KINDS:
                raise ValueError(f"array {name!r} has dtype {dtype_str!r}")
            count = math.prod(shape)
            nbytes = count * dtype.itemsize
            if at + nbytes > len(buf):
                raise ValueError(f"array {name!r} runs past the end of the data")
            arrays[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=at).reshape(shape)
            at += nbytes + (-nbytes % 8)
        return arrays, dict(doc["h"])
    except (ValueError, TypeError, KeyError) as e:
        raise TimelineDataError(f"{what}: unreadable stored data ({e})") from None


def _unpack_npz(data: bytes, what: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise TimelineDataError(f"{what}: unreadable stored data ({e})") from None
    header = json.loads(arrays.pop("__header__").tobytes().decode())
    return arrays, header


def bucket_of(epoch: F8 | float, resolution: float) -> Any:
    """``floor(epoch / resolution)`` (FACTS 1.2), elementwise."""
    return np.floor(np.asarray(epoch, dtype=np.float64) / resolution).astype(np.int64)


def last_bucket(start: F8, end: F8, resolution: float) -> I8:
    """The last bucket an interval ``[start, end)`` overlaps; the start's bucket when the interval is empty."""
    first = bucket_of(start, resolution)
    last = np.ceil(np.asarray(end, dtype=np.float64) / resolution).astype(np.int64) - 1
    return np.asarray(np.maximum(first, last), dtype=np.int64)


@dataclass
class EntityChunk:
    """Entities of one name, type and influence, from one batch, as arrays (one element per entity)."""

    name: str
    entity_type: str
    influence: str
    timestamps: F8
    entity_ids: list[str]
    starts: F8 = field(default_factory=lambda: np.zeros(0))  # NaN: no start_time
    ends: F8 = field(default_factory=lambda: np.zeros(0))  # NaN: no end_time
    radius: F8 = field(default_factory=lambda: np.zeros(0))  # NaN: the default radius
    urgent: bool = False
    extend_session: bool = False
    enrichments: tuple[str, ...] = ()
    num: F8 | None = None  # scalar
    lat: F8 | None = None  # geo
    lon: F8 | None = None
    labels: list[str] = field(default_factory=list)  # state and set values, by code
    codes: npt.NDArray[np.int32] | None = None  # state: one per entity; set: flattened, see offsets
    offsets: I8 | None = None  # set: entity i has codes[offsets[i]:offsets[i+1]]
    matrix: F8 | None = None  # vector: one row per entity (NaN-padded)
    #: ids of generated entities (tables of measurements): entity i is ``<id_prefix>_<i>``, and entity_ids is empty
    id_prefix: str = ""

    def entity_id(self, i: int) -> str:
        return self.entity_ids[i] if self.entity_ids else f"{self.id_prefix}_{i}"

    def __post_init__(self) -> None:
        n = len(self.timestamps)
        for attr in ("starts", "ends", "radius"):
            if len(getattr(self, attr)) != n:
                setattr(self, attr, np.full(n, np.nan))

    @property
    def kind(self) -> str:
        return VALUE_KIND[self.entity_type]

    def __len__(self) -> int:
        return len(self.timestamps)

    def extent(self, default_radius: float) -> tuple[float, float]:
        """Earliest and latest time the chunk's entities influence (interval ends and radii included)."""
        lo, hi = self.influence_bounds(default_radius)
        return float(np.min(lo)), float(np.max(hi))

    def influence_bounds(self, default_radius: float) -> tuple[F8, F8]:
        """Per entity, the time span it covers directly: [start, end], else timestamp ± radius for intervals,
        else its timestamp."""
        lo = np.where(np.isnan(self.starts), self.timestamps, self.starts)
        hi = np.where(np.isnan(self.ends), self.timestamps, self.ends)
        if self.influence == "interval":
            r = np.where(np.isnan(self.radius), default_radius, self.radius)
            no_span = np.isnan(self.starts) | np.isnan(self.ends)
            lo = np.where(no_span, self.timestamps - r, lo)
            hi = np.where(no_span, self.timestamps + r, hi)
        return lo, hi

    def value_of(self, i: int) -> Any:
        """Entity ``i``'s value as sent (for reading raw entities back)."""
        kind = self.kind
        if kind == "scalar":
            assert self.num is not None
            return float(self.num[i])
        if kind == "geo":
            assert self.lat is not None and self.lon is not None
            return [float(self.lat[i]), float(self.lon[i])]
        if kind == "state":
            assert self.codes is not None
            return self.labels[int(self.codes[i])]
        if kind == "set":
            assert self.codes is not None and self.offsets is not None
            part = self.codes[int(self.offsets[i]) : int(self.offsets[i + 1])]
            values = [self.labels[int(c)] for c in part]
            return values[0] if self.entity_type == EntityTypes.MEDIA and len(values) == 1 else values
        assert self.matrix is not None
        row = self.matrix[i]
        return [float(x) for x in row if not math.isnan(x)]

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"timestamps": self.timestamps, "starts": self.starts, "ends": self.ends,
                                         "radius": self.radius}  # fmt: skip
        for attr in ("num", "lat", "lon", "codes", "offsets", "matrix"):
            value = getattr(self, attr)
            if value is not None:
                arrays[attr] = value
        header = {"name": self.name, "entity_type": self.entity_type, "influence": self.influence,
                  "ids": self.entity_ids, "labels": self.labels, "urgent": self.urgent,
                  "extend_session": self.extend_session, "enrichments": list(self.enrichments),
                  "id_prefix": self.id_prefix}  # fmt: skip
        return _pack(arrays, header)

    @classmethod
    def from_bytes(cls, data: bytes) -> EntityChunk:
        arrays, h = _unpack(data, "entity chunk")
        return cls(
            name=h["name"], entity_type=h["entity_type"], influence=h["influence"], timestamps=arrays["timestamps"],
            entity_ids=list(h["ids"]), starts=arrays["starts"], ends=arrays["ends"], radius=arrays["radius"],
            urgent=bool(h["urgent"]), extend_session=bool(h["extend_session"]),
            enrichments=tuple(h["enrichments"]), num=arrays.get("num"), lat=arrays.get("lat"),
            lon=arrays.get("lon"), labels=list(h["labels"]), codes=arrays.get("codes"),
            offsets=arrays.get("offsets"), matrix=arrays.get("matrix"), id_prefix=h.get("id_prefix", ""),
        )  # fmt: skip

    def take(self, keep: npt.NDArray[np.bool_]) -> EntityChunk:
        """The entities where ``keep`` is true (labels are kept whole)."""
        idx = np.flatnonzero(keep)
        codes, offsets = self.codes, self.offsets
        if self.kind == "set" and codes is not None and offsets is not None:
            lengths = (offsets[1:] - offsets[:-1])[idx]
            parts = [codes[int(offsets[i]) : int(offsets[i + 1])] for i in idx]
            codes = np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        elif codes is not None:
            codes = codes[idx]

        def sub(a: F8 | None) -> F8 | None:
            return None if a is None else a[idx]

        return EntityChunk(
            name=self.name, entity_type=self.entity_type, influence=self.influence, timestamps=self.timestamps[idx],
            entity_ids=[self.entity_id(int(i)) for i in idx], starts=self.starts[idx], ends=self.ends[idx],
            radius=self.radius[idx], urgent=self.urgent, extend_session=self.extend_session,
            enrichments=self.enrichments, num=sub(self.num), lat=sub(self.lat), lon=sub(self.lon),
            labels=self.labels, codes=codes, offsets=offsets, matrix=sub(self.matrix),
        )  # fmt: skip


@dataclass
class Column:
    """The resolved values of one entity name over buckets ``start_index .. start_index + length - 1``."""

    name: str
    kind: str  # scalar | state | set | geo | vector
    start_index: int
    length: int
    num: F8 | None = None  # scalar: NaN = no value
    lat: F8 | None = None  # geo: NaN = no value
    lon: F8 | None = None
    labels: list[str] = field(default_factory=list)
    codes: npt.NDArray[np.int32] | None = None  # state: -1 = no value; set: flattened per bucket
    offsets: I8 | None = None  # set: bucket i has codes[offsets[i]:offsets[i+1]]
    matrix: F8 | None = None  # vector: NaN rows = no value

    def present(self) -> npt.NDArray[np.bool_]:
        """Which buckets have a value."""
        if self.kind == "scalar":
            assert self.num is not None
            return ~np.isnan(self.num)
        if self.kind == "geo":
            assert self.lat is not None
            return ~np.isnan(self.lat)
        if self.kind == "state":
            assert self.codes is not None
            return self.codes >= 0
        if self.kind == "set":
            assert self.offsets is not None
            return np.diff(self.offsets) > 0
        assert self.matrix is not None
        return ~np.all(np.isnan(self.matrix), axis=1) if self.matrix.shape[1] else np.zeros(self.length, bool)

    def values(self, first: int, stop: int) -> list[Any]:
        """Python values of buckets ``first .. stop - 1`` (relative to ``start_index``); None where absent."""
        first, stop = max(0, first), min(self.length, stop)
        if stop <= first:
            return []
        if self.kind == "scalar":
            assert self.num is not None
            return [None if math.isnan(x) else x for x in self.num[first:stop].tolist()]
        if self.kind == "geo":
            assert self.lat is not None and self.lon is not None
            lats, lons = self.lat[first:stop].tolist(), self.lon[first:stop].tolist()
            return [None if math.isnan(a) else [a, b] for a, b in zip(lats, lons, strict=True)]
        if self.kind == "state":
            assert self.codes is not None
            return [self.labels[c] if c >= 0 else None for c in self.codes[first:stop].tolist()]
        if self.kind == "set":
            assert self.codes is not None and self.offsets is not None
            offs = self.offsets[first : stop + 1].tolist()
            codes = self.codes.tolist()
            return [[self.labels[c] for c in codes[a:b]] or None for a, b in itertools.pairwise(offs)]
        assert self.matrix is not None
        return [None if all(math.isnan(x) for x in row) else [x for x in row if not math.isnan(x)]
                for row in self.matrix[first:stop].tolist()]  # fmt: skip

    def to_bytes(self) -> bytes:
        arrays = {a: getattr(self, a) for a in ("num", "lat", "lon", "codes", "offsets", "matrix")}
        header = {"name": self.name, "kind": self.kind, "start_index": self.start_index, "length": self.length,
                  "labels": self.labels}  # fmt: skip
        return _pack({k: v for k, v in arrays.items() if v is not None}, header)

    @classmethod
    def from_bytes(cls, data: bytes) -> Column:
        arrays, h = _unpack(data, "resolved column")
        return cls(name=h["name"], kind=h["kind"], start_index=int(h["start_index"]), length=int(h["length"]),
                   labels=list(h["labels"]), **{k: arrays.get(k) for k in ("num", "lat", "lon", "codes", "offsets",
                                                                          "matrix")})  # fmt: skip

    @property
    def nbytes(self) -> int:
        arrays = (self.num, self.lat, self.lon, self.codes, self.offsets, self.matrix)
        return sum(a.nbytes for a in arrays if a is not None) + 64 * len(self.labels)
