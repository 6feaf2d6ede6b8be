"""Reading stored media of every kind: originals (whole, as streams, or byte ranges), and thumbnails/renditions
made on request, cached as blobs under ``thumbnails.<tag>`` and made once under concurrency."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from scenebase.domain.ids import new_id
from scenebase.services.assets import AssetService
from scenebase.services.errors import NotFound, RangeNotSatisfiable, UnsupportedMedia
from scenebase.services.fetch_policy import display_ref
from scenebase.services.kinds import FileMedia, KindRegistry, Media, MediaError, Rendition
from scenebase.services.sources import SourceReader
from scenebase.storage.blobs import BlobNotFound, BlobStore
from scenebase.storage.scope import Scope


@dataclass
class Original:
    """A stored original, ready to be served: ``size`` bytes of ``content_type``, opened on demand."""

    doc: dict[str, Any]
    size: int
    content_type: str
    filename: str
    key: str | None
    ref: str | None


class MediaService:
    def __init__(self, assets: AssetService, blobs: BlobStore, sources: SourceReader, kinds: KindRegistry) -> None:
        self.assets = assets
        self.blobs = blobs
        self.sources = sources
        self.kinds = kinds
        # on-the-fly thumbnails: concurrent first requests for one (asset, tag) make and store it once
        self._thumb_locks = [threading.Lock() for _ in range(64)]

    # ------------------------------------------------------------------ originals

    @contextlib.contextmanager
    def open_original(self, asset_type: str, doc: dict[str, Any], prefetched: Media | None = None) -> Iterator[Media]:
        """The original file of ``doc`` as local :class:`Media`: a blob of this store, or its URL/URI read now
        (``prefetched``: already downloaded by an async route). A referenced file is read again each time, with
        the owner's file roots and buckets whoever reads, and is served only while it still is the media probed
        at ingest (a URL that turned into something else is a 415, not a proxy to whatever it serves now)."""
        access = doc.get("object_access") or {}
        name = str(access.get("filename") or doc["id"])
        if access.get("key"):
            try:
                with self.blobs.local_path(access["key"]) as path:
                    yield FileMedia(path, name)
                    return
            except BlobNotFound:
                raise NotFound(
                    f"the file of {doc['id']!r} is missing from the blob store", resource=asset_type
                ) from None
        ref = access.get("url") or access.get("uri")
        if not ref:
            raise NotFound(f"{doc['id']!r} has no file", resource=asset_type)
        if prefetched is not None:
            self.check_reference(asset_type, doc, prefetched)
            yield prefetched
            return
        with self.sources.open(Scope.of(doc["owner"]), ref) as source:
            media = FileMedia(source.path, name)
            self.check_reference(asset_type, doc, media)
            yield media

    def check_reference(self, asset_type: str, doc: dict[str, Any], media: Media) -> None:
        """Refuse a referenced file that no longer is what was ingested (re-probed like at ingest)."""
        kind = self.kinds.get(asset_type)
        ref = display_ref(str((doc.get("object_access") or {}).get("url") or doc["object_access"].get("uri")))
        try:
            probed = kind.probe(media, doc)
        except MediaError as e:
            raise UnsupportedMedia(
                f"{ref} no longer holds a valid {kind.noun}: {e.problem}", resource=asset_type
            ) from None
        if probed.content_type != kind.content_type(doc):
            raise UnsupportedMedia(
                f"{ref} now holds {probed.content_type}, not the {kind.content_type(doc)} ingested", resource=asset_type
            )

    def original_info(self, scope: Scope, asset_type: str, asset_id: str) -> Original:
        kind = self.kinds.get(asset_type)
        doc = self.assets.get(scope, asset_type, asset_id)
        access = doc.get("object_access") or {}
        key = access.get("key")
        size = -1
        if key:
            try:
                size = self.blobs.size(key)
            except BlobNotFound:
                raise NotFound(f"the file of {asset_type} {doc['id']!r} is missing from the blob store") from None
        filename = str(access.get("filename") or doc["id"])
        ref = access.get("url") or access.get("uri")
        if key is None and ref is None:
            raise NotFound(f"{kind.noun} {doc['id']!r} has no file", resource=asset_type)
        return Original(doc, size, kind.content_type(doc), filename, key, ref)

    def read_range(self, original: Original, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive) of a stored blob, in pieces of at most 1 MiB."""
        if original.key is None:
            raise RangeNotSatisfiable("byte ranges are served for uploaded files only")
        if not 0 <= start <= end < original.size:
            raise RangeNotSatisfiable(f"range {start}-{end} is outside the file's {original.size} bytes")
        piece = 1024 * 1024
        pos = start
        while pos <= end:
            n = min(piece, end - pos + 1)
            yield self.blobs.open_range(original.key, pos, n)
            pos += n

    def stream_blob(self, key: str) -> Iterator[bytes]:
        with contextlib.closing(self.blobs.open(key)) as fh:
            while chunk := fh.read(1024 * 1024):
                yield chunk

    # ------------------------------------------------------------------ thumbnails and renditions

    def _cached(self, doc: dict[str, Any], tag: str) -> tuple[bytes, str] | None:
        thumb = (doc.get("thumbnails") or {}).get(tag)
        if thumb and thumb.get("key"):
            try:
                return self.blobs.get(thumb["key"]), str(thumb.get("content_type") or _legacy_type(thumb))
            except BlobNotFound:
                pass
        return None

    def thumbnail(
        self, scope: Scope, asset_type: str, asset_id: str, tag: str, prefetched: Media | None = None
    ) -> tuple[bytes, str]:
        """A thumbnail: stored ones are served; presets are made on first request and cached. ``prefetched``: the
        original of a referenced asset, downloaded by the (async) caller."""
        kind = self.kinds.get(asset_type)
        doc = self.assets.get(scope, asset_type, asset_id)
        cached = self._cached(doc, tag)
        if cached is not None:
            return cached
        if tag not in kind.thumbnail_presets:
            raise NotFound(
                f"{kind.noun} {asset_id!r} has no thumbnail {tag!r}; presets: {sorted(kind.thumbnail_presets)}",
                resource=asset_type,
            )
        if doc["owner"] != scope.org_id:
            # a reader of a shared organization gets the thumbnail but never writes into the owner's data
            rendition = self.render(asset_type, doc, {tag: None}, prefetched)[tag]
            return rendition.data, rendition.content_type
        with self._thumb_locks[hash((doc["owner"], asset_type, doc["id"], tag)) % len(self._thumb_locks)]:
            doc = self.assets.get(scope, asset_type, asset_id)  # a concurrent request may have made it meanwhile
            cached = self._cached(doc, tag)
            if cached is not None:
                return cached
            rendition = self.make_thumbnails(scope, asset_type, doc, {tag: None}, prefetched)[tag]
        return rendition.data, rendition.content_type

    def render(
        self,
        asset_type: str,
        doc: dict[str, Any],
        tags: dict[str, tuple[int, ...] | None],
        prefetched: Media | None = None,
    ) -> dict[str, Rendition]:
        """Make renditions ``tag -> shape`` (None: the kind's preset of that name) of one asset, without storing."""
        kind = self.kinds.get(asset_type)
        out: dict[str, Rendition] = {}
        source_type, source_doc = asset_type, doc
        source = kind.source(doc)
        if source is not None:  # cut from another asset's file (an object from its image), read with the owner's scope
            source_type = source[0]
            source_doc = self.assets.get(Scope.of(doc["owner"]), source_type, source[1])
            prefetched = None
        with self.open_original(source_type, source_doc, prefetched) as media:
            for tag, shape in tags.items():
                try:
                    out[tag] = kind.thumbnail(media, doc, tag, shape)
                except MediaError as e:
                    raise UnsupportedMedia(f"{doc['id']}: {e.problem}", resource=asset_type) from None
        return out

    def make_thumbnails(
        self,
        scope: Scope,
        asset_type: str,
        doc: dict[str, Any],
        tags: dict[str, tuple[int, ...] | None],
        prefetched: Media | None = None,
    ) -> dict[str, Rendition]:
        """Make and store renditions of one asset of the caller's organization."""
        out = self.render(asset_type, doc, tags, prefetched)
        self.store_renditions(scope, asset_type, doc, out)
        return out

    def store_renditions(
        self, scope: Scope, asset_type: str, doc: dict[str, Any], renditions: dict[str, Rendition]
    ) -> dict[str, dict[str, Any]]:
        """Write renditions as blobs and record them under ``thumbnails.<tag>`` of the asset's document."""
        return self.store_renditions_many(scope, asset_type, [(doc, renditions)])[doc["id"]]

    def store_renditions_many(
        self, scope: Scope, asset_type: str, pairs: Iterable[tuple[dict[str, Any], dict[str, Rendition]]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """:meth:`store_renditions` of several assets with one catalog write. ``pairs`` is read lazily: each
        asset's renditions become blobs as they come, so a job can make them one asset at a time. Returns
        ``id -> tag -> thumbnail entry``; on any failure no entry is recorded and the new blobs are removed."""
        stored: dict[str, dict[str, dict[str, Any]]] = {}
        patches: list[dict[str, Any]] = []
        written: list[str] = []
        replaced: list[str] = []
        try:
            for doc, renditions in pairs:
                if doc["owner"] != scope.org_id:
                    raise NotFound(f"{asset_type} {doc['id']!r} belongs to another organization", resource=asset_type)
                entries: dict[str, dict[str, Any]] = {}
                for tag, r in renditions.items():
                    key = f"thumbnails/{new_id()}.{r.extension}"
                    self.blobs.put(key, r.data, r.content_type)
                    written.append(key)
                    entry: dict[str, Any] = {"filename": f"{doc['id']}_{tag}.{r.extension}", "key": key,
                                             "format": r.format, "content_type": r.content_type, "size": len(r.data),
                                             **r.extra}  # fmt: skip
                    if r.width is not None and r.height is not None:
                        entry["resolution"] = {"height": r.height, "width": r.width}
                    entries[tag] = entry
                old = doc.get("thumbnails") or {}
                replaced += [old[tag]["key"] for tag in entries if (old.get(tag) or {}).get("key")]
                patches.append({"id": doc["id"], "timestamp": doc["timestamp"], "thumbnails": entries})
                stored[doc["id"]] = entries
            if patches:
                self.assets.put(scope, asset_type, patches, mode="merge")
        except BaseException:
            for key in written:
                self.blobs.delete(key)
            raise
        for key in replaced:
            self.blobs.delete(key)
        return stored


def _legacy_type(thumb: dict[str, Any]) -> str:
    """Content type of a thumbnail entry written before entries carried one (images: JPEG or PNG)."""
    return "image/png" if str(thumb.get("format", "JPEG")).upper() == "PNG" else "image/jpeg"
