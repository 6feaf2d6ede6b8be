"""Image ingestion, thumbnails and image-property jobs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from scenebase.clients.annotations import AnnotationsMixin
from scenebase.clients.upload import UploadItem
from scenebase.domain.ids import standardize_id
from scenebase.errors import AssetError, InvalidArgumentsError, JobError, SessionError
from scenebase.models.assets import Image

log = logging.getLogger("scenebase.client")

_MAGIC = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"))
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def _set_list(set_id: str | Sequence[str] | None) -> list[str]:
    if set_id is None:
        return []
    return [set_id] if isinstance(set_id, str) else list(set_id)


def _folder_images(folder: Path, recursive: bool) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of the JPEG/PNG/TIFF files of ``folder``, sorted by relative path; with
    ``recursive`` also those of its subfolders, except hidden ones (``.git``, ``.cache``, ...). Symlinked files are
    included, symlinked folders are not followed (no loops). A folder that cannot be listed is an error."""
    if not recursive:
        names = sorted(n for n in os.listdir(folder) if (folder / n).is_file() and _looks_like_image(folder / n))
        return [(n, folder / n) for n in names]

    def unreadable(error: OSError) -> None:
        raise InvalidArgumentsError(f"cannot list {error.filename!r}: {error.strerror or error}")

    found = []
    for root, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(root) / name
            if path.is_file() and _looks_like_image(path):
                found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def _looks_like_image(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return any(head.startswith(m) for m, _ in _MAGIC) or path.suffix.lower() in IMAGE_EXTENSIONS


class ImagesMixin(AnnotationsMixin):
    def _image_items(
        self, images: Sequence[Image], preprocesses: list[str] | None, relative_paths: Sequence[str] | None = None
    ) -> list[UploadItem]:
        items = []
        for n, img in enumerate(images):
            meta = img.metadata()
            pre = img.preprocesses if img.preprocesses is not None else preprocesses
            if pre is not None:
                meta["preprocesses"] = pre
            item = UploadItem.of(img, meta)
            if relative_paths is not None:
                item.relative_path = relative_paths[n]
            items.append(item)
        return items

    def _ingest(
        self,
        images: Sequence[Image],
        set_id: str | Sequence[str] | None,
        preprocesses: list[str] | None,
        overwrite: bool,
        thumbnail_presets: list[str] | None,
        progress: bool | None,
        add_provider_to_labels: bool = True,
        relative_paths: Sequence[str] | None = None,
    ) -> tuple[list[str | None], list[dict[str, Any]], list[str]]:
        items = self._image_items(images, preprocesses, relative_paths)
        options = {"thumbnailize_at_ingest": bool(thumbnail_presets), "thumbnail_presets": thumbnail_presets or []}
        out = self._upload_media("images", items, _set_list(set_id), overwrite, options, progress)
        errors = out.errors + self._annotate_media(images, out.ids, add_provider_to_labels, progress)
        return out.ids, sorted(errors, key=lambda e: e["index"]), out.job_ids

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
        img = Image(id=id, path=image_path, url=image_url, uri=image_uri, bytes=image_bytes, sensor=sensor,
                    timestamp=timestamp, session_uid=session_uid, annotations=annotations, preprocesses=preprocesses,
                    aux_metadata=aux_metadata)  # fmt: skip
        presets = ["small", "tiny", "full_size_png"] if thumbnailize_at_ingest else None
        ids, errors, jobs = self._ingest([img], set_id, None, overwrite, presets, False, add_provider_to_labels)
        if errors:
            raise self._single_error(errors)
        for job_id in jobs:
            self._job(job_id).wait(show_progress=False)
        if add_to_session and img.session_uid:
            self._images_on_timeline([img], ids)
        return str(ids[0])

    def _images_on_timeline(self, images: Sequence[Image], ids: Sequence[str | None]) -> None:
        """Media entities (name ``image``, influence interval) for the ingested images that name a session."""
        entities = [
            {"session": img.session_uid, "entity_id": image_id, "entity_name": "image", "entity_type": "media",
             "entity_value": image_id, "influence": "interval", "timestamp": img.timestamp}
            for img, image_id in zip(images, ids, strict=True)
            if image_id is not None and img.session_uid
        ]  # fmt: skip
        if entities:
            out = self.add_entities(entities)  # type: ignore[attr-defined]
            if out["rejected"]:
                raise SessionError(f"images ingested, but not put on their session: {out['rejected'][0]['error']}",
                                   details=out["rejected"])  # fmt: skip

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
        unreadable) are skipped, logged at WARNING with their names, and listed in ``client.last_errors``. Images
        whose bytes the organization already had under another id are ingested, logged at WARNING and listed in
        ``client.last_duplicates`` (their ``content_hash`` finds every copy). Each image's ``annotations`` are
        added after it, linked to it (labels ``<label>_<provider>``, or bare labels with
        ``add_provider_to_labels=False``); refused annotations are listed in ``client.last_errors`` too.
        """
        return self._add_images(
            images, set_id, preprocesses, add_to_session, thumbnailize_at_ingest, add_provider_to_labels
        )

    def _add_images(
        self,
        images: Sequence[Image],
        set_id: str | list[str],
        preprocesses: list[str] | None,
        add_to_session: bool,
        thumbnailize_at_ingest: bool,
        add_provider_to_labels: bool = True,
        relative_paths: Sequence[str] | None = None,
    ) -> list[str]:
        if not images:
            self.last_errors = []
            self.last_duplicates = []
            return []
        presets = ["small"] if thumbnailize_at_ingest else None
        ids, errors, jobs = self._ingest(
            images, set_id, preprocesses, True, presets, None, add_provider_to_labels, relative_paths
        )
        self._report(errors, "image")
        for job_id in jobs:
            self._job(job_id).wait()
        if add_to_session:
            self._images_on_timeline(images, ids)
        return [i for i in ids if i is not None]

    def add_images_from_folder(
        self,
        folder_path: str,
        set_id: str,
        session_uid: str | None = None,
        filename_image_id_map: dict[str, str] | None = None,
        preprocesses: list[str] | None = None,
        thumbnailize_at_ingest: bool = False,
        *,
        recursive: bool = False,
        id_from_relative_path: bool = False,
        sensor: str | None = None,
        aux_metadata: dict[str, Any] | None = None,
        timestamp: datetime | str | Callable[[str], datetime | str | None] | None = None,
    ) -> None:
        """Upload every JPEG/PNG/TIFF file of ``folder_path`` (by content or extension) into ``set_id``.
        Files the server refuses are logged and listed in ``client.last_errors``; the rest are ingested. Files
        whose content the organization already had are ingested and listed in ``client.last_duplicates``.

        Beyond the seed (keyword-only, defaults keep the seed's behaviour):

        * ``recursive``: also the files of subfolders (hidden ones such as ``.git`` are skipped);
        * ``id_from_relative_path``: a file's id is its path inside the folder, standardized
          (``cam0/0001.jpg`` -> ``cam0_0001.jpg``), unless ``filename_image_id_map`` names it. The map's keys are
          relative paths (``cam0/0001.jpg``) or bare file names (``0001.jpg``);
        * ``sensor``, ``aux_metadata``, ``timestamp``: set on every image; ``timestamp`` may also be a function of
          the relative path (e.g. parsing a frame's time from its name).

        Every image keeps its path inside the folder as ``object_access.relative_path``, and a zip of the set
        names its file so (``assets/cam0/0001.jpg``). Two files that would get the same id raise
        InvalidArgumentsError naming both, before anything is uploaded.
        """
        folder = Path(folder_path)
        if not folder.is_dir():
            raise InvalidArgumentsError(f"{folder_path!r} is not a folder")
        files = _folder_images(folder, recursive)
        if not files:
            where = " or its subfolders" if recursive else ""
            raise InvalidArgumentsError(f"{folder_path!r}{where} holds no JPEG, PNG or TIFF files")
        mapping = filename_image_id_map or {}
        images: list[Image] = []
        owners: dict[str, str] = {}  # standardized id -> the file that has it
        for relative, path in files:
            image_id = mapping.get(relative, mapping.get(path.name))
            if image_id is None and id_from_relative_path:
                image_id = relative
            if image_id is not None:
                key = standardize_id(image_id)
                if key in owners:
                    raise InvalidArgumentsError(f"{owners[key]!r} and {relative!r} would both get the id {key!r}")
                owners[key] = relative
            try:
                when = timestamp(relative) if callable(timestamp) else timestamp
            except Exception as e:  # the caller's function: name the file it failed on
                raise InvalidArgumentsError(f"timestamp({relative!r}) failed: {e}") from e
            images.append(Image(id=image_id, path=path, session_uid=session_uid, preprocesses=preprocesses,
                                sensor=sensor, timestamp=when,
                                aux_metadata=dict(aux_metadata) if aux_metadata is not None else None))  # fmt: skip
        self._add_images(images, set_id, None, False, thumbnailize_at_ingest, relative_paths=[r for r, _ in files])

    def compress_images(
        self,
        ids: list[str],
        desired_shape: Sequence[int] | None = None,
        thumbnail_tag: str | None = None,
        use_preset: str | None = None,
    ) -> str:
        """Start a job that makes thumbnails: a preset (tiny, small, full_size_png) or ``desired_shape`` (h, w)
        stored under ``thumbnail_tag``. Returns the job id; waiting for it (``get_job(job_id).wait()``) warns
        about images it could not thumbnail (unknown ids, unreadable files), named in ``job.errors()``."""
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
        """Compute mean_brightness, rms_contrast and variance_of_laplacian into ``aux`` (a job; returns its id).
        With ``wait_for_completion``, images it could not process are logged at WARNING and listed in
        ``client.last_errors`` (or raise ``JobError`` with ``client.raise_on_partial_jobs``)."""
        if ids is None and search is None:
            raise InvalidArgumentsError("give ids or a search")
        body = {"asset_type": asset_type, "properties": properties, "ids": ids, "search": search,
                "additional_params": additional_params}  # fmt: skip
        job_id = str(
            self._request("POST", "/v1/images/image_properties_enrichment/", json=body, error=JobError)["job_id"]
        )
        self._wait(job_id, wait_for_completion, progress_callback=progress_callback)
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
