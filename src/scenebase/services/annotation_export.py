"""Exports of a set's annotations: COCO JSON (also ``annotations/coco.json`` in the set's zip) and the records of
imported COCO files (``configs`` of type ``coco_dataset``: info, licenses and every category, so an export
numbers categories as the imported file did)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scenebase.domain.ids import new_id, standardize_id
from scenebase.media.coco_export import CocoBuilder
from scenebase.services.assets import AssetService
from scenebase.services.errors import InvalidArgument
from scenebase.storage.blobs import BlobNotFound, BlobStore
from scenebase.storage.scope import Scope

KIND = "annotations"
DATASET_TYPE = "coco_dataset"
#: the largest category table a COCO dataset record keeps
MAX_CATEGORIES = 100_000


class AnnotationExport:
    def __init__(self, assets: AssetService, blobs: BlobStore) -> None:
        self.assets = assets
        self.blobs = blobs

    # ------------------------------------------------------------------ dataset records

    def put_dataset(self, scope: Scope, record: dict[str, Any]) -> str:
        """Keep what a COCO file holds besides its images' entries; returns the record's id."""
        if not isinstance(record, dict) or not isinstance(record.get("categories"), list):
            raise InvalidArgument("a COCO dataset record needs a 'categories' list", resource=KIND)
        if len(record["categories"]) > MAX_CATEGORIES:
            raise InvalidArgument(f"at most {MAX_CATEGORIES} categories", resource=KIND)
        config = {k: v for k, v in record.items() if k != "id"}
        doc = {"id": standardize_id(str(record.get("id") or new_id())), "type": DATASET_TYPE,
               "name": str(record.get("name") or "coco"), "config": config}  # fmt: skip
        self.assets.put(scope, "configs", [doc], mode="replace")
        return str(doc["id"])

    def dataset(self, scope: Scope, dataset_id: str) -> dict[str, Any] | None:
        doc = self.assets.get_many(scope, "configs", [dataset_id]).get(standardize_id(dataset_id))
        if doc is None or doc.get("type") != DATASET_TYPE:
            return None
        return dict(doc.get("config") or {})

    # ------------------------------------------------------------------ COCO

    def read_mask(self, annotation: dict[str, Any], mask_id: str) -> bytes | None:
        key = ((annotation.get("masks") or {}).get(mask_id) or {}).get("key")
        if not key:
            return None
        try:
            return self.blobs.get(key)
        except BlobNotFound:
            return None

    def builder(self, scope: Scope, annotations: Iterable[dict[str, Any]]) -> CocoBuilder:
        """A builder with the categories of the COCO file the annotations came from, if any."""
        for ann in annotations:
            dataset_id = (ann.get("coco") or {}).get("dataset_id") if isinstance(ann.get("coco"), dict) else None
            record = self.dataset(scope, str(dataset_id)) if dataset_id else None
            if record is not None:
                return CocoBuilder(record.get("categories"), record.get("info"), record.get("licenses"))
        return CocoBuilder()

    @staticmethod
    def chosen(
        annotations: Iterable[dict[str, Any]], providers: list[str] | None, group: str | None
    ) -> list[dict[str, Any]]:
        return [a for a in annotations if (providers is None or a.get("provider") in providers)
                and (group is None or a.get("annotation_group") == group)]  # fmt: skip

    def coco(
        self, scope: Scope, set_id: str, providers: list[str] | None = None, annotation_group: str | None = None
    ) -> dict[str, Any]:
        """The COCO dictionary of the images of ``set_id`` and their annotations (all, or those of
        ``providers`` / ``annotation_group``)."""
        set_doc = self.assets.get(scope, "sets", set_id)
        if set_doc.get("assets_type") != "images":
            raise InvalidArgument(
                f"set {set_doc['id']!r} holds {set_doc.get('assets_type')}, not images", resource=KIND
            )
        owner = Scope.of(set_doc["owner"], username=scope.username)
        search = {"filters": [{"field": "sets", "values": [set_doc["id"]]}]}
        builder: CocoBuilder | None = None
        for batch in self.assets.scan(owner, "images", search, ids_only=False):
            ids = sorted({a for m in batch for a in m.get("annotations") or [] if isinstance(a, str)})
            found = self.assets.get_many(owner, KIND, ids) if ids else {}
            if builder is None:
                builder = self.builder(owner, found.values())
            for image in batch:
                anns = [found[a] for a in image.get("annotations") or [] if a in found]
                builder.add_image(image, self.chosen(anns, providers, annotation_group), self.read_mask)
        return (builder or CocoBuilder()).build()
