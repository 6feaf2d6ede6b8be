"""Every method of the seed's ``SceneEngineClient``, generated from its signatures by
``scripts/gen_missing_mixin.py``. ``SceneEngineClient`` overrides the methods that are built; the rest raise
``NotImplementedError`` and are marked missing in the README's status table (checked by a test).
"""

from __future__ import annotations

from typing import Any


def _missing(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"SceneEngineClient.{name} is not built yet in scenebase; see the README's method status table"
    )


class SeedSurface:
    """Placeholders for seed methods not built yet. Each raises ``NotImplementedError``."""

    def add_annotation(
        self,
        annotation,
        raw_annotation=None,
        update_asset=True,
        buffered_write=False,
        replace_sets=False,
        add_to_cache=False,
        annotation_to_objects=False,
        remove_asset_repeated_annotations=False,
    ) -> Any:
        raise _missing("add_annotation")

    def add_annotations(
        self,
        annotations,
        buffered_write=True,
        update_asset=True,
        raw_annotations=None,
        threading=True,
        disable_tqdm=False,
        replace_sets=False,
        cleanup_annotation_masks=False,
        remove_asset_repeated_annotations=False,
        session_uid=None,
        annotations_to_objects=False,
        add_to_cache=False,
        wait_for_annotations_to_objects_completion=False,
    ) -> Any:
        raise _missing("add_annotations")

    def add_assets_to_set(
        self,
        set_id,
        search=None,
        ids=None,
        limit=None,
        wait_for_availability=True,
        timeout=30,
        wait_for_completion=False,
    ) -> Any:
        raise _missing("add_assets_to_set")

    def add_auxiliary_session_data(self, session_uid, auxiliary_data, replace=True) -> Any:
        raise _missing("add_auxiliary_session_data")

    def add_coco_annotations_from_folder(
        self,
        file_path,
        provider,
        images_set_id,
        folder_path=None,
        version=None,
        annotation_group="ground_truth",
        session_uid=None,
        annotations_set_id=None,
        use_image_id_as_annotation_id=False,
        preprocesses=None,
        thumbnailize_at_ingest=False,
        annotation_to_objects=False,
        wait_for_completion=False,
    ) -> Any:
        raise _missing("add_coco_annotations_from_folder")

    def add_comments(self, comments, start_time, end_time, session_uid, wait_for_completion=False) -> Any:
        raise _missing("add_comments")

    def add_df(self, measurement_df, session_uid, timestamps=None) -> Any:
        raise _missing("add_df")

    def add_embeddings(
        self,
        embeddings,
        similarity_ingest=True,
        create_umap=True,
        wait_for_completion=False,
        add_to_cache=False,
        umap_params=None,
    ) -> Any:
        raise _missing("add_embeddings")

    def add_enrichments_configs(self, session_uid, enrichments_configs, replace=True) -> Any:
        raise _missing("add_enrichments_configs")

    def add_entities(self, entity_dicts) -> Any:
        raise _missing("add_entities")

    def add_entity(self, entity_dict, urgent=False) -> Any:
        raise _missing("add_entity")

    def add_event_interval(self, event_name, event_value, start_time, end_time, session_uid, urgent=False) -> Any:
        raise _missing("add_event_interval")

    def add_event_intervals(self, event_name, event_values, start_times, end_times, session_uid, epsilon=0) -> Any:
        raise _missing("add_event_intervals")

    def add_geolocation_entity(self, latitude, longitude, timestamp, session_uid) -> Any:
        raise _missing("add_geolocation_entity")

    def add_image(
        self,
        image_path=None,
        id=None,
        image_url=None,
        image_uri=None,
        image_bytes=None,
        sensor=None,
        timestamp=None,
        session_uid=None,
        set_id=None,
        annotations=None,
        preprocesses=None,
        aux_metadata=None,
        geo_field=None,
        shape_group_field=None,
        nested_fields=None,
        enrichments=None,
        add_to_session=False,
        thumbnailize_at_ingest=False,
        buffered_write=False,
        add_provider_to_labels=True,
        overwrite=True,
        add_to_cache=False,
    ) -> Any:
        raise _missing("add_image")

    def add_images(
        self,
        images,
        set_id,
        geo_field=None,
        shape_group_field=None,
        nested_fields=None,
        preprocesses=None,
        enrichments=None,
        add_to_session=False,
        thumbnailize_at_ingest=False,
        add_provider_to_labels=True,
        add_to_cache=False,
    ) -> Any:
        raise _missing("add_images")

    def add_images_from_folder(
        self,
        folder_path,
        set_id,
        session_uid=None,
        filename_image_id_map=None,
        preprocesses=None,
        thumbnailize_at_ingest=False,
    ) -> Any:
        raise _missing("add_images_from_folder")

    def add_lidar(
        self,
        set_id,
        lidar_path=None,
        lidar_url=None,
        lidar_uri=None,
        lidar_bytes=None,
        sensor=None,
        timestamp=None,
        session_uid=None,
        id=None,
        format="pcd",
        binary_format=None,
        num_fields=None,
        enrichments=None,
        buffered_write=False,
        add_to_session=False,
        add_to_cache=False,
        aux_metadata=None,
    ) -> Any:
        raise _missing("add_lidar")

    def add_lidars(self, lidars, set_id, enrichments=None, add_to_session=False, add_to_cache=False) -> Any:
        raise _missing("add_lidars")

    def add_organization(self, organization_name) -> Any:
        raise _missing("add_organization")

    def add_session(self, session_name, session_type="generic", resolution=None, session_aux_metadata=None) -> Any:
        raise _missing("add_session")

    def add_sets_to_project(self, project_id, sets, stage=0) -> Any:
        raise _missing("add_sets_to_project")

    def add_source_data(self, session_uid, source_data, sensors, replace=True) -> Any:
        raise _missing("add_source_data")

    def add_timeseries_csv(self, session_uid, csv_filepath, df_labels=None) -> Any:
        raise _missing("add_timeseries_csv")

    def add_user(self, email, username, role, organization_id) -> Any:
        raise _missing("add_user")

    def add_video(
        self,
        set_id,
        video_path=None,
        video_url=None,
        video_uri=None,
        sensor=None,
        start_timestamp=None,
        session_uid=None,
        id=None,
        annotations=None,
        aux_metadata=None,
        enrichments=None,
        tags=None,
        compress_video=True,
        buffered_write=False,
        add_to_session=False,
        create_session=False,
    ) -> Any:
        raise _missing("add_video")

    def add_videos(self, videos, set_id, enrichments=None, add_to_session=False, compress_videos=True) -> Any:
        raise _missing("add_videos")

    def annotations_to_objects(
        self,
        ids=None,
        search=None,
        create_objects=False,
        margin_ratio=0.1,
        output_set_id=None,
        margin_pixels=None,
        source_annotation_type=None,
        session_uid=None,
        add_to_session=True,
        wait_for_completion=True,
        progress_callback=None,
    ) -> Any:
        raise _missing("annotations_to_objects")

    def assets_in_set(self, set_id=None) -> Any:
        raise _missing("assets_in_set")

    def cleanup_assets_annotation_meta(self, asset_ids, asset_type) -> Any:
        raise _missing("cleanup_assets_annotation_meta")

    def clear_cache(self, all_organizations=False, partitions=None) -> Any:
        raise _missing("clear_cache")

    def compare_annotation_pairs(
        self,
        asset_id,
        asset_type,
        base_annotation_id=None,
        other_annotation_id=None,
        base_mapping=None,
        other_mapping=None,
        iou_threshold=None,
        match_labels=None,
        wait_for_completion=False,
    ) -> Any:
        raise _missing("compare_annotation_pairs")

    def compare_sets(self, sets, index_name, metric_type=None, metric_params=None, wait_for_completion=True) -> Any:
        raise _missing("compare_sets")

    def compress_images(self, ids, desired_shape=None, thumbnail_tag=None, use_preset=None) -> Any:
        raise _missing("compress_images")

    def compress_lidars(self, ids, skip_factors=None, gzip_compress=True) -> Any:
        raise _missing("compress_lidars")

    def compress_videos(self, ids, desired_shape=None, thumbnail_tag=None, use_preset=None, job_id=None) -> Any:
        raise _missing("compress_videos")

    def concatenate_videos(self, ids, output_video_id, video_metadata, job_id=None) -> Any:
        raise _missing("concatenate_videos")

    def create_annotation_instruction(
        self, name, key, annotator, annotation_type, payload, media_type="images", description=None
    ) -> Any:
        raise _missing("create_annotation_instruction")

    def create_config(self, name, type, config, description=None, **kwarg: Any) -> Any:
        raise _missing("create_config")

    def create_operation(self, name, operation_type, project_id, config, stage=0, description=None) -> Any:
        raise _missing("create_operation")

    def create_project(self, name, tags=None) -> Any:
        raise _missing("create_project")

    def create_set(
        self,
        name,
        asset_type,
        origin=None,
        description=None,
        expected_count=None,
        tags=None,
        id=None,
        aux_metadata=None,
        is_primary=False,
        raise_if_set_exists=False,
    ) -> Any:
        raise _missing("create_set")

    def create_umap(
        self,
        asset_type,
        index_name,
        search_dic=None,
        n_neighbors=20,
        min_dist=0.3,
        train_size=10000,
        progress_callback=None,
        transform_only=False,
        wait_for_completion=False,
    ) -> Any:
        raise _missing("create_umap")

    def delete_annotation_instruction(self, annotation_instruction_id) -> Any:
        raise _missing("delete_annotation_instruction")

    def delete_annotations(self, ids=None, search=None, wait_for_completion=True) -> Any:
        raise _missing("delete_annotations")

    def delete_config(self, config_id) -> Any:
        raise _missing("delete_config")

    def delete_operation(self, operation_id) -> Any:
        raise _missing("delete_operation")

    def delete_project(self, project_id) -> Any:
        raise _missing("delete_project")

    def delete_session(self, session_uid, delete_assets_contents=True, wait_for_completion=False) -> Any:
        raise _missing("delete_session")

    def delete_set(self, set_id, wait_for_completion=False) -> Any:
        raise _missing("delete_set")

    def display_dashboard(self, dashboard_name) -> Any:
        raise _missing("display_dashboard")

    def display_image(self, image_id) -> Any:
        raise _missing("display_image")

    def display_lidar(self, lidar_id) -> Any:
        raise _missing("display_lidar")

    def display_object(self, object_id) -> Any:
        raise _missing("display_object")

    def display_projects(self, project_id) -> Any:
        raise _missing("display_projects")

    def display_session(self, session_uid) -> Any:
        raise _missing("display_session")

    def display_set(self, set_id) -> Any:
        raise _missing("display_set")

    def display_video(self, video_id) -> Any:
        raise _missing("display_video")

    def download_timeseries(self, search_dic=None, fields=None) -> Any:
        raise _missing("download_timeseries")

    def download_zipfile(self, zip_id, output_filename=None) -> Any:
        raise _missing("download_zipfile")

    def extract_frame_thumbnails(self, ids, frames, thumbnail_tags=None, wait_for_completion=False) -> Any:
        raise _missing("extract_frame_thumbnails")

    def get_annotation_labels(self, search=None) -> Any:
        raise _missing("get_annotation_labels")

    def get_annotation_sources(self, search=None) -> Any:
        raise _missing("get_annotation_sources")

    def get_asset_manager(self, asset_type) -> Any:
        raise _missing("get_asset_manager")

    def get_comparison_matrix(self, search=None, index_name=None) -> Any:
        raise _missing("get_comparison_matrix")

    def get_config(self, config_id, complete_info=False) -> Any:
        raise _missing("get_config")

    def get_job(self, job_id) -> Any:
        raise _missing("get_job")

    def get_metadata(self, id, asset_type, with_session_metadata=False) -> Any:
        raise _missing("get_metadata")

    def get_operation_status(self, operation_id) -> Any:
        raise _missing("get_operation_status")

    def get_platform_version(self) -> Any:
        raise _missing("get_platform_version")

    def get_searchable_field_statistics(self, asset_type) -> Any:
        raise _missing("get_searchable_field_statistics")

    def get_session_resolution_status(self, session_uid) -> Any:
        raise _missing("get_session_resolution_status")

    def get_set_status(self, set_id) -> Any:
        raise _missing("get_set_status")

    def get_standardized_session_name(self, session_name) -> Any:
        raise _missing("get_standardized_session_name")

    def get_video_frame_thumbnail(self, video_id, frame, thumbnail_tag) -> Any:
        raise _missing("get_video_frame_thumbnail")

    def image_properties_enrichment(
        self,
        asset_type="images",
        properties=None,
        ids=None,
        search=None,
        wait_for_completion=False,
        progress_callback=None,
        additional_params=None,
    ) -> Any:
        raise _missing("image_properties_enrichment")

    def index_rosbag(
        self,
        sets_prefix,
        rosbag_uri=None,
        rosbag_path=None,
        session_name=None,
        session_uid=None,
        session_set_id=None,
        session_aux_metadata=None,
        deep_analysis=False,
        models=None,
        sensors=None,
        topics=None,
        session_resolution=1.0,
        image_skip_factor=10,
        indexing_parameters=None,
        wait_for_completion=False,
    ) -> Any:
        raise _missing("index_rosbag")

    def is_coco_annotation_file_valid(self, file_path) -> Any:
        raise _missing("is_coco_annotation_file_valid")

    def list_organizations(self) -> Any:
        raise _missing("list_organizations")

    def list_ownerships(self) -> Any:
        raise _missing("list_ownerships")

    def list_users(self) -> Any:
        raise _missing("list_users")

    def make_video_from_image_uris(
        self,
        timestamps_image_uris_csv_filepath,
        sensor,
        width,
        height,
        image_format,
        session_uid=None,
        video_id=None,
        tags=None,
        set_id=None,
        image_skip_factor=1,
        wait_for_completion=False,
    ) -> Any:
        raise _missing("make_video_from_image_uris")

    def model_inference(
        self,
        asset_type="images",
        ids=None,
        search=None,
        model="mask_rcnn",
        obtain_mask=False,
        obtain_bbox=False,
        obtain_object_entities=False,
        obtain_embeddings=False,
        threshold=None,
        classes_of_interest=None,
        wait_for_completion=False,
        progress_callback=None,
        additional_params=None,
    ) -> Any:
        raise _missing("model_inference")

    def modify_organization(self, organization_id, organization_name) -> Any:
        raise _missing("modify_organization")

    def modify_user(self, username, email=None, role=None, organization_id=None) -> Any:
        raise _missing("modify_user")

    def register_rosbag_session(
        self, session_name, session_directory_path=None, rosbag_ids=None, config_name=None, wait_for_completion=True
    ) -> Any:
        raise _missing("register_rosbag_session")

    def remove_annotation_sources(
        self, annotation_sources, asset_type, asset_filters=None, wait_for_completion=True
    ) -> Any:
        raise _missing("remove_annotation_sources")

    def remove_assets_from_set(
        self, search=None, ids=None, set_id=None, wait_for_availability=True, timeout=30, wait_for_completion=False
    ) -> Any:
        raise _missing("remove_assets_from_set")

    def remove_sets_from_project(self, project_id, sets) -> Any:
        raise _missing("remove_sets_from_project")

    def resolve_session(self, session_uid, resolution=None, wait_for_completion=False) -> Any:
        raise _missing("resolve_session")

    def search_assets(
        self, asset_type, search=None, size=50, offset=0, sort_field=None, sort_order=None, scan=False
    ) -> Any:
        raise _missing("search_assets")

    def search_meta(
        self, asset_type, query=None, size=50, offset=0, sort_field=None, sort_order=None, scan=False, compress=False
    ) -> Any:
        raise _missing("search_meta")

    def search_similar_assets(self, id, similar_asset_count=10, asset_type="images", embedding_space=None) -> Any:
        raise _missing("search_similar_assets")

    def search_within_set(self, set_id, search=None, show_meta=True) -> Any:
        raise _missing("search_within_set")

    def set_is_locked(self, set_id) -> Any:
        raise _missing("set_is_locked")

    def set_lock(self, set_id) -> Any:
        raise _missing("set_lock")

    def set_unlock(self, set_id) -> Any:
        raise _missing("set_unlock")

    def similarity_search_bulk_index(self, embedding_ids=None, search_dic=None, wait_for_completion=False) -> Any:
        raise _missing("similarity_search_bulk_index")

    def split_set(
        self, set_id, percentages_or_sections, subset_names, random_seed=42, wait_for_completion=False
    ) -> Any:
        raise _missing("split_set")

    def start_operation(self, operation_id, operation_step=None, wait_for_completion=False) -> Any:
        raise _missing("start_operation")

    def submit_video_indexing_request(
        self,
        session_name,
        video_session_data=None,
        video_filenames=None,
        raw_videos=None,
        session_formatting_strategy=None,
        extraction_config=None,
        wait_for_completion=True,
        retry=False,
        enrichments=None,
        session_uid=None,
    ) -> Any:
        raise _missing("submit_video_indexing_request")

    def summary_meta(self, asset_type, summary_request) -> Any:
        raise _missing("summary_meta")

    def update_artifact_path(self, artifacts_path) -> Any:
        raise _missing("update_artifact_path")

    def update_time_span(self, session_uid, session_start_time, session_end_time) -> Any:
        raise _missing("update_time_span")

    def whoami(self) -> Any:
        raise _missing("whoami")

    def with_auth(self, auth_token=None) -> Any:
        raise _missing("with_auth")

    def zip_set(self, set_id) -> Any:
        raise _missing("zip_set")

    def zip_set_and_download(self, set_id=None, filename=None) -> Any:
        raise _missing("zip_set_and_download")
