"""``/v1/jobs``: read, drive and cancel jobs (AssetManager job routes, FACTS 8.2).

The driving routes (run, progress, stage, finish, abort) take only records made with ``POST /v1/jobs/add/``;
jobs the server queued belong to its workers and can be read and cancelled.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import JobStarted
from scenebase.api.schemas.jobs import JobDocument, JobProgress, JobStatus
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.identity import Principal
from scenebase.services.jobs import job_document
from scenebase.storage.job_repo import ABORTED, FINISHED, RUNNING

router = SlashAgnosticRouter(prefix="/v1/jobs", tags=["jobs"])


class NewJob(BaseModel):
    job_type: str | None = None
    description: str | None = Field(default=None, max_length=4096)
    asset_type: str | None = None
    asset_id: str | None = None
    notes: str | None = None
    stage: str | None = Field(default=None, max_length=1024)
    tags: list[str] = Field(default_factory=list)
    user: str | None = None
    task_sync: bool | None = None
    email_notification: bool | None = None


@router.post("/add/", response_model=JobStarted, dependencies=[requires(Permission.CURATE)])
def add_job(body: NewJob, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Record a job that the caller drives itself (progress/stage/finish routes below)."""
    row = rt.jobs.create_record(
        p.scope,
        job_type=body.job_type,
        description=body.description,
        asset_type=body.asset_type,
        asset_id=body.asset_id,
        notes=body.notes,
        stage=body.stage,
        tags=body.tags,
    )
    return {"job_id": row["id"]}


@router.get("/", response_model=list[JobDocument], dependencies=[requires(Permission.READ)])
def list_jobs(
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> list[dict[str, Any]]:
    """Jobs the caller may read (its organization's and shared ones), newest first; `status` filters them."""
    return [job_document(r) for r in rt.jobs.repo.list_jobs(p.scope, status=status, limit=limit)]


@router.get("/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.READ)])
def get_job(job_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """One job: status, progress, stage, notes and, once finished, its result."""
    return job_document(rt.jobs.get(p.scope, job_id))


@router.get("/comprehensive_status/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.READ)])
def comprehensive_status(
    job_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """The same document as `GET /v1/jobs/{job_id}` (the SceneBox client's route)."""
    return job_document(rt.jobs.get(p.scope, job_id))


@router.get("/status/{job_id}", response_model=JobStatus, dependencies=[requires(Permission.READ)])
def job_status(
    job_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Only the job's status."""
    return {"status": rt.jobs.get(p.scope, job_id)["status"]}


@router.get("/progress/{job_id}", response_model=JobProgress, dependencies=[requires(Permission.READ)])
def job_progress(
    job_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Only the job's progress (0 to 100)."""
    return {"progress": float(rt.jobs.get(p.scope, job_id)["progress"])}


@router.put("/progress/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.CURATE)])
def set_progress(
    job_id: str,
    progress: float = Query(..., ge=0, le=100),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Report the progress of a job the caller drives itself."""
    return job_document(rt.jobs.set_fields(p.scope, job_id, progress=progress))


@router.put("/stage/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.CURATE)])
def set_stage(
    job_id: str,
    stage: str = Query(..., max_length=1024),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Report what a job the caller drives is doing now."""
    return job_document(rt.jobs.set_fields(p.scope, job_id, stage=stage))


@router.put("/append_note/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.CURATE)])
def append_note(
    job_id: str,
    note: str = Query(..., max_length=4096),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Add a timestamped note to a job."""
    rt.jobs.note(p.scope, job_id, note)
    return job_document(rt.jobs.get(p.scope, job_id))


@router.put("/run/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.CURATE)])
def run_job(job_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Mark a client-driven job record running. Jobs the server queued answer 409: their workers hold leases."""
    return job_document(rt.jobs.set_fields(p.scope, job_id, status=RUNNING, started_at=time.time()))


@router.put("/finish/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.CURATE)])
def finish_job(
    job_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Mark a job the caller drives as finished (progress 100)."""
    return job_document(rt.jobs.set_fields(p.scope, job_id, status=FINISHED, progress=100.0, finished_at=time.time()))


@router.put("/abort/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.CURATE)])
def abort_job(
    job_id: str,
    error_string: str = Query("aborted by client", max_length=4096),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Mark a job as aborted with `error_string` as its stage and a note."""
    rt.jobs.set_fields(p.scope, job_id, status=ABORTED, finished_at=time.time(), stage=f"Error :{error_string}"[:1024])
    rt.jobs.note(p.scope, job_id, error_string)
    return job_document(rt.jobs.get(p.scope, job_id))


@router.put("/cancel/{job_id}", response_model=JobDocument, dependencies=[requires(Permission.CURATE)])
def cancel_job(
    job_id: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Cancel a queued or running job; its worker stops at its next progress report."""
    return job_document(rt.jobs.cancel(p.scope, job_id, f"cancelled by {p.username}"))
