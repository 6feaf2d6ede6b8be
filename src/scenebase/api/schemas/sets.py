"""Bodies of ``/v1/sets`` (FACTS 5)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scenebase.api.schemas.common import ResponseModel


class SetCreated(ResponseModel):
    id: str
    created: bool = Field(description="False when a set of that name existed: `id` is the existing set's.")


class SetLock(ResponseModel):
    locked: bool


class SetStatus(ResponseModel):
    id: str
    name: str
    assets_type: str
    status: str = Field(description="`ready`, or the state of the job filling the set.")
    locked: bool
    count: int = Field(description="Assets in the set now.")
    expected_count: int | None = None
    job_id: str | None = Field(default=None, description="The last job that changed the set.")


class SplitStarted(ResponseModel):
    job_id: str
    subset_ids: list[str] = Field(description="Ids the subsets will have, in the order of the sections.")


class SetMemberIds(ResponseModel):
    results: list[str] = Field(description="Ids of the matching members.")


class SetMembers(ResponseModel):
    results: list[dict[str, Any]] = Field(description="Metadata documents of the matching members.")


class ZipStarted(ResponseModel):
    job_id: str
    zip_id: str = Field(description="Id of the zipfile asset; download it from `/v1/zipfiles/{zip_id}/file`.")
