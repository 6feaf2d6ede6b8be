"""Adding annotations and linking them to their assets (FACTS 6.1, 6.4).

A batch of annotation documents (each optionally with a raw file and segmentation masks) is checked item by
item: a bad item is reported by index and the rest is written. Raw files and masks become blobs first; then, in
one transaction, the annotation documents are written and each parent asset gains ``annotations``,
``annotations_meta`` entries (provider, id, type, version, group: searchable element-wise with
``nested_filters``) and labels (``aux.labels`` and ``aux.labels_<provider>``). Blobs of a batch whose transaction
fails are removed again; blobs of annotations replaced by the batch are removed after it commits.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from scenebase.domain import annotations as rules
from scenebase.domain.ids import new_id, standardize_id
from scenebase.media.images import ImageDecodeError, probe_image
from scenebase.services.annotation_links import ParentLinks
from scenebase.services.assets import AssetService, normalize_timestamp
from scenebase.services.errors import InvalidArgument, NotFound, ServiceError, UnsupportedMedia
from scenebase.services.ingest import item_error
from scenebase.services.jobs import JobService
from scenebase.services.kinds import FileMedia, Media, MediaError
from scenebase.services.kinds.annotations import MAX_RAW_ANNOTATION_BYTES, AnnotationKind, raw_content_type
from scenebase.services.lifecycle import blob_keys
from scenebase.services.objects import ObjectService
from scenebase.services.sets import SetService
from scenebase.services.sources import SourceReader, reference_name
from scenebase.storage.asset_repo import PLAN_ATTEMPTS, Snapshot, StalePlan, WritePlan
from scenebase.storage.blobs import BlobStore
from scenebase.storage.scope import Scope

log = logging.getLogger("scenebase.annotations")

KIND = "annotations"
#: largest segmentation mask PNG
MAX_MASK_BYTES = 64 * 1024 * 1024


@dataclass
class IncomingAnnotation:
    """One annotation of a batch: its document, and optionally its raw file (inline text, an uploaded file or a
    url/uri to fetch) and uploaded mask files by mask id."""

    index: int
    doc: dict[str, Any]
    raw_text: str | None = None
    raw_file: Media | None = None
    raw_ref: str | None = None
    mask_files: dict[str, Media] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.doc.get("id") or f"annotation {self.index}") if isinstance(self.doc, dict) else str(self.index)


@dataclass
class AddOptions:
    """What happens around the write (the seed's add_annotations parameters)."""

    update_asset: bool = True
    replace_sets: bool = False
    remove_asset_repeated_annotations: bool = False
    add_provider_to_labels: bool = True
    annotations_to_objects: bool = False
    session_uid: str | None = None


@dataclass
class AddResult:
    ids: list[str | None]
    errors: list[dict[str, Any]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)


@dataclass
class _Batch:
    """What one batch writes, as decided from snapshots (``AnnotationService._decide``)."""

    service: AnnotationService
    #: the annotation documents written
    docs: list[dict[str, Any]]
    #: items refused because their parent went since it was read
    refused: list[tuple[_Ready, ServiceError]]
    #: the stored annotations the batch replaces, by id
    old: dict[str, dict[str, Any]]
    plans: list[WritePlan]

    def apply(self, conn: Any) -> None:
        for plan in self.plans:
            self.service.assets.repo.apply(conn, plan)


@dataclass
class _Ready:
    position: int
    item: IncomingAnnotation
    doc: dict[str, Any]
    blobs: list[tuple[str, Media | bytes, str]]  # (key, source, content type) to write before the transaction


class AnnotationService:
    def __init__(
        self,
        assets: AssetService,
        blobs: BlobStore,
        sources: SourceReader,
        sets: SetService,
        jobs: JobService,
        objects: ObjectService,
    ) -> None:
        self.objects = objects
        self.assets = assets
        self.blobs = blobs
        self.sources = sources
        self.sets = sets
        self.jobs = jobs
        self.kind = AnnotationKind()
        self.links = ParentLinks(assets)

    # ------------------------------------------------------------------ add

    def add(self, scope: Scope, items: list[IncomingAnnotation], options: AddOptions | None = None) -> AddResult:
        options = options or AddOptions()
        if options.annotations_to_objects:  # an unknown session is refused before anything is written
            options.session_uid = self.objects.session_for(scope, options.session_uid)
        result = AddResult(ids=[None] * len(items))
        ready: list[_Ready] = []
        seen: set[str] = set()
        prepared: list[tuple[int, IncomingAnnotation, dict[str, Any]]] = []
        for pos, item in enumerate(items):
            try:
                doc = self._document(item)
                if doc["id"] in seen:
                    raise InvalidArgument(f"annotation id {doc['id']!r} appears twice in this batch")
                seen.add(doc["id"])
                prepared.append((pos, item, doc))
            except ServiceError as e:
                result.errors.append(item_error(item.index, item.name, e))
        snapshots = self._parents(scope, [d for _, _, d in prepared])
        parents = {(m, i): doc for m, snap in snapshots.items() for i, (_pk, doc, _text) in snap.docs.items()}
        writable: dict[str, ServiceError | None] = {}
        for pos, item, doc in prepared:
            try:
                parent = parents.get((doc["media_type"], doc["asset_id"]))
                if parent is None:
                    raise NotFound(f"{doc['media_type']} {doc['asset_id']!r} not found", resource=doc["media_type"])
                self._check_sets(scope, doc.get("sets") or [], writable)
                ready.append(_Ready(pos, item, doc, self._files(scope, item, doc, parent)))
            except ServiceError as e:
                result.errors.append(item_error(item.index, item.name, e))
        if ready:
            self._write(scope, ready, snapshots, options, result)
        result.errors.sort(key=lambda e: e["index"])
        return result

    def _document(self, item: IncomingAnnotation) -> dict[str, Any]:
        try:
            doc = rules.normalize_annotation(item.doc, f"annotations[{item.index}]")
        except rules.AnnotationProblem as e:
            raise InvalidArgument(str(e), resource=KIND) from None
        doc["timestamp"] = normalize_timestamp(doc.get("timestamp"))
        return doc

    def _parents(self, scope: Scope, docs: list[dict[str, Any]]) -> dict[str, Snapshot]:
        """Per media type, the caller's own parent assets of ``docs`` as they are now."""
        wanted: dict[str, set[str]] = {}
        for d in docs:
            wanted.setdefault(d["media_type"], set()).add(d["asset_id"])
        return {m: self.assets.repo.snapshot(scope, m, sorted(ids)) for m, ids in wanted.items()}

    def _check_sets(self, scope: Scope, set_ids: list[str], checked: dict[str, ServiceError | None]) -> None:
        for sid in set_ids:
            if sid not in checked:
                try:
                    self.sets.check_writable(scope, [sid], KIND)
                    checked[sid] = None
                except ServiceError as e:
                    checked[sid] = e
            error = checked[sid]
            if error is not None:
                raise error

    def _files(
        self, scope: Scope, item: IncomingAnnotation, doc: dict[str, Any], parent: dict[str, Any]
    ) -> list[tuple[str, Media | bytes, str]]:
        """Check the raw file and the masks of one annotation; returns the blobs to write (and sets the keys)."""
        out: list[tuple[str, Media | bytes, str]] = []
        sources = sum(x is not None for x in (item.raw_text, item.raw_file, item.raw_ref))
        if sources > 1:
            raise InvalidArgument("give at most one raw annotation (text, file, url or uri)", resource=KIND)
        provider = standardize_id(doc["provider"])  # the folder of its raw files (FACTS 6.1)
        if item.raw_text is not None:
            data = item.raw_text.encode()
            if len(data) > MAX_RAW_ANNOTATION_BYTES:
                raise InvalidArgument(
                    f"the raw annotation is {len(data)} bytes; the limit is {MAX_RAW_ANNOTATION_BYTES}"
                )
            content_type, ext = raw_content_type(data)
            key = f"annotations/{provider}/{new_id()}.{ext}"
            out.append((key, data, content_type))
            doc["object_access"] = {"filename": f"{doc['id']}.{ext}", "key": key, "content_type": content_type,
                                    "extension": ext}  # fmt: skip
        elif item.raw_file is not None or item.raw_ref is not None:
            with self._raw(scope, item) as media:
                try:
                    probed = self.kind.probe(media, doc)
                except MediaError as e:
                    raise UnsupportedMedia(e.problem, resource=KIND) from None
                access: dict[str, Any] = {"filename": media.name, "content_type": probed.content_type,
                                          "extension": probed.extension}  # fmt: skip
                if item.raw_ref is not None:
                    access["url" if item.raw_ref.lower().startswith("http") else "uri"] = item.raw_ref
                    access["filename"] = reference_name(item.raw_ref)
                else:
                    access["key"] = f"annotations/{provider}/{new_id()}.{probed.extension}"
                    assert item.raw_file is not None
                    out.append((access["key"], item.raw_file, probed.content_type))
            doc["object_access"] = access
        masks = dict(doc.get("masks") or {})
        unknown = sorted(set(item.mask_files) - set(masks))
        if unknown:
            raise InvalidArgument(f"mask files {unknown} are not in the annotation's masks", resource=KIND)
        for mask_id, access in masks.items():
            media_ctx = self._mask_source(scope, mask_id, access, item)
            if media_ctx is None:
                continue  # an existing mask blob, or a mask referenced by id only
            with media_ctx as media:
                data = self._check_mask(media, mask_id, doc, parent)
            key = f"annotations/masks/{new_id()}.png"
            out.append((key, data, "image/png"))
            masks[mask_id] = {
                "filename": access.get("filename") or f"{mask_id}.png",
                "key": key,
                "content_type": "image/png",
                **{k: access[k] for k in ("url", "uri") if k in access},
            }
        if masks:
            doc["masks"] = masks
        return out

    @contextlib.contextmanager
    def _raw(self, scope: Scope, item: IncomingAnnotation) -> Iterator[Media]:
        if item.raw_file is not None:
            yield item.raw_file
            return
        assert item.raw_ref is not None
        with self.sources.open(scope, self.sources.check(scope, item.raw_ref), limit=MAX_RAW_ANNOTATION_BYTES) as src:
            yield FileMedia(src.path, reference_name(item.raw_ref))

    def _mask_source(
        self, scope: Scope, mask_id: str, access: dict[str, Any], item: IncomingAnnotation
    ) -> contextlib.AbstractContextManager[Media] | None:
        if mask_id in item.mask_files:
            return contextlib.nullcontext(item.mask_files[mask_id])
        ref = access.get("url") or access.get("uri")
        if access.get("key") or not ref:
            if access.get("key"):
                raise InvalidArgument(f"mask {mask_id!r}: 'key' is set by the server", resource=KIND)
            return None
        return self._fetched(scope, str(ref))

    @contextlib.contextmanager
    def _fetched(self, scope: Scope, ref: str) -> Iterator[Media]:
        with self.sources.open(scope, self.sources.check(scope, ref), limit=MAX_MASK_BYTES) as src:
            yield FileMedia(src.path, reference_name(ref))

    @staticmethod
    def _check_mask(media: Media, mask_id: str, doc: dict[str, Any], parent: dict[str, Any]) -> bytes:
        """A mask is a PNG of its image's size (FACTS 6.3: stored as PNG)."""
        data = media.read_bytes(MAX_MASK_BYTES)
        try:
            info = probe_image(data, media.name)
        except ImageDecodeError as e:
            raise UnsupportedMedia(f"mask {mask_id!r} ({media.name}): {e.problem}", resource=KIND) from None
        if info.format != "PNG":
            raise UnsupportedMedia(f"mask {mask_id!r} ({media.name}) is {info.format}, not PNG", resource=KIND)
        width, height = parent.get("width"), parent.get("height")
        if width and height and (info.width, info.height) != (width, height):
            raise InvalidArgument(
                f"mask {mask_id!r} ({media.name}) is {info.width}x{info.height}, but {doc['media_type']} "
                f"{doc['asset_id']!r} is {width}x{height}",
                resource=KIND,
            )
        return data

    # ------------------------------------------------------------------ the write

    def _write(
        self,
        scope: Scope,
        ready: list[_Ready],
        parents: dict[str, Snapshot],
        options: AddOptions,
        result: AddResult,
    ) -> None:
        """Store the blobs, then the documents and their parents' links in one transaction. The write is decided
        and planned before the transaction from what was read (``Snapshot``), so that the transaction only runs
        statements and the next batch can be prepared meanwhile. When a parent or an annotation changed in between
        (``StalePlan``), it is decided again from new snapshots (a parent may be gone, an annotation may have moved
        to another parent), and after ``PLAN_ATTEMPTS`` inside the transaction under its locks."""
        repo = self.assets.repo
        written: list[str] = []
        try:
            for r in ready:
                for key, source, content_type in r.blobs:
                    if isinstance(source, bytes):
                        self.blobs.put(key, source, content_type)
                    else:
                        with source.open() as stream:
                            self.blobs.put_stream(key, stream, content_type)
                    written.append(key)
            ids = [r.doc["id"] for r in ready]
            batch = None
            for _attempt in range(PLAN_ATTEMPTS):
                batch = self._decide(scope, ready, parents, repo.snapshot(scope, KIND, ids), options)
                try:
                    repo.catalog.write_retrying(batch.apply)
                    break
                except StalePlan:
                    parents = self._parents(scope, [r.doc for r in ready])
            else:
                wanted = {m: snap.ids for m, snap in parents.items()}
                decide_locked = functools.partial(self._write_locked, scope, ready, wanted, options)
                batch = repo.catalog.write_retrying(decide_locked)
            assert batch is not None
            self.assets.written(scope, KIND)
            for media_type in {r.doc["media_type"] for r in ready}:
                self.assets.written(scope, media_type)
        except BaseException:
            for key in written:
                self.blobs.delete(key)
            raise
        for r, error in batch.refused:
            result.errors.append(item_error(r.item.index, r.item.name, error))
            for key, _source, _type in r.blobs:
                self.blobs.delete(key)
        docs, old = batch.docs, batch.old
        for doc in old.values():
            for key in blob_keys(doc):
                self.blobs.delete(key)
        refused = {id(r) for r, _error in batch.refused}
        for r in ready:
            if id(r) not in refused:
                result.ids[r.position] = r.doc["id"]
        # parents an overwritten annotation left (and the labels it gave them), and parents to de-duplicate on
        # request, are cleaned now
        now = {(d["media_type"], d["asset_id"]) for d in docs}
        moved = [d for d in old.values() if (d["media_type"], d["asset_id"]) not in now]
        to_clean = {(d["media_type"], d["asset_id"]) for d in moved}
        if options.remove_asset_repeated_annotations:
            to_clean |= now
        for media_type in {m for m, _ in to_clean}:
            self.links.cleanup(scope, media_type, sorted(a for m, a in to_clean if m == media_type),
                               [d for d in moved if d["media_type"] == media_type])  # fmt: skip
        if options.annotations_to_objects:
            params = {"ids": [d["id"] for d in docs], "create_objects": True, "margin_ratio": 0.1,
                      "session_uid": options.session_uid}  # fmt: skip
            row = self.jobs.submit(scope, "annotations_to_objects", params, description="objects from annotations",
                                   asset_type=KIND)  # fmt: skip
            result.job_ids.append(str(row["id"]))

    def _write_locked(
        self, scope: Scope, ready: list[_Ready], parent_ids: dict[str, list[str]], options: AddOptions, conn: Any
    ) -> _Batch:
        """The batch decided and written inside one transaction, from its rows read under locks."""
        repo = self.assets.repo
        parents = {m: repo.snapshot_in(conn, scope, m, ids) for m, ids in parent_ids.items()}
        mine = repo.snapshot_in(conn, scope, KIND, [r.doc["id"] for r in ready])
        batch = self._decide(scope, ready, parents, mine, options)
        batch.apply(conn)
        return batch

    def _decide(
        self, scope: Scope, ready: list[_Ready], parents: dict[str, Snapshot], mine: Snapshot, options: AddOptions
    ) -> _Batch:
        """What the batch writes given its parents and its own stored annotations as in the snapshots: annotations
        whose parent is gone are refused."""
        batch = _Batch(self, [], [], {}, [])
        for r in ready:
            media_type, asset_id = r.doc["media_type"], r.doc["asset_id"]
            if parents[media_type].doc(asset_id) is None:
                batch.refused.append((r, NotFound(f"{media_type} {asset_id!r} not found", resource=media_type)))
                continue
            batch.docs.append(r.doc)
            stored = mine.doc(r.doc["id"])
            if stored is not None:
                batch.old[r.doc["id"]] = stored
        if batch.docs:
            batch.plans.append(self.assets.plan(scope, KIND, batch.docs, "replace", mine, keep_lists=("sets",)))
            if options.update_asset:
                batch.plans += self.links.plans(scope, batch.docs, parents, options.replace_sets,
                                                options.add_provider_to_labels)  # fmt: skip
        return batch

    # ------------------------------------------------------------------ reads

    def mask(self, scope: Scope, annotation_id: str, mask_id: str) -> tuple[bytes, str]:
        """A stored segmentation mask (PNG) of an annotation."""
        doc = self.assets.get(scope, KIND, annotation_id)
        access = (doc.get("masks") or {}).get(mask_id)
        if not access or not access.get("key"):
            raise NotFound(f"annotation {doc['id']!r} has no stored mask {mask_id!r}", resource=KIND)
        return self.blobs.get(access["key"]), str(access.get("content_type") or "image/png")
