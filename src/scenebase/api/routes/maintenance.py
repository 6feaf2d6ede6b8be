"""Diagnostics for testers and health checkers."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from pydantic import BaseModel, Field

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import JobStarted
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.identity import Principal

router = SlashAgnosticRouter(prefix="/v1/maintenance", tags=["maintenance"])


class IntegrationTest(BaseModel):
    duration: float = Field(1.0, ge=0, le=3600, description="Seconds the job sleeps in all.")
    steps: int = Field(10, ge=1, le=10_000, description="Progress reports over that time.")
    fail: bool = Field(False, description="Abort at the end instead of finishing (tests error reporting).")
    fail_message: str | None = Field(None, description="The abort message when `fail` is true.")


@router.post("/integration_test/", response_model=JobStarted, dependencies=[requires(Permission.DIAGNOSTICS)])
def integration_test(
    body: IntegrationTest, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Queue an ``integration_test`` job that sleeps and reports progress: checks the queue end to end."""
    row = rt.jobs.submit(p.scope, "integration_test", params=body.model_dump(), description="integration test")
    return {"job_id": row["id"]}
