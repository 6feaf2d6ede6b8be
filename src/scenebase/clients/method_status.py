"""Which seed methods work, which are partial, which are missing. The README's table is generated from
here (``scenebase docs methods``) and tests check it against the code: a method listed as works/partial
must be implemented by ``SceneEngineClient``; every other seed method must raise ``NotImplementedError``."""

from __future__ import annotations

from scenebase.clients._seed_surface import SeedSurface

#: method -> (status, note). Methods absent here are missing.
BUILT: dict[str, tuple[str, str]] = {
    "whoami": ("works", "`GET /auth`"),
    "with_auth": ("works", ""),
    "get_platform_version": ("works", "`GET /status`"),
    "update_artifact_path": ("works", ""),
    "get_job": ("works", "`Job` with status/progress/stage/notes and `wait()`"),
    "add_user": ("works", "token returned once; stored hashed"),
    "modify_user": ("works", ""),
    "list_users": (
        "partial",
        "tokens are stored hashed, so `token` shows only its public `<org>-<user>-…` prefix (`…` for an operator's)",
    ),
    "add_organization": ("works", "superadmin only; the id is the name plus 12 random hex characters"),
    "list_organizations": ("works", "superadmin sees all, others their own"),
    "modify_organization": ("works", "superadmin only"),
    "list_ownerships": ("works", "plus `add_ownership` / `revoke_ownership`"),
    "clear_cache": ("works", "clears the server's derived-data caches"),
    "get_asset_manager": (
        "works",
        "`AssetManagerClient`: search, count, exists, get/update metadata, put/get file, delete (README)",
    ),
    "add_image": (
        "partial",
        "path/bytes/url/uri; `annotations` linked to the image; `add_to_session` raises NotImplementedError; "
        "geo_field/shape_group_field/nested_fields are accepted and unneeded (every field is indexed)",
    ),
    "add_images": (
        "partial",
        "as add_image; bad files and refused annotations are skipped, logged and listed in `client.last_errors`",
    ),
    "add_annotation": ("works", "raw file (path, bytes, text, url, uri) and masks stored as blobs"),
    "add_annotations": (
        "works",
        "500 per request, 4 in flight, tqdm; per-annotation errors in `client.last_errors`; links parents "
        "(annotations, annotations_meta, aux.labels, aux.labels_<provider>)",
    ),
    "get_annotation_sources": ("works", "from the images' annotations_meta"),
    "get_annotation_labels": ("works", ""),
    "delete_annotations": ("works", "a job that also cleans the parents (lists and labels)"),
    "remove_annotation_sources": ("works", "provider + optional version/type/group, on assets matching a search"),
    "cleanup_assets_annotation_meta": ("works", "also recomputes `aux.labels_<provider>`"),
    "is_coco_annotation_file_valid": ("works", "static; the three lists must be there"),
    "add_coco_annotations_from_folder": (
        "works",
        "beyond the seed: every polygon, RLE masks, keypoints as poses, captions, panoptic records; bad entries "
        "named and skipped; returns counts; `export_coco_dataset` / `export_yolo_dataset` export a set",
    ),
    "compare_annotation_pairs": (
        "works",
        "boxes and polygons, greedy one-to-one by IoU; results in `annotations_comparisons`; "
        "`evaluate_annotations` evaluates a whole set (mAP as pycocotools computes it)",
    ),
    "annotations_to_objects": (
        "partial",
        "objects as crops (margins, output set), thumbnails cut on request; adding them to a session raises "
        "(sessions not built)",
    ),
    "add_images_from_folder": ("works", "JPEG/PNG/TIFF by content or extension; bad files reported"),
    "get_metadata": ("partial", "`with_session_metadata=True` raises NotImplementedError (sessions not built)"),
    "compress_images": ("works", "presets tiny/small/full_size_png or desired_shape + thumbnail_tag"),
    "image_properties_enrichment": ("works", "mean_brightness, rms_contrast, variance_of_laplacian into aux"),
    "create_set": ("works", ""),
    "delete_set": ("works", "assets are kept"),
    "set_lock": ("works", ""),
    "set_unlock": ("works", ""),
    "set_is_locked": ("works", ""),
    "get_set_status": ("works", ""),
    "add_assets_to_set": ("works", "by ids or search; `limit` is a seeded random sample"),
    "remove_assets_from_set": ("works", ""),
    "assets_in_set": ("works", ""),
    "search_within_set": ("works", ""),
    "split_set": ("works", "FACTS 5.4 allocation; returns subset ids"),
    "zip_set": ("works", "manifest.json, assets/, metadata/, annotations/"),
    "download_zipfile": ("works", ""),
    "zip_set_and_download": ("works", ""),
    "search_assets": ("works", "FACTS 3 query + `ranges`; plain search capped at 10,000; `scan=True` streams all"),
    "search_meta": ("works", "`compress` is implicit (gzip on the wire)"),
    "summary_meta": ("works", "search, dimensions, nested_dimensions, max_size_for_agg (v0.2.81's custom buckets: no)"),
    "get_searchable_field_statistics": ("works", "type, count, min/max or top values per field"),
    "display_image": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_video": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_object": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_lidar": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_session": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_set": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_projects": ("partial", "returns the web-app URL; the web app itself is not built yet"),
    "display_dashboard": ("partial", "returns the web-app URL; the web app itself is not built yet"),
}


def seed_methods() -> list[str]:
    return sorted(n for n, v in vars(SeedSurface).items() if callable(v) and not n.startswith("_"))


def method_status() -> dict[str, tuple[str, str]]:
    return {name: BUILT.get(name, ("missing", "")) for name in seed_methods()}


def status_table() -> str:
    rows = ["| method | status | notes |", "|---|---|---|"]
    for name, (status, note) in method_status().items():
        rows.append(f"| `{name}` | {status} | {note} |")
    counts = {s: sum(1 for v in method_status().values() if v[0] == s) for s in ("works", "partial", "missing")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    return "\n".join(rows) + f"\n\n{len(seed_methods())} seed methods: {summary}.\n"
