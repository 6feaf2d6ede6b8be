"""Generic asset documents: metadata reads, search, summaries and field statistics for every type."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from scenebase.constants import AssetsConstants
from scenebase.domain.ids import new_id, standardize_id
from scenebase.domain.metadata import DocumentTooLarge, InvalidDocument, check_document, project
from scenebase.domain.search import (
    KnownFields,
    Query,
    QueryError,
    did_you_mean,
    parse_query,
    query_fields,
    unknown_field_warnings,
)
from scenebase.domain.timeutil import now_iso, to_epoch, to_iso
from scenebase.services import request_warnings
from scenebase.services.cache import OrgCache
from scenebase.services.errors import InvalidArgument, NotFound
from scenebase.storage.asset_repo import AssetRepo, Snapshot, WriteMode, WritePlan
from scenebase.storage.scope import Scope

#: longest asset id (the catalog's id column)
MAX_ID_LENGTH = 255
SEARCHABLE_TYPES = frozenset(AssetsConstants.VALID_ASSETS) - {"jobs"}
#: most dimensions one summary request may aggregate (each is a query of its own)
MAX_SUMMARY_DIMENSIONS = 50
SUMMARY_KEYS = {"search", "dimensions", "nested_dimensions", "max_size_for_agg"}
#: keys of SceneBox's summary request (FACTS 3.4) that scenebase does not build yet
SUMMARY_KEYS_NOT_BUILT = {"custom_buckets_numeric", "custom_buckets_time", "aggregate_field", "is_nested",
                          "aggregation_type"}  # fmt: skip


def check_asset_type(asset_type: str) -> str:
    if asset_type not in SEARCHABLE_TYPES:
        raise InvalidArgument(f"unknown asset type {asset_type!r}; valid: {sorted(SEARCHABLE_TYPES)}")
    return asset_type


def parse(search: Any, is_field: Callable[[str], bool] | None = None) -> Query:
    """``parse_query`` with its errors as ``InvalidArgument`` (see ``AssetService.parse_for`` for the checks
    that need the asset type)."""
    try:
        return parse_query(search, is_field)
    except QueryError as e:
        raise InvalidArgument(f"invalid search: {e}", resource="search") from None


def normalize_timestamp(value: Any) -> str:
    """ISO-8601 with offset; now (UTC) when missing (FACTS 1.2)."""
    if value is None or value == "":
        return now_iso()
    try:
        return to_iso(to_epoch(value))
    except ValueError as e:
        raise InvalidArgument(f"invalid timestamp: {e}") from None


class VirtualStore(Protocol):
    """Reads of an asset type kept outside the generic store (see ``services/embeddings.EmbeddingStore``)."""

    fields: tuple[str, ...]

    def get_many(self, scope: Scope, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def search(
        self, scope: Scope, query: Query, size: int, offset: int, sort_field: str | None, sort_order: str | None,
        ids_only: bool,
    ) -> list[Any]: ...  # fmt: skip

    def scan(self, scope: Scope, query: Query, ids_only: bool) -> Iterator[list[Any]]: ...

    def count(self, scope: Scope, query: Query) -> int: ...


class AssetService:
    def __init__(self, repo: AssetRepo, cache: OrgCache) -> None:
        self.repo = repo
        self.cache = cache
        #: asset types kept in tables of their own (embeddings): reads go there; generic writes are refused
        self.virtual: dict[str, VirtualStore] = {}

    def refuse_write(self, asset_type: str) -> None:
        if asset_type in self.virtual:
            raise InvalidArgument(f"{asset_type} are written and removed only through their own routes "
                                  f"(add_embeddings, delete_embeddings)", resource=asset_type)  # fmt: skip

    def written(self, scope: Scope, asset_type: str) -> None:
        """Forget cached statistics after a write."""
        self.cache.clear(scope.org_id, [asset_type])

    def prepare(self, doc: dict[str, Any], user: str | None) -> dict[str, Any]:
        """The document as stored (id, timestamps, user). Every write passes here, so a document that would break
        later reads (too deep, numbers JSON or the index cannot hold) is refused here, before it is stored."""
        try:
            check_document(doc, f"document {str(doc.get('id') or '(new)')[:100]!r}")
        except InvalidDocument as e:
            raise InvalidArgument(str(e)) from None
        out = dict(doc)
        out["id"] = standardize_id(str(out.get("id") or new_id()))
        if len(out["id"]) > MAX_ID_LENGTH:
            raise InvalidArgument(f"an id has at most {MAX_ID_LENGTH} characters, got {len(out['id'])}")
        out["timestamp"] = normalize_timestamp(out.get("timestamp"))
        now = now_iso()
        out.setdefault("created_at", now)
        out["updated_at"] = now
        if user:
            out.setdefault("user", user)
        return out

    def put(
        self,
        scope: Scope,
        asset_type: str,
        docs: list[dict[str, Any]],
        mode: WriteMode = "replace",
        keep_lists: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """Write documents in one transaction (see ``AssetRepo.upsert`` for the modes), run again when it lost a
        race with a concurrent writer."""
        stored = self.repo.catalog.write_retrying(
            lambda conn: self.put_in(conn, scope, asset_type, docs, mode, keep_lists)
        )
        self.written(scope, asset_type)
        return stored

    def put_in(
        self,
        conn: Connection,
        scope: Scope,
        asset_type: str,
        docs: list[dict[str, Any]],
        mode: WriteMode,
        keep_lists: tuple[str, ...] = (),
        keep_fields: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """``put`` inside the caller's transaction; the caller calls ``written`` after it commits."""
        prepared = self._prepared(scope, asset_type, docs)
        try:
            return self.repo.upsert_in(conn, scope, asset_type, prepared, mode, keep_lists, keep_fields)
        except DocumentTooLarge as e:
            raise InvalidArgument(str(e), resource=asset_type) from None

    def plan(
        self,
        scope: Scope,
        asset_type: str,
        docs: list[dict[str, Any]],
        mode: WriteMode,
        existing: dict[str, tuple[int, dict[str, Any]]] | Snapshot,
        keep_lists: tuple[str, ...] = (),
        keep_fields: tuple[str, ...] = (),
    ) -> WritePlan:
        """A write of ``docs`` (checked and prepared as ``put`` does) against ``existing`` (see ``AssetRepo.plan``):
        with a ``Snapshot`` it is worked out before its transaction, and ``repo.apply`` writes it."""
        prepared = self._prepared(scope, asset_type, docs)
        try:
            return self.repo.plan(scope, asset_type, prepared, mode, existing, keep_lists, keep_fields)
        except DocumentTooLarge as e:
            raise InvalidArgument(str(e), resource=asset_type) from None

    def _prepared(self, scope: Scope, asset_type: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        check_asset_type(asset_type)
        self.refuse_write(asset_type)
        return [self.prepare(d, scope.username) for d in docs]

    def get(self, scope: Scope, asset_type: str, asset_id: str) -> dict[str, Any]:
        check_asset_type(asset_type)
        doc = self.get_many(scope, asset_type, [asset_id]).get(standardize_id(asset_id))
        if doc is None:
            raise NotFound(f"no {asset_type} with id {asset_id!r}")
        return doc

    def get_many(self, scope: Scope, asset_type: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        if asset_type in self.virtual:
            return self.virtual[asset_type].get_many(scope, [standardize_id(i) for i in ids])
        return self.repo.get_many(scope, asset_type, [standardize_id(i) for i in ids])

    def search(
        self,
        scope: Scope,
        asset_type: str,
        search: Any,
        size: int = 50,
        offset: int = 0,
        sort_field: str | None = None,
        sort_order: str | None = None,
        ids_only: bool = True,
    ) -> list[Any]:
        check_asset_type(asset_type)
        query = self.parse_for(scope, asset_type, search, also=[sort_field])
        store: Any = self.virtual.get(asset_type)
        try:
            if store is not None:
                rows = store.search(scope, query, size, offset, sort_field, sort_order, ids_only)
            else:
                rows = self.repo.search(scope, asset_type, query, size, offset, sort_field, sort_order, ids_only)
        except QueryError as e:
            raise InvalidArgument(str(e)) from None
        if not ids_only and query.selected_fields:
            rows = [project(r, query.selected_fields) for r in rows]
        return rows

    def scan(self, scope: Scope, asset_type: str, search: Any, ids_only: bool = True) -> Iterator[list[Any]]:
        check_asset_type(asset_type)
        query = self.parse_for(scope, asset_type, search)
        store = self.virtual.get(asset_type)
        try:
            batches = (store.scan(scope, query, ids_only) if store is not None
                       else self.repo.scan(scope, asset_type, query, ids_only=ids_only))  # fmt: skip
            first = next(batches, None)
        except QueryError as e:
            raise InvalidArgument(str(e)) from None
        if first is None:
            return
        for batch in itertools.chain([first], batches):
            if not ids_only and query.selected_fields:
                batch = [project(r, query.selected_fields) for r in batch]
            yield batch

    def resolve_ids(self, scope: Scope, asset_type: str, ids: list[str] | None, search: Any) -> list[str]:
        """Standardized ``ids`` plus every match of ``search`` (if any), deduplicated in order."""
        out = [standardize_id(i) for i in ids or []]
        if search is not None:
            for batch in self.scan(scope, asset_type, search, ids_only=True):
                out.extend(batch)
        return list(dict.fromkeys(out))

    def count(self, scope: Scope, asset_type: str, search: Any) -> int:
        check_asset_type(asset_type)
        query = self.parse_for(scope, asset_type, search)
        if asset_type in self.virtual:
            try:
                return self.virtual[asset_type].count(scope, query)
            except QueryError as e:
                raise InvalidArgument(str(e)) from None
        return self.repo.count(scope, asset_type, query)

    def summary(self, scope: Scope, asset_type: str, request: dict[str, Any]) -> dict[str, Any]:
        check_asset_type(asset_type)
        if asset_type in self.virtual:
            raise InvalidArgument(f"{asset_type} have no summaries; count them or list their spaces",
                                  resource=asset_type)  # fmt: skip
        if not isinstance(request, dict):
            raise InvalidArgument("summary_request must be an object")
        unknown = set(request) - SUMMARY_KEYS - SUMMARY_KEYS_NOT_BUILT
        if unknown:
            raise InvalidArgument(
                f"summary_request: unknown key(s) {sorted(unknown, key=str)}{did_you_mean(unknown, SUMMARY_KEYS)}; "
                f"a summary request has {sorted(SUMMARY_KEYS)}"
            )
        not_built = set(request) & SUMMARY_KEYS_NOT_BUILT
        if not_built:
            raise InvalidArgument(
                f"summary_request keys {sorted(not_built)} are not supported yet; supported: {sorted(SUMMARY_KEYS)}"
            )
        dims: list[str] = []
        for key in ("dimensions", "nested_dimensions"):
            value = request.get(key) or []
            if not isinstance(value, list) or not all(isinstance(d, str) and d for d in value):
                raise InvalidArgument(f"{key} must be a list of field names")
            dims.extend(value)
        if len(dims) > MAX_SUMMARY_DIMENSIONS:
            raise InvalidArgument(f"a summary aggregates at most {MAX_SUMMARY_DIMENSIONS} dimensions, got {len(dims)}")
        size = request.get("max_size_for_agg", 100)
        if not isinstance(size, int) or not 1 <= size <= 10_000:
            raise InvalidArgument("max_size_for_agg must be an integer in [1, 10000]")
        query = self.parse_for(scope, asset_type, request.get("search"), also=dims)
        try:
            return self.repo.summary(scope, asset_type, query, dims, size)
        except QueryError as e:
            raise InvalidArgument(str(e)) from None

    def field_statistics(self, scope: Scope, asset_type: str) -> dict[str, Any]:
        check_asset_type(asset_type)
        if asset_type in self.virtual:
            return {}  # nothing of theirs is in the term index
        key = ",".join(sorted(scope.readable))
        return self.cache.get_or_compute(
            scope.org_id, asset_type, f"field_stats:{key}", lambda: self.repo.field_statistics(scope, asset_type)
        )

    def known_fields(self, scope: Scope, asset_type: str) -> KnownFields:
        """The field names of the ``asset_type`` assets ``scope`` reads (cached like the statistics: until a
        write of that type, or a minute for writes by organizations shared with ``scope``)."""
        if asset_type in self.virtual:
            return KnownFields.of(list(self.virtual[asset_type].fields))
        key = ",".join(sorted(scope.readable))
        return self.cache.get_or_compute(
            scope.org_id,
            asset_type,
            f"field_names:{key}",
            lambda: KnownFields.of(self.repo.field_names(scope, asset_type)),
        )

    def parse_for(self, scope: Scope, asset_type: str, search: Any, also: Iterable[str | None] = ()) -> Query:
        """``search`` parsed for ``asset_type`` assets: a key resembling a reserved one is a shorthand filter only
        if such a field exists, and, in a request, every field no asset has is answered with a warning naming
        the closest known ones. ``also``: other fields the request names (sort field, summary dimensions)."""
        query = parse(search, lambda name: self.known_fields(scope, asset_type).has(name))
        if request_warnings.active():
            fields = [*query_fields(query), *(f for f in also if f)]
            if fields:
                for message in unknown_field_warnings(fields, self.known_fields(scope, asset_type), asset_type):
                    request_warnings.warn(message)
        return query
