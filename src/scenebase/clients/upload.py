"""The client's one upload path for every media kind: batches of files (multipart, streamed from disk, never read
whole into memory), several requests in flight, a progress bar, and per-item errors collected in
``client.last_errors`` while the rest of the batch is ingested. Items whose content the organization already had
(under another id) are ingested too, logged at WARNING and listed in ``client.last_duplicates``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tqdm.auto import tqdm

from scenebase.clients.core import ClientCore
from scenebase.clients.encoding import encode_json
from scenebase.errors import AssetError, SceneBaseError
from scenebase.models.assets import MediaAsset

log = logging.getLogger("scenebase.client")

#: files per upload request (the seed uploads in chunks of 100)
CHUNK = 100
#: bytes per upload request; a larger file travels alone
CHUNK_BYTES = 64 * 1024 * 1024
#: upload requests in flight at once
PARALLEL_UPLOADS = 4


@dataclass
class UploadItem:
    """One file to upload (``path`` or ``data``) or reference (``url``/``uri``), with its metadata."""

    name: str
    metadata: dict[str, Any]
    path: Path | None = None
    data: bytes | None = None
    url: str | None = None
    uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the file's path inside an ingested folder (POSIX separators); the server keeps it and zips use it
    relative_path: str | None = None

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.path is not None:
            try:
                return self.path.stat().st_size
            except OSError:
                return 0
        return 0

    @classmethod
    def of(cls, asset: MediaAsset, metadata: dict[str, Any] | None = None) -> UploadItem:
        meta = metadata if metadata is not None else asset.metadata()
        if asset.path is not None:
            return cls(Path(asset.path).name, meta, path=Path(asset.path))
        if asset.bytes is not None:
            return cls(asset.label, meta, data=asset.bytes)
        return cls(asset.url or asset.uri or asset.label, meta, url=asset.url, uri=asset.uri)


@dataclass
class UploadResult:
    ids: list[str | None]
    errors: list[dict[str, Any]]
    job_ids: list[str]
    #: ingested items with a remark from the server (input indexes), e.g. ``code == "duplicate_content"``
    warnings: list[dict[str, Any]] = field(default_factory=list)


def _chunks(items: Sequence[UploadItem]) -> list[list[int]]:
    """Positions of the items grouped into requests of at most CHUNK files and CHUNK_BYTES bytes."""
    out: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, item in enumerate(items):
        n = item.size
        if current and (len(current) >= CHUNK or size + n > CHUNK_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(i)
        size += n
    if current:
        out.append(current)
    return out


class UploadMixin(ClientCore):
    #: per-item errors of the last bulk ingestion: ``[{"index", "name", "error", "code", "status"}]``
    last_errors: list[dict[str, Any]]
    #: items of the last upload that were ingested although the organization already had their content:
    #: ``[{"index", "name", "id", "code": "duplicate_content", "warning", "content_hash", "duplicate_of" (up to 10
    #: ids), "duplicates" (how many)}]``; search ``content_hash`` to find every copy
    last_duplicates: list[dict[str, Any]]

    def _upload_media(
        self,
        asset_type: str,
        items: Sequence[UploadItem],
        set_ids: list[str],
        overwrite: bool = True,
        options: dict[str, Any] | None = None,
        progress: bool | None = None,
    ) -> UploadResult:
        """Upload ``items`` of one media type. Returns ids in input order (None where an item failed), the
        per-item errors (input indexes) and the ids of follow-up jobs the server started."""
        chunks = _chunks(items)
        ids: list[str | None] = [None] * len(items)
        errors: list[dict[str, Any]] = []
        warnings: list[dict[str, Any]] = []
        jobs: list[str] = []
        bar = tqdm(total=len(items), desc=f"uploading {asset_type}", unit="file",
                   disable=None if progress is None else not progress)  # fmt: skip

        def run(k: int) -> tuple[int, dict[str, Any]]:
            return k, self._upload_request(asset_type, [items[i] for i in chunks[k]], set_ids, overwrite, options)

        try:
            workers = max(1, min(PARALLEL_UPLOADS, self.num_threads, len(chunks)))
            with ThreadPoolExecutor(workers) as pool:
                for k, body in pool.map(run, range(len(chunks))):
                    positions = chunks[k]
                    for j, item_id in enumerate(body.get("ids") or []):
                        ids[positions[j]] = item_id
                    for err in body.get("errors") or []:
                        errors.append({**err, "index": positions[int(err.get("index", 0))]})
                    for warning in body.get("warnings") or []:
                        warnings.append({**warning, "index": positions[int(warning.get("index", 0))]})
                    jobs.extend(body.get("job_ids") or ([body["job_id"]] if body.get("job_id") else []))
                    bar.update(len(positions))
        finally:
            bar.close()
        # an item from a folder is named by its path there (two cameras' 0001.jpg are different files)
        errors = [_named(e, items) for e in sorted(errors, key=lambda e: e["index"])]
        warnings = [_named(w, items) for w in sorted(warnings, key=lambda w: w["index"])]
        self.last_duplicates = [w for w in warnings if w.get("code") == "duplicate_content"]
        for dup in self.last_duplicates:
            log.warning("%s %s ingested as %s: %s (%s)", asset_type, dup.get("name"), dup.get("id"),
                        dup.get("warning"), dup.get("content_hash"))  # fmt: skip
        return UploadResult(ids, errors, jobs, warnings)

    def _upload_request(
        self,
        asset_type: str,
        batch: list[UploadItem],
        set_ids: list[str],
        overwrite: bool,
        options: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """One multipart request. Local files that cannot be opened are reported without being sent."""
        local_errors: dict[int, dict[str, Any]] = {}
        with contextlib.ExitStack() as stack:
            manifest_items: list[dict[str, Any]] = []
            files: list[tuple[str, tuple[str | None, Any, str]]] = []
            sent: list[int] = []  # batch positions of the items in the manifest
            for n, item in enumerate(batch):
                entry: dict[str, Any] = {"name": item.name, "metadata": item.metadata}
                if item.relative_path is not None:
                    entry["relative_path"] = item.relative_path
                if item.url is not None:
                    entry["url"] = item.url
                elif item.uri is not None:
                    entry["uri"] = item.uri
                else:
                    try:
                        stream = stack.enter_context(_open(item))
                    except OSError as e:
                        local_errors[n] = {"index": n, "name": item.name, "code": "unreadable_file",
                                           "error": f"cannot read file: {e}", "status": None}  # fmt: skip
                        continue
                    entry["file"] = f"f{n}"
                    files.append((f"f{n}", (item.name, stream, "application/octet-stream")))
                manifest_items.append(entry)
                sent.append(n)
            body: dict[str, Any] = {"ids": [None] * len(batch), "errors": [], "job_ids": [], "warnings": []}
            if manifest_items:
                manifest = {"items": manifest_items, "set_ids": set_ids, "overwrite": overwrite, **(options or {})}
                files.insert(0, ("manifest", (None, encode_json(manifest), "application/json")))
                answer = self._post_batch(asset_type, files, len(manifest_items))
                for j, item_id in enumerate(answer.get("ids") or []):
                    body["ids"][sent[j]] = item_id
                body["errors"] = [{**e, "index": sent[int(e.get("index", 0))]} for e in answer.get("errors") or []]
                body["warnings"] = [{**w, "index": sent[int(w.get("index", 0))]} for w in answer.get("warnings") or []]
                body["job_ids"] = answer.get("job_ids") or ([answer["job_id"]] if answer.get("job_id") else [])
        body["errors"].extend(local_errors.values())
        return body

    def _post_batch(self, asset_type: str, files: list[Any], count: int) -> dict[str, Any]:
        try:
            return dict(self._request("POST", f"/v1/{asset_type}/add/", files=files, error=AssetError))
        except SceneBaseError as e:
            details = e.details if isinstance(e.details, list) else None
            if e.status_code and 400 <= e.status_code < 500 and details:
                return {"ids": [None] * count, "errors": details, "job_ids": []}
            raise

    def _report(self, errors: list[dict[str, Any]], noun: str) -> None:
        self.last_errors = errors
        for err in errors:
            log.warning("%s %s not ingested: %s", noun, err.get("name"), err.get("error"))

    @staticmethod
    def _single_error(errors: list[dict[str, Any]]) -> AssetError:
        err = errors[0]
        return AssetError(f"{err.get('name')}: {err.get('error')}", status_code=err.get("status"),
                          code=err.get("code"), details=errors)  # fmt: skip


def _named(entry: dict[str, Any], items: Sequence[UploadItem]) -> dict[str, Any]:
    relative = items[entry["index"]].relative_path
    return {**entry, "name": relative} if relative else entry


@contextlib.contextmanager
def _open(item: UploadItem) -> Iterator[bytes | BinaryIO]:
    if item.data is not None:
        yield item.data  # one piece (httpx sends a file object in 64 KiB pieces, each parsed on its own by the server)
        return
    assert item.path is not None
    with item.path.open("rb") as fh:
        yield fh
