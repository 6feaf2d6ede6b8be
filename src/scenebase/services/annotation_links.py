"""What annotations write into their parent assets (FACTS 2.1, 6.4, 6.7), and the clean-up that keeps it true.

A parent (an image, a video, a LIDAR scan) lists its annotations in ``annotations`` and describes each in an
``annotations_meta`` element ``{provider, id, type, version, annotation_group}``. Its labels are
``aux.labels`` (``<label>_<provider>``, or bare labels) and ``aux.labels_<provider>`` (the labels of that
provider's entities with a confidence above 0, or none). Adding appends (an annotation added again replaces its
element); the clean-up rebuilds the lists from the annotations that exist, so searches stay true after
annotations are deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from scenebase.domain import annotations as rules
from scenebase.services.assets import AssetService
from scenebase.storage.asset_repo import Snapshot, WritePlan
from scenebase.storage.scope import Scope

KIND = "annotations"
#: parents cleaned per transaction
CLEANUP_CHUNK = 200


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _union(old: Iterable[Any], new: Iterable[Any]) -> list[Any]:
    out = list(old)
    for v in new:
        if v not in out:
            out.append(v)
    return out


def label_values(doc: dict[str, Any], add_provider: bool = True) -> tuple[list[str], str, list[str]]:
    """What one annotation adds to its parent's labels: ``aux.labels`` values, and the per-provider key with its
    values."""
    labels = rules.entity_labels(doc.get("annotation_entities") or [])
    provider = str(doc.get("provider") or rules.DEFAULT_PROVIDER)
    confident = rules.confident_labels(doc.get("annotation_entities") or [])
    return rules.label_terms(labels, provider, add_provider), rules.labels_field(provider), confident


def _by_parent(docs: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    by_parent: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in docs:
        by_parent.setdefault((d["media_type"], d["asset_id"]), []).append(d)
    return by_parent


class ParentLinks:
    def __init__(self, assets: AssetService) -> None:
        self.assets = assets

    def plans(
        self,
        scope: Scope,
        docs: Sequence[dict[str, Any]],
        parents: dict[str, Snapshot],
        replace_lists: bool = False,
        add_provider: bool = True,
    ) -> list[WritePlan]:
        """The writes that add ``docs`` (annotation documents) to their parents, planned from ``parents`` (per media
        type, a snapshot of the parents of ``docs``): before the transaction, when ``repo.apply`` checks that the
        parents are unchanged as it writes, or inside it from a locked snapshot. ``replace_lists``: each parent's
        annotation lists become those of ``docs``."""
        by_parent = _by_parent(docs)
        out = []
        for media_type in sorted({m for m, _ in by_parent}):
            snapshot = parents[media_type]
            patches = [self._linked(parent, by_parent[(media_type, asset_id)], replace_lists, add_provider)
                       for asset_id, (_pk, parent, _text) in snapshot.docs.items()
                       if (media_type, asset_id) in by_parent]  # fmt: skip
            if patches:
                out.append(self.assets.plan(scope, media_type, patches, "merge_replace_lists", snapshot))
        return out

    @staticmethod
    def _linked(
        parent: dict[str, Any], anns: list[dict[str, Any]], replace_lists: bool, add_provider: bool
    ) -> dict[str, Any]:
        new_ids = [a["id"] for a in anns]
        entries = [rules.meta_entry(a) for a in anns]
        if replace_lists:
            annotations, meta = new_ids, entries
        else:
            annotations = _union(_as_list(parent.get("annotations")), new_ids)
            kept = [m for m in _as_list(parent.get("annotations_meta")) if not isinstance(m, dict) or m.get("id")
                    not in new_ids]  # fmt: skip
            meta = kept + entries
        aux = dict(parent.get("aux") or {})
        patch_aux: dict[str, Any] = {}
        for a in anns:
            values, field, confident = label_values(a, add_provider)
            patch_aux["labels"] = _union(patch_aux.get("labels", _as_list(aux.get("labels"))), values)
            patch_aux[field] = _union(patch_aux.get(field, _as_list(aux.get(field))), confident)
        return {"id": parent["id"], "timestamp": parent["timestamp"], "annotations": annotations,
                "annotations_meta": meta, "aux": patch_aux}  # fmt: skip

    # ------------------------------------------------------------------ clean-up

    def cleanup(
        self, scope: Scope, media_type: str, parent_ids: Sequence[str], removed: Sequence[dict[str, Any]] = ()
    ) -> int:
        """Rebuild the annotation lists of ``parent_ids`` from the annotations that exist: entries of missing
        annotations go, repeated ones are merged, ``aux.labels_<provider>`` is recomputed, and the ``aux.labels``
        values of ``removed`` annotations that no remaining annotation gives are dropped. Returns the number of
        parents changed."""
        changed = 0
        ids = list(dict.fromkeys(parent_ids))
        for start in range(0, len(ids), CLEANUP_CHUNK):
            chunk = ids[start : start + CLEANUP_CHUNK]
            existing = self._annotations_of(scope, media_type, chunk)

            def write(conn: Connection, chunk: list[str] = chunk, existing: Any = existing) -> int:
                locked = self.assets.repo.get_for_update(conn, scope, media_type, chunk)
                docs = []
                for asset_id, (_pk, parent) in locked.items():
                    rebuilt = self._rebuilt(parent, existing.get(asset_id, {}), removed)
                    if rebuilt != parent:
                        docs.append(rebuilt)
                if docs:
                    self.assets.put_in(conn, scope, media_type, docs, "replace")
                return len(docs)

            changed += self.assets.repo.catalog.write_retrying(write)
        if changed:
            self.assets.written(scope, media_type)
        return changed

    def _annotations_of(
        self, scope: Scope, media_type: str, parent_ids: list[str]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """parent id -> {annotation id: annotation} of the caller's own annotations of these parents."""
        search = {"filters": [{"field": "asset_id", "values": parent_ids},
                              {"field": "media_type", "values": [media_type]}]}  # fmt: skip
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for batch in self.assets.scan(Scope.of(scope.org_id), KIND, search, ids_only=False):
            for doc in batch:
                out.setdefault(doc["asset_id"], {})[doc["id"]] = doc
        return out

    @staticmethod
    def _rebuilt(
        parent: dict[str, Any], existing: dict[str, dict[str, Any]], removed: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        listed = [i for i in _as_list(parent.get("annotations")) if i in existing]
        order = list(dict.fromkeys([*listed, *sorted(existing)]))
        doc = dict(parent)
        doc["annotations"] = order
        doc["annotations_meta"] = [rules.meta_entry(existing[i]) for i in order]
        aux = dict(parent.get("aux") or {})
        providers: dict[str, list[str]] = {}
        given: list[str] = []
        for i in order:
            values, field, confident = label_values(existing[i])
            providers[field] = _union(providers.get(field, []), confident)
            bare, _f, _c = label_values(existing[i], add_provider=False)
            given = _union(given, [*values, *bare])
        for key in [k for k in aux if k.startswith("labels_")]:
            del aux[key]
        aux.update({k: v for k, v in providers.items() if v})
        stale: set[str] = set()
        for r in removed:
            values, _f, _c = label_values(r)
            bare, _f, _c = label_values(r, add_provider=False)
            stale.update(v for v in [*values, *bare] if v not in given)
        if "labels" in aux:
            aux["labels"] = [v for v in dict.fromkeys(_as_list(aux["labels"])) if v not in stale]
        if aux or "aux" in parent:
            doc["aux"] = aux
        return doc
