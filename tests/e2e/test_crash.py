"""Crash recovery: a server killed with SIGKILL mid-job, jobs that outlive a graceful restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from procs import ADMIN_TOKEN, Launcher, client, poll_job, wait_job

from scenebase.clients.job import Job
from scenebase.errors import JobError

pytestmark = pytest.mark.e2e

FAST_LEASES = {
    "SCENEBASE_ADMIN_TOKEN": ADMIN_TOKEN,
    "SCENEBASE_JOB_LEASE_SECONDS": "2",
    "SCENEBASE_REAPER_INTERVAL_SECONDS": "0.5",
}


def _running_with_progress(job: Job) -> bool:
    if job.status in ("finished", "aborted"):
        pytest.fail(f"job ended before the server could be killed: {job!r} {job.notes}")
    return job.status == "running" and job.progress > 0


def _kill_mid_job(launcher: Launcher, data: Path, env: dict[str, str]) -> str:
    """Queue a ~6 s job, SIGKILL the server once the job runs, and return the job id."""
    server = launcher.serve(data, env)
    with client(server, ADMIN_TOKEN) as c:
        job_id = c.run_integration_test(duration=6.0, steps=30)
        job = poll_job(c, job_id, _running_with_progress, "running with progress > 0")
        assert job.progress < 100.0
    assert server.kill() == -9
    return job_id


def test_job_of_a_killed_server_is_requeued_and_finishes(launcher: Launcher, tmp_path: Path) -> None:
    data = tmp_path / "data"
    job_id = _kill_mid_job(launcher, data, FAST_LEASES)

    server = launcher.serve(data, FAST_LEASES)
    with client(server, ADMIN_TOKEN) as c:
        job = wait_job(c, job_id, timeout_s=90)
        assert job.status == "finished"
        assert job.progress == 100.0
        assert job.document["attempts"] == 2
        assert job.result is not None and job.result["attempt"] == 2
        requeued = [n for n in job.notes if "re-queued" in n]
        assert len(requeued) == 1, job.notes
        assert "lease" in requeued[0]
        assert "attempt 2" in requeued[0]


def test_job_of_a_killed_server_is_aborted_after_max_attempts(launcher: Launcher, tmp_path: Path) -> None:
    env = {**FAST_LEASES, "SCENEBASE_JOB_MAX_ATTEMPTS": "1"}
    data = tmp_path / "data"
    job_id = _kill_mid_job(launcher, data, env)

    server = launcher.serve(data, env)
    with client(server, ADMIN_TOKEN) as c:
        job = poll_job(c, job_id, lambda j: j.done, "an end", timeout_s=60)
        assert job.status == "aborted"
        assert job.document["attempts"] == 1
        lease_notes = [n for n in job.notes if "lease" in n]
        assert len(lease_notes) == 1, job.notes
        assert "aborted" in lease_notes[0]
        with pytest.raises(JobError) as caught:
            c.get_job(job_id).wait(timeout=30, show_progress=False)
    # the note carries a timestamp prefix; the message names the note's text
    note_text = lease_notes[0].split(" ", 1)[1]
    assert note_text in str(caught.value)
    assert "stopped renewing its lease" in str(caught.value)
    assert caught.value.details["status"] == "aborted"


def test_queued_jobs_survive_a_graceful_restart(launcher: Launcher, tmp_path: Path) -> None:
    data = tmp_path / "data"
    no_workers = {"SCENEBASE_ADMIN_TOKEN": ADMIN_TOKEN, "SCENEBASE_WORKERS": "0"}
    first = launcher.serve(data, no_workers)
    with client(first, ADMIN_TOKEN) as c:
        job_ids = [c.run_integration_test(duration=0.2, steps=2) for _ in range(3)]
        for job_id in job_ids:
            job = c.get_job(job_id)
            assert (job.status, job.progress) == ("queued", 0.0)
    assert first.stop() == 0, first.log_tail()

    second = launcher.serve(data, {**no_workers, "SCENEBASE_WORKERS": "2"})
    with client(second, ADMIN_TOKEN) as c:
        for job_id in job_ids:
            job = wait_job(c, job_id)
            assert job.status == "finished"
            assert job.document["attempts"] == 1
            assert job.notes == []


def test_graceful_stop_lets_a_running_job_finish(launcher: Launcher, tmp_path: Path) -> None:
    """SIGTERM stops the HTTP server, then the in-process workers finish the job they run (up to 10 s)."""
    data = tmp_path / "data"
    first = launcher.serve(data, FAST_LEASES)
    with client(first, ADMIN_TOKEN) as c:
        job_id = c.run_integration_test(duration=2.0, steps=20)
        poll_job(c, job_id, _running_with_progress, "running with progress > 0")
    assert first.stop() == 0, first.log_tail()

    second = launcher.serve(data, {**FAST_LEASES, "SCENEBASE_WORKERS": "0"})
    with client(second, ADMIN_TOKEN) as c:
        job = c.get_job(job_id)
        assert job.status == "finished", (job, job.notes)
        assert job.document["attempts"] == 1
        assert job.notes == []


def test_graceful_stop_names_the_job_it_waits_for_and_requeues_it(launcher: Launcher, tmp_path: Path) -> None:
    """A job longer than the grace period: the stopping server says which job it waits for, interrupts it after
    the grace, and queues it again; the next server runs it without spending an attempt."""
    data = tmp_path / "data"
    env = {**FAST_LEASES, "SCENEBASE_JOB_STOP_GRACE_SECONDS": "1"}
    first = launcher.serve(data, env)
    with client(first, ADMIN_TOKEN) as c:
        job_id = c.run_integration_test(duration=6.0, steps=30)
        poll_job(c, job_id, _running_with_progress, "running with progress > 0")
    assert first.stop() == 0, first.log_tail()
    log = first.stderr()
    assert f"stopping: waiting up to 1 s for 1 running job(s): {job_id} (integration_test" in log, log
    assert f"job {job_id} (integration_test) interrupted by the stop of this worker; queued again" in log, log

    second = launcher.serve(data, FAST_LEASES)
    with client(second, ADMIN_TOKEN) as c:
        job = wait_job(c, job_id, timeout_s=90)
        assert job.status == "finished"
        assert job.document["attempts"] == 1
        assert any("stopped during this run; queued again for another worker" in n for n in job.notes), job.notes
