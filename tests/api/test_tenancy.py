"""Organization B against organization A's resources, on every route that takes an id."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping

import av
import numpy as np
from PIL import Image

from scenebase.api.app import iter_api_routes
from scenebase.domain.roles import Role
from scenebase.services.annotations import IncomingAnnotation
from scenebase.services.ingest import IncomingItem
from scenebase.services.kinds import BytesMedia
from scenebase.storage.scope import Scope
from scenebase.testing import ADMIN_TOKEN

from .conftest import World


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


def _mp4() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((24, 32, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode())
    return buf.getvalue()


def _a_resources(world: World) -> dict[str, str]:
    rt = world.server.runtime
    a_admin = world.client(world.a.tokens["admin"])
    scope = Scope.of(world.a.id, username=world.a.usernames["admin"])
    job_id = a_admin.run_integration_test(duration=0.05, steps=1, wait_for_completion=True)
    running = rt.jobs.repo.create(Scope.of(world.a.id, username="x"), "a-queued-record")
    set_id, _ = rt.sets.create(scope, "a-set", "images")
    item = IncomingItem(0, "a.jpg", {"id": "a_image"}, BytesMedia(_jpeg(), "a.jpg"))
    ingest = rt.ingest.ingest(scope, "images", [item], [set_id])
    assert ingest.ids == ["a_image"], ingest.errors
    video_set, _ = rt.sets.create(scope, "a-videos", "videos")
    video = IncomingItem(0, "a.mp4", {"id": "a_video"}, BytesMedia(_mp4(), "a.mp4"))
    assert rt.ingest.ingest(scope, "videos", [video], [video_set]).ids == ["a_video"]
    rt.media.make_thumbnails(scope, "videos", rt.assets.get(scope, "videos", "a_video"), {"small": None})
    session_uid, _ = rt.sessions.create(scope, "a-session")
    zip_job, zip_id = rt.zips.zip(scope, set_id)
    a_admin.get_job(zip_job).wait(timeout=30)
    mask = io.BytesIO()
    Image.new("RGB", (32, 24), (255, 0, 0)).save(mask, "PNG")
    seg = {"id": "a_ann", "asset_id": "a_image", "annotation_type": "segmentation", "masks": {"m1": {}},
           "annotation_entities": [{"label": "road", "mask_id": "m1", "mask_color": "#ff0000"}]}  # fmt: skip
    added = rt.annotations.add(scope, [IncomingAnnotation(0, seg, mask_files={"m1": BytesMedia(mask.getvalue(), "m")})])
    assert added.ids == ["a_ann"], added.errors
    return {
        "job_id": job_id,
        "queued_job_id": running["id"],
        "username": world.a.usernames["data_user"],
        "organization_id": world.a.id,
        "set_id": set_id,
        "image_id": "a_image",
        "video_id": "a_video",
        "asset_type": "images",
        "asset_id": "a_image",
        "tag": "small",
        "zip_id": zip_id,
        "session_uid": session_uid,
        "annotation_id": "a_ann",
        "mask_id": "m1",
    }


def test_org_b_never_sees_org_a(world: World) -> None:
    res = _a_resources(world)
    http = world.server.http()
    # routes that name a resource (a bare {asset_type} is a listing: see test_listings_are_scoped)
    routes = [r for r in iter_api_routes() if set(re.findall(r"\{([^}]+)\}", r.path)) - {"asset_type"}]
    assert routes
    checked = 0
    for route in routes:
        params = re.findall(r"\{([^}]+)\}", route.path)
        for method in route.methods:
            for job_key in ("job_id", "queued_job_id"):
                url = route.path
                for p in params:
                    value = res[job_key] if p == "job_id" else res[p]
                    url = url.replace("{" + p + "}", value)
                for role in (Role.ADMIN, Role.DATA_PROVIDER, Role.DATA_USER):
                    query = {"token": world.b.tokens[role.value], "progress": 1, "stage": "x", "note": "x"}
                    body = {"email": "x@y", "organization_name": "pwned", "asset_list": ["a_image"]}
                    resp = http.request(method, url, params=query, json=body)
                    # 404 (not found) or 403 (the role may not call the route at all); never a success
                    assert resp.status_code in (403, 404), (method, url, role.value, resp.status_code, resp.text)
                    checked += 1
    assert checked > 30

    # and nothing changed on A's side
    a_admin = world.client(world.a.tokens["admin"])
    assert a_admin.get_job(res["job_id"]).status == "finished"
    assert world.server.runtime.jobs.repo.get(Scope.of(world.a.id), res["queued_job_id"])["status"] == "queued"
    users = {u["username"]: u for u in a_admin.list_users()}
    assert users[res["username"]]["email"] != "x@y"
    assert {"name": "Org A", "id": world.a.id} in a_admin.list_organizations()


def test_listings_are_scoped(world: World) -> None:
    a_admin = world.client(world.a.tokens["admin"])
    b_admin = world.client(world.b.tokens["admin"])
    job_id = a_admin.run_integration_test(duration=0.01, steps=1, wait_for_completion=True)
    http = world.server.http()
    b_jobs = http.get("/v1/jobs/", params={"token": world.b.tokens["admin"]}).json()
    assert job_id not in {j["id"] for j in b_jobs}
    a_jobs = http.get("/v1/jobs/", params={"token": world.a.tokens["admin"]}).json()
    assert job_id in {j["id"] for j in a_jobs}
    assert {u["organization_id"] for u in b_admin.list_users()} == {world.b.id}
    res = _a_resources(world)
    for asset_type in ("images", "sets", "zipfiles"):
        for suffix in ("", "meta/"):
            hits = http.post(f"/v1/{asset_type}/{suffix}", params={"token": world.b.tokens["admin"]}, json={})
            assert hits.status_code == 200 and hits.json() == [], (asset_type, hits.text)
        summary = http.post(f"/v1/{asset_type}/meta/summary/", params={"token": world.b.tokens["admin"]},
                            json={"dimensions": ["sets"]})  # fmt: skip
        assert summary.json()["total"] == 0
        stats = http.get(
            f"/v1/{asset_type}/meta/searchable_field_statistics/", params={"token": world.b.tokens["admin"]}
        )
        assert stats.json() == {}
    mine = http.post("/v1/images/", params={"token": world.a.tokens["admin"]}, json={}).json()
    assert res["image_id"] in mine
    assert b_admin.list_organizations() == [{"name": "Org B", "id": world.b.id}]
    assert b_admin.list_ownerships() == []


def test_ownership_grants_read_not_write(world: World) -> None:
    a_admin = world.client(world.a.tokens["admin"])
    job_id = a_admin.run_integration_test(duration=0.01, steps=1, wait_for_completion=True)
    a_admin.add_ownership(owner=world.a.id, access=world.b.id)
    b_user = world.client(world.b.tokens["data_user"])
    assert b_user.get_job(job_id).status == "finished"  # readable now
    resp = world.server.http().put(f"/v1/jobs/cancel/{job_id}", params={"token": world.b.tokens["admin"]})
    assert resp.status_code == 404  # but not writable
    a_admin.revoke_ownership(owner=world.a.id, access=world.b.id)
    world.server.runtime.identity.clear_auth_cache()
    resp = world.server.http().get(f"/v1/jobs/{job_id}", params={"token": world.b.tokens["data_user"]})
    assert resp.status_code == 404


def test_ids_in_bodies_do_not_cross_organizations(world: World) -> None:
    res = _a_resources(world)
    http = world.server.http()
    tok = {"token": world.b.tokens["admin"]}
    r = http.post("/v1/sets/split_sets/", params=tok, json={"set_id": res["set_id"], "sections": 2})
    assert r.status_code == 404
    b_admin = world.client(world.b.tokens["admin"])
    for route, body in (
        ("/v1/images/compress_images/", {"ids": [res["image_id"]], "use_preset": "tiny"}),
        ("/v1/images/image_properties_enrichment/", {"ids": [res["image_id"]]}),
    ):
        job_id = http.post(route, params=tok, json=body).json()["job_id"]
        job = b_admin.get_job(job_id).wait(timeout=30)
        assert job.result["failed"] == [res["image_id"]]
    doc = world.server.runtime.assets.get(Scope.of(world.a.id), "images", res["image_id"])
    assert doc["thumbnails"] == {} and "mean_brightness" not in doc.get("aux", {})


def test_org_b_admin_cannot_probe_org_a_usernames_or_ids(world: World) -> None:
    """Issue 8.16: answers about another organization's users and ids read exactly like answers about nothing."""
    http = world.server.http()
    tok = {"token": world.b.tokens["admin"]}
    admin = world.client(ADMIN_TOKEN)
    deleted = admin.add_organization("Gone")["id"]
    admin.delete_organization(deleted)

    def answer(method: str, url: str, probed: str, body: Mapping[str, object] | None = None) -> tuple[int, str]:
        resp = http.request(method, url, params=tok, json=body)
        assert resp.status_code < 500, resp.text
        message = resp.json()["error"]["message"] if resp.status_code >= 400 else "ok"
        return resp.status_code, message.replace(probed, "<probed>")

    # usernames: A's users and the superadmin (org "default") against a name nobody has
    b_user = world.b.usernames["data_user"]
    for method, body in (("PUT", {"email": "x@y"}), ("PUT", {"role": "admin"}), ("DELETE", None)):
        seen = {
            answer(method, f"/identity_manager/user/{name}", name, body)
            for name in (world.a.usernames["admin"], world.a.usernames["data_user"], "admin", "nobody_at_all")
        }
        assert seen == {(404, "user '<probed>' not found")}, (method, body, seen)
    # a taken username cannot be hidden (usernames are global), but it reads the same whoever has it
    taken = (world.a.usernames["data_user"], b_user, "admin")
    body = {"role": "data_user", "organization_id": world.b.id}
    seen = {answer("POST", "/identity_manager/user", name, {**body, "username": name}) for name in taken}
    assert seen == {(409, "user '<probed>' already exists")}

    # organization ids: A's, a deleted one's and one that never existed
    def org_probes(org_id: str) -> list[tuple[int, str]]:
        new_user = {"username": "probe", "role": "data_user", "organization_id": org_id}
        return [
            answer("POST", "/identity_manager/user", org_id, new_user),
            answer("PUT", f"/identity_manager/user/{b_user}", org_id, {"organization_id": org_id}),
            answer("DELETE", "/identity_manager/ownership", org_id, {"owner": world.b.id, "access": org_id}),
            answer("POST", "/identity_manager/ownership", org_id, {"owner": org_id, "access": world.b.id}),
            answer("PUT", f"/identity_manager/organization/{org_id}", org_id, {"organization_name": "x"}),
            answer("DELETE", f"/identity_manager/organization/{org_id}", org_id),
        ]

    baseline = org_probes("never_existed_0123456789ab")
    assert [status for status, _ in baseline] == [404, 404, 404, 403, 403, 403]
    assert baseline[0] == (404, "organization '<probed>' not found")
    assert org_probes(world.a.id) == baseline
    assert org_probes(deleted) == baseline
    # sharing needs the other organization's id, which its name does not give away: 48 random bits follow it
    assert re.fullmatch(r"org_a_[0-9a-f]{12}", world.a.id)
    for guess in ("org_a", "Org A", "org_a_000000000000"):
        assert answer("POST", "/identity_manager/ownership", guess, {"owner": world.b.id, "access": guess}) == (
            404,
            "organization '<probed>' not found",
        )
    assert world.client(world.b.tokens["admin"]).list_organizations() == [{"name": "Org B", "id": world.b.id}]
