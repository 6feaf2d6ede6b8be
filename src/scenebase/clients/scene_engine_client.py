"""``SceneEngineClient``: the seed's client, talking HTTP to a scenebase server.

Porting a SceneBox script means changing the import prefix and the server URL. Method groups live in
``clients/images.py``, ``clients/annotations.py``, ``clients/sets.py`` and ``clients/search.py``; seed methods not
built yet come from ``_seed_surface.SeedSurface`` and raise ``NotImplementedError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from scenebase.clients._seed_surface import SeedSurface
from scenebase.clients.annotations import AnnotationsMixin
from scenebase.clients.asset_manager import AssetManagerClient
from scenebase.clients.coco import CocoMixin
from scenebase.clients.core import ClientCore
from scenebase.clients.embedding_maps import EmbeddingMapsMixin
from scenebase.clients.embeddings import EmbeddingsMixin
from scenebase.clients.images import ImagesMixin
from scenebase.clients.job import Job
from scenebase.clients.lidars import LidarsMixin
from scenebase.clients.search import SearchMixin
from scenebase.clients.sessions import SessionsMixin
from scenebase.clients.sets import SetsMixin
from scenebase.clients.videos import VideosMixin
from scenebase.errors import (
    AssetError,
    IdentityError,
    InvalidAuthorization,
    JobError,
    ResponseError,
    SessionError,
    SetsError,
)


class SceneEngineClient(
    SessionsMixin,
    SetsMixin,
    CocoMixin,
    ImagesMixin,
    VideosMixin,
    AnnotationsMixin,
    LidarsMixin,
    EmbeddingsMixin,
    EmbeddingMapsMixin,
    SearchMixin,
    ClientCore,
    SeedSurface,
):
    """Root client for every user task on scenebase (same methods as SceneBox's ``SceneEngineClient``)."""

    # ---- identity and platform ----

    def whoami(self) -> dict[str, Any]:
        """Identity of the token: version, build_host, token, username, role, organization(_id)."""
        if not self.auth_token:
            raise InvalidAuthorization("no auth_token: pass one to SceneEngineClient or with_auth()")
        return dict(self._request("GET", "/auth", error=IdentityError))

    def with_auth(self, auth_token: str | None = None) -> SceneEngineClient:
        """Use ``auth_token`` (or keep the current one) for the following calls; returns the client."""
        if auth_token is not None:
            self.auth_token = auth_token
            self._http.token = auth_token
        return self

    def get_platform_version(self) -> str:
        version = self._server_status().get("version")
        if not version:
            raise ValueError("the server did not report a version")
        return str(version)

    def update_artifact_path(self, artifacts_path: str) -> None:
        self.artifacts_path = artifacts_path
        Path(artifacts_path).mkdir(parents=True, exist_ok=True)

    def get_asset_manager(self, asset_type: str) -> AssetManagerClient:
        """The low-level client of one asset type: search, count, metadata get / update, file put / get, exists,
        delete (see ``scenebase.clients.asset_manager``). One per type, kept for the client's lifetime."""
        managers: dict[str, AssetManagerClient] = self.__dict__.setdefault("_asset_managers", {})
        if asset_type not in managers:
            managers[asset_type] = AssetManagerClient(self, asset_type)
        return managers[asset_type]

    def get_job(self, job_id: str) -> Job:
        return self._job(job_id).refresh()

    def add_user(self, email: str, username: str, role: str, organization_id: str) -> dict[str, Any]:
        body = {"email": email, "username": username, "role": role, "organization_id": organization_id}
        doc = self._request("POST", "/identity_manager/user", json=body, error=InvalidAuthorization)
        return {k: doc.get(k) for k in ("username", "organization_id", "token", "role", "email")}

    def modify_user(
        self,
        username: str,
        email: str | None = None,
        role: str | None = None,
        organization_id: str | None = None,
    ) -> None:
        body = {"email": email, "role": role, "organization_id": organization_id}
        self._request(
            "PUT",
            f"/identity_manager/user/{quote(username, safe='')}",
            json={k: v for k, v in body.items() if v is not None},
            error=InvalidAuthorization,
        )

    def delete_user(self, username: str) -> None:
        """Delete a user (admins: own organization; superadmins: any). Not in the seed."""
        self._request("DELETE", f"/identity_manager/user/{quote(username, safe='')}", error=InvalidAuthorization)

    def list_users(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/identity_manager/user", error=InvalidAuthorization))

    def add_organization(self, organization_name: str) -> dict[str, Any]:
        """Create an organization (superadmin): ``{"id", "name"}``; the id is the name plus a random suffix."""
        body = {"organization_name": organization_name}
        return dict(self._request("POST", "/identity_manager/organization", json=body, error=InvalidAuthorization))

    def list_organizations(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/identity_manager/organization", error=InvalidAuthorization))

    def modify_organization(self, organization_id: str, organization_name: str) -> None:
        self._request(
            "PUT",
            f"/identity_manager/organization/{quote(organization_id, safe='')}",
            json={"organization_name": organization_name},
            error=InvalidAuthorization,
        )

    def delete_organization(self, organization_id: str) -> None:
        """Delete an organization that holds nothing any more (superadmin). Not in the seed.

        Refused with InvalidAuthorization (409, nothing deleted) while the organization has users, assets of
        any type or queued/running jobs; the message and ``details["holdings"]`` count what is left. Its
        finished jobs and the ownerships granted by or to it go with it. Its id is never issued again, so a
        new organization of the same name gets a new id and none of the old one's data.
        """
        self._request(
            "DELETE",
            f"/identity_manager/organization/{quote(organization_id, safe='')}",
            error=InvalidAuthorization,
        )

    def list_ownerships(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/identity_manager/ownership", error=InvalidAuthorization))

    def add_ownership(self, owner: str, access: str) -> dict[str, Any]:
        """Let organization ``access`` read the data of organization ``owner`` (admin of owner). Not in the seed."""
        body = {"owner": owner, "access": access}
        return dict(self._request("POST", "/identity_manager/ownership", json=body, error=InvalidAuthorization))

    def revoke_ownership(self, owner: str, access: str) -> None:
        """Withdraw an ownership granted with ``add_ownership``. Not in the seed."""
        body = {"owner": owner, "access": access}
        self._request("DELETE", "/identity_manager/ownership", json=body, error=InvalidAuthorization)

    def clear_cache(self, all_organizations: bool = False, partitions: list[str] | None = None) -> dict[str, Any]:
        """Clear the server's derived-data caches for your organization (all organizations: admins)."""
        return dict(
            self._request(
                "POST",
                "/clear_cache",
                params={"all_organizations": all_organizations},
                json={"partitions": partitions},
                error=ResponseError,
            )
        )

    # ---- jobs (helpers beyond the seed) ----

    def run_integration_test(
        self, duration: float = 1.0, steps: int = 10, fail: bool = False, wait_for_completion: bool = False
    ) -> str:
        """Queue a diagnostic job that sleeps ``duration`` s (tester/health_checker/admin). Not in the seed."""
        body = {"duration": duration, "steps": steps, "fail": fail}
        job_id = str(self._request("POST", "/v1/maintenance/integration_test/", json=body, error=JobError)["job_id"])
        self._wait(job_id, wait_for_completion)
        return job_id

    # ---- web app links ----

    def _display_asset(self, asset_type: str, asset_id: str, page: str) -> str:
        """The page of an asset that exists: an unknown id raises (404 names it) instead of opening a blank page."""
        error = {"sets": SetsError, "sessions": SessionError}.get(asset_type, AssetError)
        self._request("GET", f"/v1/{asset_type}/exists/{quote(str(asset_id), safe='')}", error=error)
        return self._display(page)

    def display_image(self, image_id: str) -> str:
        return self._display_asset("images", image_id, f"images?image={image_id}")

    def display_video(self, video_id: str) -> str:
        return self._display_asset("videos", video_id, f"videos?video={video_id}")

    def display_object(self, object_id: str) -> str:
        return self._display_asset("objects", object_id, f"objects?object={object_id}")

    def display_lidar(self, lidar_id: str) -> str:
        return self._display_asset("lidars", lidar_id, f"lidars?lidar={lidar_id}")

    def display_session(self, session_uid: str) -> str:
        return self._display_asset("sessions", session_uid, f"sessions?session_uid={session_uid}")

    def display_set(self, set_id: str) -> str:
        return self._display_asset("sets", set_id, f"sets?set={set_id}")

    def display_projects(self, project_id: str) -> str:
        # projects are not part of scenebase: the page says so (there is no id to check)
        return self._display(f"projects?project={project_id}")

    def display_dashboard(self, dashboard_name: str) -> str:
        return self._display(f"dashboard?dashboard={dashboard_name}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SceneEngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
