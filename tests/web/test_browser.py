"""The web app in headless Chromium against a real ``scenebase serve`` loaded with ../shared/data: every page
renders its data (checked in the DOM against the API), a facet changes the grid and the URL, a selection becomes a
set with exactly those assets, overlays sit at the annotation coordinates. Screenshots of every page go to
``$SCENEBASE_SCREENSHOTS`` (docs/screenshots/ holds the committed ones) or the test's temporary folder.

One server, one seeding and one browser for the module: the browser tests stay lean for CI."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from sample_data import require_shared_data
from scenebase.testing import ADMIN_TOKEN
from web.browser import browser_page, missing_prerequisite
from web.live import LiveServer, Seeded, seed


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seeded]]:
    data = require_shared_data()
    problem = missing_prerequisite()
    if problem:
        pytest.fail(problem)
    with LiveServer(tmp_path_factory.mktemp("webapp") / "data") as server:
        yield server, seed(server.client(), data)


@pytest.fixture(scope="module")
def page(loaded: tuple[LiveServer, Seeded]) -> Iterator[Any]:
    server, _ = loaded
    with browser_page(server.url, ADMIN_TOKEN) as p:
        yield p


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("SCENEBASE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(page: Any, server: LiveServer, path: str, ready: str) -> None:
    page.goto(server.url + path)
    page.wait_for_selector(ready)


def test_dashboard_sets_and_jobs_pages_show_the_server_data(loaded: Any, page: Any, shots: Path) -> None:
    server, seeded = loaded
    client = server.client()
    _open(page, server, "/app/", "[data-testid=count-images]")
    for asset_type in ("images", "videos", "lidars", "sessions"):
        shown = page.inner_text(f"[data-testid=count-{asset_type}] .big")
        assert int(shown.replace(",", "")) == len(client.search_assets(asset_type)), asset_type
    assert "bunny frames" in page.inner_text("[data-testid=recent-sets]")
    assert "comma2k19 drive" in page.inner_text("[data-testid=recent-sessions]")
    failed = [row.get_attribute("class") for row in page.locator("[data-testid=job-row][data-status=aborted]").all()]
    assert failed and all("failed" in c.split() for c in failed), page.inner_text("main")  # failed jobs stand out
    page.screenshot(path=str(shots / "dashboard.png"))
    _open(page, server, "/app/dashboard?dashboard=fleet%20review", "[data-testid=count-images]")
    assert page.inner_text("[data-testid=dashboard-title]") == "Dashboard: fleet review"  # display_dashboard(name)

    _open(page, server, "/app/sets", "[data-testid=sets]")
    assert {"bunny frames", "panoptic examples", "media", "scans"} <= set(
        page.locator("[data-testid=sets] a").all_inner_texts()
    )
    page.screenshot(path=str(shots / "sets.png"))

    _open(page, server, "/app/jobs", "[data-testid=job-row]")
    assert "lidar_compression" in page.inner_text("[data-testid=jobs]")
    page.screenshot(path=str(shots / "jobs.png"))
    page.locator("[data-testid=job-row] a", has_text="lidar_compression").first.click()
    page.wait_for_selector("[data-testid=job-status]")
    assert page.inner_text("[data-testid=job-status]") == "finished"
    _open(page, server, f"/app/jobs?job={seeded.failed_job_id}", "[data-testid=job-status]")
    assert page.inner_text("[data-testid=job-status]") == "failed"
    notes = page.inner_text("[data-testid=job-notes]")
    job = server.client()._request("GET", f"/v1/jobs/{seeded.failed_job_id}")
    assert job["status"] == "aborted" and all(str(n if isinstance(n, str) else "") in notes for n in job["notes"])
    page.screenshot(path=str(shots / "job.png"))


def _grid_ids(page: Any) -> set[str]:
    return set(page.eval_on_selector_all("[data-testid=grid] .cell", "cells => cells.map(c => c.dataset.id)"))


def test_set_page_facet_filters_the_grid_and_lives_in_the_url(loaded: Any, page: Any, shots: Path) -> None:
    server, seeded = loaded
    _open(page, server, f"/app/sets?set={seeded.frames_set}", "[data-testid=grid] .cell img")
    assert _grid_ids(page) == set(seeded.frame_ids)
    page.click("[data-facet=sensor] input[data-value=cam_front]")
    page.wait_for_function("document.querySelector('[data-testid=grid]')?.dataset.total === '12'")
    expected = set(server.client().search_assets("images", {"filters": [
        {"field": "sets", "values": [seeded.frames_set]}, {"field": "sensor", "values": ["cam_front"]}]}))  # fmt: skip
    assert _grid_ids(page) == expected and len(expected) == 12
    assert parse_qs(urlparse(page.url).query)["f"] == ["sensor=cam_front"]
    page.screenshot(path=str(shots / "set.png"))
    # the URL alone gives the same grid; a range and the query box narrow it further
    page.reload()
    page.wait_for_function("document.querySelector('[data-testid=grid]')?.dataset.total === '12'")
    page.fill("[data-range='aux.speed'] input[name=max]", "9")
    page.click("[data-range='aux.speed'] button")
    page.wait_for_function("document.querySelector('[data-testid=grid]')?.dataset.total === '5'")
    assert _grid_ids(page) == {f"frame_{k:03d}" for k in (0, 2, 4, 6, 8)}
    page.fill("input[name=q]", '{"filters": [{"field": "aux.weather", "values": ["rain"]}]}')
    page.click("form.query button")
    page.wait_for_function("document.querySelector('[data-testid=grid]')?.dataset.total === '1'")
    assert _grid_ids(page) == {"frame_004"}
    query = parse_qs(urlparse(page.url).query)
    assert query["r"] == ["aux.speed=..9"] and "aux.weather" in query["q"][0]


def test_a_selection_becomes_a_set_with_exactly_those_assets(loaded: Any, page: Any) -> None:
    server, seeded = loaded
    _open(page, server, f"/app/sets?set={seeded.frames_set}", "[data-testid=grid] .cell img")
    picked = ["frame_001", "frame_005", "frame_017"]
    for image_id in picked:
        page.check(f".cell[data-id={image_id}] input.pick")
    page.fill("input[name=new-set]", "picked in the browser")
    page.click("[data-testid=selection-bar] button:has-text('New set')")
    page.wait_for_selector("[data-testid=selection-message].ok")
    client = server.client()
    (made,) = client.search_assets("sets", {"filters": [{"field": "name", "values": ["picked in the browser"]}]})
    assert sorted(client.assets_in_set(made)) == picked
    # and into an existing set
    page.check(".cell[data-id=frame_002] input.pick")
    page.select_option("select[name=existing-set]", made)
    page.click("[data-testid=selection-bar] button:has-text('Add to set')")
    page.wait_for_selector("[data-testid=selection-message]:has-text('Added 1')")
    assert sorted(client.assets_in_set(made)) == sorted([*picked, "frame_002"])


def test_image_overlays_sit_at_the_annotation_coordinates_and_toggle(loaded: Any, page: Any, shots: Path) -> None:
    server, seeded = loaded
    image_id = seeded.panoptic_ids[0]
    boxes = [e for doc in server.client().search_meta("annotations", {"filters": [
        {"field": "asset_id", "values": [image_id]}, {"field": "provider", "values": ["panoptic_bbox"]}]})
        for e in doc["annotation_entities"]]  # fmt: skip
    _open(page, server, f"/app/images?image={image_id}", "[data-testid=overlays] rect.shape")
    page.wait_for_function("document.querySelector('[data-testid=full-image]').complete")
    rects = page.eval_on_selector_all(
        "[data-testid=overlays] rect.shape",
        "rs => rs.map(r => [r.dataset.label, ...['x', 'y', 'width', 'height'].map(a => +r.getAttribute(a))])",
    )
    expected = []
    for e in boxes:
        xs, ys = [p["x"] for p in e["coordinates"]], [p["y"] for p in e["coordinates"]]
        expected.append([e["label"], min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)])
    assert sorted(rects) == sorted(expected) and len(rects) > 5
    masks = page.locator("[data-testid=overlays] image.shape").count()
    assert masks == sum(1 for e in boxes)  # one mask per COCO entry, beside its box
    page.screenshot(path=str(shots / "image.png"))
    page.uncheck("input[data-toggle='label:person']")
    assert page.locator("[data-testid=overlays] [data-label=person]").count() == 0
    people = sum(1 for e in boxes if e["label"] == "person")
    assert page.locator("[data-testid=overlays] rect.shape").count() == len(rects) - people
    page.uncheck("input[data-toggle='type:segmentation']")
    assert page.locator("[data-testid=overlays] image.shape").count() == 0


def test_video_lidar_and_session_pages(loaded: Any, page: Any, shots: Path) -> None:
    server, seeded = loaded
    client = server.client()
    _open(page, server, f"/app/videos?video={seeded.video_id}", "[data-testid=video]")
    page.wait_for_function("document.querySelector('[data-testid=video]').readyState >= 1")
    duration = page.eval_on_selector("[data-testid=video]", "v => v.duration")
    assert duration == pytest.approx(client.get_metadata(seeded.video_id, "videos")["duration"], abs=0.1)
    page.click("button:has-text('+1 s')")
    page.click("button:has-text('+1 s')")
    page.wait_for_function("document.querySelector('[data-testid=video]').currentTime >= 1.9")
    page.wait_for_function("document.querySelector('[data-testid=video]').readyState >= 2")  # the seek was served
    page.screenshot(path=str(shots / "video.png"))

    _open(page, server, f"/app/lidars?lidar={seeded.lidar_id}", "[data-testid=pointcloud]")
    doc = client.get_metadata(seeded.lidar_id, "lidars")
    assert int(page.get_attribute("[data-testid=pointcloud]", "data-points")) == doc["finite_points"]  # skip_1
    lit = page.eval_on_selector(
        "[data-testid=pointcloud]",
        """c => { const g = c.getContext('webgl');
        const px = new Uint8Array(c.width * c.height * 4);
        g.readPixels(0, 0, c.width, c.height, g.RGBA, g.UNSIGNED_BYTE, px);
        let n = 0; for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 120) n++; return n; }""",
    )
    assert lit > 1000, "the point cloud was not drawn"
    page.screenshot(path=str(shots / "lidar.png"))

    _open(page, server, f"/app/sessions?session_uid={seeded.session_uid}", "[data-testid=gps-track]")
    data = client._request(
        "POST", f"/v1/session_manager/field_data/{seeded.session_uid}", json={"session_fields": ["*"]}
    )
    fixes = sum(1 for v in data["geolocation"] if v is not None)
    assert int(page.get_attribute("[data-testid=gps-track]", "data-fixes")) == fixes > 50
    tracks = page.eval_on_selector_all(".track[data-field]", "ts => ts.map(t => t.dataset.field)")
    assert {"geolocation", "speed", "comment"} <= set(tracks)
    states = page.eval_on_selector_all(".track[data-field=comment] rect", "rs => rs.map(r => r.dataset.state)")
    assert states and set(states) == {"merging onto the highway"}
    assert len(states) == sum(1 for v in data["comment"] if v)
    page.fill("input[name=cursor]", "0")
    nearest = page.eval_on_selector_all("[data-testid=nearest-images] a", "as => as.map(a => a.dataset.id)")
    assert nearest[0] == "frame_000" and len(nearest) == 4
    page.click("button:has-text('Scenario search')")  # the default query: speed >= 20
    page.wait_for_selector("[data-testid=scenario-matches]:not(:has-text('0 matching'))")
    scenario = {"ranges": [{"field": "speed", "min": 20}],
                "filters": [{"field": "session_uid", "values": [seeded.session_uid]}]}  # fmt: skip
    found = client._request("POST", "/v1/session_manager/search/", json=scenario)
    intervals = len(found[seeded.session_uid]["intervals"])
    assert re.match(rf"{intervals} matching", page.inner_text("[data-testid=scenario-matches]"))
    assert page.locator(".track[data-field=speed] .match").count() == intervals
    page.screenshot(path=str(shots / "session.png"))


def test_unknown_ids_are_a_clear_error_not_a_blank_page(loaded: Any, page: Any) -> None:
    server, _ = loaded
    for path, name in [("images?image=nope", "images"), ("videos?video=nope", "videos"),
                       ("lidars?lidar=nope", "lidars"), ("sets?set=nope", "set"),
                       ("sessions?session_uid=nope", "session")]:  # fmt: skip
        _open(page, server, f"/app/{path}", "[data-testid=problem]")
        text = page.inner_text("[data-testid=problem]")
        assert "nope" in text and name.rstrip("s") in text, (path, text)


def test_drawn_shapes_sit_at_their_coordinates_and_the_threshold_hides_low_confidence(
    loaded: Any, page: Any, shots: Path
) -> None:
    server, seeded = loaded
    image_id = seeded.frame_ids[0]
    docs = server.client().search_meta("annotations", {"filters": [{"field": "asset_id", "values": [image_id]}]})
    entities = {doc["annotation_type"]: doc["annotation_entities"] for doc in docs}
    _open(page, server, f"/app/images?image={image_id}", "[data-testid=overlays] polygon.shape")
    (polygon,) = entities["polygon"]
    points = page.get_attribute("[data-testid=overlays] polygon.shape", "points")
    assert points == " ".join(f"{p['x']:g},{p['y']:g}" for p in polygon["coordinates"])
    (line,) = entities["line"]
    points = page.get_attribute("[data-testid=overlays] polyline.shape", "points")
    assert points == " ".join(f"{p['x']:g},{p['y']:g}" for p in line["coordinates"])
    drawn = page.eval_on_selector_all("[data-type=point] circle", "cs => cs.map(c => [+c.dataset.x, +c.dataset.y])")
    stored = [[e.get("left", (e.get("coordinates") or [{}])[0].get("x")),
               e.get("top", (e.get("coordinates") or [{}])[0].get("y"))] for e in entities["point"]]  # fmt: skip
    assert sorted(drawn) == sorted(stored) == [[89.5, 96.0], [101.0, 96.5]]
    # the strip of similar images: the server's answer, in its order
    (similar,) = server.client()._request("POST", "/v1/similarity_search/similarity_search/", json={
        "ids": [image_id], "similar_asset_count": 12, "index_name": seeded.map_index})  # fmt: skip
    page.wait_for_selector("[data-testid=similar] a")
    assert page.eval_on_selector_all("[data-testid=similar] a", "as => as.map(a => a.dataset.id)") == similar
    assert len(similar) == 12 and image_id not in similar
    page.screenshot(path=str(shots / "image_shapes.png"))
    assert page.locator("rect.shape").count() == 2
    page.fill("input[name=confidence]", "0.5")
    page.dispatch_event("input[name=confidence]", "input")
    labels = page.eval_on_selector_all("rect.shape", "rs => rs.map(r => r.dataset.label)")
    assert labels == ["rabbit"]  # the 0.3 box is below the threshold; shapes without a confidence stay
    assert page.locator("polygon.shape").count() == 1
    page.uncheck("input[data-toggle='provider:detector']")
    assert page.locator("[data-testid=overlays] .shape").count() == 0


def test_object_page_shows_the_crop_and_links_its_image(loaded: Any, page: Any, shots: Path) -> None:
    server, seeded = loaded
    doc = server.client().get_metadata(seeded.object_id, "objects")
    _open(page, server, f"/app/objects?object={seeded.object_id}", "[data-testid=parent-image]")
    page.wait_for_function("document.querySelector('[data-testid=full-image]').naturalWidth > 0")
    size = page.eval_on_selector("[data-testid=full-image]", "i => [i.naturalWidth, i.naturalHeight]")
    assert size == [doc["width"], doc["height"]]
    assert page.inner_text("[data-testid=parent-image]") == doc["asset_id"]
    page.screenshot(path=str(shots / "object.png"))


def _lasso(page: Any, points: list[tuple[float, float]]) -> None:
    box = page.locator("[data-testid=embedding-map]").bounding_box()
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in [*points[1:], points[0]]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")


def _inside(px: float, py: float, path: list[tuple[float, float]]) -> bool:
    hit, b = False, len(path) - 1
    for a in range(len(path)):
        (xa, ya), (xb, yb) = path[a], path[b]
        if (ya > py) != (yb > py) and px < (xb - xa) * (py - ya) / (yb - ya) + xa:
            hit = not hit
        b = a
    return hit


def test_embedding_map_lasso_saves_exactly_the_points_inside(loaded: Any, page: Any, shots: Path) -> None:
    import numpy as np

    server, seeded = loaded
    client = server.client()
    field = f"umap.{seeded.map_index}.coordinates"
    docs = client.search_meta("images", {"exists_filters": [{"field": field}]}, size=1000)
    _open(page, server, f"/app/embeddings?index={seeded.map_index}&colour=sensor", "[data-testid=embedding-map]")
    canvas = "[data-testid=embedding-map]"
    assert int(page.get_attribute(canvas, "data-points")) == len(docs) == len(seeded.frame_ids) + 2
    legend = page.eval_on_selector_all("[data-testid=legend] li", "ls => ls.map(l => l.dataset.value)")
    assert set(legend) == {d["sensor"] for d in docs}
    page.screenshot(path=str(shots / "embeddings.png"))
    # the lasso: a rectangle over the left half of the points (UMAP's layout differs from run to run, so the split
    # is found from the points); the stored coordinates are placed on the screen the way the page says it draws them
    box = page.locator(canvas).bounding_box()
    w, h = box["width"], box["height"]
    view = json.loads(page.get_attribute(canvas, "data-view"))
    size = min(1000, 700) * 0.92 * view["zoom"]
    sx, sy = size / 1000, size / 700
    screens = {}
    for d in docs:
        x, y = d["umap"][seeded.map_index]["coordinates"]
        u = float(np.float32((float(np.float32(x)) - view["minx"]) / view["span"] * 2 - 1))
        v = float(np.float32((float(np.float32(y)) - view["miny"]) / view["span"] * 2 - 1))
        screens[d["id"]] = ((((u - view["cx"]) * sx) + 1) / 2 * w, (1 - (v - view["cy"]) * sy) / 2 * h)
    xs = sorted(x for x, _ in screens.values())
    split = next((a + b) / 2 for a, b in zip(xs[len(xs) // 2 - 1 :], xs[len(xs) // 2 :], strict=False) if b - a > 2)
    path = [(2.0, 2.0), (split, 2.0), (split, h - 2), (2.0, h - 2)]
    _lasso(page, path)
    expected = {asset_id for asset_id, screen in screens.items() if _inside(*screen, path)}
    assert 0 < len(expected) < len(docs)
    page.wait_for_selector(f"[data-testid=map-count]:has-text('{len(expected)} selected')")
    shown = set(page.eval_on_selector_all("[data-testid=lasso-thumbnails] a", "as => as.map(a => a.dataset.id)"))
    assert shown == expected
    page.fill("input[name=new-set]", "lassoed on the map")
    page.click("[data-testid=selection-bar] button:has-text('New set')")
    page.wait_for_selector("[data-testid=selection-message].ok")
    (made,) = client.search_assets("sets", {"filters": [{"field": "name", "values": ["lassoed on the map"]}]})
    assert set(client.assets_in_set(made)) == expected
    # a plain drag pans the map
    page.mouse.move(box["x"] + w / 2, box["y"] + h / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + w / 2 + 100, box["y"] + h / 2, steps=5)
    page.mouse.up()
    page.wait_for_function(f"JSON.parse(document.querySelector('{canvas}').dataset.view).cx < 0")


# last: it signs the browser in as another user
def test_sign_in_refuses_a_bad_token_and_the_header_names_user_and_organization(loaded: Any, page: Any) -> None:
    server, _ = loaded
    admin = server.client()
    org = admin.add_organization("Lab B")["id"]
    user = admin.add_user("viewer@example.com", "viewer", "read_only_user", org)
    page.click("header button:has-text('Sign out')")
    page.wait_for_selector("input[name=token]")
    page.fill("input[name=token]", "not-a-token")
    page.click("button[type=submit]")
    page.wait_for_selector("form.signin .error")
    assert "Sign-in refused" in page.inner_text("form.signin .error")
    page.fill("input[name=token]", user["token"])
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=me]:has-text('viewer')")
    me = server.client(user["token"])._request("GET", "/auth")
    assert page.inner_text("[data-testid=me]") == f"viewer · {me['organization']}" and me["organization_id"] == org
    _open(page, server, "/app/", "[data-testid=count-images]")  # another organization: none of the data
    assert page.inner_text("[data-testid=count-images] .big") == "0"
