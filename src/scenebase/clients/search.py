"""Search, metadata, summaries and field statistics.

The search language (keys, operators, ranges, times, shorthand, paging, sorting, warnings) is described with
examples in docs/search.md. Times may be given as timezone-aware ``datetime`` objects anywhere a time goes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from scenebase.clients.core import ClientCore
from scenebase.domain.ids import standardize_id
from scenebase.errors import AssetError, MetadataNotFoundError, SearchError


class SearchMixin(ClientCore):
    def _search(
        self,
        path: str,
        search: dict[str, Any] | None,
        size: int,
        offset: int,
        sort_field: str | None,
        sort_order: str | None,
        scan: bool,
    ) -> list[Any]:
        params = {"size": size, "offset": offset, "sort_field": sort_field, "sort_order": sort_order, "scan": scan}
        return list(self._request("POST", path, params=params, json=search or {}, error=SearchError))

    def search_assets(
        self,
        asset_type: str,
        search: dict[str, Any] | None = None,
        size: int = 50,
        offset: int = 0,
        sort_field: str | None = None,
        sort_order: str | None = None,
        scan: bool = False,
    ) -> list[str]:
        """Ids of ``asset_type`` assets matching ``search`` (see docs/search.md): ``size`` hits from ``offset``
        (size + offset ≤ 10,000), or every hit with ``scan=True``. ``sort_order`` is 'asc' or 'desc'.

        A malformed search raises ``SearchError`` naming the offending part; a field no asset has is answered
        (usually with nothing) plus a warning naming the closest known fields (logged, and in
        ``last_warnings``)."""
        return self._search(f"/v1/{quote(asset_type)}/", search, size, offset, sort_field, sort_order, scan)

    def search_meta(
        self,
        asset_type: str,
        query: dict[str, Any] | None = None,
        size: int = 50,
        offset: int = 0,
        sort_field: str | None = None,
        sort_order: str | None = None,
        scan: bool = False,
        compress: bool = False,
    ) -> list[dict[str, Any]]:
        """Metadata of the matching assets (``source_selected_fields`` in the query projects them); the query,
        paging and warnings are those of ``search_assets`` (docs/search.md). Responses are gzip-compressed on the
        wire when large, whatever ``compress`` says."""
        return self._search(f"/v1/{quote(asset_type)}/meta/", query, size, offset, sort_field, sort_order, scan)

    def summary_meta(self, asset_type: str, summary_request: dict[str, Any]) -> dict[str, Any]:
        """``{"total", "aggregations": [{"dimension", "buckets": [{"key", "doc_count"}]}]}`` for the request's
        ``search``, ``dimensions`` and ``nested_dimensions`` (``max_size_for_agg`` buckets each, default 100;
        ``dimensions: []`` just counts). See docs/search.md, Summaries."""
        return dict(
            self._request("POST", f"/v1/{quote(asset_type)}/meta/summary/", json=summary_request, error=SearchError)
        )

    def get_searchable_field_statistics(self, asset_type: str) -> dict[str, Any]:
        """``{field: {"field", "type", "count", "min"/"max" or "values"}}`` for every searchable field: the
        names a search can use (docs/search.md)."""
        return dict(
            self._request("GET", f"/v1/{quote(asset_type)}/meta/searchable_field_statistics/", error=SearchError)
        )

    def get_metadata(self, id: str, asset_type: str, with_session_metadata: bool = False) -> dict[str, Any]:
        """The metadata document of one asset. Raises ``MetadataNotFoundError`` for unknown (or foreign) ids.
        ``with_session_metadata``: adds ``session_metadata`` (a session's raw entities; for an asset in a session,
        the resolved value of every entity name at the asset's time)."""
        doc = dict(
            self._request(
                "GET",
                # ids are standardized (FACTS 1.1) before quoting: a raw "a/b" is stored as "a_b"
                f"/v1/{quote(asset_type)}/meta/{quote(standardize_id(id), safe='')}",
                error=AssetError,
                not_found=MetadataNotFoundError,
            )
        )
        if with_session_metadata:
            doc["session_metadata"] = self._session_metadata(doc)
        return doc

    def _session_metadata(self, doc: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError  # SessionsMixin
