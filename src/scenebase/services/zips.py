"""Zipping a set (FACTS 5.7): ``manifest.json``, ``<set>/assets/`` (the originals of media kinds),
``<set>/metadata/`` and ``<set>/annotations/`` (each annotation's JSON, its masks under
``masks/<annotation>/<mask>.png``, and for image sets ``coco.json`` built from all of them), in a job that reads the
members in batches.

The manifest and the zip always agree: a member whose file cannot be read is listed under ``missing_files`` with
the reason, its entry has no ``file``, and the job's result names it (the client warns about it).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, ClassVar

from scenebase.constants import SetStatus
from scenebase.domain.ids import new_id
from scenebase.domain.timeutil import now_iso
from scenebase.media.coco_export import CocoBuilder
from scenebase.services.annotation_export import AnnotationExport
from scenebase.services.assets import AssetService
from scenebase.services.errors import ServiceError
from scenebase.services.jobs import JobContext, JobRegistry, JobService
from scenebase.services.kinds import KindRegistry
from scenebase.services.media import MediaService
from scenebase.services.sets import KIND, SetService
from scenebase.storage.blobs import BlobStore
from scenebase.storage.scope import Scope

#: members read per catalog query while zipping
ZIP_BATCH = 500
#: extensions whose content is compressed already: stored as they are
_STORED = frozenset({"jpg", "jpeg", "mp4", "webm", "mov", "mkv", "avi", "gz", "npz", "zip", "mcap"})
#: a member file is copied into the zip in pieces of this size (``ZipFile.write`` copies 8 KiB at a time, each
#: piece a Python-level CRC, compress and write call: a third of the zip job for 2,000 camera JPEGs)
COPY_PIECE_BYTES = 1024 * 1024


#: how the asset files inside a zip are named (also written into the manifest)
NAMING = (
    "assets/<relative path> for files ingested from a folder (their path inside that folder), assets/<id>.<ext> "
    "for the others (no second extension when the id ends with it); a name already taken in this zip (compared "
    "case-insensitively) gets the id-based name instead, then ~2, ~3, ... before the extension"
)


def safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_. " else "_" for c in name).strip(" .")
    return cleaned or "set"


class MemberNames:
    """Unique file names under ``assets/`` of one zip (see :data:`NAMING`). A name is taken when it, or a folder of
    that name, is already in the zip, or when one of its folders is a file there (extraction would clash)."""

    def __init__(self) -> None:
        self._files: set[str] = set()
        self._folders: set[str] = set()

    def _free(self, name: str) -> bool:
        key = name.casefold()
        parents = key.split("/")[:-1]
        prefixes = {"/".join(parents[: n + 1]) for n in range(len(parents))}
        return key not in self._files and key not in self._folders and not prefixes & self._files

    def _take(self, name: str) -> str:
        key = name.casefold()
        self._files.add(key)
        parts = key.split("/")[:-1]
        self._folders.update("/".join(parts[: n + 1]) for n in range(len(parts)))
        return name

    def name(self, relative_path: str | None, by_id: str) -> str:
        for candidate in (relative_path, by_id):
            if candidate and self._free(candidate):
                return self._take(candidate)
        stem, dot, ext = by_id.rpartition(".")
        stem, ext = (stem, f".{ext}") if dot else (by_id, "")
        n = 2
        while not self._free(f"{stem}~{n}{ext}"):
            n += 1
        return self._take(f"{stem}~{n}{ext}")


class ZipService:
    JOB_TYPES: ClassVar[tuple[str, ...]] = ("zipping",)

    def __init__(
        self,
        assets: AssetService,
        sets: SetService,
        media: MediaService,
        kinds: KindRegistry,
        blobs: BlobStore,
        jobs: JobService,
        exports: AnnotationExport | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        """``tmp_dir``: where a zip is written before it goes into the blob store; on the folder store's
        filesystem (the data folder's ``tmp``) the finished zip is moved in, not copied (default: the system's
        temporary folder)."""
        self.assets = assets
        self.sets = sets
        self.media = media
        self.kinds = kinds
        self.blobs = blobs
        self.jobs = jobs
        self.exports = exports
        self.tmp_dir = tmp_dir

    def register_jobs(self, registry: JobRegistry) -> None:
        registry.register("zipping", self._zip_job)

    def zip(self, scope: Scope, set_id: str) -> tuple[str, str]:
        doc = self.sets.get(scope, set_id)
        self.sets.refuse_if_deleting(doc, "zip it")
        zip_id = new_id()
        row = self.jobs.submit(
            scope, "zipping", {"set_id": doc["id"], "set_owner": doc["owner"], "zip_id": zip_id},
            description=f"zip set {doc['name']}", asset_type=KIND, asset_id=doc["id"],
        )  # fmt: skip
        return str(row["id"]), zip_id

    def _zip_job(self, ctx: JobContext) -> dict[str, Any]:
        owner_scope = Scope.of(ctx.params["set_owner"], username=ctx.scope.username)
        doc = self.sets.get(owner_scope, ctx.params["set_id"])
        if doc["owner"] != ctx.scope.org_id:  # a shared set's status belongs to its owner: leave it alone
            return self._zip(ctx, owner_scope, doc)
        with self.sets.status_while(ctx, doc, SetStatus.BEING_ZIPPED):
            return self._zip(ctx, owner_scope, doc)

    def _zip(self, ctx: JobContext, owner_scope: Scope, doc: dict[str, Any]) -> dict[str, Any]:
        folder = safe_name(doc["name"])
        asset_type = doc["assets_type"]
        kind = self.kinds.get(asset_type) if asset_type in self.kinds else None
        member_filter = {"filters": [{"field": "sets", "values": [doc["id"]]}]}
        total = self.assets.count(owner_scope, asset_type, member_filter)
        ctx.stage(f"zipping {total} assets")
        entries: list[dict[str, Any]] = []
        missing: list[dict[str, str]] = []
        names = MemberNames()
        coco: CocoBuilder | None = None
        if self.tmp_dir is not None:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="scenebase-zip-", dir=self.tmp_dir) as tmp:  # named for the sweeper
            path = Path(tmp) / "set.zip"
            with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
                for batch in self.assets.scan(owner_scope, asset_type, member_filter, ids_only=False):
                    annotation_ids = sorted(
                        {a for m in batch for a in (m.get("annotations") or []) if isinstance(a, str)}
                    )
                    annotations = (
                        self.assets.get_many(owner_scope, "annotations", annotation_ids) if annotation_ids else {}
                    )
                    if asset_type == "images" and self.exports is not None and coco is None:
                        coco = self.exports.builder(owner_scope, annotations.values())
                    for member in batch:
                        ctx.check_cancelled()
                        entry: dict[str, Any] = {
                            "id": member["id"],
                            "metadata": f"{folder}/metadata/{member['id']}.json",
                        }
                        if kind is not None:
                            relative = (member.get("object_access") or {}).get("relative_path")
                            name = f"{folder}/assets/{names.name(relative, kind.zip_member_name(member))}"
                            try:
                                with self.media.open_original(asset_type, member) as media, media.local_path() as src:
                                    ext = name.rsplit(".", 1)[-1].lower()
                                    compress = zipfile.ZIP_STORED if ext in _STORED else zipfile.ZIP_DEFLATED
                                    _write_member(zf, src, name, compress)
                                entry["file"] = name
                            except ServiceError as e:
                                missing.append({"id": member["id"], "error": e.message})
                                ctx.item_failed(member["id"], f"file not included: {e.message}")
                        zf.writestr(entry["metadata"], json.dumps(member, indent=1, default=str), zipfile.ZIP_DEFLATED)
                        for ann_id in member.get("annotations") or []:
                            if ann_id in annotations:
                                arc = f"{folder}/annotations/{ann_id}.json"
                                zf.writestr(arc, json.dumps(annotations[ann_id], default=str))
                                self._write_masks(zf, f"{folder}/annotations/masks/{ann_id}", annotations[ann_id])
                        if coco is not None and self.exports is not None:
                            anns = [annotations[a] for a in member.get("annotations") or [] if a in annotations]
                            coco.add_image(member, anns, self.exports.read_mask)
                        entries.append(entry)
                        ctx.progress(95.0 * len(entries) / max(1, total))
                if coco is not None and coco.annotations:  # a set without annotations gets no annotations folder
                    zf.writestr(f"{folder}/annotations/coco.json", json.dumps(coco.build()), zipfile.ZIP_DEFLATED)
                manifest = {"set_id": doc["id"], "name": doc["name"], "assets_type": asset_type,
                            "count": len(entries), "files": sum(1 for e in entries if "file" in e),
                            "missing_files": missing, "version": doc.get("version"), "created_at": now_iso(),
                            "naming": NAMING, "assets": entries}  # fmt: skip
                zf.writestr("manifest.json", json.dumps(manifest, indent=1))
            key = f"zipfiles/{ctx.params['zip_id']}.zip"
            size = path.stat().st_size
            self.blobs.put_file(key, path, "application/zip", move=True)
        zip_doc = {"id": ctx.params["zip_id"], "name": f"{folder}.zip", "set_id": doc["id"], "count": len(entries),
                   "size": size, "missing_files": missing,
                   "object_access": {"key": key, "filename": f"{folder}.zip", "content_type": "application/zip"},
                   "timestamp": time.time()}  # fmt: skip
        self.assets.put(ctx.scope, "zipfiles", [zip_doc])
        if coco is not None and coco.annotations:
            ctx.note("annotations/coco.json holds the set's annotations in COCO form")
        result: dict[str, Any] = {"zip_id": ctx.params["zip_id"], "count": len(entries), "size": size}
        if missing:  # the job ends partial (services/job_context.py): the client warns, naming these
            result["failed"] = [m["id"] for m in missing]
            result["missing_files"] = missing
        return result

    def _write_masks(self, zf: zipfile.ZipFile, folder: str, annotation: dict[str, Any]) -> None:
        if self.exports is None:
            return
        for mask_id in annotation.get("masks") or {}:
            data = self.exports.read_mask(annotation, mask_id)
            if data is not None:
                zf.writestr(f"{folder}/{mask_id}.png", data, zipfile.ZIP_STORED)


def _write_member(zf: zipfile.ZipFile, src: Path, name: str, compress_type: int) -> None:
    """``zf.write(src, name, compress_type)`` in pieces of ``COPY_PIECE_BYTES`` (the same member: name, time and
    mode from the file, ZIP64 when it is large)."""
    info = zipfile.ZipInfo.from_file(src, name)
    info.compress_type = compress_type
    with src.open("rb") as fh, zf.open(info, "w") as out:
        shutil.copyfileobj(fh, out, COPY_PIECE_BYTES)
