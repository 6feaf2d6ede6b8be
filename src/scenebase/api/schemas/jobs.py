"""Bodies of ``/v1/jobs`` (FACTS 8.1)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scenebase.api.schemas.common import ResponseModel


class JobDocument(ResponseModel):
    """The public shape of a job; times are ISO 8601 in UTC."""

    id: str
    status: str = Field(description="queued, running, finished or aborted (a cancelled job is aborted).")
    progress: float = Field(description="0 to 100.")
    description: str | None = None
    stage: str | None = Field(default=None, description="What the job is doing now (free text).")
    notes: list[str] = Field(default_factory=list, description="Timestamped notes, oldest first.")
    job_type: str | None = None
    asset_type: str | None = None
    asset_id: str = Field(description="The asset the job works on, or `undefined`.")
    user: str | None = Field(default=None, description="Username that started the job.")
    owner: str | None = Field(default=None, description="Organization id the job belongs to.")
    tags: list[str] = Field(default_factory=list)
    attempts: int = Field(description="Runs so far (a run whose worker died is retried).")
    result: Any = Field(
        default=None,
        description="What a finished job produced (job type specific). Jobs over many items list the items that "
        "failed in `failed` (ids, at most 1000; `failed_count` when more), with a sample of reasons in `failures`.",
    )
    partial: bool = Field(
        default=False,
        description="True when the job finished but some of its items failed (see `result.failed`); the status "
        "stays `finished`, so that scripts waiting for `finished` keep working.",
    )
    failed_count: int = Field(default=0, description="Items of a finished job that failed.")
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class JobStatus(ResponseModel):
    status: str


class JobProgress(ResponseModel):
    progress: float = Field(description="0 to 100.")
