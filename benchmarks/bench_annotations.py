"""add_annotations throughput of ``scenebase serve`` on loopback, and set evaluation time (issue 9).

    python benchmarks/bench_annotations.py [--annotations 10000] [--repeat 3] [--backends sqlite,postgres]
                                           [--processes 1] [--skip-evaluation]

Per backend, starts ``scenebase serve`` (SQLite embedded, or a throwaway PostgreSQL cluster from
``tests/servers.py``), adds ``--annotations`` small images (32x24 JPEGs: the images are not what is measured) and
then, ``--repeat`` times, times ``client.add_annotations`` of one annotation of three boxes per image (each repeat
under new annotation ids, so every run writes new documents and links them to their image): annotations/s from
the call to its return (500 per request, 4 in flight, as the client does). Target: >= 2,000 annotations/s.

The evaluation part (``--skip-evaluation`` to leave it out) adds 2,000 images with 5,000 ground-truth and 5,000
predicted boxes (2.5 each on average; predictions are the truth shifted and rescaled at random, some missed, some
spurious, labels sometimes wrong, confidences random) and times ``client.evaluate_annotations`` from the call to
its return. Target: <= 5 s. Its figures are checked against pycocotools' COCOeval on the same boxes.

Prints a table and writes ``benchmarks/results/annotations.json``. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import io
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if importlib.util.find_spec("scenebase") is None:
    sys.path.insert(0, str(ROOT / "src"))

from PIL import Image as PILImage  # noqa: E402

from run import TOKEN, cpu_seconds, machine, serve_process, with_postgres_server, write_report  # noqa: E402
from scenebase.clients.scene_engine_client import SceneEngineClient  # noqa: E402
from scenebase.models.annotation import BoundingBox, BoundingBoxAnnotation  # noqa: E402
from scenebase.models.assets import Image  # noqa: E402

RESULTS = HERE / "results"
LABELS = ["car", "truck", "pedestrian", "cyclist", "bus", "traffic_sign"]
ADD_TARGET = 2000.0  # annotations/s
EVAL_TARGET_S = 5.0
SEED = 9
W, H = 640, 480


def tiny_jpegs(n: int, tag: str) -> list[bytes]:
    """``n`` small JPEGs that differ in a comment (``tag`` and a number): identical files would each get a
    duplicate-content warning."""
    buf = io.BytesIO()
    PILImage.new("RGB", (32, 24), (90, 120, 150)).save(buf, "JPEG")
    data = buf.getvalue()
    return [data[:2] + _comment(f"scenebase bench {tag} {i}".encode()) + data[2:] for i in range(n)]


def _comment(text: bytes) -> bytes:
    """A JPEG COM segment (marker, big-endian length including itself, text), placed right after SOI."""
    return b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text


def random_boxes(
    rng: random.Random, n: int, width: int = W, height: int = H
) -> list[tuple[str, float, float, float, float]]:
    out = []
    for _ in range(n):
        w, h = rng.uniform(10, width / 3), rng.uniform(10, height / 3)
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        out.append((rng.choice(LABELS), x, y, w, h))
    return out


def box_annotations(image_ids: list[str], run: int) -> list[BoundingBoxAnnotation]:
    rng = random.Random(SEED + run)
    anns = []
    for image_id in image_ids:
        shapes = [BoundingBox(label=lab, x_min=x, x_max=x + w, y_min=y, y_max=y + h, confidence=round(rng.random(), 3))
                  for lab, x, y, w, h in random_boxes(rng, 3, 32, 24)]  # fmt: skip
        anns.append(BoundingBoxAnnotation(shapes, image_id=image_id, id=f"{image_id}_run{run}", provider="bench",
                                          version=f"r{run}"))  # fmt: skip
    return anns


def add_images(client: SceneEngineClient, set_name: str, n: int, size: tuple[int, int] | None = None) -> list[str]:
    set_id = client.create_set(set_name, "images")
    images = [Image(id=f"{set_name}_{i:06d}", bytes=data) for i, data in enumerate(tiny_jpegs(n, set_name))]
    ids = client.add_images(images, set_id)
    if len(ids) != n:
        raise RuntimeError(f"only {len(ids)} of {n} images were added: {client.last_errors[:3]}")
    return ids


def bench_add(
    client: SceneEngineClient, n: int, repeat: int, server_pid: int, postgres_pid: int | None = None
) -> list[dict[str, Any]]:
    """``postgres_pid``: the postmaster, whose processes' CPU is reported too (they share the machine's cores)."""
    image_ids = add_images(client, f"ann_bench_{int(time.time())}", n)
    rows = []
    for run in range(repeat):
        anns = box_annotations(image_ids, run)
        pg0 = cpu_seconds(postgres_pid) if postgres_pid else 0.0
        cpu0, client0, t0 = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
        added = client.add_annotations(anns, disable_tqdm=True)
        secs = time.perf_counter() - t0
        server_cpu, client_cpu = cpu_seconds(server_pid) - cpu0, time.process_time() - client0
        pg_cpu = cpu_seconds(postgres_pid) - pg0 if postgres_pid else None
        if len(added) != n:
            raise RuntimeError(f"run {run}: {len(added)} of {n} annotations added: {client.last_errors[:3]}")
        rows.append({"run": run, "annotations": n, "boxes": 3 * n, "seconds": round(secs, 2), "per_s": round(n / secs),
                     "server_cpu_s": round(server_cpu, 2), "client_cpu_s": round(client_cpu, 2),
                     "per_server_cpu_s": round(n / server_cpu) if server_cpu else None,
                     "postgres_cpu_s": None if pg_cpu is None else round(pg_cpu, 2)})  # fmt: skip
        pg = "" if pg_cpu is None else f", PostgreSQL CPU {pg_cpu:.2f} s"
        print(
            f"    run {run}: {n:,} annotations in {secs:.2f} s = {n / secs:,.0f}/s; server CPU {server_cpu:.2f} s "
            f"({n / max(server_cpu, 1e-9):,.0f} per CPU second), client CPU {client_cpu:.2f} s{pg}",
            flush=True,
        )
    img = client.get_metadata(image_ids[0], "images")
    if len(img.get("annotations") or []) != repeat:
        raise RuntimeError(f"{image_ids[0]} lists {img.get('annotations')}, expected {repeat} annotations")
    return rows


def evaluation_data(n_images: int, n_boxes: int) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Ground truth and predictions per image: ``{image: [(label, x, y, w, h, confidence)]}``."""
    rng = random.Random(SEED)
    counts = [0] * n_images
    for _ in range(n_boxes):
        counts[rng.randrange(n_images)] += 1
    truth: dict[str, list[Any]] = {}
    preds: dict[str, list[Any]] = {}
    for i, k in enumerate(counts):
        image = f"eval_{i:06d}"
        truth[image] = [(*b, None) for b in random_boxes(rng, k)]
        preds[image] = []
    spurious = 0
    for image, gts in truth.items():
        for lab, x, y, w, h, _ in gts:
            if rng.random() < 0.1:
                spurious += 1  # missed: a spurious box elsewhere keeps the prediction count at n_boxes
                continue
            label = lab if rng.random() > 0.1 else rng.choice(LABELS)
            dx, dy, s = rng.gauss(0, w * 0.08), rng.gauss(0, h * 0.08), rng.uniform(0.85, 1.15)
            preds[image].append((label, max(0.0, x + dx), max(0.0, y + dy), w * s, h * s, round(rng.random(), 4)))
    images = list(truth)
    for _ in range(spurious):
        lab, x, y, w, h = random_boxes(rng, 1)[0]
        preds[rng.choice(images)].append((lab, x, y, w, h, round(rng.random() * 0.5, 4)))
    return truth, preds


def _annotations(per_image: dict[str, list[Any]], provider: str, group: str) -> list[BoundingBoxAnnotation]:
    out = []
    for image, boxes in per_image.items():
        shapes = [BoundingBox(label=lab, x_min=x, x_max=x + w, y_min=y, y_max=y + h, confidence=c)
                  for lab, x, y, w, h, c in boxes]  # fmt: skip
        out.append(BoundingBoxAnnotation(shapes, image_id=image, provider=provider, annotation_group=group))
    return out


def bench_evaluation(client: SceneEngineClient, n_images: int = 2000, n_boxes: int = 5000) -> dict[str, Any]:
    truth, preds = evaluation_data(n_images, n_boxes)
    set_id = client.create_set(f"eval_{int(time.time())}", "images")
    files = tiny_jpegs(len(truth), "eval")
    client.add_images([Image(id=i, bytes=data) for i, data in zip(truth, files, strict=True)], set_id)
    client.add_annotations(_annotations(truth, "truth", "ground_truth"), disable_tqdm=True)
    client.add_annotations(_annotations(preds, "model", "model_generated"), disable_tqdm=True)
    t0 = time.perf_counter()
    result = client.evaluate_annotations(set_id, ground_truth={"provider": "truth"}, predictions={"provider": "model"})
    secs = time.perf_counter() - t0
    reference = cocoeval_reference(truth, preds)
    return {"images": n_images, "ground_truth_boxes": n_boxes, "predicted_boxes": sum(map(len, preds.values())),
            "seconds": round(secs, 2), "mAP": result["mAP"], "AP50": result["AP50"],
            "pycocotools_mAP": reference[0], "pycocotools_AP50": reference[1]}  # fmt: skip


def cocoeval_reference(truth: dict[str, list[Any]], preds: dict[str, list[Any]]) -> tuple[float, float]:
    """mAP@[.5:.95] and AP50 of pycocotools' COCOeval run directly on the boxes as generated (not as stored)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cat = {lab: k + 1 for k, lab in enumerate(sorted(LABELS))}
    img = {name: k + 1 for k, name in enumerate(sorted(truth))}
    gt: dict[str, Any] = {"images": [{"id": i} for i in img.values()],
                          "categories": [{"id": c} for c in cat.values()], "annotations": []}  # fmt: skip
    for name, boxes in truth.items():
        for lab, x, y, w, h, _ in boxes:
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": img[name], "category_id": cat[lab],
                                      "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})  # fmt: skip
    dets = [{"image_id": img[name], "category_id": cat[lab], "bbox": [x, y, w, h], "score": score}
            for name, boxes in preds.items() for lab, x, y, w, h, score in boxes]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--processes", type=int, default=1, help="scenebase serve processes (default 1)")
    parser.add_argument("--skip-evaluation", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS / "annotations.json")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    started = time.monotonic()
    load = [round(x, 2) for x in os.getloadavg()]
    report: dict[str, Any] = {"machine": machine(), "load_average_at_start_1_5_15_min": load, "backends": {}}
    for backend in backends:
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scenebase-bench-ann-")))
            env = {"SCENEBASE_WORKERS": "2", "SCENEBASE_PROCESSES": str(args.processes)}
            pg_pid = None
            if backend == "postgres":
                env["SCENEBASE_CATALOG_URL"], pg_pid = stack.enter_context(with_postgres_server(tmp))
            url, proc = stack.enter_context(serve_process(tmp / "data", env))
            client = SceneEngineClient(auth_token=TOKEN, scene_engine_url=url)
            print(f"  {backend}: add_annotations of {args.annotations:,} annotations x {args.repeat}", flush=True)
            entry: dict[str, Any] = {"add": bench_add(client, args.annotations, args.repeat, proc.pid, pg_pid)}
            if not args.skip_evaluation:
                print(f"  {backend}: evaluation of 2,000 images", flush=True)
                entry["evaluation"] = bench_evaluation(client)
                print(f"    {entry['evaluation']}", flush=True)
            report["backends"][backend] = entry
    print()
    print("backend     runs  median annotations/s  target  met")
    for backend, entry in report["backends"].items():
        rates = [r["per_s"] for r in entry["add"]]
        med = statistics.median(rates)
        met = "yes" if med >= ADD_TARGET else "NO"
        print(f"{backend:<10}  {len(rates):>4}  {med:>20,.0f}  {ADD_TARGET:>6,.0f}  {met}")
        ev = entry.get("evaluation")
        if ev:
            met = "yes" if ev["seconds"] <= EVAL_TARGET_S else "NO"
            print(f"{backend:<10}  evaluation {ev['seconds']:.2f} s (target {EVAL_TARGET_S:.0f} s: {met})")
            print(f"            mAP {ev['mAP']:.4f} vs pycocotools {ev['pycocotools_mAP']:.4f}, "
                  f"AP50 {ev['AP50']:.4f} vs {ev['pycocotools_AP50']:.4f}")  # fmt: skip
    report.update(date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                  load_average_at_end_1_5_15_min=[round(x, 2) for x in os.getloadavg()],
                  wall_seconds=round(time.monotonic() - started, 1))  # fmt: skip
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
