"""Asset descriptions for the bulk ``add_*`` methods (seed: ``scenebox.models.assets``, FACTS 2.13).

The constructor parameters are the seed's (``Image(id=None, path=None, url=None, uri=None, bytes=None, ...)``): a
SceneBox script passes them by keyword. Earlier scenebase names (``image_path``, ``image_bytes``, ...) remain as
aliases. Each object validates itself when it is built, like the seed's: exactly one source, a given path must
exist, ids standardized (or a new one generated), timestamps default to now (UTC), booleans in aux metadata become
the strings ``"true"``/``"false"``.
"""

from __future__ import annotations

import builtins
import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scenebase.domain.ids import new_id, standardize_id
from scenebase.errors import InvalidArgumentsError, InvalidTimeError
from scenebase.models.embedding import Embedding  # the seed imports it from here

_SOURCE_KEYS = ("path", "url", "uri", "bytes")
LIDAR_FORMATS = ("pcd", "numpy", "binary", "kitti")


def _stringify_booleans(value: Any) -> Any:
    """The seed converts booleans inside aux metadata to ``"true"``/``"false"`` before upload (FACTS 1.3)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return {k: _stringify_booleans(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_booleans(v) for v in value]
    return value


def _as_bytes(value: Any, what: str) -> builtins.bytes:
    if isinstance(value, builtins.bytes | bytearray | memoryview):
        return builtins.bytes(value)
    if isinstance(value, io.IOBase):
        data = value.read()
        if not isinstance(data, builtins.bytes):
            raise InvalidArgumentsError(f"{what}: the stream must be binary")
        return data
    if isinstance(value, str):  # the content itself as text, one character per byte
        return value.encode("latin-1")
    raise InvalidArgumentsError(f"{what}: bytes must be bytes, a binary stream or a string, not {type(value).__name__}")


class MediaAsset:
    """What Image, Video and Lidar share: one source, id, sensor, timestamp, session, aux metadata."""

    #: the singular word used in messages
    noun = "asset"

    def __init__(
        self,
        id: str | None = None,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        uri: str | None = None,
        bytes: Any = None,
        sensor: str | None = None,
        timestamp: datetime | str | None = None,
        session_uid: str | None = None,
        aux_metadata: dict[str, Any] | None = None,
        set_id: str | list[str] | None = None,
        tags: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        given = {k: v for k, v in zip(_SOURCE_KEYS, (path, url, uri, bytes), strict=True) if v is not None}
        if len(given) != 1:
            label = f"{self.noun} {id!r}" if id else self.noun
            if not given:
                raise InvalidArgumentsError(f"{label}: give one of path, url, uri or bytes")
            raise InvalidArgumentsError(f"{label}: give only one of {sorted(given)}")
        self.id = standardize_id(id) if id else new_id()
        #: how the user named it (the raw id), for messages; the file name is used for paths
        self.label = id or self.id
        self.path: str | None = None
        if path is not None:
            self.path = os.fspath(path)
            if not Path(self.path).is_file():
                raise InvalidArgumentsError(f"{self.noun} path {self.path!r} does not exist or is not a file")
        self.url = url
        self.uri = uri
        self.bytes: builtins.bytes | None = None if bytes is None else _as_bytes(bytes, self.noun)
        self.sensor = sensor
        if timestamp is None:
            timestamp = datetime.now(UTC)
        elif isinstance(timestamp, datetime):
            try:
                _iso_utc(timestamp)  # a naive datetime is refused now, naming the asset, not at upload
            except InvalidTimeError as e:
                raise InvalidTimeError(f"{self.noun} {self.label!r}: timestamp: {e.message}") from None
        self.timestamp: datetime | str = timestamp
        self.session_uid = session_uid
        self.aux_metadata = _stringify_booleans(dict(aux_metadata)) if aux_metadata else None
        self.set_id = set_id
        self.tags = list(tags) if tags is not None else None
        self.extra = dict(extra or {})

    def sources(self) -> list[str]:
        """Names of the sources that are set (exactly one, checked at construction)."""
        return [k for k in _SOURCE_KEYS if getattr(self, k) is not None]

    def metadata(self) -> dict[str, Any]:
        """The metadata sent to the server with the file (None values left out)."""
        ts = _iso_utc(self.timestamp) if isinstance(self.timestamp, datetime) else self.timestamp
        sets = [self.set_id] if isinstance(self.set_id, str) else self.set_id
        meta = {"id": self.id, "sensor": self.sensor, "timestamp": ts, "session_uid": self.session_uid,
                "aux": self.aux_metadata, "tags": self.tags, "sets": sets or None, **self.extra}  # fmt: skip
        return {k: v for k, v in meta.items() if v is not None}

    def __repr__(self) -> str:
        source = self.sources()[0]
        shown = f"<{len(self.bytes)} bytes>" if source == "bytes" and self.bytes is not None else getattr(self, source)
        return f"{type(self).__name__}(id={self.id!r}, {source}={shown!r})"


def _check_annotations(annotations: list[Any] | None, media_type: str, noun: str) -> list[Any] | None:
    for ann in annotations or []:
        found = getattr(ann, "media_type", None) or (ann.get("media_type") if isinstance(ann, dict) else None)
        if found is not None and found != media_type:
            raise InvalidArgumentsError(f"{noun} annotations must have media_type {media_type!r}, got {found!r}")
    return list(annotations) if annotations is not None else None


class Image(MediaAsset):
    """One image for ``SceneEngineClient.add_images``: exactly one of ``path``, ``url``, ``uri`` or ``bytes``."""

    noun = "image"

    def __init__(
        self,
        id: str | None = None,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        uri: str | None = None,
        bytes: Any = None,
        sensor: str | None = None,
        timestamp: datetime | str | None = None,
        session_uid: str | None = None,
        aux_metadata: dict[str, Any] | None = None,
        annotations: list[Any] | None = None,
        *,
        set_id: str | list[str] | None = None,
        preprocesses: list[str] | None = None,
        tags: list[str] | None = None,
        geo_field: str | None = None,
        shape_group_field: str | None = None,
        nested_fields: list[str] | None = None,
        extra: dict[str, Any] | None = None,
        image_path: str | os.PathLike[str] | None = None,
        image_url: str | None = None,
        image_uri: str | None = None,
        image_bytes: Any = None,
    ) -> None:
        super().__init__(
            id, _either(path, image_path, "path"), _either(url, image_url, "url"), _either(uri, image_uri, "uri"),
            _either(bytes, image_bytes, "bytes"), sensor, timestamp, session_uid, aux_metadata, set_id, tags, extra,
        )  # fmt: skip
        self.annotations = _check_annotations(annotations, "images", "image")
        self.preprocesses = preprocesses
        self.geo_field = geo_field
        self.shape_group_field = shape_group_field
        self.nested_fields = nested_fields

    # the names this class had before it followed the seed
    image_path = property(lambda self: self.path)
    image_url = property(lambda self: self.url)
    image_uri = property(lambda self: self.uri)
    image_bytes = property(lambda self: self.bytes)


class Video(MediaAsset):
    """One video for ``SceneEngineClient.add_videos``; ``start_timestamp`` (the recording's start) becomes the
    timestamp, and is taken from ``timestamp`` when not given."""

    noun = "video"

    def __init__(
        self,
        id: str | None = None,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        uri: str | None = None,
        bytes: Any = None,
        sensor: str | None = None,
        timestamp: datetime | str | None = None,
        session_uid: str | None = None,
        aux_metadata: dict[str, Any] | None = None,
        annotations: list[Any] | None = None,
        tags: list[str] | None = None,
        start_timestamp: datetime | str | None = None,
        *,
        set_id: str | list[str] | None = None,
        extra: dict[str, Any] | None = None,
        video_path: str | os.PathLike[str] | None = None,
        video_url: str | None = None,
        video_uri: str | None = None,
    ) -> None:
        start = start_timestamp if start_timestamp is not None else timestamp
        super().__init__(
            id, _either(path, video_path, "path"), _either(url, video_url, "url"), _either(uri, video_uri, "uri"),
            bytes, sensor, start, session_uid, aux_metadata, set_id, tags, extra,
        )  # fmt: skip
        self.start_timestamp = self.timestamp
        self.annotations = _check_annotations(annotations, "videos", "video")


class Lidar(MediaAsset):
    """One point cloud for ``SceneEngineClient.add_lidars``. ``format``: ``pcd`` (default), ``numpy`` (raw
    float32 values, ``num_fields`` per point, or a ``.npy`` file), ``binary`` (points packed with the ``struct``
    format ``binary_format``: x, y, z, intensity, epoch) or, beyond the seed, ``kitti`` (float32 x, y, z,
    intensity). ``related_images`` are ids of images taken with the scan (they must exist)."""

    noun = "LIDAR"

    def __init__(
        self,
        id: str | None = None,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        uri: str | None = None,
        bytes: Any = None,
        sensor: str | None = None,
        timestamp: datetime | str | None = None,
        session_uid: str | None = None,
        aux_metadata: dict[str, Any] | None = None,
        format: str | None = None,
        binary_format: str | None = None,
        related_images: list[str] | None = None,
        num_fields: int | None = None,
        *,
        set_id: str | list[str] | None = None,
        tags: list[str] | None = None,
        extra: dict[str, Any] | None = None,
        lidar_path: str | os.PathLike[str] | None = None,
        lidar_url: str | None = None,
        lidar_uri: str | None = None,
        lidar_bytes: Any = None,
    ) -> None:
        super().__init__(
            id, _either(path, lidar_path, "path"), _either(url, lidar_url, "url"), _either(uri, lidar_uri, "uri"),
            _either(bytes, lidar_bytes, "bytes"), sensor, timestamp, session_uid, aux_metadata, set_id, tags, extra,
        )  # fmt: skip
        fmt = (format or "pcd").lower()
        if fmt not in LIDAR_FORMATS:
            raise InvalidArgumentsError(f"LIDAR format {format!r} is not one of {list(LIDAR_FORMATS)}")
        if fmt == "numpy" and num_fields is None and not _is_npy(self):
            raise InvalidArgumentsError("LIDAR format 'numpy' needs num_fields (values per point)")
        if fmt == "binary" and not binary_format:
            raise InvalidArgumentsError("LIDAR format 'binary' needs binary_format (a struct format of one point)")
        if num_fields is not None and (isinstance(num_fields, bool) or not isinstance(num_fields, int)):
            raise InvalidArgumentsError(f"num_fields must be an integer, got {num_fields!r}")
        self.format = fmt
        self.binary_format = binary_format
        self.num_fields = num_fields
        self.related_images = [standardize_id(i) for i in related_images] if related_images else None

    def metadata(self) -> dict[str, Any]:
        meta = super().metadata()
        meta["format"] = self.format
        for key in ("binary_format", "num_fields", "related_images"):
            if getattr(self, key) is not None:
                meta[key] = getattr(self, key)
        return meta


def _is_npy(asset: MediaAsset) -> bool:
    """A ``.npy`` file carries its own shape, so ``num_fields`` is optional for it."""
    if asset.bytes is not None:
        return asset.bytes[:6] == b"\x93NUMPY"
    return bool(asset.path and asset.path.lower().endswith(".npy"))


def _iso_utc(value: datetime) -> str:
    from scenebase.clients.encoding import iso_utc  # the client's one wire form of times (lazy: no import cycle)

    return iso_utc(value)


def _either(seed_value: Any, alias_value: Any, name: str) -> Any:
    if seed_value is not None and alias_value is not None:
        raise InvalidArgumentsError(f"give {name} once (it was given under two names)")
    return seed_value if seed_value is not None else alias_value


__all__ = ["LIDAR_FORMATS", "Embedding", "Image", "Lidar", "MediaAsset", "Video"]
