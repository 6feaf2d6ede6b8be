"""Image ingestion, thumbnails and image-property jobs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tqdm.auto import tqdm

from scenebase.clients.core import ClientCore
from scenebase.clients.encoding import encode_json, iso_utc
from scenebase.domain.ids import standardize_id
from scenebase.errors import AssetError, InvalidArgumentsError, InvalidTimeError, JobError, SceneBaseError
from scenebase.models.assets import Image

log = logging.getLogger("scenebase.client")

#: images per upload request (the seed uploads in chunks of 100)
CHUNK = 100
#: upload requests in flight at once
PARALLEL_UPLOADS = 4
_MAGIC = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"))
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def _wire_time(ts: datetime | str | None, position: int) -> str | None:
    """The image's timestamp as the client's encoder writes times (a naive datetime is refused, by image)."""
    if not isinstance(ts, datetime):
        return ts
    try:
        return iso_utc(ts)
    except InvalidTimeError as e:
        raise InvalidTimeError(f"image #{position}: timestamp: {e.message}") from None


def _set_list(set_id: str | Sequence[str] | None) -> list[str]:
    if set_id is None:
        return []
    return [set_id] if isinstance(set_id, str) else list(set_id)


def _looks_like_image(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return any(head.startswith(m) for m, _ in _MAGIC) or path.suffix.lower() in IMAGE_EXTENSIONS


class ImagesMixin(ClientCore):
    #: per-item errors of the last bulk ingestion: ``[{"name", "error", "code", ...}]``
    last_errors: list[dict[str, Any]]

    # ------------------------------------------------------------------ building upload items

    def _item(self, img: Image, preprocesses: list[str] | None, position: int) -> tuple[dict[str, Any], Any]:
        sources = img.sources()
        if len(sources) != 1:
            if not sources:
                raise InvalidArgumentsError(
                    f"image #{position}: give one of image_path, image_url, image_uri or image_bytes"
                )
            raise InvalidArgumentsError(f"image #{position}: give only one of {sources}")
        if img.annotations:
            raise NotImplementedError("annotations at image ingestion are not built yet; add images without them")
        meta: dict[str, Any] = {
            "id": img.id,
            "sensor": img.sensor,
            "timestamp": _wire_time(img.timestamp, position),
            "session_uid": img.session_uid,
            "aux": img.aux_metadata,
            "tags": img.tags,
            "preprocesses": img.preprocesses if img.preprocesses is not None else preprocesses,
            "sets": _set_list(img.set_id) or None,
            **img.extra,
        }
        meta = {k: v for k, v in meta.items() if v is not None}
        item: dict[str, Any] = {"metadata": meta}
        file_part: Path | bytes | None = None
        if img.image_path is not None:
            path = Path(img.image_path)
            item["name"] = path.name
            item["path"] = str(path)
            file_part = path
        elif img.image_bytes is not None:
            item["name"] = img.id or f"image #{position}"
            file_part = bytes(img.image_bytes)
        elif img.image_url is not None:
            item["url"] = img.image_url
        else:
            item["uri"] = img.image_uri
        return item, file_part

    def _upload(
        self,
        batch: list[tuple[dict[str, Any], Any]],
        set_ids: list[str],
        overwrite: bool,
        thumbnail_presets: list[str] | None,
    ) -> dict[str, Any]:
        manifest_items = []
        files: list[tuple[str, tuple[str | None, Any, str]]] = []
        local_errors: list[dict[str, Any]] = []
        for n, (item, part) in enumerate(batch):
            entry = {k: v for k, v in item.items() if k != "path"}
            if isinstance(part, Path):
                try:
                    part = part.read_bytes()
                except OSError as e:
                    local_errors.append({"index": n, "name": item.get("name"), "error": f"cannot read file: {e}"})
                    part = b""
            if part is not None:
                entry["file"] = f"f{n}"
                files.append((f"f{n}", (entry.get("name") or f"f{n}", part, "application/octet-stream")))
            manifest_items.append(entry)
        manifest = {
            "items": manifest_items,
            "set_ids": set_ids,
            "overwrite": overwrite,
            "thumbnailize_at_ingest": bool(thumbnail_presets),
            "thumbnail_presets": thumbnail_presets or [],
        }
        files.insert(0, ("manifest", (None, encode_json(manifest), "application/json")))
        try:
            body = dict(self._request("POST", "/v1/images/add/", files=files, error=AssetError))
        except SceneBaseError as e:
            details = e.details if isinstance(e.details, list) else None
            if e.status_code and 400 <= e.status_code < 500 and details:
                body = {"ids": [None] * len(batch), "errors": details, "job_id": None}
            else:
                raise
        if local_errors:  # an unreadable file went up empty: report why it could not be read, not "empty file"
            unreadable = {e["index"]: e for e in local_errors}
            body["errors"] = [
                {**err, **unreadable[err.get("index")], "code": "unreadable_file", "status": None}
                if err.get("index") in unreadable
                else err
                for err in body.get("errors") or []
            ]
        return body

    def _ingest(
        self,
        images: list[Image],
        set_id: str | Sequence[str] | None,
        preprocesses: list[str] | None,
        overwrite: bool,
        thumbnail_presets: list[str] | None,
        progress: bool | None,
    ) -> tuple[list[str | None], list[dict[str, Any]], list[str]]:
        items = [self._item(img, preprocesses, i) for i, img in enumerate(images)]
        chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
        ids: list[str | None] = [None] * len(items)
        errors: list[dict[str, Any]] = []
        jobs: list[str] = []
        sets = _set_list(set_id)
        bar = tqdm(
            total=len(items), desc="uploading images", unit="img", disable=None if progress is None else not progress
        )

        def run(k: int) -> tuple[int, dict[str, Any]]:
            return k, self._upload(chunks[k], sets, overwrite, thumbnail_presets)

        try:
            workers = max(1, min(PARALLEL_UPLOADS, self.num_threads, len(chunks)))
            with ThreadPoolExecutor(workers) as pool:
                for k, body in pool.map(run, range(len(chunks))):
                    offset = k * CHUNK
                    for j, image_id in enumerate(body.get("ids") or []):
                        ids[offset + j] = image_id
                    for err in body.get("errors") or []:
                        errors.append({**err, "index": offset + int(err.get("index", 0))})
                    if body.get("job_id"):
                        jobs.append(body["job_id"])
                    bar.update(len(chunks[k]))
        finally:
            bar.close()
        return ids, errors, jobs

    # ------------------------------------------------------------------ seed methods

    def add_image(
        self,
        image_path: str | None = None,
        id: str | None = None,
        image_url: str | None = None,
        image_uri: str | None = None,
        image_bytes: bytes | None = None,
        sensor: str | None = None,
        timestamp: datetime | str | None = None,
        session_uid: str | None = None,
        set_id: str | list[str] | None = None,
        annotations: list[Any] | None = None,
        preprocesses: list[str] | None = None,
        aux_metadata: dict[str, Any] | None = None,
        geo_field: str | None = None,
        shape_group_field: str | None = None,
        nested_fields: list[str] | None = None,
        enrichments: list[Any] | None = None,
        add_to_session: bool = False,
        thumbnailize_at_ingest: bool = False,
        buffered_write: bool = False,
        add_provider_to_labels: bool = True,
        overwrite: bool = True,
        add_to_cache: bool = False,
    ) -> str:
        """Upload (path, bytes) or reference (url, uri) one image; returns its id. Width, height and format are
        read by the server. With ``overwrite=False`` an existing image only gains sets/aux/preprocesses."""
        if add_to_session and session_uid:
            raise NotImplementedError("add_to_session needs sessions, which are not built yet")
        img = Image(id=id, image_path=image_path, image_url=image_url, image_uri=image_uri, image_bytes=image_bytes,
                    sensor=sensor, timestamp=timestamp, session_uid=session_uid, annotations=annotations,
                    preprocesses=preprocesses, aux_metadata=aux_metadata)  # fmt: skip
        presets = ["small", "tiny", "full_size_png"] if thumbnailize_at_ingest else None
        ids, errors, jobs = self._ingest([img], set_id, None, overwrite, presets, progress=False)
        if errors:
            err = errors[0]
            raise AssetError(f"{err.get('name')}: {err.get('error')}", status_code=err.get("status"),
                             code=err.get("code"), details=errors)  # fmt: skip
        for job_id in jobs:
            self._job(job_id).wait(show_progress=False)
        return str(ids[0])

    def add_images(
        self,
        images: list[Image],
        set_id: str | list[str],
        geo_field: str | None = None,
        shape_group_field: str | None = None,
        nested_fields: list[str] | None = None,
        preprocesses: list[str] | None = None,
        enrichments: list[Any] | None = None,
        add_to_session: bool = False,
        thumbnailize_at_ingest: bool = False,
        add_provider_to_labels: bool = True,
        add_to_cache: bool = False,
    ) -> list[str]:
        """Upload many images (100 per request, 4 requests in flight) into ``set_id`` (image sets).

        Returns the ids of the images ingested, in input order. Images the server refused (corrupt, unsupported,
        unreadable) are skipped, logged at WARNING with their names, and listed in ``client.last_errors``.
        """
        if add_to_session:
            raise NotImplementedError("add_to_session needs sessions, which are not built yet")
        if not images:
            self.last_errors = []
            return []
        presets = ["small"] if thumbnailize_at_ingest else None
        ids, errors, jobs = self._ingest(list(images), set_id, preprocesses, True, presets, progress=None)
        self.last_errors = errors
        for err in errors:
            log.warning("image %s not ingested: %s", err.get("name"), err.get("error"))
        for job_id in jobs:
            self._job(job_id).wait()
        return [i for i in ids if i is not None]

    def add_images_from_folder(
        self,
        folder_path: str,
        set_id: str,
        session_uid: str | None = None,
        filename_image_id_map: dict[str, str] | None = None,
        preprocesses: list[str] | None = None,
        thumbnailize_at_ingest: bool = False,
    ) -> None:
        """Upload every JPEG/PNG/TIFF file of ``folder_path`` (by content or extension) into ``set_id``.
        Files the server refuses are logged and listed in ``client.last_errors``; the rest are ingested."""
        folder = Path(folder_path)
        if not folder.is_dir():
            raise InvalidArgumentsError(f"{folder_path!r} is not a folder")
        names = sorted(n for n in os.listdir(folder) if (folder / n).is_file() and _looks_like_image(folder / n))
        if not names:
            raise InvalidArgumentsError(f"{folder_path!r} holds no JPEG, PNG or TIFF files")
        mapping = filename_image_id_map or {}
        images = [
            Image(id=mapping.get(n), image_path=str(folder / n), session_uid=session_uid, preprocesses=preprocesses)
            for n in names
        ]
        self.add_images(images, set_id, thumbnailize_at_ingest=thumbnailize_at_ingest)

    def compress_images(
        self,
        ids: list[str],
        desired_shape: Sequence[int] | None = None,
        thumbnail_tag: str | None = None,
        use_preset: str | None = None,
    ) -> str:
        """Start a job that makes thumbnails: a preset (tiny, small, full_size_png) or ``desired_shape`` (h, w)
        stored under ``thumbnail_tag``. Returns the job id."""
        if not ids:
            raise InvalidArgumentsError("ids must not be empty")
        if use_preset is None and (desired_shape is None or thumbnail_tag is None):
            raise InvalidArgumentsError("give use_preset, or desired_shape and thumbnail_tag")
        body = {"ids": list(ids), "desired_shape": list(desired_shape) if desired_shape else None,
                "thumbnail_tag": thumbnail_tag, "use_preset": use_preset}  # fmt: skip
        return str(self._request("POST", "/v1/images/compress_images/", json=body, error=AssetError)["job_id"])

    def image_properties_enrichment(
        self,
        asset_type: str = "images",
        properties: list[str] | None = None,
        ids: list[str] | None = None,
        search: dict[str, Any] | None = None,
        wait_for_completion: bool = False,
        progress_callback: Callable[..., Any] | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> str:
        """Compute mean_brightness, rms_contrast and variance_of_laplacian into ``aux`` (a job; returns its id)."""
        if ids is None and search is None:
            raise InvalidArgumentsError("give ids or a search")
        body = {"asset_type": asset_type, "properties": properties, "ids": ids, "search": search,
                "additional_params": additional_params}  # fmt: skip
        job_id = str(
            self._request("POST", "/v1/images/image_properties_enrichment/", json=body, error=JobError)["job_id"]
        )
        if wait_for_completion:
            self._job(job_id).wait(progress_callback=progress_callback)
        return job_id

    def get_image_bytes(self, image_id: str, thumbnail_tag: str | None = None) -> bytes:
        """The original image (or a thumbnail: tiny, small, full_size_png, or a custom tag). Not in the seed.
        Cached in ``kv_store`` when the client has one."""
        # standardized (FACTS 1.1) and quoted: a raw id may hold "/", "?" or "#", which would break the path
        image_id = quote(standardize_id(image_id), safe="")
        path = (
            f"/v1/images/{image_id}/file"
            if thumbnail_tag is None
            else f"/v1/images/{image_id}/thumbnail/{quote(thumbnail_tag, safe='')}"
        )
        key = f"{self.scene_engine_url}{path}"
        if self.kv_store is not None:
            hit = self.kv_store.get(key)
            if hit is not None:
                return hit
        self._server_status()
        data = self._http.request("GET", path, error=AssetError).content
        if self.kv_store is not None:
            self.kv_store.set(key, data)
        return data
