"""Diagnostic jobs for testers and health checkers (and for the crash test)."""

from __future__ import annotations

from typing import Any

from scenebase.services.errors import InvalidArgument
from scenebase.services.jobs import JobContext, JobRegistry

#: job types this module submits (through the maintenance route) and runs
JOB_TYPES = ("integration_test",)


def register_jobs(registry: JobRegistry) -> None:
    registry.register("integration_test", integration_test)


def integration_test(ctx: JobContext) -> dict[str, Any]:
    """Sleep ``duration`` seconds in ``steps`` steps, reporting progress; fail on request."""
    duration = float(ctx.params.get("duration", 1.0))
    steps = int(ctx.params.get("steps", 10))
    if not 0 <= duration <= 3600 or not 1 <= steps <= 10_000:
        raise InvalidArgument("duration must be in [0, 3600] s and steps in [1, 10000]")
    ctx.stage("sleeping")
    for i in range(steps):
        ctx.sleep(duration / steps)  # stops at once when cancelled, not at the end of the step
        ctx.progress(100.0 * (i + 1) / steps, force=True)
    if ctx.params.get("fail"):
        raise InvalidArgument(str(ctx.params.get("fail_message") or "integration test asked to fail"))
    return {"slept": duration, "steps": steps, "attempt": ctx.job["attempts"]}
