"""Sets: named, single-type collections of assets (FACTS 5). Membership lives on each asset's ``sets`` list."""

from __future__ import annotations

import json
import random
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scenebase.constants import SetsAssets, SetStatus, SetTags
from scenebase.domain.ids import new_id, standardize_id
from scenebase.domain.splits import split_ids, split_sizes
from scenebase.domain.timeutil import now_iso
from scenebase.services.assets import AssetService
from scenebase.services.errors import Conflict, InvalidArgument, Locked, NotFound, ServiceError
from scenebase.services.images import file_extension
from scenebase.services.jobs import JobContext, JobService, job_handler
from scenebase.storage.asset_repo import NameTaken
from scenebase.storage.scope import Scope

KIND = "sets"
#: error details that tell the client a set was the problem (it raises SetsError)
_SETS = {"resource": "sets"}
MEMBERSHIP_CHUNK = 500


class SetService:
    def __init__(self, assets: AssetService, jobs: JobService) -> None:
        self.assets = assets
        self.jobs = jobs
        self.repo = assets.repo

    # ------------------------------------------------------------------ documents

    def create(
        self,
        scope: Scope,
        name: str,
        assets_type: str,
        origin: str | None = None,
        description: str | None = None,
        expected_count: int | None = None,
        tags: list[str] | None = None,
        set_id: str | None = None,
        aux: dict[str, Any] | None = None,
        is_primary: bool = False,
        raise_if_set_exists: bool = False,
    ) -> tuple[str, bool]:
        """Create a set; an existing name returns its id (``created=False``) unless ``raise_if_set_exists``."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument("a set needs a non-empty name")
        if assets_type not in SetsAssets.VALID_ASSET_TYPES:
            raise InvalidArgument(
                f"invalid asset type {assets_type!r} for a set; valid: {SetsAssets.VALID_ASSET_TYPES}"
            )
        if expected_count is not None and (not isinstance(expected_count, int) or expected_count < 0):
            raise InvalidArgument("expected_count must be a non-negative integer")
        if aux is not None and not isinstance(aux, dict):
            raise InvalidArgument("aux_metadata must be an object")
        tags = list(tags or [])
        if not all(isinstance(t, str) for t in tags):
            raise InvalidArgument("tags must be strings")
        if is_primary and SetTags.PRIMARY not in tags:
            tags.append(SetTags.PRIMARY)
        if origin is not None:
            self.get(scope, origin)
        existing = self.repo.id_for_name(scope, KIND, name)
        if existing is not None:
            if raise_if_set_exists:
                raise Conflict(f"a set named {name!r} already exists (id {existing})", details=_SETS)
            return existing, False
        sid = standardize_id(set_id) if set_id else new_id()
        doc = self.assets.prepare(
            {
                "id": sid,
                "name": name,
                "assets_type": assets_type,
                "origin_set_id": standardize_id(origin) if origin else None,
                "description": description,
                "expected_count": expected_count,
                "tags": tags,
                "aux": aux or {},
                "status": SetStatus.READY,
                "locked": False,
                "job_id": None,
            },
            scope.username,
        )
        with self.repo.catalog.write() as conn:
            if self.repo.pks_for(conn, scope, KIND, [sid]):
                raise Conflict(f"a set with id {sid!r} already exists", details=_SETS)
            try:
                self.repo.claim_name(conn, scope, KIND, name, sid)
            except NameTaken:
                if raise_if_set_exists:
                    raise Conflict(f"a set named {name!r} already exists", details=_SETS) from None
                return str(self.repo.id_for_name(scope, KIND, name)), False
            self.repo.upsert_in(conn, scope, KIND, [doc], "replace")
        self.assets.written(scope, KIND)
        return sid, True

    def get(self, scope: Scope, set_id: str) -> dict[str, Any]:
        try:
            return self.assets.get(scope, KIND, set_id)
        except NotFound:
            raise NotFound(f"no set with id {set_id!r}", details=_SETS) from None

    def _own(self, scope: Scope, set_id: str) -> dict[str, Any]:
        doc = self.get(scope, set_id)
        if doc.get("owner") != scope.org_id:
            raise NotFound(f"no set with id {set_id!r}", details=_SETS)  # shared sets are read-only
        return doc

    def _patch(self, scope: Scope, doc: dict[str, Any], **values: Any) -> None:
        self.assets.put(scope, KIND, [{"id": doc["id"], "timestamp": doc["timestamp"], **values}], mode="merge")

    def check_writable(self, scope: Scope, set_ids: list[str], asset_type: str) -> list[str]:
        """Sets an asset write may join: own, of ``asset_type``, unlocked."""
        for sid in set_ids:
            doc = self._own(scope, sid)
            if doc["assets_type"] != asset_type:
                raise InvalidArgument(f"set {sid!r} holds {doc['assets_type']}, not {asset_type}", details=_SETS)
            if doc.get("locked"):
                raise Locked(f"set {sid!r} is locked", details=_SETS)
        return set_ids

    def set_locked(self, scope: Scope, set_id: str, locked: bool) -> None:
        self._patch(scope, self._own(scope, set_id), locked=locked)

    def is_locked(self, scope: Scope, set_id: str) -> bool:
        return bool(self.get(scope, set_id).get("locked"))

    def member_count(self, scope: Scope, doc: dict[str, Any]) -> int:
        owner_scope = Scope.of(doc["owner"])
        return self.assets.count(
            owner_scope, doc["assets_type"], {"filters": [{"field": "sets", "values": [doc["id"]]}]}
        )

    def status(self, scope: Scope, set_id: str) -> dict[str, Any]:
        doc = self.get(scope, set_id)
        return {
            "id": doc["id"],
            "name": doc["name"],
            "assets_type": doc["assets_type"],
            "status": doc.get("status", SetStatus.READY),
            "locked": bool(doc.get("locked")),
            "count": self.member_count(scope, doc),
            "expected_count": doc.get("expected_count"),
            "job_id": doc.get("job_id"),
        }

    def within(self, scope: Scope, set_id: str, search: Any, ids_only: bool) -> list[Any]:
        """Every member matching ``search`` (all members without one)."""
        doc = self.get(scope, set_id)
        query = dict(search or {})
        query["filters"] = [*(query.get("filters") or []), {"field": "sets", "values": [doc["id"]]}]
        out: list[Any] = []
        for batch in self.assets.scan(Scope.of(doc["owner"]), doc["assets_type"], query, ids_only=ids_only):
            out.extend(batch)
        return out

    # ------------------------------------------------------------------ jobs

    def _start(self, scope: Scope, doc: dict[str, Any], job_type: str, params: dict[str, Any], desc: str) -> str:
        if doc.get("locked"):
            raise Locked(f"set {doc['id']!r} is locked", details=_SETS)
        row = self.jobs.submit(scope, job_type, params, description=desc, asset_type=KIND, asset_id=doc["id"])
        return str(row["id"])

    def add_assets(self, scope: Scope, set_id: str, ids: list[str] | None, search: Any, limit: int | None) -> str:
        doc = self._own(scope, set_id)
        if ids is None and search is None:
            raise InvalidArgument("give ids or a search")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidArgument("limit must be a non-negative integer")
        if search is not None:
            from scenebase.services.assets import parse

            parse(search)  # fail now, not in the job
        params = {"set_id": doc["id"], "ids": ids, "search": search, "limit": limit}
        return self._start(scope, doc, "set_addition", params, f"add assets to set {doc['name']}")

    def remove_assets(self, scope: Scope, set_id: str, ids: list[str] | None, search: Any) -> str:
        doc = self._own(scope, set_id)
        if ids is None and search is None:
            raise InvalidArgument("give ids or a search")
        params = {"set_id": doc["id"], "ids": ids, "search": search}
        return self._start(scope, doc, "set_removal", params, f"remove assets from set {doc['name']}")

    def delete(self, scope: Scope, set_id: str) -> str:
        doc = self._own(scope, set_id)
        return self._start(scope, doc, "set_deletion", {"set_id": doc["id"]}, f"delete set {doc['name']}")

    def split(
        self, scope: Scope, set_id: str, percentages_or_sections: Any, subset_names: list[str] | None, seed: int
    ) -> tuple[str, list[str]]:
        doc = self._own(scope, set_id)
        try:
            count = split_sizes(0, percentages_or_sections)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        k = len(count)
        names = subset_names or [f"{doc['name']}_split_{i}" for i in range(k)]
        if len(names) != k or len(set(names)) != k:
            raise InvalidArgument(f"give {k} distinct subset names")
        for name in names:
            if self.repo.id_for_name(scope, KIND, name) is not None:
                raise Conflict(f"a set named {name!r} already exists", details=_SETS)
        subset_ids = [new_id() for _ in names]
        params = {"set_id": doc["id"], "spec": percentages_or_sections, "names": names, "ids": subset_ids,
                  "seed": int(seed)}  # fmt: skip
        job_id = self._start(scope, doc, "split_sets", params, f"split set {doc['name']} into {k}")
        return job_id, subset_ids

    def zip(self, scope: Scope, set_id: str) -> tuple[str, str]:
        doc = self.get(scope, set_id)
        zip_id = new_id()
        row = self.jobs.submit(
            scope, "zipping", {"set_id": doc["id"], "set_owner": doc["owner"], "zip_id": zip_id},
            description=f"zip set {doc['name']}", asset_type=KIND, asset_id=doc["id"],
        )  # fmt: skip
        return str(row["id"]), zip_id

    # ------------------------------------------------------------------ membership writes (in jobs)

    def change_membership(self, ctx: JobContext, doc: dict[str, Any], ids: list[str], add: bool) -> int:
        asset_type = doc["assets_type"]
        changed = 0
        for start in range(0, len(ids), MEMBERSHIP_CHUNK):
            chunk = ids[start : start + MEMBERSHIP_CHUNK]
            patches, missing = [], []
            # read and write in one write transaction (rows locked on PostgreSQL), so that two membership jobs
            # touching the same assets at once do not overwrite each other's ``sets`` lists
            with self.repo.catalog.write() as conn:
                found = {i: d for i, (_pk, d) in self.repo.get_for_update(conn, ctx.scope, asset_type, chunk).items()}
                for asset_id in chunk:
                    member = found.get(asset_id)
                    if member is None:
                        missing.append(asset_id)
                        continue
                    sets = list(member.get("sets") or [])
                    if add and doc["id"] not in sets:
                        sets.append(doc["id"])
                    elif not add and doc["id"] in sets:
                        sets.remove(doc["id"])
                    else:
                        continue
                    patch = {"id": asset_id, "timestamp": member["timestamp"], "sets": sets}
                    patches.append(patch)
                if patches:
                    self.assets.put_in(conn, ctx.scope, asset_type, patches, "merge_replace_lists")
            for asset_id in missing:  # notes are writes too: only once the transaction is over
                ctx.note(f"{asset_id}: no {asset_type} with this id")
            if patches:
                self.assets.written(ctx.scope, asset_type)
                changed += len(patches)
            ctx.progress(100.0 * min(len(ids), start + MEMBERSHIP_CHUNK) / max(1, len(ids)))
        return changed


def _set_doc(ctx: JobContext) -> dict[str, Any]:
    return ctx.runtime.sets._own(ctx.scope, ctx.params["set_id"])


def _with_status(ctx: JobContext, doc: dict[str, Any], status: str) -> None:
    ctx.runtime.sets._patch(ctx.scope, doc, status=status, job_id=ctx.id)


@contextmanager
def _status_while(ctx: JobContext, doc: dict[str, Any], status: str) -> Iterator[None]:
    """Show ``status`` on the set while the block runs, then ``ready`` again (also after a failure)."""
    _with_status(ctx, doc, status)
    try:
        yield
    finally:
        _with_status(ctx, doc, SetStatus.READY)


@job_handler("set_addition")
def set_addition_job(ctx: JobContext) -> dict[str, Any]:
    sets = ctx.runtime.sets
    doc = _set_doc(ctx)
    with _status_while(ctx, doc, SetStatus.BEING_POPULATED):
        ids = sets.assets.resolve_ids(ctx.scope, doc["assets_type"], ctx.params.get("ids"), ctx.params.get("search"))
        limit = ctx.params.get("limit")
        if limit is not None and len(ids) > limit:
            ids = sorted(random.Random(42).sample(sorted(ids), limit))
        ctx.stage(f"adding {len(ids)} assets")
        added = sets.change_membership(ctx, doc, ids, add=True)
    return {"requested": len(ids), "added": added}


@job_handler("set_removal")
def set_removal_job(ctx: JobContext) -> dict[str, Any]:
    sets = ctx.runtime.sets
    doc = _set_doc(ctx)
    with _status_while(ctx, doc, SetStatus.MOVING_ASSETS):
        ids = sets.assets.resolve_ids(ctx.scope, doc["assets_type"], ctx.params.get("ids"), None)
        if ctx.params.get("search") is not None:
            # the search selects among the set's members: search within the set, not the whole asset type
            ids = list(dict.fromkeys([*ids, *sets.within(ctx.scope, doc["id"], ctx.params["search"], ids_only=True)]))
        ctx.stage(f"removing {len(ids)} assets")
        removed = sets.change_membership(ctx, doc, ids, add=False)
    return {"requested": len(ids), "removed": removed}


@job_handler("set_deletion")
def set_deletion_job(ctx: JobContext) -> dict[str, Any]:
    sets = ctx.runtime.sets
    doc = _set_doc(ctx)
    _with_status(ctx, doc, SetStatus.BEING_DELETED)
    members = sets.within(ctx.scope, doc["id"], None, ids_only=True)
    ctx.stage(f"removing the set from {len(members)} assets")
    sets.change_membership(ctx, doc, members, add=False)
    with sets.repo.catalog.write() as conn:
        sets.repo.release_name(conn, ctx.scope, KIND, doc["name"])
        sets.repo.delete_in(conn, ctx.scope, KIND, [doc["id"]])
    sets.assets.written(ctx.scope, KIND)
    return {"deleted": doc["id"], "members_released": len(members)}


@job_handler("split_sets")
def split_sets_job(ctx: JobContext) -> dict[str, Any]:
    sets = ctx.runtime.sets
    doc = _set_doc(ctx)
    members = sets.within(ctx.scope, doc["id"], None, ids_only=True)
    sizes = split_sizes(len(members), ctx.params["spec"])
    parts = split_ids(members, sizes, ctx.params["seed"])
    result = []
    for name, sid, part in zip(ctx.params["names"], ctx.params["ids"], parts, strict=True):
        if sets.repo.id_for_name(ctx.scope, KIND, name) == sid:
            created_id = sid  # made by an earlier attempt of this job
        else:
            created_id, _ = sets.create(
                ctx.scope, name, doc["assets_type"], origin=doc["id"], set_id=sid, raise_if_set_exists=True,
                tags=[SetTags.AUTOMATICALLY_GENERATED],
            )  # fmt: skip
        ctx.stage(f"filling {name} with {len(part)} assets")
        sets.change_membership(ctx, sets.get(ctx.scope, created_id), part, add=True)
        result.append({"id": created_id, "name": name, "count": len(part)})
    return {"subsets": result}


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_. " else "_" for c in name).strip(" .")
    return cleaned or "set"


@job_handler("zipping")
def zipping_job(ctx: JobContext) -> dict[str, Any]:
    rt = ctx.runtime
    owner_scope = Scope.of(ctx.params["set_owner"], username=ctx.scope.username)
    doc = rt.sets.get(owner_scope, ctx.params["set_id"])
    if doc["owner"] != ctx.scope.org_id:  # a shared set's status belongs to its owner: leave it alone
        return _zip(ctx, owner_scope, doc)
    with _status_while(ctx, doc, SetStatus.BEING_ZIPPED):
        return _zip(ctx, owner_scope, doc)


def _zip(ctx: JobContext, owner_scope: Scope, doc: dict[str, Any]) -> dict[str, Any]:
    rt = ctx.runtime
    folder = _safe_name(doc["name"])
    members = rt.sets.within(owner_scope, doc["id"], None, ids_only=False)
    ctx.stage(f"zipping {len(members)} assets")
    annotation_ids = sorted({a for m in members for a in (m.get("annotations") or []) if isinstance(a, str)})
    annotations = rt.assets.get_many(owner_scope, "annotations", annotation_ids) if annotation_ids else {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "set.zip"
        with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
            manifest = {"set_id": doc["id"], "name": doc["name"], "assets_type": doc["assets_type"],
                        "count": len(members), "version": doc.get("version"), "created_at": now_iso(),
                        "assets": []}  # fmt: skip
            for i, member in enumerate(members):
                entry: dict[str, Any] = {"id": member["id"], "metadata": f"{folder}/metadata/{member['id']}.json"}
                if doc["assets_type"] == "images":
                    try:
                        data = rt.images.read_original(member)
                        ext = file_extension(member["format"])
                        name = f"{folder}/assets/{member['id']}.{ext}"
                        compress = zipfile.ZIP_STORED if ext == "jpg" else zipfile.ZIP_DEFLATED
                        zf.writestr(name, data, compress_type=compress)
                        entry["file"] = name
                    except ServiceError as e:
                        ctx.note(f"{member['id']}: file not included: {e.message}")
                zf.writestr(entry["metadata"], json.dumps(member, indent=1, default=str), zipfile.ZIP_DEFLATED)
                for ann_id in member.get("annotations") or []:
                    if ann_id in annotations:
                        zf.writestr(f"{folder}/annotations/{ann_id}.json", json.dumps(annotations[ann_id], default=str))
                manifest["assets"].append(entry)
                ctx.progress(95.0 * (i + 1) / max(1, len(members)))
            zf.writestr("manifest.json", json.dumps(manifest, indent=1))
        key = f"zipfiles/{ctx.params['zip_id']}.zip"
        rt.blobs.put_file(key, path, "application/zip")
        size = path.stat().st_size
    zip_doc = {"id": ctx.params["zip_id"], "name": f"{folder}.zip", "set_id": doc["id"], "count": len(members),
               "size": size, "object_access": {"key": key, "filename": f"{folder}.zip"},
               "timestamp": time.time()}  # fmt: skip
    rt.assets.put(ctx.scope, "zipfiles", [zip_doc])
    return {"zip_id": ctx.params["zip_id"], "count": len(members), "size": size}
