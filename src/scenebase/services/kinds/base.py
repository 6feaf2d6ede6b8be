"""The asset-kind seam: one descriptor per asset type that has media (images, videos, lidars, ...).

A kind says which metadata a client may send and which the server derives, how to probe a file of that kind,
which thumbnails and renditions it offers and what it puts in a zip. Everything generic (validation of the common
fields, the ingest transaction, blobs, thumbnail caching, HTTP routes, the client's upload path) lives once in
``services/ingest.py``, ``services/media.py``, ``api/routes/media.py`` and ``clients/upload.py``; a new media type
is a new ``AssetKind`` subclass registered in ``services/kinds/__init__.py``.

Files are handed to kinds as :class:`Media`: a readable local view of one file (an upload spooled by the HTTP
server, a downloaded URL, a ``file://`` path or a blob) that offers bytes (small files), a seekable stream, or a
local path (for libraries such as PyAV that want one), so large media never need to be held in memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from scenebase.domain.ids import standardize_id
from scenebase.domain.metadata import InvalidDocument, check_document
from scenebase.services.assets import MAX_ID_LENGTH
from scenebase.services.errors import InvalidArgument, PayloadTooLarge

#: metadata every kind derives on the server; a client can never set these
COMMON_DERIVED = frozenset(
    {"object_access", "thumbnails", "owner", "media_type", "created_at", "updated_at", "user", "content_hash"}
)
#: metadata a client may send with any media asset
COMMON_ACCEPTED = frozenset(
    {"id", "timestamp", "sensor", "session_uid", "aux", "tags", "sets", "annotations", "annotations_meta",
     "geolocation", "enrichments"}
)  # fmt: skip
#: the largest metadata document a client may send with one item (bytes of JSON)
MAX_METADATA_BYTES = 256 * 1024


class MediaError(Exception):
    """A file is not usable media of its kind; ``problem`` says what is wrong (shown to the user)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class Media:
    """A readable local file during ingest or processing. Subclasses differ in where the bytes are."""

    name: str
    size: int

    def open(self) -> BinaryIO:
        """A binary stream positioned at the start (seekable). The caller closes it."""
        raise NotImplementedError

    def buffer(self) -> bytes | None:
        """The whole file when its bytes are in memory already (shared, not copied); None when they are not."""
        return None

    def read_bytes(self, limit: int | None = None) -> bytes:
        if limit is not None and self.size > limit:
            raise PayloadTooLarge(f"{self.name!r} is {self.size} bytes; at most {limit} can be read at once")
        data = self.buffer()
        if data is not None:
            return data
        with self.open() as fh:
            return fh.read()

    @contextlib.contextmanager
    def local_path(self) -> Iterator[Path]:
        """A path to the bytes (a temporary copy when they are not in a plain file)."""
        with tempfile.TemporaryDirectory(prefix="scenebase-media-") as tmp:
            target = Path(tmp) / (Path(self.name).name or "media")
            with self.open() as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)
            yield target


class FileMedia(Media):
    """Bytes in a local file (a ``file://`` reference, a downloaded URL, a blob of the folder store)."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or path.name
        self.size = path.stat().st_size

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    @contextlib.contextmanager
    def local_path(self) -> Iterator[Path]:
        yield self.path


class StreamMedia(Media):
    """An uploaded file the HTTP server spooled (memory for small files, a temporary file for large ones).

    ``path``: the named temporary file the upload was spooled to, when it was (the ingest may move it into the blob
    store instead of copying it); ``content_hash``: its ``sha256:`` hash when the HTTP server computed it already."""

    def __init__(
        self,
        stream: BinaryIO,
        name: str,
        size: int | None = None,
        path: Path | None = None,
        content_hash: str | None = None,
    ) -> None:
        self._stream = stream
        self.name = name
        if size is None:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
        self.size = size
        self.path = path
        self.content_hash = content_hash

    @contextlib.contextmanager
    def local_path(self) -> Iterator[Path]:
        if self.path is not None and self.path.exists():
            self._stream.flush()
            yield self.path
            return
        with super().local_path() as path:
            yield path

    def open(self) -> BinaryIO:
        self._stream.seek(0)
        return _Unclosable(self._stream)  # type: ignore[return-value]

    def buffer(self) -> bytes | None:
        memory: object = self._stream
        if isinstance(self._stream, tempfile.SpooledTemporaryFile):
            # an upload the HTTP server kept in memory (not rolled over to a file) is a BytesIO inside; these are
            # private attributes of SpooledTemporaryFile (Starlette reads _rolled too): absent, we read as usual
            stream = self._stream
            memory = None if getattr(stream, "_rolled", True) else getattr(stream, "_file", None)
        # getvalue shares the BytesIO's buffer: the probe and the blob write read the upload without a copy
        return memory.getvalue() if isinstance(memory, io.BytesIO) else None


class BytesMedia(Media):
    """Bytes already in memory (small generated files, tests)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.size = len(data)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)

    def buffer(self) -> bytes:
        return self.data


class _Unclosable:
    """A view of a stream owned by someone else: closing the view leaves the stream open."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Unclosable:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@dataclass(frozen=True)
class Probed:
    """What a probe learned from a file: derived metadata, and how to store and serve the original."""

    fields: dict[str, Any]
    content_type: str
    extension: str


@dataclass(frozen=True)
class Rendition:
    """A derived file (thumbnail, downsampled point cloud, smaller video) to store under ``thumbnails.<tag>``."""

    data: bytes
    format: str
    content_type: str
    extension: str
    width: int | None = None
    height: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PostIngestJob:
    """A job a kind wants after a batch was ingested (e.g. LIDAR downsampling)."""

    job_type: str
    params: dict[str, Any]
    description: str
    wait: bool = False


class AssetKind:
    """Descriptor of one media asset type. Subclasses set the class attributes and implement :meth:`probe`."""

    asset_type: ClassVar[str]
    media_type: ClassVar[str]
    #: the singular word used in messages ("image", "video", "LIDAR")
    noun: ClassVar[str]
    #: fields the server derives from the file (on top of COMMON_DERIVED)
    derived: ClassVar[frozenset[str]] = frozenset()
    #: kind-specific fields a client may send (on top of COMMON_ACCEPTED)
    accepted: ClassVar[frozenset[str]] = frozenset()
    #: metadata fields that are stored but never enter the search index
    never_indexed: ClassVar[frozenset[str]] = frozenset()
    #: fields holding lists of strings, and strings (type-checked at ingest)
    string_lists: ClassVar[tuple[str, ...]] = ("tags", "sets")
    strings: ClassVar[tuple[str, ...]] = ("sensor", "session_uid")
    #: fields holding asset ids (standardized like ids, FACTS 1.1)
    id_lists: ClassVar[tuple[str, ...]] = ("sets",)
    #: id-list fields naming assets of another type that must exist in the uploader's organization:
    #: field -> asset type (checked once per batch at ingest; an unknown id fails its item)
    references: ClassVar[dict[str, str]] = {}
    #: what ``overwrite=False`` may add to an existing asset (FACTS 10.1)
    merge_on_no_overwrite: ClassVar[tuple[str, ...]] = ("sets", "aux", "annotations", "annotations_meta")
    #: accepted file extensions (lower case, no dot) and content types, for clients and docs
    extensions: ClassVar[tuple[str, ...]] = ()
    content_types: ClassVar[tuple[str, ...]] = ()
    #: thumbnails/renditions that can be made on request: tag -> description
    thumbnail_presets: ClassVar[dict[str, str]] = {}
    #: how many files one upload request may carry
    max_batch: ClassVar[int] = 1000
    #: job types the kind submits after ingest (the runtime checks each has a handler)
    job_types: ClassVar[tuple[str, ...]] = ()

    # ---- metadata ---------------------------------------------------------------------------------------------

    def validate(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Check the metadata a client sent with one item; returns it cleaned (None values dropped, ids
        standardized). Raises InvalidArgument naming the field."""
        try:
            check_document(meta)
        except InvalidDocument as e:
            raise InvalidArgument(str(e)) from None
        size = len(json.dumps(meta, default=str))
        if size > MAX_METADATA_BYTES:
            raise InvalidArgument(f"metadata is {size} bytes of JSON; at most {MAX_METADATA_BYTES} per item")
        bad = set(meta) & (COMMON_DERIVED | self.derived)
        if bad:
            raise InvalidArgument(f"{sorted(bad)} are computed by the server and cannot be set")
        unknown = set(meta) - (COMMON_ACCEPTED | self.accepted)
        if unknown:
            raise InvalidArgument(f"unknown {self.noun} metadata {sorted(unknown)}; put custom fields under 'aux'")
        if meta.get("aux") is not None and not isinstance(meta["aux"], dict):
            raise InvalidArgument("aux must be an object")
        for key in self.string_lists:
            value = meta.get(key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise InvalidArgument(f"{key} must be a list of strings")
        for key in self.strings:
            if meta.get(key) is not None and not isinstance(meta[key], str):
                raise InvalidArgument(f"{key} must be a string")
        out = {k: v for k, v in meta.items() if v is not None}
        if "id" in out:
            if not isinstance(out["id"], str) or not out["id"].strip():
                raise InvalidArgument("id must be a non-empty string")
            out["id"] = standardize_id(out["id"])
            if len(out["id"]) > MAX_ID_LENGTH:
                raise InvalidArgument(f"an id has at most {MAX_ID_LENGTH} characters, got {len(out['id'])}")
        for key in self.id_lists:
            if key in out:
                out[key] = [standardize_id(v) for v in out[key]]
        return self.validate_kind(out)

    def validate_kind(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Kind-specific checks of client metadata (e.g. a LIDAR's format parameters)."""
        return meta

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Check a batch's options (the manifest's other keys) before anything is written: ``after_ingest`` runs
        after the batch is stored, too late to refuse it. Raises InvalidArgument naming the option."""
        return options

    # ---- files ------------------------------------------------------------------------------------------------

    def probe(self, media: Media, meta: dict[str, Any]) -> Probed:
        """Validate the file and read what the server derives from it. Raises MediaError."""
        raise NotImplementedError(f"{type(self).__name__}.probe")

    def source(self, doc: dict[str, Any]) -> tuple[str, str] | None:
        """``(asset_type, id)`` of the asset whose file this one's renditions are made from (objects: their parent
        image); None: the asset's own file."""
        return None

    def thumbnail(self, media: Media, doc: dict[str, Any], tag: str, shape: tuple[int, ...] | None) -> Rendition:
        """Make the thumbnail or rendition ``tag`` (a preset when ``shape`` is None) from ``media`` (the file of
        :meth:`source`). Raises MediaError."""
        raise MediaError(f"{self.asset_type} have no thumbnail {tag!r}")

    def after_ingest(self, docs: list[dict[str, Any]], options: dict[str, Any]) -> list[PostIngestJob]:
        """Jobs to run on the assets of a batch that were written (not merged)."""
        return []

    def zip_member_name(self, doc: dict[str, Any]) -> str:
        """The file name of an asset inside a set's zip (under ``assets/``): its id, with the stored extension unless
        the id already ends with it (no ``x.mp4.mp4``)."""
        ext = str((doc.get("object_access") or {}).get("extension") or "bin")
        return doc["id"] if doc["id"].lower().endswith(f".{ext.lower()}") else f"{doc['id']}.{ext}"

    def content_type(self, doc: dict[str, Any]) -> str:
        """The content type of the stored original."""
        return str((doc.get("object_access") or {}).get("content_type") or "application/octet-stream")

    def thumbnail_encoding(self, data: bytes) -> str | None:
        """The HTTP ``Content-Encoding`` a stored thumbnail is served with (e.g. ``gzip`` for a compressed
        rendition a browser should inflate by itself); None for plain files."""
        return None
