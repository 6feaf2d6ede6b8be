"""Sets: named, single-type collections of assets (FACTS 5). Membership lives on each asset's ``sets`` list."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from scenebase.constants import SetsAssets, SetStatus, SetTags
from scenebase.domain.ids import new_id, standardize_id
from scenebase.domain.splits import split_ids, split_sizes
from scenebase.services.assets import AssetService
from scenebase.services.errors import Conflict, InvalidArgument, Locked, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.storage.asset_repo import NameTaken
from scenebase.storage.scope import Scope

KIND = "sets"
MEMBERSHIP_CHUNK = 500


class SetService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("set_addition", "set_removal", "set_deletion", "split_sets")

    def __init__(self, assets: AssetService, jobs: JobService) -> None:
        self.assets = assets
        self.jobs = jobs
        self.repo = assets.repo

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("set_addition", self._addition_job)
        registry.register("set_removal", self._removal_job)
        registry.register("set_deletion", self._deletion_job)
        registry.register("split_sets", self._split_job)

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
                raise Conflict(f"a set named {name!r} already exists (id {existing})", resource=KIND)
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
                raise Conflict(f"a set with id {sid!r} already exists", resource=KIND)
            try:
                self.repo.claim_name(conn, scope, KIND, name, sid)
            except NameTaken:
                if raise_if_set_exists:
                    raise Conflict(f"a set named {name!r} already exists", resource=KIND) from None
                return str(self.repo.id_for_name(scope, KIND, name)), False
            self.repo.upsert_in(conn, scope, KIND, [doc], "replace")
        self.assets.written(scope, KIND)
        return sid, True

    def get(self, scope: Scope, set_id: str) -> dict[str, Any]:
        try:
            return self.assets.get(scope, KIND, set_id)
        except NotFound:
            raise NotFound(f"no set with id {set_id!r}", resource=KIND) from None

    def _own(self, scope: Scope, set_id: str) -> dict[str, Any]:
        doc = self.get(scope, set_id)
        if doc.get("owner") != scope.org_id:
            raise NotFound(f"no set with id {set_id!r}", resource=KIND)  # shared sets are read-only
        return doc

    def _patch(self, scope: Scope, doc: dict[str, Any], **values: Any) -> None:
        self.assets.put(scope, KIND, [{"id": doc["id"], "timestamp": doc["timestamp"], **values}], mode="merge")

    def check_writable(self, scope: Scope, set_ids: list[str], asset_type: str) -> list[str]:
        """Sets an asset write may join: own, of ``asset_type``, unlocked."""
        for sid in set_ids:
            doc = self._own(scope, sid)
            if doc["assets_type"] != asset_type:
                raise InvalidArgument(f"set {sid!r} holds {doc['assets_type']}, not {asset_type}", resource=KIND)
            if doc.get("locked"):
                raise Locked(f"set {sid!r} is locked", resource=KIND)
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
            raise Locked(f"set {doc['id']!r} is locked", resource=KIND)
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
                raise Conflict(f"a set named {name!r} already exists", resource=KIND)
        subset_ids = [new_id() for _ in names]
        params = {"set_id": doc["id"], "spec": percentages_or_sections, "names": names, "ids": subset_ids,
                  "seed": int(seed)}  # fmt: skip
        job_id = self._start(scope, doc, "split_sets", params, f"split set {doc['name']} into {k}")
        return job_id, subset_ids

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

    def _job_set(self, ctx: JobContext) -> dict[str, Any]:
        return self._own(ctx.scope, ctx.params["set_id"])

    def with_status(self, ctx: JobContext, doc: dict[str, Any], status: str) -> None:
        self._patch(ctx.scope, doc, status=status, job_id=ctx.id)

    @contextmanager
    def status_while(self, ctx: JobContext, doc: dict[str, Any], status: str) -> Iterator[None]:
        """Show ``status`` on the set while the block runs, then ``ready`` again (also after a failure)."""
        self.with_status(ctx, doc, status)
        try:
            yield
        finally:
            self.with_status(ctx, doc, SetStatus.READY)

    def _addition_job(self, ctx: JobContext) -> dict[str, Any]:
        doc = self._job_set(ctx)
        with self.status_while(ctx, doc, SetStatus.BEING_POPULATED):
            ids = self.assets.resolve_ids(
                ctx.scope, doc["assets_type"], ctx.params.get("ids"), ctx.params.get("search")
            )
            limit = ctx.params.get("limit")
            if limit is not None and len(ids) > limit:
                ids = sorted(random.Random(42).sample(sorted(ids), limit))
            ctx.stage(f"adding {len(ids)} assets")
            added = self.change_membership(ctx, doc, ids, add=True)
        return {"requested": len(ids), "added": added}

    def _removal_job(self, ctx: JobContext) -> dict[str, Any]:
        doc = self._job_set(ctx)
        with self.status_while(ctx, doc, SetStatus.MOVING_ASSETS):
            ids = self.assets.resolve_ids(ctx.scope, doc["assets_type"], ctx.params.get("ids"), None)
            if ctx.params.get("search") is not None:
                # the search selects among the set's members: search within the set, not the whole asset type
                ids = list(
                    dict.fromkeys([*ids, *self.within(ctx.scope, doc["id"], ctx.params["search"], ids_only=True)])
                )
            ctx.stage(f"removing {len(ids)} assets")
            removed = self.change_membership(ctx, doc, ids, add=False)
        return {"requested": len(ids), "removed": removed}

    def _deletion_job(self, ctx: JobContext) -> dict[str, Any]:
        doc = self._job_set(ctx)
        self.with_status(ctx, doc, SetStatus.BEING_DELETED)
        members = self.within(ctx.scope, doc["id"], None, ids_only=True)
        ctx.stage(f"removing the set from {len(members)} assets")
        self.change_membership(ctx, doc, members, add=False)
        with self.repo.catalog.write() as conn:
            self.repo.release_name(conn, ctx.scope, KIND, doc["name"])
            self.repo.delete_in(conn, ctx.scope, KIND, [doc["id"]])
        self.assets.written(ctx.scope, KIND)
        return {"deleted": doc["id"], "members_released": len(members)}

    def _split_job(self, ctx: JobContext) -> dict[str, Any]:
        doc = self._job_set(ctx)
        members = self.within(ctx.scope, doc["id"], None, ids_only=True)
        sizes = split_sizes(len(members), ctx.params["spec"])
        parts = split_ids(members, sizes, ctx.params["seed"])
        result = []
        for name, sid, part in zip(ctx.params["names"], ctx.params["ids"], parts, strict=True):
            if self.repo.id_for_name(ctx.scope, KIND, name) == sid:
                created_id = sid  # made by an earlier attempt of this job
            else:
                created_id, _ = self.create(
                    ctx.scope, name, doc["assets_type"], origin=doc["id"], set_id=sid, raise_if_set_exists=True,
                    tags=[SetTags.AUTOMATICALLY_GENERATED],
                )  # fmt: skip
            ctx.stage(f"filling {name} with {len(part)} assets")
            self.change_membership(ctx, self.get(ctx.scope, created_id), part, add=True)
            result.append({"id": created_id, "name": name, "count": len(part)})
        return {"subsets": result}
