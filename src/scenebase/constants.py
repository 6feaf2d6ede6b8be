"""Constants with the seed's names (``scenebox.constants``), so ported scripts keep working."""

from __future__ import annotations


class AssetsConstants:
    SESSIONS_ASSET_ID = "sessions"
    ANNOTATION_PROJECTS_ASSET_ID = "annotation_projects"
    ANNOTATIONS_ASSET_ID = "annotations"
    ANNOTATIONS_COMPARISONS_ASSET_ID = "annotations_comparisons"
    CONFIGS_ASSET_ID = "configs"
    IMAGES_ASSET_ID = "images"
    OBJECTS_ASSET_ID = "objects"
    LIDARS_ASSET_ID = "lidars"
    VIDEOS_ASSET_ID = "videos"
    ROSBAGS_ASSET_ID = "rosbags"
    SETS_ASSET_ID = "sets"
    SETS_COMPARISONS_ASSET_ID = "sets_comparisons"
    PROJECTS_ASSET_ID = "projects"
    OPERATIONS_ASSET_ID = "operations"
    JOBS_ASSET_ID = "jobs"
    ZIPFILES_ASSET_ID = "zipfiles"
    ZIPARRAYS_ASSET_ID = "ziparrays"
    SESSION_CONFIGURATIONS_ASSET_ID = "session_configurations"
    SESSION_MANAGER_ASSET_ID = "session_manager"
    IMAGE_SEQUENCES_ASSET_ID = "image_sequences"
    LIDAR_SEQUENCES_ASSET_ID = "lidar_sequences"
    EMBEDDINGS_ASSET_ID = "embeddings"
    UDFS_ASSET_ID = "udfs"

    VALID_ASSETS = (
        "sessions", "annotation_projects", "annotations", "annotations_comparisons", "configs", "images",
        "objects", "lidars", "videos", "rosbags", "sets", "sets_comparisons", "projects", "operations", "jobs",
        "zipfiles", "ziparrays", "session_configurations", "session_manager", "image_sequences",
        "lidar_sequences", "embeddings", "udfs",
    )  # fmt: skip
    METADATA_ONLY_ASSETS = (
        "sessions", "annotation_projects", "configs", "sets_comparisons", "projects", "operations", "jobs",
        "session_configurations", "session_manager", "lidar_sequences", "annotations_comparisons", "objects",
    )  # fmt: skip
    PRIMARY_ASSETS = ("images", "objects", "videos", "lidars")


class SetsAssets:
    VALID_ASSET_TYPES = (
        "images",
        "objects",
        "videos",
        "rosbags",
        "sessions",
        "lidars",
        "annotations",
        "ziparrays",
    )


class SetTags:
    PRIMARY = "primary"
    AUTOMATICALLY_GENERATED = "automatically-generated"
    EXTRACTION = "extraction"
    ANNOTATION = "annotation"


class SetStatus:
    READY = "ready"
    BEING_DELETED = "being deleted"
    MOVING_ASSETS = "moving assets"
    BEING_ZIPPED = "being zipped"
    BEING_POPULATED = "being populated"


class JobConstants:
    STATUS_QUEUED = "queued"
    STATUS_RUNNING = "running"
    STATUS_FINISHED = "finished"
    STATUS_ABORTED = "aborted"
    VALID_STATUSES = (STATUS_QUEUED, STATUS_RUNNING, STATUS_FINISHED, STATUS_ABORTED)

    TAG_USER_FACING = "user_facing"
    TAG_RESUBMITTABLE = "resubmittable"

    VALID_JOB_TYPES = (
        "media_extraction", "set_addition", "set_removal", "zipping", "session_resolution", "session_deletion",
        "event_deletion", "media_removal", "enrichment", "image_compression", "lidar_compression",
        "video_compression", "video_concatenation", "synthetic_indexing", "coco_formatting", "video_extraction",
        "image_extraction", "lidar_extraction", "geo_extraction", "generic_extraction", "session_registration",
        "video_indexing", "rosbag_indexing", "add_event_with_search", "coordinate_interaction",
        "compare_annotations", "calculate_performance_metrics", "compare_sets", "similarity_bulk_index",
        "annotation_process", "image_inference", "umap_creation", "add_images_with_uris",
        "image_properties_enrichment", "scripts", "webhook", "ingestion", "notification", "integration_test",
        "streamable_set_sharding", "entity_modification", "set_versioning_init_and_commit", "split_sets",
        "set_deletion", "annotations_to_objects", "annotation_deletion", "embedding_removal",
    )  # fmt: skip


class SessionTypes:
    ROSBAGS = "rosbags"
    VIDEOS = "videos"
    GENERIC = "generic"
    VALID_TYPES = (ROSBAGS, VIDEOS, GENERIC)


class SessionStatuses:
    IN_PROGRESS = "in progress"
    READY = "ready"
    VALID_STATUSES = (IN_PROGRESS, READY)


class SessionConstants:
    #: seconds per timeline bucket when a session names none (C:16)
    DEFAULT_RESOLUTION = 1.0
    #: a session spans at most this many buckets (3 h at 1 s) (C:15)
    MAX_SESSION_BUCKETS = 10_800


class EntityTypes:
    GEO = "geo"
    SCALAR = "scalar"
    VECTOR = "vector"
    STATE = "state"
    STATE_SET = "state_set"
    STATE_VECTOR = "state_vector"
    MEDIA = "media"
    VALID_TYPES = (GEO, SCALAR, VECTOR, STATE, STATE_SET, STATE_VECTOR)


class EntityInfluenceTypes:
    POINT = "point"
    LINEAR_INTERPOLATION = "linear_interpolation"
    LINEAR_INTERPOLATION_INTEGER = "linear_interpolation_integer"
    GEO_INTERPOLATION = "geo_interpolation"
    INTERVAL = "interval"
    START_STOP = "start_stop"
    AFFECT_FORWARD = "affect_forward"
    AFFECT_BACKWARD = "affect_backward"
    VALID_TYPES = (POINT, LINEAR_INTERPOLATION, LINEAR_INTERPOLATION_INTEGER, GEO_INTERPOLATION, INTERVAL,
                   START_STOP, AFFECT_FORWARD, AFFECT_BACKWARD)  # fmt: skip


class EntityNames:
    WEATHER_CONDITIONS = "weather_conditions"
    OBJECTS = "objects"
    IMAGE = "image"
    VIDEO = "video"
    LIDAR = "lidar"
    ZIPARRAY = "ziparray"
    GEOLOCATION = "geolocation"
    COMMENT = "comment"
    COMMENTATOR = "commentator"
    NUMBER_OF_OBJECTS = "number_of_objects"


class SensorTypes:
    CAMERA = "camera"
    LIDAR = "lidar"
    RADAR = "radar"
    GPS = "gps"
    IMU = "imu"
    GENERIC = "generic"
    VALID_TYPES = (CAMERA, LIDAR, RADAR, GPS, IMU, GENERIC)


class EnrichmentTypes:
    LOCATION = "location"
    MRCNN_OBJECT_DETECTION = "mrcnn_object_detection"
    VISIBILITY = "visibility"
    WEATHER = "weather"
    VALID_TYPES = (LOCATION, MRCNN_OBJECT_DETECTION, VISIBILITY, WEATHER)


class AuxiliaryDataTypes:
    CONCATENATED_VIDEO = "concatenated_video"
    EGO_POSE = "ego_pose"


class Roles:
    SUPERADMIN = "superadmin"
    ADMIN = "admin"
    TESTER = "tester"
    HEALTH_CHECKER = "health_checker"
    DATA_PROVIDER = "data_provider"
    DATA_USER = "data_user"
    PUBLIC_USER = "public_user"
    READ_ONLY_USER = "read_only_user"


class SearchableFieldTypes:
    TIME = "time"
    TAG = "tag"
    TEXT = "text"
    NUMBER = "number"
    GEO = "geo"
    BOOLEAN = "boolean"
    DICT = "dict"
    NESTED = "nested"


class ThumbnailTags:
    TINY = "tiny"
    SMALL = "small"
    FULL_SIZE_PNG = "full_size_png"


class ImagePreprocesses:
    NORMALIZE_THUMBNAIL_COLORS = "normalize_thumbnail_colors"


class ImageProperties:
    MEAN_BRIGHTNESS = "mean_brightness"
    RMS_CONTRAST = "rms_contrast"
    VARIANCE_OF_LAPLACIAN = "variance_of_laplacian"
    VALID = (MEAN_BRIGHTNESS, RMS_CONTRAST, VARIANCE_OF_LAPLACIAN)


#: start and end of time sentinels (FACTS 1.2)
START_OF_TIME = "1970-01-01T00:00:00+00:00"
END_OF_TIME = "2070-01-01T00:00:00+00:00"

VALID_IMAGE_EXTENSIONS = ("jpeg", "jpg", "png", "tif", "tiff")


class AnnotationTypes:
    """Values of ``annotation_type`` (FACTS 6.1)."""

    SEGMENTATION = "segmentation"
    TWO_D_BOUNDING_BOX = "two_d_bounding_box"
    TWO_D_CUBOID = "two_d_cuboid"
    THREE_D_CUBOID = "three_d_cuboid"
    POINT = "point"
    POLYGON = "polygon"
    LINE = "line"
    CLASSIFICATION = "classification"
    MIXED = "mixed"
    CUSTOM = "custom"
    TWO_D_POSE = "two_d_pose"
    ELLIPSE = "ellipse"
    VALID_TYPES = (
        SEGMENTATION, TWO_D_BOUNDING_BOX, TWO_D_CUBOID, THREE_D_CUBOID, POINT, POLYGON, LINE, CLASSIFICATION, MIXED,
        CUSTOM, TWO_D_POSE, ELLIPSE,
    )  # fmt: skip


class AnnotationMediaTypes:
    IMAGE = "images"
    VIDEO = "videos"
    LIDAR = "lidars"
    IMAGE_SEQUENCE = "image_sequences"
    LIDAR_SEQUENCE = "lidar_sequences"
    VALID_TYPES = (IMAGE, VIDEO, LIDAR, IMAGE_SEQUENCE, LIDAR_SEQUENCE)


class AnnotationGroups:
    GROUND_TRUTH = "ground_truth"
    MODEL_GENERATED = "model_generated"
    OTHER = "other"
    VALID_GROUPS = (GROUND_TRUTH, MODEL_GENERATED, OTHER)


class AnnotationTags:
    EMPTY = "empty"
    CLEANED = "cleaned"


class COCOAnnotations:
    """The keys a COCO annotation file must have, each a list (FACTS 6.5)."""

    IMAGES = "images"
    CATEGORIES = "categories"
    ANNOTATIONS = "annotations"
    KEYS = (IMAGES, CATEGORIES, ANNOTATIONS)


class ComparisonConstants:
    """Defaults of annotation comparison (FACTS 6.9)."""

    DEFAULT_LABEL_MAPPING = {
        "vehicle.car": "car",
        "human.pedestrian.adult": "person",
        "pedestrian": "person",
        "vehicle.bus.rigid": "bus",
        "vehicle.truck": "truck",
        "human.pedestrian.construction_worker": "person",
    }
    IGNORED_LABELS = ("background", "blank")
    DEFAULT_IOU_THRESHOLD = 0.0
    NOT_AVAILABLE = "N/A"
