"""Bodies of ``/v1/annotations`` (FACTS 6).

The job requests (annotations_to_objects, compare_annotation_pairs, evaluate, coco_datasets) are taken as sent and
checked by their services, whose messages name the offending key: the request models here document them only.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from scenebase.api.schemas.common import ResponseModel, as_sent, inline_schema
from scenebase.api.schemas.media import ItemError
from scenebase.api.schemas.search import SearchQuery


class AnnotationsAdded(ResponseModel):
    """200 when every annotation was stored, 207 when some were not."""

    ids: list[str | None] = Field(description="Per entry, in request order: the annotation's id, or null.")
    errors: list[ItemError] = Field(description="The entries that failed (empty with 200).")
    job_ids: list[str] = Field(description="Jobs started by the request (e.g. annotations_to_objects).")


class AnnotationSource(ResponseModel):
    provider: str | None
    version: str | float | None
    annotation_group: str | None
    annotation_type: str | None


class AnnotationMetaCleaned(ResponseModel):
    cleaned: int = Field(description="Assets whose annotation lists changed.")


class LabelScores(ResponseModel):
    true_positive: int
    false_positive: int
    false_negative: int
    precision: float | str = Field(description='A number, or "N/A" where undefined.')
    recall: float | str
    f1: float | str
    AP: float | str = Field(description='COCO AP of the label, or "N/A".')


class Evaluation(ResponseModel):
    """Predictions against ground truth; the totals over every label are at the top level."""

    images: int
    ground_truth: int = Field(description="Ground-truth shapes.")
    predictions: int = Field(description="Predicted shapes.")
    iou_threshold: float
    mAP: float = Field(description="COCO mAP@[.5:.95] (pycocotools' COCOeval).")
    AP50: float
    per_label: dict[str, LabelScores]
    true_positive: int
    false_positive: int
    false_negative: int
    precision: float | str
    recall: float | str
    f1: float | str


class CocoFile(ResponseModel):
    """A COCO dictionary (instances, keypoints, captions; masks as RLE)."""

    info: dict[str, Any] | None = None
    licenses: list[dict[str, Any]] | None = None
    images: list[dict[str, Any]]
    annotations: list[dict[str, Any]]
    categories: list[dict[str, Any]]


class CocoDatasetStored(ResponseModel):
    id: str = Field(description="Id of the stored `configs` document.")


# ------------------------------------------------------------------------------------- request documentation


class AnnotationEntry(BaseModel):
    """An annotation document (FACTS 6: ``asset_id``, ``provider``, ``annotation_type``, ``annotation_entities``,
    ...) and, optionally, where its raw file and masks are."""

    model_config = ConfigDict(extra="allow")
    raw_annotation_text: str | None = Field(None, description="The raw annotation itself (e.g. a COCO entry).")
    raw_annotation_url: str | None = None
    raw_annotation_uri: str | None = None
    raw_file: str | None = Field(None, description="Multipart only: the file part holding the raw annotation.")
    mask_files: dict[str, str] | None = Field(None, description="Multipart only: mask id -> file part (PNG).")


class AddAnnotationsRequest(BaseModel):
    """The JSON body, or the ``manifest`` part of a multipart request."""

    model_config = ConfigDict(extra="forbid")
    annotations: list[AnnotationEntry] = Field(description="1 to 1000 annotations.")
    update_asset: bool | None = None
    replace_sets: bool | None = None
    remove_asset_repeated_annotations: bool | None = None
    add_provider_to_labels: bool | None = None
    annotations_to_objects: bool | None = None
    session_uid: str | None = None


ADD_ANNOTATIONS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(AddAnnotationsRequest)},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["manifest"],
                    "properties": {"manifest": inline_schema(AddAnnotationsRequest)},
                    "additionalProperties": {
                        "type": "string",
                        "format": "binary",
                        "description": "A raw file or mask, named by an entry's `raw_file` or `mask_files`.",
                    },
                },
                "encoding": {"manifest": {"contentType": "application/json"}},
            },
        },
    }
}


class AnnotationsToObjectsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    ids: list[str] | None = Field(None, description="Annotations to cut objects from (or `search`).")
    search: SearchQuery | None = Field(None, description="A search over annotations.")
    create_objects: bool = False
    margin_ratio: float = Field(0.1, ge=0)
    margin_pixels: int | None = Field(None, ge=0)
    output_set_id: str | None = None
    source_annotation_type: str | None = None
    session_uid: str | None = None
    add_to_session: bool = True


class ComparePairRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    asset_id: str = Field(description="The image both annotations are on.")
    asset_type: str = "images"
    base_annotation_id: str | None = None
    other_annotation_id: str | None = None
    base_mapping: dict[str, Any] | None = None
    other_mapping: dict[str, Any] | None = None
    iou_threshold: float | None = Field(None, ge=0, le=1, description="Default 0.5.")
    match_labels: bool = True


class AnnotationSourceSelector(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str | None = None
    version: str | None = None
    annotation_group: str | None = None
    annotation_type: str | None = None


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    set_id: str | None = Field(None, description="Evaluate on the set's images (or give `search`).")
    search: SearchQuery | None = Field(None, description="A search over images.")
    ground_truth: AnnotationSourceSelector
    predictions: AnnotationSourceSelector
    iou_threshold: float = Field(0.5, gt=0, le=1)
    label_mapping: dict[str, str] | None = Field(None, description="Label -> label it counts as.")


class CocoDatasetRequest(BaseModel):
    """What a COCO file holds besides its images' entries."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None
    name: str | None = None
    info: dict[str, Any] | None = None
    licenses: list[dict[str, Any]] | None = None
    categories: list[dict[str, Any]]


AnnotationsToObjectsBody = Annotated[
    dict[str, Any], BeforeValidator(as_sent, json_schema_input_type=AnnotationsToObjectsRequest)
]
ComparePairBody = Annotated[dict[str, Any], BeforeValidator(as_sent, json_schema_input_type=ComparePairRequest)]
EvaluateBody = Annotated[dict[str, Any], BeforeValidator(as_sent, json_schema_input_type=EvaluateRequest)]
CocoDatasetBody = Annotated[dict[str, Any], BeforeValidator(as_sent, json_schema_input_type=CocoDatasetRequest)]
