"""LIDAR ingestion (PCD, numpy, binary, KITTI) and decimated renditions (compress_lidars)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from scenebase.clients.upload import UploadItem, UploadMixin
from scenebase.domain.ids import standardize_id
from scenebase.errors import AssetError, InvalidArgumentsError
from scenebase.models.assets import Lidar

log = logging.getLogger("scenebase.client")

_NO_SESSIONS = "add_to_session needs sessions (the sessions issue), which are not built yet"


def _set_list(set_id: str | Sequence[str] | None) -> list[str]:
    if set_id is None:
        return []
    return [set_id] if isinstance(set_id, str) else list(set_id)


class LidarsMixin(UploadMixin):
    #: ids of the compression jobs the last add_lidar/add_lidars started (one per upload request); follow them
    #: with ``get_job(job_id).wait()`` when the renditions are needed at once
    last_job_ids: list[str]

    def _ingest_lidars(
        self, lidars: Sequence[Lidar], set_id: str | Sequence[str] | None, progress: bool | None
    ) -> tuple[list[str | None], list[dict[str, Any]]]:
        items = [UploadItem.of(lidar) for lidar in lidars]
        out = self._upload_media("lidars", items, _set_list(set_id), True, None, progress)
        self.last_job_ids = out.job_ids
        return out.ids, out.errors

    # ------------------------------------------------------------------ seed methods

    def add_lidar(
        self,
        set_id: str | list[str],
        lidar_path: str | None = None,
        lidar_url: str | None = None,
        lidar_uri: str | None = None,
        lidar_bytes: bytes | None = None,
        sensor: str | None = None,
        timestamp: datetime | str | None = None,
        session_uid: str | None = None,
        id: str | None = None,
        format: str = "pcd",
        binary_format: str | None = None,
        num_fields: int | None = None,
        enrichments: list[Any] | None = None,
        buffered_write: bool = False,
        add_to_session: bool = False,
        add_to_cache: bool = False,
        aux_metadata: dict[str, Any] | None = None,
    ) -> str:
        """Upload (path, bytes) or reference (url, uri) one point cloud into ``set_id``; returns its id.

        ``format``: pcd (default), numpy (``num_fields`` float32 values per point, or a .npy file), binary
        (``binary_format``, a struct format of one point: x, y, z, intensity, epoch) or kitti. The server reads the
        point count, fields, bounds and intensity range, and starts the compression job (renditions skip_1,
        skip_10, skip_100; its id is in ``client.last_job_ids``). A bad file raises AssetError naming it.
        ``related_images`` are set through ``add_lidars`` (``Lidar(related_images=...)``), as in the seed."""
        if add_to_session:
            raise NotImplementedError(_NO_SESSIONS)
        lidar = Lidar(id=id, path=lidar_path, url=lidar_url, uri=lidar_uri, bytes=lidar_bytes, sensor=sensor,
                      timestamp=timestamp, session_uid=session_uid, aux_metadata=aux_metadata, format=format,
                      binary_format=binary_format, num_fields=num_fields)  # fmt: skip
        ids, errors = self._ingest_lidars([lidar], set_id, progress=False)
        if errors:
            raise self._single_error(errors)
        return str(ids[0])

    def add_lidars(
        self,
        lidars: list[Lidar],
        set_id: str | list[str],
        enrichments: list[Any] | None = None,
        add_to_session: bool = False,
        add_to_cache: bool = False,
    ) -> list[str]:
        """Upload many point clouds (100 per request, 4 requests in flight) into ``set_id``; an existing id is
        overwritten. Returns the ids ingested, in input order; clouds the server refused are skipped, logged at
        WARNING with their names and listed in ``client.last_errors``. The compression jobs started are in
        ``client.last_job_ids`` (not waited for)."""
        if add_to_session:
            raise NotImplementedError(_NO_SESSIONS)
        if not lidars:
            self.last_errors, self.last_job_ids = [], []
            return []
        if not all(isinstance(x, Lidar) for x in lidars):
            raise InvalidArgumentsError("add_lidars takes scenebase.models.assets.Lidar objects")
        ids, errors = self._ingest_lidars(list(lidars), set_id, progress=None)
        self._report(errors, "LIDAR")
        return [i for i in ids if i is not None]

    def compress_lidars(
        self, ids: list[str], skip_factors: list[int] | None = None, gzip_compress: bool = True
    ) -> dict[str, Any]:
        """Start a ``lidar_compression`` job storing ``thumbnails.skip_<s>`` (every s-th finite point, default
        [1, 10, 100]) of each LIDAR. Returns the job document (``job_id``, ``status``, ...)."""
        if not ids:
            raise InvalidArgumentsError("ids must not be empty")
        body = {"ids": list(ids), "skip_factors": list(skip_factors) if skip_factors is not None else None,
                "gzip_compress": gzip_compress}  # fmt: skip
        return dict(self._request("POST", "/v1/lidars/compress_lidars/", json=body, error=AssetError))

    def get_lidar_bytes(self, lidar_id: str, thumbnail_tag: str | None = None) -> bytes:
        """The original point cloud, or a rendition (``skip_<s>``, inflated from gzip). Not in the seed."""
        lidar_id = quote(standardize_id(lidar_id), safe="")
        path = (
            f"/v1/lidars/{lidar_id}/file"
            if thumbnail_tag is None
            else f"/v1/lidars/{lidar_id}/thumbnail/{quote(thumbnail_tag, safe='')}"
        )
        return bytes(self._http.request("GET", path, error=AssetError).content)
