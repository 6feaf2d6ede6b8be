"""Jobs through the client: server-run jobs, client-driven job records, cancel, reaper."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from scenebase.clients import SceneEngineClient
from scenebase.errors import JobError
from scenebase.services.job_context import JobContext
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


# ---------------------------------------------------------------------------------------------- issue 7 and 8 fixes


def test_last_errors_exists_before_the_first_call() -> None:
    client = SceneEngineClient(auth_token="t", scene_engine_url="http://127.0.0.1:9")  # connects to nothing
    assert client.last_errors == []
    assert client.raise_on_partial_jobs is False


def _count_membership_chunks(server: InProcessServer, asset_type: str) -> list[int]:
    """Wrap the repository's row locking to count the membership chunks a job writes (one lock per chunk)."""
    repo = server.runtime.assets.repo
    original = repo.get_for_update
    calls = [0]

    def counting(conn: object, scope: Scope, kind: str, ids: object, share: bool = False) -> object:
        if kind == asset_type:
            calls[0] += 1
        return original(conn, scope, kind, ids, share)  # type: ignore[arg-type]

    repo.get_for_update = counting  # type: ignore[method-assign,assignment]
    return calls


def test_cancel_stops_a_long_job_between_items(
    server: InProcessServer, admin: SceneEngineClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8.7: cancel used to act only at a handler's next progress report. Now the worker reads the job row
    every ``cancel_poll_seconds`` and the membership loop checks between chunks: once the worker has seen the
    cancel, the job writes no further chunk. The job is held after its third chunk until the cancel is committed
    and seen (chunks of unknown ids take a millisecond, so an unheld job could finish before any cancel lands)."""
    server.runtime.jobs.cancel_poll_seconds = 0.05
    set_id = admin.create_set("target", "images")
    chunks = _count_membership_chunks(server, "images")
    repo = server.runtime.jobs.repo
    original_update = repo.update
    at_cancel: list[int] = []

    def update(scope: Scope, job_id: str, **values: object) -> bool:
        done = original_update(scope, job_id, **values)
        if values.get("status") == "aborted":
            at_cancel.append(chunks[0])
        return done

    repo.update = update  # type: ignore[method-assign]
    gate = threading.Event()
    held: list[int] = []
    original_progress = JobContext.progress

    def progress(ctx: JobContext, percent: float, stage: str | None = None, force: bool = False) -> None:
        if not held and chunks[0] >= 3:
            held.append(chunks[0])
            gate.wait(60)  # the test cancels meanwhile
            ctx._lost.wait(10)  # and the worker's poll of the job row sees it
        original_progress(ctx, percent, stage, force)

    monkeypatch.setattr(JobContext, "progress", progress)
    total_chunks = 200
    ids = [f"ghost_{i:06d}" for i in range(total_chunks * 500)]  # unknown ids: every chunk is real work
    job = admin.get_job(admin.add_assets_to_set(set_id, ids=ids))
    _until(lambda: bool(held), limit=60)
    job.cancel()
    gate.set()
    assert job.status == "aborted" and at_cancel == held == [3]
    _until(lambda: not server.runtime.jobs.running_jobs(), limit=60)
    assert chunks[0] == 3, f"{chunks[0] - 3} chunks written after the cancel was seen"
    time.sleep(0.3)
    assert chunks[0] == 3  # and nothing runs on behind the scenes
    assert admin.get_job(job.id).status == "aborted"


def test_unknown_ids_make_a_few_notes_not_one_each(admin: SceneEngineClient, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 8.6: each unknown id used to be a note, rewriting the whole list each time (quadratic; 200k ids
    filled a 287 MB WAL). Now the first ten are notes, the rest one summary; the result keeps 1000 ids."""
    set_id = admin.create_set("target", "images")
    ids = [f"ghost_{i:05d}" for i in range(5000)]
    with caplog.at_level(logging.WARNING, logger="scenebase.client"):
        job_id = admin.add_assets_to_set(set_id, ids=ids, wait_for_completion=True)
    job = admin.get_job(job_id)
    assert job.status == "finished" and job.partial is True
    assert job.failed_count == 5000 and job.failed == ids[:1000]
    assert len(job.notes) == 11
    assert all(f"ghost_{i:05d}: no images with this id" in job.notes[i] for i in range(10))
    assert "5000 items failed in all" in job.notes[-1]
    assert job.stage == "finished; 5000 item(s) failed"
    # the client warned, naming some, and kept the failed ids
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"job {job_id} (set_addition) finished, but 5000 item(s) failed" in w for w in warnings)
    assert len(admin.last_errors) == 1000
    assert admin.last_errors[0] == {"id": "ghost_00000", "error": "no images with this id", "job_id": job_id}


def test_raise_on_partial_jobs(admin: SceneEngineClient) -> None:
    set_id = admin.create_set("target", "images")
    admin.raise_on_partial_jobs = True
    with pytest.raises(JobError, match=r"finished, but 2 item\(s\) failed: nope_1 \(no images with this id\)"):
        admin.add_assets_to_set(set_id, ids=["nope_1", "nope_2"], wait_for_completion=True)
    assert [e["id"] for e in admin.last_errors] == ["nope_1", "nope_2"]


def test_job_notes_are_capped(server: InProcessServer) -> None:
    repo = server.runtime.jobs.repo
    row = repo.create(Scope.of("default", username="admin"), "noisy", job_type="ingestion", driven_by="client")
    for i in range(150):
        repo.append_note(None, row["id"], f"note {i}")
    notes = (repo.system_get("noisy") or {})["notes"]
    assert len(notes) == 100
    assert notes[98].endswith(" note 98")
    assert "51 more note(s) not kept (limit 100); the latest: note 149" in notes[99]


def test_failed_aborted_and_partial_jobs_are_logged_with_their_ids(
    admin: SceneEngineClient, caplog: pytest.LogCaptureFixture
) -> None:
    set_id = admin.create_set("target", "images")
    with caplog.at_level(logging.WARNING, logger="scenebase.jobs"):
        failing = admin.run_integration_test(duration=0.01, steps=1, fail=True)
        with pytest.raises(JobError):
            admin.get_job(failing).wait(timeout=20)
        partial = admin.add_assets_to_set(set_id, ids=["nope"], wait_for_completion=True)
        long = admin.get_job(admin.run_integration_test(duration=30, steps=300))
        _until(lambda: admin.get_job(long.id).status == "running")
        long.cancel()
        _until(lambda: any(f"job {long.id} (integration_test) stopped" in r.getMessage() for r in caplog.records))
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"job {failing} (integration_test) aborted: integration test asked to fail" in messages
    assert any(m.startswith(f"job {partial} (set_addition) finished partially: 1 item(s) failed (nope: ") for m in
               messages)  # fmt: skip
    assert any(m.startswith(f"job {long.id} (integration_test) cancelled by admin") for m in messages)


def test_bad_batch_size_is_refused_before_the_job(admin: SceneEngineClient) -> None:
    """Issue 8.21: batch_size 0 or "x" used to be accepted, and the job aborted with "internal error"."""
    for bad in (0, "x", -3, 10_001, True):
        with pytest.raises(JobError) as err:
            admin.image_properties_enrichment(ids=["a"], additional_params={"batch_size": bad})
        assert err.value.status_code == 400
        assert "batch_size must be an integer from 1 to 1000" in err.value.message


def test_cancel_stops_a_job_in_the_middle_of_a_long_step(server: InProcessServer, admin: SceneEngineClient) -> None:
    """A step of 60 s: the worker used to notice a cancel only at the step's progress report, a minute later."""
    job = admin.get_job(admin.run_integration_test(duration=120, steps=2))
    _until(lambda: bool(server.runtime.jobs.running_jobs()))
    job.cancel()
    _until(lambda: not server.runtime.jobs.running_jobs(), limit=20)  # well before the first step's end
    assert admin.get_job(job.id).progress == 0.0  # stopped before finishing 1 of its 2 steps


def test_image_jobs_report_the_images_they_could_not_process(
    admin: SceneEngineClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="scenebase.client"):
        job_id = admin.image_properties_enrichment(ids=["ghost_a", "ghost_b"], wait_for_completion=True)
        compress = admin.get_job(admin.compress_images(["ghost_c"], use_preset="tiny")).wait(timeout=30)
    assert admin.last_errors == [
        {"id": "ghost_a", "error": "no images with this id", "job_id": job_id},
        {"id": "ghost_b", "error": "no images with this id", "job_id": job_id},
    ]
    assert compress.partial and compress.errors()[0]["id"] == "ghost_c"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"job {job_id} (image_properties_enrichment) finished, but 2 item(s) failed" in w for w in warnings)
    assert any(f"job {compress.id} (image_compression) finished, but 1 item(s) failed: ghost_c" in w for w in warnings)
