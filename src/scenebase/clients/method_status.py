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
        "path/bytes/url/uri; `annotations` linked to the image; `add_to_session` puts it on its session's timeline "
        "(media entity `image`); "
        "geo_field/shape_group_field/nested_fields are accepted and unneeded (every field is indexed)",
    ),
    "add_images": (
        "partial",
        "as add_image; bad files and refused annotations are skipped, logged and listed in `client.last_errors`; "
        "same content under a new id is ingested and listed in `client.last_duplicates`",
    ),
    "add_images_from_folder": (
        "works",
        "JPEG/PNG/TIFF by content or extension; bad files reported; extras: `recursive`, `id_from_relative_path`, "
        "folder-level `sensor`/`aux_metadata`/`timestamp`; relative paths kept and used as zip names",
    ),
    "add_session": ("works", "an existing name returns its uid with a warning; plus `raise_if_session_exists`"),
    "get_standardized_session_name": ("works", "the id rule: special characters to `_`, lower case"),
    "update_time_span": ("works", "times need a time zone; refused beyond 10,800 buckets"),
    "add_source_data": ("works", ""),
    "add_auxiliary_session_data": ("works", ""),
    "add_enrichments_configs": ("works", "location, visibility, weather (docs/sessions.md)"),
    "add_entity": ("works", "refused entities raise SessionError naming the problem"),
    "add_entities": ("works", "5,000 per request; the valid part is kept, rejects in `client.last_errors`"),
    "add_event_interval": ("works", ""),
    "add_event_intervals": ("works", "IndexError on length mismatch, InvalidTimeError when epsilon inverts one"),
    "add_comments": ("works", "a job writing `comment` and `commentator` entities"),
    "add_geolocation_entity": ("works", "enriched at resolution where the session configures enrichments"),
    "add_timeseries_csv": ("works", "needs pandas (`scenebase[pandas]`)"),
    "add_df": ("works", "column by column, not row by row; needs pandas; returns the resolution job id"),
    "resolve_session": ("works", "a `session_resolution` job"),
    "get_session_resolution_status": ("works", "`ready`, the pending job's status, or `unresolved`"),
    "delete_session": ("works", "a `session_deletion` job; media too with `delete_assets_contents`"),
    "download_timeseries": ("works", "plus `search_session_intervals` and `session_intervals_dataframe`"),
    "get_metadata": ("works", "`with_session_metadata=True` adds the session's entities / resolved values"),
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
        "works",
        "objects as crops (margins, output set), thumbnails cut on request; with `session_uid` each object is an "
        "`objects` event (`<label>.<sensor>.<provider>`) on the session's timeline",
    ),
    "compress_images": ("works", "presets tiny/small/full_size_png or desired_shape + thumbnail_tag"),
    "image_properties_enrichment": ("works", "mean_brightness, rms_contrast, variance_of_laplacian into aux"),
    "add_video": (
        "works",
        "path/url/uri; duration, fps, size, frame count, codec probed by the server (PyAV); `compress_video` makes "
        "poster thumbnails; `create_session` (returns `(id, session_uid)`) and `add_to_session` put it on a session "
        "timeline; `annotations` are linked to the video at their frames' times (start + frame / fps)",
    ),
    "add_videos": (
        "partial",
        "as add_video (annotations too); bad files and refused annotations are skipped, logged and listed in "
        "`client.last_errors`; `add_to_session` needs one shared session_uid",
    ),
    "submit_video_indexing_request": (
        "partial",
        "uploaded videos (raw_videos, video_session_data.asset_ids, video_filenames) onto a videos session, "
        "resolved; `extraction_config` / `session_formatting_strategy` are refused (not built)",
    ),
    "compress_videos": (
        "works",
        "H.264 MP4 renditions: presets tiny/small/full_size (as `video_<preset>`) or desired_shape + thumbnail_tag; "
        "`job_id` raises NotImplementedError",
    ),
    "concatenate_videos": ("works", "in order; remux when codecs match, else re-encode; `job_id`: NotImplementedError"),
    "extract_frame_thumbnails": ("works", "`<tag>_frame_<n>` thumbnails; frames past the end are refused by name"),
    "get_video_frame_thumbnail": ("works", "URL of the stored frame thumbnail (fetch with your token)"),
    "make_video_from_image_uris": (
        "partial",
        "http(s)/s3/file URIs or `scenebase://images/<id>`; `session_uid` is stored on the video, no session entity",
    ),
    "create_set": ("works", ""),
    "delete_set": ("works", "assets are kept; the set takes no new members once deletion starts"),
    "set_lock": ("works", ""),
    "set_unlock": ("works", ""),
    "set_is_locked": ("works", ""),
    "get_set_status": ("works", ""),
    "add_assets_to_set": ("works", "by ids or search; `limit` is a seeded random sample"),
    "remove_assets_from_set": ("works", ""),
    "assets_in_set": ("works", ""),
    "search_within_set": ("works", ""),
    "split_set": ("works", "FACTS 5.4 allocation; the returned subsets exist at once (a taken name: `SetsError`)"),
    "zip_set": ("works", "manifest.json, assets/, metadata/, annotations/"),
    "download_zipfile": ("works", "a zip lacking unreadable files warns (names in `client.last_errors`)"),
    "zip_set_and_download": ("works", "unreadable files: warning + `client.last_errors`, or `raise_on_partial_jobs`"),
    "search_assets": ("works", "FACTS 3 query + `ranges`; plain search capped at 10,000; `scan=True` streams all"),
    "search_meta": ("works", "`compress` is implicit (gzip on the wire)"),
    "summary_meta": ("works", "search, dimensions, nested_dimensions, max_size_for_agg (v0.2.81's custom buckets: no)"),
    "get_searchable_field_statistics": ("works", "type, count, min/max or top values per field"),
    "display_image": ("works", "web app image page with overlays; an unknown id raises"),
    "display_video": ("works", "web app video page; an unknown id raises"),
    "display_object": ("works", "web app object page; an unknown id raises"),
    "display_lidar": ("works", "web app LIDAR point-cloud page; an unknown id raises"),
    "add_lidar": (
        "partial",
        "pcd (ascii/binary/binary_compressed, legacy headers), numpy, binary and kitti by path/bytes/url/uri; "
        "starts compression (skip 1/10/100); `add_to_session` raises NotImplementedError",
    ),
    "add_lidars": ("partial", "as add_lidar; bad files are skipped, logged and listed in `client.last_errors`"),
    "compress_lidars": ("works", "renditions `thumbnails.skip_<s>` (SBPC layout, gzip); returns the job document"),
    "display_session": ("works", "web app session page; an unknown id raises"),
    "display_set": ("works", "web app set page; an unknown id raises"),
    "display_projects": ("partial", "the web app has no projects: the page says so"),
    "display_dashboard": ("works", "web app dashboard (one dashboard: the name is kept in the URL)"),
    "add_embeddings": (
        "partial",
        "bytes/numpy/list vectors; one call = one ndim and index_name; `create_umap=True` maps the space after "
        "indexing; `add_to_cache` is accepted and has no effect (there is no client cache)",
    ),
    "similarity_search_bulk_index": (
        "works",
        "FAISS in the data folder (HNSW below 50,000 vectors, IVF-Flat above), or pgvector with a PostgreSQL catalog",
    ),
    "search_similar_assets": (
        "works",
        "cosine similarity; excludes the query asset and deleted assets; extras: `search` filter, raw `vector`",
    ),
    "create_umap": (
        "works",
        "umap-learn fit on a `train_size` sample (exact neighbours), the rest placed on the map; "
        "`umap.<index_name>.coordinates` on every asset; `transform_only` reuses the saved map",
    ),
    "compare_sets": ("works", "sliced Wasserstein-1 (mean and std over seeds), one stored document per pair of sets"),
    "get_comparison_matrix": ("works", "the stored pair documents matching `search` / `index_name`"),
    "model_inference": (
        "partial",
        "`model='histogram'` with `obtain_embeddings=True` (256-d colour/intensity histogram, indexed for "
        "similarity search); mask_rcnn and stardist raise NotImplementedError",
    ),
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
