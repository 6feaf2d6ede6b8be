"""Sets: create, lock, membership, split, zip and download (FACTS 5)."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tqdm.auto import tqdm

from scenebase.clients.core import WARNING_HEADER, ClientCore, _header_text
from scenebase.errors import InvalidArgumentsError, ResponseError, SetsError, ZippingError

log = logging.getLogger("scenebase.client")


def _sid(set_id: str) -> str:
    return quote(str(set_id), safe="")


class SetsMixin(ClientCore):
    def create_set(
        self,
        name: str,
        asset_type: str,
        origin: str | None = None,
        description: str | None = None,
        expected_count: int | None = None,
        tags: list[str] | None = None,
        id: str | None = None,
        aux_metadata: dict[str, Any] | None = None,
        is_primary: bool = False,
        raise_if_set_exists: bool = False,
    ) -> str:
        """Create a set of one asset type and return its id. A name already used in your organization returns
        that set's id (with a warning), or raises ``SetsError`` with ``raise_if_set_exists``."""
        body = {"name": name, "assets_type": asset_type, "origin_set_id": origin, "description": description,
                "expected_count": expected_count, "tags": tags or [], "id": id, "auxiliary": aux_metadata,
                "is_primary": is_primary, "raise_if_set_exists": raise_if_set_exists}  # fmt: skip
        out = self._request("POST", "/v1/sets/add/", json=body, error=SetsError)
        if not out.get("created", True):
            log.warning("a set named %r already exists; using it (id %s)", name, out["id"])
        return str(out["id"])

    def delete_set(self, set_id: str, wait_for_completion: bool = False) -> str:
        """Delete a set (a job). Its assets stay, without the set in their ``sets``."""
        job_id = str(self._request("DELETE", f"/v1/sets/delete_set/{_sid(set_id)}", error=SetsError)["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    def set_lock(self, set_id: str) -> bool:
        self._request("PUT", f"/v1/sets/{_sid(set_id)}/lock", error=SetsError)
        return True

    def set_unlock(self, set_id: str) -> bool:
        self._request("DELETE", f"/v1/sets/{_sid(set_id)}/lock", error=SetsError)
        return True

    def set_is_locked(self, set_id: str) -> bool:
        return bool(self._request("GET", f"/v1/sets/{_sid(set_id)}/lock", error=SetsError)["locked"])

    def get_set_status(self, set_id: str) -> dict[str, Any]:
        """``{"id", "name", "assets_type", "status", "locked", "count", "expected_count", "job_id"}``."""
        return dict(self._request("GET", f"/v1/sets/{_sid(set_id)}/status/", error=SetsError))

    def _await_unlocked(self, set_id: str, wait_for_availability: bool, timeout: float) -> None:
        if not self.set_is_locked(set_id):
            return
        if not wait_for_availability:
            raise SetsError(f"set {set_id!r} is locked")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            if not self.set_is_locked(set_id):
                return
        raise TimeoutError(f"set {set_id!r} stayed locked for {timeout} s")

    def add_assets_to_set(
        self,
        set_id: str,
        search: dict[str, Any] | None = None,
        ids: list[str] | None = None,
        limit: int | None = None,
        wait_for_availability: bool = True,
        timeout: int = 30,
        wait_for_completion: bool = False,
    ) -> str:
        """Add assets by ``ids`` or by ``search`` (``limit``: a seeded random sample of the matches); a job."""
        if search is None and not ids:
            raise SetsError("give ids or a search to add assets to a set")
        self._await_unlocked(set_id, wait_for_availability, timeout)
        if ids:
            out = self._request("POST", f"/v1/sets/{_sid(set_id)}/add_assets_list/", json={"asset_list": list(ids)},
                                error=SetsError)  # fmt: skip
        else:
            out = self._request("POST", f"/v1/sets/{_sid(set_id)}/add_assets_query/", json=search,
                                params={"limit": limit}, error=SetsError)  # fmt: skip
        job_id = str(out["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    def remove_assets_from_set(
        self,
        search: dict[str, Any] | None = None,
        ids: list[str] | None = None,
        set_id: str | None = None,
        wait_for_availability: bool = True,
        timeout: int = 30,
        wait_for_completion: bool = False,
    ) -> str:
        """Remove assets by ``ids`` or by ``search`` (among the set's members); a job."""
        if set_id is None:
            raise InvalidArgumentsError("set_id is required")
        if search is None and not ids:
            raise InvalidArgumentsError("give ids or a search to remove assets from a set")
        self._await_unlocked(set_id, wait_for_availability, timeout)
        if ids:
            out = self._request("POST", f"/v1/sets/{_sid(set_id)}/remove_assets_list/",
                                json={"asset_list": list(ids)}, error=SetsError)  # fmt: skip
        else:
            out = self._request("POST", f"/v1/sets/{_sid(set_id)}/remove_assets_query/", json=search, error=SetsError)
        job_id = str(out["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    def assets_in_set(self, set_id: str | None = None) -> list[str]:
        """Ids of every asset in the set."""
        if set_id is None:
            raise InvalidArgumentsError("set_id is required")
        return list(self._request("POST", f"/v1/sets/{_sid(set_id)}/list_assets/", json={}, error=SetsError)["results"])

    def search_within_set(self, set_id: str, search: dict[str, Any] | None = None, show_meta: bool = True) -> list[Any]:
        """Members matching ``search`` (docs/search.md; warnings as in ``search_assets``): metadata
        (``show_meta``) or ids."""
        route = "list_assets_meta" if show_meta else "list_assets"
        return list(
            self._request("POST", f"/v1/sets/{_sid(set_id)}/{route}/", json=search or {}, error=ResponseError)[
                "results"
            ]
        )

    def split_set(
        self,
        set_id: str,
        percentages_or_sections: int | list[float],
        subset_names: list[str] | None,
        random_seed: int = 42,
        wait_for_completion: bool = False,
    ) -> list[str]:
        """Split a set at random into new sets and return their ids (the subsets exist when this returns).

        ``percentages_or_sections`` is a number of equal subsets n (sizes differ by at most one: the first
        ``N mod n`` get one more) or a list of fractions in (0, 1] summing to at most 1 (each subset gets
        floor(p * N); what is left over, including the share not covered when the fractions sum to less than 1,
        is spread over the subsets as in the integer case, so every asset lands in a subset). Assets are sorted
        by id and shuffled with ``random_seed``, so a split is reproducible. Subset names default to
        ``<set name>_split_<i>``; a name that is taken raises ``SetsError`` before anything is created."""
        if isinstance(percentages_or_sections, bool) or not isinstance(percentages_or_sections, int | list | tuple):
            raise InvalidArgumentsError("percentages_or_sections must be an integer or a list of fractions")
        sections = percentages_or_sections if isinstance(percentages_or_sections, int) else None
        k = sections if sections is not None else len(percentages_or_sections)  # type: ignore[arg-type]
        if k > 5 and not wait_for_completion:
            raise InvalidArgumentsError("more than 5 splits need wait_for_completion=True")
        body: dict[str, Any] = {"set_id": set_id, "subset_names": subset_names, "random_seed": random_seed}
        if sections is not None:
            body["sections"] = sections
        else:
            body["percentages"] = list(percentages_or_sections)  # type: ignore[arg-type]
        out = self._request("POST", "/v1/sets/split_sets/", json=body, error=SetsError)
        self._wait(str(out["job_id"]), wait_for_completion)
        return [str(i) for i in out["subset_ids"]]

    def zip_set(self, set_id: str) -> tuple[str, str]:
        """Start zipping a set; returns ``(job_id, zip_id)``."""
        if not set_id:
            raise ValueError("set_id is required")
        out = self._request("POST", f"/v1/sets/{_sid(set_id)}/zip_all_assets/", error=SetsError)
        return str(out["job_id"]), str(out["zip_id"])

    def download_zipfile(self, zip_id: str, output_filename: str | None = None) -> str | io.BytesIO:
        """Download a zip: to ``<artifacts_path>/<output_filename>.zip`` (returns the path) or into memory.

        A zip made while some members' files could not be read lacks those files (its ``manifest.json`` lists
        them under ``missing_files``): this logs a WARNING naming them and puts them in ``client.last_errors``, or
        raises ``ZippingError`` without downloading when ``client.raise_on_partial_jobs`` is set."""
        return self._download_zip(zip_id, output_filename, report=True)

    def _download_zip(self, zip_id: str, output_filename: str | None, report: bool) -> str | io.BytesIO:
        self._server_status()
        path = f"/v1/zipfiles/{quote(zip_id, safe='')}/file"
        headers = self._http._headers()
        with self._http.client.stream("GET", path, headers=headers) as resp:
            if resp.status_code >= 400:
                resp.read()
                from scenebase.clients.http import raise_for_envelope

                raise_for_envelope(resp, ZippingError)
            warnings = [_header_text(v) for v in resp.headers.get_list(WARNING_HEADER)]
            if report:
                self._report_zip(zip_id, warnings)
            total = int(resp.headers.get("content-length") or 0) or None
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="downloading zip", disable=None)
            try:
                if output_filename is None:
                    buf = io.BytesIO()
                    for chunk in resp.iter_bytes():
                        buf.write(chunk)
                        bar.update(len(chunk))
                    buf.seek(0)
                    return buf
                name = output_filename if output_filename.endswith(".zip") else output_filename + ".zip"
                target = Path(self.artifacts_path) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".zip.part")
                with tmp.open("wb") as fh:
                    for chunk in resp.iter_bytes():
                        fh.write(chunk)
                        bar.update(len(chunk))
                tmp.replace(target)
                return str(target)
            finally:
                bar.close()

    def _report_zip(self, zip_id: str, warnings: list[str]) -> None:
        """The server warns on the download of a zip that lacks files: name them (last_errors) or raise."""
        self.last_errors = []
        if not warnings:
            return
        doc = self._request("GET", f"/v1/zipfiles/meta/{quote(zip_id, safe='')}", error=ZippingError)
        self.last_errors = [{"id": m.get("id"), "error": m.get("error"), "zip_id": zip_id}
                            for m in doc.get("missing_files") or []]  # fmt: skip
        if self.raise_on_partial_jobs:
            raise ZippingError("; ".join(warnings), details=self.last_errors)
        for warning in warnings:
            log.warning("%s", warning)

    def zip_set_and_download(self, set_id: str | None = None, filename: str | None = None) -> str | io.BytesIO:
        """Zip a set, wait for the job (with a progress bar), and download the zip (see ``download_zipfile``).
        Members whose files could not be read are named in a WARNING and ``client.last_errors`` (the zip's
        manifest lists them too), or raise ``JobError`` with ``client.raise_on_partial_jobs``."""
        if not set_id:
            raise ValueError("set_id is required")
        job_id, zip_id = self.zip_set(set_id)
        # a partial zip (files that could not be read) warns here, naming them in last_errors, or raises
        self._wait(job_id, True)
        return self._download_zip(zip_id, filename, report=False)
