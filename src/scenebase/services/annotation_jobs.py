"""Annotation sources and labels of a set of assets, and the deletions that keep parents true (FACTS 6.6, 6.7).

Deleting annotations (by ids, by search, or by source: provider with optional version, type and group) is a job:
it removes the annotation documents with their raw files and masks, then rebuilds the parents' annotation lists
and labels from what is left (``ParentLinks.cleanup``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from scenebase.domain import annotations as rules
from scenebase.domain.ids import standardize_id
from scenebase.services.annotation_links import ParentLinks
from scenebase.services.assets import AssetService, parse
from scenebase.services.errors import InvalidArgument
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.lifecycle import blob_keys
from scenebase.storage.blobs import BlobStore
from scenebase.storage.scope import Scope

KIND = "annotations"
#: annotations deleted per transaction, and parent ids per annotation search
CHUNK = 1000
#: most ids cleaned per synchronous clean-up request
MAX_CLEANUP_IDS = 10_000
SOURCE_KEYS = ("provider", "version", "annotation_type", "annotation_group")


def _sources_search(sources: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each source as the filters of an annotation search (a list of searches, OR-ed by the caller)."""
    out = []
    for i, src in enumerate(sources):
        if not isinstance(src, dict) or not isinstance(src.get("provider"), str) or not src["provider"]:
            raise InvalidArgument(f"annotation_sources[{i}] must be an object with a provider", resource=KIND)
        unknown = set(src) - set(SOURCE_KEYS)
        if unknown:
            raise InvalidArgument(f"annotation_sources[{i}]: unknown keys {sorted(unknown)}; known: {SOURCE_KEYS}")
        if src.get("annotation_group") is not None and src["annotation_group"] not in rules.ANNOTATION_GROUPS:
            raise InvalidArgument(f"annotation_sources[{i}]: unknown annotation_group {src['annotation_group']!r}")
        out.append([{"field": k, "values": [src[k]]} for k in SOURCE_KEYS if src.get(k) is not None])
    return out


class AnnotationJobs:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("annotation_deletion",)

    def __init__(self, assets: AssetService, blobs: BlobStore, jobs: JobService) -> None:
        self.assets = assets
        self.blobs = blobs
        self.jobs = jobs
        self.links = ParentLinks(assets)

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("annotation_deletion", self._deletion_job)

    # ------------------------------------------------------------------ requests

    def delete(self, scope: Scope, ids: list[str] | None, search: dict[str, Any] | None) -> str:
        if ids is None and search is None:
            raise InvalidArgument("give ids or a search", resource=KIND)
        if search is not None:
            parse(search)  # a malformed query fails here, not in the job
        params = {"ids": [standardize_id(i) for i in ids or []], "search": search}
        return self._submit(scope, params, "delete annotations")

    def remove_sources(
        self, scope: Scope, sources: list[dict[str, Any]], asset_type: str, asset_filters: dict[str, Any] | None
    ) -> str:
        if not isinstance(sources, list) or not sources:
            raise InvalidArgument("annotation_sources must be a non-empty list", resource=KIND)
        if asset_type not in rules.MEDIA_TYPES:
            raise InvalidArgument(f"asset_type must be one of {list(rules.MEDIA_TYPES)}", resource=KIND)
        _sources_search(sources)
        if asset_filters is not None:
            parse(asset_filters)
        params = {"sources": sources, "asset_type": asset_type, "asset_filters": asset_filters}
        return self._submit(scope, params, "remove annotation sources")

    def _submit(self, scope: Scope, params: dict[str, Any], description: str) -> str:
        row = self.jobs.submit(scope, "annotation_deletion", params, description=description, asset_type=KIND)
        return str(row["id"])

    def cleanup(self, scope: Scope, asset_ids: list[str], asset_type: str) -> dict[str, Any]:
        """``cleanup_assets_annotation_meta``: rebuild these parents' annotation lists (synchronous)."""
        if asset_type not in rules.MEDIA_TYPES:
            raise InvalidArgument(f"asset_type must be one of {list(rules.MEDIA_TYPES)}", resource=KIND)
        if not 1 <= len(asset_ids) <= MAX_CLEANUP_IDS:
            raise InvalidArgument(f"give 1 to {MAX_CLEANUP_IDS} asset ids, got {len(asset_ids)}", resource=KIND)
        changed = self.links.cleanup(scope, asset_type, [standardize_id(i) for i in asset_ids])
        return {"cleaned": changed}

    # ------------------------------------------------------------------ sources and labels

    def _parent_docs(self, scope: Scope, search: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
        query = {**(search or {}), "source_selected_fields": ["annotations_meta"]}
        return list(self.assets.scan(scope, "images", query, ids_only=False))

    def sources(self, scope: Scope, search: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Distinct ``{provider, version, annotation_group, annotation_type}`` of the annotations of the images
        matching ``search`` (all images when None), from their ``annotations_meta``."""
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        for batch in self._parent_docs(scope, search):
            for doc in batch:
                for m in doc.get("annotations_meta") or []:
                    if isinstance(m, dict):
                        src = {
                            "provider": m.get("provider"),
                            "version": m.get("version"),
                            "annotation_group": m.get("annotation_group"),
                            "annotation_type": m.get("type"),
                        }
                        found.setdefault(tuple(map(str, src.values())), src)  # fmt: skip
        return [found[k] for k in sorted(found)]

    def labels(self, scope: Scope, search: dict[str, Any] | None) -> list[str]:
        """Distinct entity labels of the annotations of the images matching ``search`` (all images when None)."""
        labels: set[str] = set()
        if search is None:
            request = {"search": {"media_type": ["images"]}, "dimensions": ["labels"], "max_size_for_agg": 10_000}
            summary = self.assets.summary(scope, KIND, request)
            return sorted(str(b["key"]) for b in summary["aggregations"][0]["buckets"])
        for batch in self._parent_docs(scope, search):
            ann_ids = [m["id"] for d in batch for m in d.get("annotations_meta") or [] if isinstance(m, dict)]
            for start in range(0, len(ann_ids), CHUNK):
                for doc in self.assets.get_many(scope, KIND, ann_ids[start : start + CHUNK]).values():
                    labels.update(str(v) for v in doc.get("labels") or [])
        return sorted(labels)

    # ------------------------------------------------------------------ the job

    def _targets(self, ctx: JobContext) -> list[str]:
        scope, p = ctx.scope, ctx.params
        if "sources" not in p:
            return self.assets.resolve_ids(scope, KIND, p.get("ids"), p.get("search"))
        out: list[str] = []
        searches = _sources_search(p["sources"])
        media = [{"field": "media_type", "values": [p["asset_type"]]}]
        if p.get("asset_filters") is None:
            for filters in searches:
                out += self.assets.resolve_ids(scope, KIND, None, {"filters": filters + media})
            return list(dict.fromkeys(out))
        for parents in self.assets.scan(scope, p["asset_type"], p["asset_filters"], ids_only=True):
            for filters in searches:
                search = {"filters": [*filters, *media, {"field": "asset_id", "values": parents}]}
                out += self.assets.resolve_ids(scope, KIND, None, search)
            ctx.check_cancelled()
        return list(dict.fromkeys(out))

    def _deletion_job(self, ctx: JobContext) -> dict[str, Any]:
        scope = ctx.scope
        ids = self._targets(ctx)
        ctx.stage(f"deleting {len(ids)} annotations")
        deleted, missing, cleaned = 0, 0, 0
        for start in range(0, len(ids), CHUNK):
            ctx.check_cancelled()
            chunk = ids[start : start + CHUNK]
            docs = {i: d for i, d in self.assets.get_many(scope, KIND, chunk).items() if d.get("owner") == scope.org_id}
            missing += len(chunk) - len(docs)
            doomed = list(docs)

            def delete(conn: Any, doomed: list[str] = doomed) -> int:
                return self.assets.repo.delete_in(conn, scope, KIND, doomed)

            deleted += self.assets.repo.catalog.write_retrying(delete)
            self.assets.written(scope, KIND)
            for doc in docs.values():
                for key in blob_keys(doc):
                    self.blobs.delete(key)
            by_type: dict[str, list[dict[str, Any]]] = {}
            for doc in docs.values():
                by_type.setdefault(str(doc.get("media_type") or "images"), []).append(doc)
            for media_type, removed in by_type.items():
                parents = sorted({d["asset_id"] for d in removed})
                cleaned += self.links.cleanup(scope, media_type, parents, removed)
            ctx.progress(100.0 * min(len(ids), start + CHUNK) / max(1, len(ids)))
        if missing:
            ctx.note(f"{missing} of the annotations were not found")
        return {"deleted": deleted, "missing": missing, "parents_cleaned": cleaned}
