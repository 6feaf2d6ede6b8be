"""Sets: named, single-type collections of assets (FACTS 5). Membership lives on each asset's ``sets`` list.

Invariants kept under concurrent jobs (tests/test_concurrency.py):

* A set's document is written only while it exists: status writes lock the row and never create one, so a job
  finishing after the set's deletion cannot bring back a broken document.
* Deletion marks the set ``being deleted`` before it answers. From then on the set takes no new members: every
  membership write (set jobs, and ingestion through :meth:`SetService.hold_for_members`) locks the set's row and
  re-checks its state in the transaction that writes the members, so none can land after the deletion job has
  collected the members it removes.
* ``split_set`` creates its subsets (names claimed, documents written) before it answers: the ids it returns
  exist, and a taken name is a 409 naming it, not a job that aborts later.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

from sqlalchemy import Connection

from scenebase.constants import SetsAssets, SetStatus, SetTags
from scenebase.domain.ids import new_id, standardize_id
from scenebase.domain.splits import split_ids, split_sizes
from scenebase.services.assets import AssetService
from scenebase.services.errors import Conflict, InvalidArgument, Locked, NotFound
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.storage.asset_repo import NameTaken
from scenebase.storage.job_repo import TERMINAL
from scenebase.storage.scope import Scope

KIND = "sets"
MEMBERSHIP_CHUNK = 500
#: most subsets one split may make (and never more than the set has members)
MAX_SUBSETS = 1000


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

    def _new_doc(
        self, scope: Scope, sid: str, name: str, assets_type: str, tags: list[str], **fields: Any
    ) -> dict[str, Any]:
        return self.assets.prepare(
            {"id": sid, "name": name, "assets_type": assets_type, "origin_set_id": None, "description": None,
             "expected_count": None, "tags": tags, "aux": {}, "status": SetStatus.READY, "locked": False,
             "job_id": None, **fields},
            scope.username,
        )  # fmt: skip

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
        _check_name(name)
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
        origin_id = standardize_id(origin) if origin else None
        doc = self._new_doc(scope, sid, name, assets_type, tags, origin_set_id=origin_id, description=description,
                            expected_count=expected_count, aux=aux or {})  # fmt: skip
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

    def _hold(self, conn: Connection, scope: Scope, set_id: str, share: bool = False) -> dict[str, Any]:
        """The set's document, its row locked until ``conn`` commits (``share``: a shared lock, see
        :meth:`hold_for_members`); NotFound when it is gone."""
        found = self.repo.get_for_update(conn, scope, KIND, [set_id], share=share)
        if set_id not in found:
            raise NotFound(f"set {set_id!r} does not exist (any more)", resource=KIND)
        return found[set_id][1]

    def _update(self, scope: Scope, set_id: str, keep_deleting: bool = True, **values: Any) -> None:
        """Change fields of an existing set (never creates one). A set being deleted keeps that status."""
        with self.repo.catalog.write() as conn:
            doc = self._hold(conn, scope, set_id)
            if keep_deleting and "status" in values and self.deleting(doc):
                values.pop("status")
                values.pop("job_id", None)
            if values:
                patch = {"id": set_id, "timestamp": doc["timestamp"], **values}
                self.assets.put_in(conn, scope, KIND, [patch], "merge")
        self.assets.written(scope, KIND)

    def deleting(self, doc: dict[str, Any]) -> bool:
        """Whether a deletion of this set is under way (marked, and its job neither finished nor aborted)."""
        if doc.get("status") != SetStatus.BEING_DELETED:
            return False
        job = self.jobs.repo.system_get(str(doc.get("job_id") or ""))
        return job is None or job["status"] not in TERMINAL

    def refuse_if_deleting(self, doc: dict[str, Any], what: str) -> None:
        if self.deleting(doc):
            job = doc.get("job_id")
            raise Conflict(f"set {doc['id']!r} is being deleted (job {job}): cannot {what}", resource=KIND)

    def _refuse_if_busy(self, doc: dict[str, Any], what: str) -> None:
        if doc.get("locked"):
            raise Locked(f"set {doc['id']!r} is locked", resource=KIND)
        self.refuse_if_deleting(doc, what)

    def check_writable(self, scope: Scope, set_ids: list[str], asset_type: str) -> list[str]:
        """Sets an asset write may join: own, of ``asset_type``, unlocked, not being deleted."""
        for sid in set_ids:
            doc = self._own(scope, sid)
            if doc["assets_type"] != asset_type:
                raise InvalidArgument(f"set {sid!r} holds {doc['assets_type']}, not {asset_type}", resource=KIND)
            self._refuse_if_busy(doc, "take new assets")
        return set_ids

    def hold_for_members(self, conn: Connection, scope: Scope, set_ids: list[str]) -> None:
        """Inside the transaction that writes new members into ``set_ids``: lock the sets' rows and re-check that
        each exists and is not being deleted, so no member lands after a deletion collected the members.

        The lock is shared (PostgreSQL ``FOR SHARE``): the batches of one upload into one set write at the same
        time (an exclusive lock made them queue for each other's whole transaction), while a status write, which
        locks the row for update, still waits for them to commit, and one that committed first is what they read."""
        for sid in sorted(set(set_ids)):
            doc = self._hold(conn, scope, sid, share=True)
            if self.deleting(doc):
                raise Conflict(f"set {sid!r} is being deleted: it takes no new assets", resource=KIND)

    def set_locked(self, scope: Scope, set_id: str, locked: bool) -> None:
        self._update(scope, self._own(scope, set_id)["id"], locked=locked)

    def is_locked(self, scope: Scope, set_id: str) -> bool:
        return bool(self.get(scope, set_id).get("locked"))

    def member_count(self, scope: Scope, doc: dict[str, Any]) -> int:
        if not doc.get("assets_type"):
            return 0  # a broken document (written by an older version's status write): it can only be deleted
        owner_scope = Scope.of(doc["owner"])
        return self.assets.count(
            owner_scope, doc["assets_type"], {"filters": [{"field": "sets", "values": [doc["id"]]}]}
        )

    def status(self, scope: Scope, set_id: str) -> dict[str, Any]:
        doc = self.get(scope, set_id)
        status = doc.get("status") or SetStatus.READY
        if status != SetStatus.READY and doc.get("job_id"):
            job = self.jobs.repo.system_get(str(doc["job_id"]))
            if job is not None and job["status"] in TERMINAL:
                status = SetStatus.READY  # left by a job that ended without resetting it (cancelled while queued)
        return {
            "id": doc["id"],
            "name": doc.get("name") or "",  # empty only on a damaged document (see member_count)
            "assets_type": doc.get("assets_type") or "",
            "status": status,
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

    def _member_ids(self, ctx: JobContext, doc: dict[str, Any], search: Any = None) -> list[str]:
        """``within`` for jobs: stops between batches when the job is cancelled."""
        if not doc.get("assets_type"):
            return []
        query = dict(search or {})
        query["filters"] = [*(query.get("filters") or []), {"field": "sets", "values": [doc["id"]]}]
        out: list[str] = []
        for batch in self.assets.scan(Scope.of(doc["owner"]), doc["assets_type"], query, ids_only=True):
            ctx.check_cancelled()
            out.extend(batch)
        return out

    # ------------------------------------------------------------------ jobs

    def _start(
        self, scope: Scope, doc: dict[str, Any], job_type: str, params: dict[str, Any], desc: str, job_id: str = ""
    ) -> str:
        self._refuse_if_busy(doc, "change its members")
        row = self.jobs.submit(scope, job_type, params, description=desc, asset_type=KIND, asset_id=doc["id"],
                               job_id=job_id or None)  # fmt: skip
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
        return self._start(scope, doc, "set_addition", params, f"add assets to set {doc.get('name')}")

    def remove_assets(self, scope: Scope, set_id: str, ids: list[str] | None, search: Any) -> str:
        doc = self._own(scope, set_id)
        if ids is None and search is None:
            raise InvalidArgument("give ids or a search")
        params = {"set_id": doc["id"], "ids": ids, "search": search}
        return self._start(scope, doc, "set_removal", params, f"remove assets from set {doc.get('name')}")

    def delete(self, scope: Scope, set_id: str) -> str:
        """Mark the set ``being deleted`` (no new members from now on) and start the job that deletes it. A
        deletion already under way answers its own job id."""
        sid = self._own(scope, set_id)["id"]
        job_id = new_id()
        with self.repo.catalog.write() as conn:
            doc = self._hold(conn, scope, sid)
            if doc.get("locked"):
                raise Locked(f"set {sid!r} is locked", resource=KIND)
            if self.deleting(doc):
                return str(doc["job_id"])
            patch = {"id": sid, "timestamp": doc["timestamp"], "status": SetStatus.BEING_DELETED, "job_id": job_id}
            self.assets.put_in(conn, scope, KIND, [patch], "merge")
        self.assets.written(scope, KIND)
        try:
            self.jobs.submit(scope, "set_deletion", {"set_id": sid}, description=f"delete set {doc.get('name')}",
                             asset_type=KIND, asset_id=sid, job_id=job_id)  # fmt: skip
        except BaseException:
            with suppress(NotFound):
                self._update(scope, sid, keep_deleting=False, status=SetStatus.READY)
            raise
        return job_id

    def split(
        self, scope: Scope, set_id: str, percentages_or_sections: Any, subset_names: list[str] | None, seed: int
    ) -> tuple[str, list[str]]:
        """Create the subsets (empty, ``being populated``) and start the job that fills them. The answer's ids
        exist; a taken name, a busy source set or more subsets than members is an error before anything starts."""
        doc = self._own(scope, set_id)
        self._refuse_if_busy(doc, "split it")
        spec = percentages_or_sections
        k = spec if isinstance(spec, int) and not isinstance(spec, bool) else len(spec) if isinstance(spec, list) else 0
        if k > MAX_SUBSETS:
            raise InvalidArgument(f"at most {MAX_SUBSETS} subsets per split, not {k}", resource=KIND)
        try:
            split_sizes(0, spec)
        except ValueError as e:
            raise InvalidArgument(str(e), resource=KIND) from None
        count = self.member_count(scope, doc)
        if k > max(count, 1):
            raise InvalidArgument(
                f"set {doc['id']!r} has {count} asset(s): it cannot be split into {k} subsets", resource=KIND
            )
        names = subset_names or [f"{doc['name']}_split_{i}" for i in range(k)]
        if len(names) != k or len(set(names)) != k:
            raise InvalidArgument(f"give {k} distinct subset names", resource=KIND)
        for name in names:
            _check_name(name)
        subset_ids = [new_id() for _ in names]
        job_id = new_id()
        docs = [self._new_doc(scope, sid, name, doc["assets_type"], [SetTags.AUTOMATICALLY_GENERATED],
                              origin_set_id=doc["id"], status=SetStatus.BEING_POPULATED, job_id=job_id)
                for sid, name in zip(subset_ids, names, strict=True)]  # fmt: skip
        with self.repo.catalog.write() as conn:
            for name, sid in zip(names, subset_ids, strict=True):
                try:
                    self.repo.claim_name(conn, scope, KIND, name, sid)
                except NameTaken:
                    raise Conflict(f"a set named {name!r} already exists", resource=KIND) from None
            self.repo.upsert_in(conn, scope, KIND, docs, "replace")
        self.assets.written(scope, KIND)
        params = {"set_id": doc["id"], "spec": spec, "names": names, "ids": subset_ids, "seed": int(seed)}
        try:
            self._start(scope, doc, "split_sets", params, f"split set {doc['name']} into {k}", job_id)
        except BaseException:
            self._drop(scope, list(zip(subset_ids, names, strict=True)))
            raise
        return job_id, subset_ids

    def _drop(self, scope: Scope, sets: list[tuple[str, str]]) -> None:
        """Delete empty sets made by a request that then failed (their names are free again)."""
        with self.repo.catalog.write() as conn:
            for _sid, name in sets:
                self.repo.release_name(conn, scope, KIND, name)
            self.repo.delete_in(conn, scope, KIND, [sid for sid, _ in sets])
        self.assets.written(scope, KIND)

    # ------------------------------------------------------------------ membership writes (in jobs)

    def change_membership(self, ctx: JobContext, doc: dict[str, Any], ids: list[str], add: bool) -> int:
        """Add ``doc``'s set to (or remove it from) the ``sets`` of ``ids``, in chunks; returns how many changed.

        Each chunk reads and writes its assets in one write transaction that also locks the set's row: two jobs
        touching the same assets cannot undo each other's writes, and no member is added once the set is being
        deleted (the chunk fails with Conflict) or gone (NotFound). Unknown ids are reported as failed items.
        """
        asset_type = doc["assets_type"]
        changed = 0
        for start in range(0, len(ids), MEMBERSHIP_CHUNK):
            ctx.check_cancelled()
            chunk = ids[start : start + MEMBERSHIP_CHUNK]

            def write(conn: Connection, chunk: list[str] = chunk) -> tuple[int, list[str]]:
                held = self._hold(conn, ctx.scope, doc["id"])
                if add and self.deleting(held):
                    raise Conflict(f"set {doc['id']!r} is being deleted: it takes no new assets", resource=KIND)
                found = {i: d for i, (_pk, d) in self.repo.get_for_update(conn, ctx.scope, asset_type, chunk).items()}
                patches, missing = [], []
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
                    patches.append({"id": asset_id, "timestamp": member["timestamp"], "sets": sets})
                if patches:
                    self.assets.put_in(conn, ctx.scope, asset_type, patches, "merge_replace_lists")
                return len(patches), missing

            written, missing = self.repo.catalog.write_retrying(write)
            for asset_id in missing:  # notes are writes too: only once the transaction is over
                ctx.item_failed(asset_id, f"no {asset_type} with this id")
            if written:
                self.assets.written(ctx.scope, asset_type)
                changed += written
            ctx.progress(100.0 * min(len(ids), start + MEMBERSHIP_CHUNK) / max(1, len(ids)))
        return changed

    def _job_set(self, ctx: JobContext) -> dict[str, Any]:
        return self._own(ctx.scope, ctx.params["set_id"])

    def with_status(self, ctx: JobContext, doc: dict[str, Any], status: str) -> None:
        """Show ``status`` (and this job) on the set. NotFound when the set is gone; never creates it."""
        self._update(ctx.scope, doc["id"], status=status, job_id=ctx.id)

    @contextmanager
    def status_while(self, ctx: JobContext, doc: dict[str, Any], status: str) -> Iterator[None]:
        """Show ``status`` on the set while the block runs, then ``ready`` again (also after a failure, unless the
        set was deleted meanwhile)."""
        self.with_status(ctx, doc, status)
        try:
            yield
        finally:
            with suppress(NotFound):
                self.with_status(ctx, doc, SetStatus.READY)

    def _addition_job(self, ctx: JobContext) -> dict[str, Any]:
        doc = self._job_set(ctx)
        if self.deleting(doc):
            raise Conflict(f"set {doc['id']!r} is being deleted: it takes no new assets", resource=KIND)
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
                ids = list(dict.fromkeys([*ids, *self._member_ids(ctx, doc, ctx.params["search"])]))
            ctx.stage(f"removing {len(ids)} assets")
            removed = self.change_membership(ctx, doc, ids, add=False)
        return {"requested": len(ids), "removed": removed}

    def _deletion_job(self, ctx: JobContext) -> dict[str, Any]:
        try:
            doc = self._job_set(ctx)
        except NotFound:
            return {"deleted": ctx.params["set_id"], "members_released": 0}  # a retry: an earlier run finished it
        self.with_status(ctx, doc, SetStatus.BEING_DELETED)
        released = 0
        # no member can join once the status is committed (hold_for_members, change_membership), so the members
        # read after it are all there will be; a second pass only confirms that
        for _ in range(3):
            members = self._member_ids(ctx, doc)
            if not members:
                break
            ctx.stage(f"removing the set from {len(members)} assets")
            self.change_membership(ctx, doc, members, add=False)
            released += len(members)
        ctx.check_cancelled()

        def drop(conn: Connection) -> None:
            held = self._hold(conn, ctx.scope, doc["id"])
            if held.get("name"):
                self.repo.release_name(conn, ctx.scope, KIND, held["name"])
            self.repo.delete_in(conn, ctx.scope, KIND, [doc["id"]])

        self.repo.catalog.write_retrying(drop)
        self.assets.written(ctx.scope, KIND)
        return {"deleted": doc["id"], "members_released": released}

    def _split_job(self, ctx: JobContext) -> dict[str, Any]:
        doc = self._job_set(ctx)
        subsets = [self._own(ctx.scope, sid) for sid in ctx.params["ids"]]  # made by the request
        members = self._member_ids(ctx, doc)
        sizes = split_sizes(len(members), ctx.params["spec"])
        parts = split_ids(members, sizes, ctx.params["seed"])
        result = []
        for subset, part in zip(subsets, parts, strict=True):
            with self.status_while(ctx, subset, SetStatus.BEING_POPULATED):
                ctx.stage(f"filling {subset['name']} with {len(part)} assets")
                self.change_membership(ctx, subset, part, add=True)
            result.append({"id": subset["id"], "name": subset["name"], "count": len(part)})
        return {"subsets": result}


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument("a set needs a non-empty name", resource=KIND)
    if len(name) > 255:
        raise InvalidArgument(f"set name {name[:40]!r}… is longer than 255 characters", resource=KIND)
