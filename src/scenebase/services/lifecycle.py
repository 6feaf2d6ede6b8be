"""Changing and deleting single assets of any type (the low-level asset manager's write side, FACTS 1.5).

Metadata updates follow FACTS 1.5 (merge by default; ``replace_sets`` overwrites lists; ``replace`` swaps the
document while keeping what the server owns). Fields the server derives (object_access, thumbnails, the probe's
values) never change this way, and a change of ``sets`` gets the same checks as set membership jobs. Deleting an
asset removes its document and every blob it points at; an asset in a locked set stays.
"""

from __future__ import annotations

from typing import Any

from scenebase.domain.ids import standardize_id
from scenebase.services.assets import AssetService, check_asset_type
from scenebase.services.errors import InvalidArgument, Locked, NotFound
from scenebase.services.kinds import KindRegistry
from scenebase.services.kinds.base import COMMON_DERIVED
from scenebase.services.sets import SetService
from scenebase.storage.blobs import BlobStore
from scenebase.storage.scope import Scope

#: types changed only through their own routes (sets: names, locks; zipfiles: made by jobs)
MANAGED_ELSEWHERE = {"sets": "the set routes (create_set, set_lock, add_assets_to_set, ...)", "zipfiles": "zip_set"}
#: most ids one delete request takes
MAX_DELETE = 1000


def blob_keys(doc: dict[str, Any]) -> list[str]:
    """Every blob an asset document points at: its original, its thumbnails/renditions and (annotations) its
    segmentation masks."""
    keys = [str((doc.get("object_access") or {}).get("key") or "")]
    keys += [str(t.get("key") or "") for t in (doc.get("thumbnails") or {}).values() if isinstance(t, dict)]
    keys += [str(m.get("key") or "") for m in (doc.get("masks") or {}).values() if isinstance(m, dict)]
    return [k for k in keys if k]


class AssetLifecycleService:
    def __init__(self, assets: AssetService, sets: SetService, blobs: BlobStore, kinds: KindRegistry) -> None:
        self.assets = assets
        self.sets = sets
        self.blobs = blobs
        self.kinds = kinds
        #: the embeddings service (set by the runtime, which builds it later): a deleted asset's embeddings go too
        self.embeddings: Any = None

    def _check_type(self, asset_type: str) -> None:
        check_asset_type(asset_type)
        self.assets.refuse_write(asset_type)
        if asset_type in MANAGED_ELSEWHERE:
            raise InvalidArgument(
                f"{asset_type} are changed through {MANAGED_ELSEWHERE[asset_type]}", resource=asset_type
            )

    def update_metadata(
        self,
        scope: Scope,
        asset_type: str,
        asset_id: str,
        metadata: dict[str, Any],
        replace: bool = False,
        replace_sets: bool = False,
    ) -> dict[str, Any]:
        self._check_type(asset_type)
        if not isinstance(metadata, dict):
            raise InvalidArgument("metadata must be an object", resource=asset_type)
        old = self.assets.get(scope, asset_type, asset_id)
        if old.get("owner") != scope.org_id:
            raise NotFound(f"no {asset_type} with id {asset_id!r}", resource=asset_type)  # shared data is read-only
        patch = dict(metadata)
        if "id" in patch and standardize_id(str(patch.pop("id"))) != old["id"]:
            raise InvalidArgument("the id of an asset cannot change", resource=asset_type)
        protected = set(COMMON_DERIVED) | {"owner"}
        if asset_type in self.kinds:
            kind = self.kinds.get(asset_type)
            protected |= kind.derived
            patch = kind.validate({**patch, "id": old["id"]})
            patch.pop("id", None)
        bad = sorted(set(patch) & protected)
        if bad:
            raise InvalidArgument(f"{bad} are kept by the server and cannot be changed", resource=asset_type)
        if "sets" in patch:
            new_sets = [standardize_id(s) for s in patch["sets"]]
            old_sets = set(old.get("sets") or [])
            after = set(new_sets) if (replace or replace_sets) else old_sets | set(new_sets)
            self.sets.check_writable(scope, sorted(after ^ old_sets), asset_type)
            patch["sets"] = new_sets
        if replace:
            kept = {k: old[k] for k in protected | {"timestamp"} if k in old and k not in patch}
            doc = {**kept, **patch, "id": old["id"]}
            doc.setdefault("timestamp", old["timestamp"])
            mode = "replace"
        else:
            doc = {**patch, "id": old["id"], "timestamp": patch.get("timestamp", old["timestamp"])}
            mode = "merge_replace_lists" if replace_sets else "merge"
        self.assets.put(scope, asset_type, [doc], mode=mode)  # type: ignore[arg-type]
        return self.assets.get(scope, asset_type, old["id"])

    def delete(self, scope: Scope, asset_type: str, ids: list[str]) -> dict[str, Any]:
        """Delete the caller's own assets ``ids`` and their blobs, in one transaction. Unknown ids are reported,
        an asset in a locked set refuses the whole request (nothing is deleted)."""
        self._check_type(asset_type)
        if not 1 <= len(ids) <= MAX_DELETE:
            raise InvalidArgument(f"delete 1 to {MAX_DELETE} ids per request, got {len(ids)}", resource=asset_type)
        wanted = list(dict.fromkeys(standardize_id(i) for i in ids))
        docs = {i: d for i, d in self.assets.get_many(scope, asset_type, wanted).items() if d["owner"] == scope.org_id}
        missing = [i for i in wanted if i not in docs]
        member_sets = sorted({s for d in docs.values() for s in d.get("sets") or []})
        if member_sets:
            found = self.assets.get_many(scope, "sets", member_sets)
            locked = sorted(s for s, d in found.items() if d.get("locked") and d.get("owner") == scope.org_id)
            if locked:
                raise Locked(
                    f"assets in the locked sets {locked} cannot be deleted; unlock them first", resource="sets"
                )

        def write(conn: Any) -> tuple[int, Any]:
            deleted = self.assets.repo.delete_in(conn, scope, asset_type, list(docs))
            gone = self.embeddings.forget_assets_in(conn, scope, asset_type, list(docs)) if self.embeddings else {}
            return deleted, gone

        deleted, gone = self.assets.repo.catalog.write_retrying(write)
        self.assets.written(scope, asset_type)
        if gone:
            self.embeddings.forget_indexed(scope, gone)
        for doc in docs.values():
            for key in blob_keys(doc):
                self.blobs.delete(key)
        return {"deleted": deleted, "missing": missing}
