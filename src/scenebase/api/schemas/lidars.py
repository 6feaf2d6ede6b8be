"""Bodies of ``/v1/lidars``."""

from __future__ import annotations

from pydantic import Field

from scenebase.api.schemas.jobs import JobDocument


class LidarCompressionStarted(JobDocument):
    """The ``lidar_compression`` job's document (FACTS 8.1) plus ``job_id``."""

    job_id: str = Field(description="The job's id (also `id`); follow it with `GET /v1/jobs/{job_id}`.")
