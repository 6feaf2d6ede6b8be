"""Jobs through the client: server-run jobs, client-driven job records, cancel, reaper."""

from __future__ import annotations

import time

import pytest

from scenebase.clients import SceneEngineClient
from scenebase.errors import JobError
from scenebase.storage.scope import Scope
from scenebase.testing import InProcessServer


def _until(predicate: object, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_integration_job_runs_and_reports_progress(admin: SceneEngineClient) -> None:
    seen: list[tuple[float, str | None]] = []
    job_id = admin.run_integration_test(duration=0.4, steps=8)
    job = admin.get_job(job_id).wait(timeout=20, progress_callback=lambda p, s: seen.append((p, s)))
    assert job.status == "finished" and job.progress == 100.0
    assert job.result == {"slept": 0.4, "steps": 8, "attempt": 1}
    assert job.job_type == "integration_test"
    assert seen[-1][0] == 100.0
    assert all(0 <= p <= 100 for p, _ in seen)


def test_one_argument_progress_callback(admin: SceneEngineClient) -> None:
    seen: list[float] = []
    admin.get_job(admin.run_integration_test(duration=0.1, steps=2)).wait(timeout=20, progress_callback=seen.append)
    assert seen and seen[-1] == 100.0


def test_failed_job_raises_job_error_with_notes(admin: SceneEngineClient) -> None:
    job_id = admin.run_integration_test(duration=0.05, steps=1, fail=True)
    with pytest.raises(JobError) as e:
        admin.get_job(job_id).wait(timeout=20)
    assert "integration test asked to fail" in e.value.message
    job = admin.get_job(job_id)
    assert job.status == "aborted"
    assert job.stage == "Error :integration test asked to fail"
    assert any("integration test asked to fail" in n for n in job.notes)


def test_wait_timeout_and_cancel(admin: SceneEngineClient) -> None:
    job_id = admin.run_integration_test(duration=30, steps=300)
    job = admin.get_job(job_id)
    with pytest.raises(JobError, match="did not finish within"):
        job.wait(timeout=0.3)
    job.cancel()
    assert job.status == "aborted"
    assert any("cancelled by admin" in n for n in job.notes)
    # the worker notices at its next progress report and stops; the job stays aborted
    time.sleep(0.3)
    assert admin.get_job(job_id).status == "aborted"


def test_unknown_job_is_a_job_error(admin: SceneEngineClient) -> None:
    with pytest.raises(JobError) as e:
        admin.get_job("nope")
    assert e.value.status_code == 404


def test_client_driven_job_record(server: InProcessServer) -> None:
    http = server.http()
    tok = {"token": "default-admin-testtoken"}
    job_id = http.post("/v1/jobs/add/", params=tok, json={"job_type": "ingestion", "description": "upload"}).json()[
        "job_id"
    ]
    assert http.get(f"/v1/jobs/status/{job_id}", params=tok).json() == {"status": "queued"}
    assert http.put(f"/v1/jobs/run/{job_id}", params=tok).json()["status"] == "running"
    assert http.put(f"/v1/jobs/progress/{job_id}", params={**tok, "progress": 40}).json()["progress"] == 40
    assert http.put(f"/v1/jobs/stage/{job_id}", params={**tok, "stage": "uploading"}).json()["stage"] == "uploading"
    notes = http.put(f"/v1/jobs/append_note/{job_id}", params={**tok, "note": "halfway"}).json()["notes"]
    assert notes[-1].endswith("halfway")
    assert http.get(f"/v1/jobs/progress/{job_id}", params=tok).json() == {"progress": 40.0}
    assert http.put(f"/v1/jobs/finish/{job_id}", params=tok).json()["status"] == "finished"
    # finished jobs are frozen
    r = http.put(f"/v1/jobs/progress/{job_id}", params={**tok, "progress": 10})
    assert r.status_code == 409 and "already finished" in r.json()["error"]["message"]
    r = http.post("/v1/jobs/add/", params=tok, json={"job_type": "bogus"})
    assert r.status_code == 400 and "bogus" in r.json()["error"]["message"]
    r = http.put(f"/v1/jobs/progress/{job_id}", params={**tok, "progress": 140})
    assert r.status_code == 422


def test_reaper_requeues_a_job_whose_worker_died(server: InProcessServer, admin: SceneEngineClient) -> None:
    """Simulate a dead worker: claim a job with a short lease and never run it."""
    jobs = server.runtime.jobs
    server.runtime.queue.stop_workers()
    row = jobs.submit(Scope.of("default", username="admin"), "integration_test", {"duration": 0.05, "steps": 1})
    server.runtime.queue.flush()  # the dead worker had taken it off the queue
    assert jobs.repo.system_claim(row["id"], "dead-claim", "ghost:1", lease_seconds=0.1) is not None
    server.runtime.queue.start_workers(2)
    job = admin.get_job(row["id"]).wait(timeout=20)
    assert job.status == "finished"
    assert job.result["attempt"] == 2
    assert any("ghost:1 stopped renewing its lease; re-queued" in n for n in job.notes)


def test_reaper_aborts_after_the_last_attempt(server: InProcessServer, admin: SceneEngineClient) -> None:
    jobs = server.runtime.jobs
    row = jobs.repo.create(
        Scope.of("default", username="admin"), "j-last", job_type="integration_test", params={}, max_attempts=1
    )
    assert jobs.repo.system_claim(row["id"], "dead", "ghost:2", lease_seconds=0.05)
    _until(lambda: admin.get_job("j-last").status == "aborted")
    job = admin.get_job("j-last")
    assert any("ghost:2 stopped renewing its lease after 1 attempt(s); aborted" in n for n in job.notes)
    with pytest.raises(JobError, match="lease"):
        job.wait(timeout=5)


def test_client_routes_cannot_drive_a_server_job(server: InProcessServer, admin: SceneEngineClient) -> None:
    """Issue 8.18: ``PUT run`` on a server-queued job used to leave it running forever, with no lease."""
    http = server.http()
    tok = {"token": admin.auth_token}
    server.runtime.queue.stop_workers()
    job_id = admin.run_integration_test(duration=0.05, steps=1)
    for route, extra in (
        ("run", {}),
        ("progress", {"progress": 50}),
        ("stage", {"stage": "hijacked"}),
        ("finish", {}),
        ("abort", {"error_string": "x"}),
    ):
        r = http.put(f"/v1/jobs/{route}/{job_id}", params={**tok, **extra})
        assert r.status_code == 409, (route, r.text)
        assert "run by the server" in r.json()["error"]["message"] and "cancel" in r.json()["error"]["message"]
    row = server.runtime.jobs.repo.system_get(job_id)
    assert row is not None and row["status"] == "queued" and row["stage"] is None and row["progress"] == 0.0
    # a worker still picks it up and finishes it
    server.runtime.queue.start_workers(1)
    job = admin.get_job(job_id).wait(timeout=20)
    assert job.status == "finished" and job.result["attempt"] == 1


def test_a_running_server_job_is_not_taken_over_but_can_be_cancelled(
    server: InProcessServer, admin: SceneEngineClient
) -> None:
    job = admin.get_job(admin.run_integration_test(duration=30, steps=300))
    _until(lambda: admin.get_job(job.id).status == "running")
    r = server.http().put(f"/v1/jobs/finish/{job.id}", params={"token": admin.auth_token})
    assert r.status_code == 409
    row = server.runtime.jobs.repo.system_get(job.id)
    assert row is not None and row["status"] == "running" and row["lease_expires_at"] is not None
    job.cancel()
    assert job.status == "aborted"
