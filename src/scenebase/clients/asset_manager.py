"""``AssetManagerClient``: the low-level client for one asset type (``SceneEngineClient.get_asset_manager``).

It talks to the same server as ``SceneEngineClient`` (scenebase has one API; SceneBox's separate asset manager
service is the ``/v1/{asset_type}/...`` routes here) and covers what scripts use the asset manager for: search,
count, metadata get / update, file put / get, existence and deletion.

>>> images = client.get_asset_manager("images")
>>> images.count({"filters": [{"field": "sensor", "values": ["cam_front"]}]})
>>> images.update_metadata("frame_0001", {"aux": {"weather": "rain"}})
>>> images.get_file("frame_0001", "frame_0001.jpg")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from scenebase.clients.upload import UploadItem
from scenebase.domain.ids import standardize_id
from scenebase.errors import AssetError, InvalidArgumentsError, MetadataNotFoundError

if TYPE_CHECKING:
    from scenebase.clients.scene_engine_client import SceneEngineClient


class _Missing(MetadataNotFoundError):
    """The 404 of ``exists``: answered as False."""


#: ids per delete request (the server takes at most 1,000)
DELETE_CHUNK = 1000


class AssetManagerClient:
    """Search, metadata and files of one asset type. Get one with ``client.get_asset_manager(asset_type)``."""

    def __init__(self, client: SceneEngineClient, asset_type: str) -> None:
        self._client = client
        self.asset_type = asset_type

    def _path(self, *parts: str) -> str:
        return "/v1/" + "/".join([quote(self.asset_type, safe=""), *parts])

    @staticmethod
    def _id(asset_id: str) -> str:
        return quote(standardize_id(asset_id), safe="")

    # ---- search ----

    def search_assets(
        self,
        search: dict[str, Any] | None = None,
        size: int = 50,
        offset: int = 0,
        sort_field: str | None = None,
        sort_order: str | None = None,
        scan: bool = False,
    ) -> list[str]:
        """Ids matching ``search`` (docs/search.md); ``scan=True`` returns every match."""
        return self._client.search_assets(self.asset_type, search, size, offset, sort_field, sort_order, scan)

    def search_meta(
        self,
        query: dict[str, Any] | None = None,
        size: int = 50,
        offset: int = 0,
        sort_field: str | None = None,
        sort_order: str | None = None,
        scan: bool = False,
    ) -> list[dict[str, Any]]:
        """Metadata documents matching ``query``."""
        return self._client.search_meta(self.asset_type, query, size, offset, sort_field, sort_order, scan)

    def count(self, search: dict[str, Any] | None = None) -> int:
        """How many assets match ``search`` (all of the type without one)."""
        out = self._client._request("POST", self._path("count"), json=search or {}, error=AssetError)
        return int(out["count"])

    def exists(self, id: str) -> bool:
        try:
            self._client._request("GET", self._path("exists", self._id(id)), error=AssetError, not_found=_Missing)
        except _Missing:
            return False
        return True

    # ---- metadata ----

    def get_metadata(self, id: str) -> dict[str, Any]:
        """One document; MetadataNotFoundError for unknown ids."""
        return self._client.get_metadata(id, self.asset_type)

    def update_metadata(
        self, id: str, metadata: dict[str, Any], replace: bool = False, replace_sets: bool = False
    ) -> dict[str, Any]:
        """Merge ``metadata`` into the document (dicts merged key by key, lists unioned); ``replace_sets``
        overwrites lists, ``replace`` swaps the document (what the server derived is kept). Returns the stored
        document. Server-derived fields (file, thumbnails, probe values) cannot be changed."""
        return dict(
            self._client._request(
                "PUT",
                self._path("meta", self._id(id)),
                params={"replace": replace, "replace_sets": replace_sets},
                json=metadata,
                error=AssetError,
                not_found=MetadataNotFoundError,
            )
        )

    # ---- files ----

    def put_file(
        self,
        path: str | os.PathLike[str] | None = None,
        data: bytes | None = None,
        url: str | None = None,
        uri: str | None = None,
        id: str | None = None,
        metadata: dict[str, Any] | None = None,
        set_id: str | list[str] | None = None,
        overwrite: bool = True,
    ) -> str:
        """Add one file of this (media) type with optional metadata, through the same checks as ``add_images``
        & co. Returns its id; AssetError naming the problem when the server refuses it."""
        sources = [s for s in (path, data, url, uri) if s is not None]
        if len(sources) != 1:
            raise InvalidArgumentsError("give exactly one of path, data, url and uri")
        meta = dict(metadata or {})
        if id is not None:
            meta["id"] = standardize_id(id)
        if path is not None:
            item = UploadItem(Path(path).name, meta, path=Path(path))
        elif data is not None:
            item = UploadItem(id or "data", meta, data=bytes(data))
        else:
            item = UploadItem(str(url or uri), meta, url=url, uri=uri)
        sets = [set_id] if isinstance(set_id, str) else list(set_id or [])
        result = self._client._upload_media(self.asset_type, [item], sets, overwrite, progress=False)
        if result.errors:
            raise self._client._single_error(result.errors)
        for job_id in result.job_ids:
            self._client._job(job_id).wait(show_progress=False)
        return str(result.ids[0])

    def get_url(self, id: str) -> str:
        """The URL of the original file (send the token as a bearer header or ``?token=``)."""
        return f"{self._client._http.root_url}{self._path(self._id(id), 'file')}"

    def get_file(self, id: str, output_path: str | os.PathLike[str] | None = None) -> bytes | str:
        """The original file: its bytes, or streamed to ``output_path`` (returns the path)."""
        self._client._server_status()
        url = self._path(self._id(id), "file")
        if output_path is None:
            return self._client._http.request("GET", url, error=AssetError, not_found=MetadataNotFoundError).content
        target = Path(output_path)
        tmp = target.with_name(target.name + ".part")
        http = self._client._http
        with http.stream("GET", url, error=AssetError, not_found=MetadataNotFoundError) as resp, tmp.open("wb") as fh:
            for chunk in resp.iter_bytes(1024 * 1024):
                fh.write(chunk)
        tmp.replace(target)
        return str(target)

    # ---- deletion ----

    def delete_asset(self, id: str) -> None:
        """Delete one asset and its files; MetadataNotFoundError when it does not exist."""
        out = self.delete_assets([id])
        if out["missing"]:
            raise MetadataNotFoundError(f"no {self.asset_type} with id {id!r}", status_code=404, code="not_found")

    def delete_assets(self, ids: list[str]) -> dict[str, Any]:
        """Delete assets and their files: ``{"deleted": n, "missing": [ids]}``. SetsError (locked) when one is in
        a locked set: nothing of that request is deleted."""
        deleted, missing = 0, []
        for start in range(0, len(ids), DELETE_CHUNK):
            chunk = list(ids[start : start + DELETE_CHUNK])
            out = self._client._request("POST", self._path("delete"), json={"ids": chunk}, error=AssetError)
            deleted += int(out["deleted"])
            missing.extend(out["missing"])
        return {"deleted": deleted, "missing": missing}

    def __repr__(self) -> str:
        return f"AssetManagerClient({self.asset_type!r})"
