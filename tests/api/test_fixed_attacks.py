"""Attacks of issue 8 that the asset-kind seam fixed, each reproduced against the API so they stay fixed:

* item 10: a file or set name with non-ASCII characters, quotes or CR/LF breaking ``Content-Disposition`` (or
  injecting a header);
* item 12: per-item ``metadata.sets`` in an upload reaching a locked set, a set of another asset type or another
  organization's set, around the batch's own checks;
* item 19: a read-only user of an organization that another one shares its data with writing thumbnails into the
  owner's documents and blob store.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from urllib.parse import unquote

import pytest
from PIL import Image as PILImage
from starlette.testclient import TestClient

from scenebase.testing import InProcessServer

from .conftest import World

HOSTILE_NAMES = [
    'wé"ird\\name.png',
    "line\r\nX-Injected: 1.png",
    "日本語の画像.png",
    "tab\tand\x7fdel.png",
]


def png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (12, 9), (seed, 100, 200)).save(buf, "PNG")
    return buf.getvalue()


def upload(http: TestClient, token: str, items: list[dict[str, Any]], set_ids: list[str] | None = None) -> Any:
    manifest = {"items": items, "set_ids": set_ids or []}
    files: dict[str, Any] = {"manifest": (None, json.dumps(manifest), "application/json")}
    for i, item in enumerate(items):
        if "file" in item:
            files[item["file"]] = (f"upload{i}.png", png(i), "image/png")
    return http.post("/v1/images/add/", params={"token": token}, files=files)


def exact_filename(header: str) -> str:
    """The file name a browser takes from a Content-Disposition value (``filename*`` wins over ``filename``)."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "filename*":
            assert value.startswith("UTF-8''")
            return unquote(value[len("UTF-8''") :])
    return header.split('filename="', 1)[1].rsplit('"', 1)[0]


# ---------------------------------------------------------------------------------------------------- item 10


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_name_gives_a_valid_content_disposition(world: World, name: str) -> None:
    http = world.server.http()
    token = world.a.tokens["admin"]
    answer = upload(http, token, [{"file": "f0", "name": name, "metadata": {"id": "odd"}}])
    assert answer.status_code == 200, answer.text
    served = http.get("/v1/images/odd/file", params={"token": token})
    assert served.status_code == 200
    header = served.headers["content-disposition"]
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert "x-injected" not in served.headers
    assert exact_filename(header) == name
    assert served.content == png(0)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_set_name_gives_a_valid_zip_download(world: World, name: str) -> None:
    http = world.server.http()
    admin = world.client(world.a.tokens["admin"])
    set_id = admin.create_set(name, "images")
    assert (
        upload(http, world.a.tokens["admin"], [{"file": "f0", "metadata": {"id": "in-set"}}], [set_id]).status_code
        == 200
    )
    job_id, zip_id = admin.zip_set(set_id)
    admin.get_job(job_id).wait(show_progress=False)
    served = http.get(f"/v1/zipfiles/{zip_id}/file", params={"token": world.a.tokens["admin"]})
    assert served.status_code == 200
    header = served.headers["content-disposition"]
    assert header.isascii() and "\r" not in header and "\n" not in header and "x-injected" not in served.headers
    assert exact_filename(header).endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(served.content)) as zf:
        assert all(".." not in n and not n.startswith("/") for n in zf.namelist())


def test_file_name_no_database_can_store_fails_its_item_only(world: World) -> None:
    http = world.server.http()
    items = [{"file": "f0", "name": "ok.png", "metadata": {"id": "ok"}},
             {"file": "f1", "name": "nul\x00.png", "metadata": {"id": "nul"}}]  # fmt: skip
    answer = upload(http, world.a.tokens["admin"], items)
    assert answer.status_code == 207, answer.text
    assert answer.json()["ids"] == ["ok", None]
    assert "the file name contains a NUL character" in answer.json()["errors"][0]["error"]


# ---------------------------------------------------------------------------------------------------- item 12


def test_per_item_sets_get_the_batch_checks(world: World) -> None:
    http = world.server.http()
    a_admin = world.client(world.a.tokens["admin"])
    b_admin = world.client(world.b.tokens["admin"])
    open_set = a_admin.create_set("open", "images")
    locked_set = a_admin.create_set("locked", "images")
    a_admin.set_lock(locked_set)
    video_set = a_admin.create_set("videos", "videos")
    foreign_set = b_admin.create_set("b's", "images")
    items = [
        {"file": "f0", "name": "ok.png", "metadata": {"id": "ok", "sets": [open_set]}},
        {"file": "f1", "name": "locked.png", "metadata": {"id": "locked", "sets": [locked_set]}},
        {"file": "f2", "name": "video.png", "metadata": {"id": "video", "sets": [video_set]}},
        {"file": "f3", "name": "foreign.png", "metadata": {"id": "foreign", "sets": [foreign_set]}},
    ]
    answer = upload(http, world.a.tokens["admin"], items)
    assert answer.status_code == 207, answer.text
    body = answer.json()
    assert body["ids"] == ["ok", None, None, None]
    errors = {e["name"]: e for e in body["errors"]}
    assert errors["locked.png"]["status"] == 423
    assert errors["video.png"]["status"] == 400 and "videos" in errors["video.png"]["error"]
    assert errors["foreign.png"]["status"] == 404
    # nothing reached the refused sets, whichever organization they belong to
    for set_id, client in ((locked_set, a_admin), (video_set, a_admin), (foreign_set, b_admin)):
        members = client._request("POST", "/v1/images/", json={"sets": [set_id]})
        assert members == []
    assert a_admin._request("POST", "/v1/images/", json={"sets": [open_set]}) == ["ok"]


# ---------------------------------------------------------------------------------------------------- item 19


@pytest.mark.parametrize("role", ["read_only_user", "public_user", "data_user", "admin"])
def test_reader_of_a_shared_organization_writes_nothing_into_the_owners_data(world: World, role: str) -> None:
    server: InProcessServer = world.server
    http = server.http()
    assert upload(http, world.a.tokens["admin"], [{"file": "f0", "metadata": {"id": "shared"}}]).status_code == 200
    world.client(world.a.tokens["admin"]).add_ownership(owner=world.a.id, access=world.b.id)
    blobs_before = sorted(server.runtime.blobs.list())
    doc_before = http.get("/v1/images/meta/shared", params={"token": world.a.tokens["admin"]}).json()

    thumb = http.get("/v1/images/shared/thumbnail/small", params={"token": world.b.tokens[role]})

    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert sorted(server.runtime.blobs.list()) == blobs_before
    doc_after = http.get("/v1/images/meta/shared", params={"token": world.a.tokens["admin"]}).json()
    assert doc_after["thumbnails"] == doc_before["thumbnails"] == {}
    assert doc_after["updated_at"] == doc_before["updated_at"]
    # the owner's own request does store it
    assert http.get("/v1/images/shared/thumbnail/small", params={"token": world.a.tokens["admin"]}).status_code == 200
    assert "small" in http.get("/v1/images/meta/shared", params={"token": world.a.tokens["admin"]}).json()["thumbnails"]
