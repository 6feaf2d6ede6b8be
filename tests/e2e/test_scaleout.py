"""Scale-out: API servers without workers plus separate ``scenebase worker`` processes, sharing PostgreSQL
(catalog), SeaweedFS (blobs) and Redis (queue)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from procs import ADMIN_TOKEN, Launcher, ScenebaseProcess, client, wait_job

from servers import PostgresServer, RedisServer, SeaweedServer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.s3, pytest.mark.redis]

#: a Redis database of its own, so that queue tasks of other tests cannot reach these workers
REDIS_DB = 9


@dataclass
class Stack:
    launcher: Launcher
    env: dict[str, str]
    catalog_url: str
    api: ScenebaseProcess
    workers: list[ScenebaseProcess]
    root: Path

    def worker_names(self) -> set[str]:
        host = socket.gethostname()
        return {f"{host}:{w.pid}" for w in self.workers}

    def job_workers(self, job_ids: list[str]) -> dict[str, str | None]:
        """The ``worker`` column of the catalog's job rows (not part of the public job document)."""
        with psycopg.connect(self.catalog_url) as conn:
            rows = conn.execute("SELECT id, worker FROM jobs WHERE id = ANY(%s)", (job_ids,)).fetchall()
        return {str(r[0]): r[1] for r in rows}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    seaweedfs_server: SeaweedServer,
    redis_server: RedisServer,
) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    catalog_url = postgres_server.create_database(f"e2e_scaleout_{suffix}")
    queue_url = f"redis://{redis_server.host}:{redis_server.port}/{REDIS_DB}"
    with redis.Redis.from_url(queue_url) as r:
        r.flushdb()
    env = {
        "SCENEBASE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SCENEBASE_CATALOG_URL": catalog_url,
        "SCENEBASE_BLOB_URL": seaweedfs_server.blob_url(f"e2e-scaleout-{suffix}"),
        "SCENEBASE_QUEUE_URL": queue_url,
    }
    root = tmp_path_factory.mktemp("scaleout")
    (root / "logs").mkdir()
    launcher = Launcher(root / "logs")
    try:
        api = launcher.serve(root / "api-1", {**env, "SCENEBASE_WORKERS": "0"})
        workers = [launcher.worker(root / f"worker-{i}", {**env, "SCENEBASE_WORKERS": "2"}) for i in (1, 2)]
        yield Stack(launcher, env, catalog_url, api, workers, root)
    finally:
        launcher.close()


def test_workers_run_jobs_queued_through_an_api_server_without_workers(stack: Stack) -> None:
    with client(stack.api, ADMIN_TOKEN) as c:
        job_ids = [c.run_integration_test(duration=1.5, steps=5) for _ in range(6)]
        for job_id in job_ids:
            job = wait_job(c, job_id, timeout_s=90)
            assert job.status == "finished", (job, job.notes)
            assert job.document["attempts"] == 1
            assert job.notes == []

    ran_by = stack.job_workers(job_ids)
    assert set(ran_by) == set(job_ids)
    assert f"{socket.gethostname()}:{stack.api.pid}" not in ran_by.values()
    assert set(ran_by.values()) <= stack.worker_names(), ran_by
    # each worker process runs at most 2 jobs at a time, so 6 jobs of 1.5 s cannot all go to one of them
    assert set(ran_by.values()) == stack.worker_names(), ran_by
    for w in stack.workers:
        assert w.alive(), w.log_tail()


def test_a_second_api_server_shares_users_and_jobs(stack: Stack) -> None:
    with client(stack.api, ADMIN_TOKEN) as admin:
        org_id = str(admin.add_organization("Scale Out Inc")["id"])
        user = admin.add_user("bob@scale.test", "bob", "tester", org_id)
    with client(stack.api, user["token"]) as bob:
        first_job = bob.run_integration_test(duration=0.2, steps=2)
        assert wait_job(bob, first_job).status == "finished"

    # another API server (another data dir, another port) on the same catalog and queue, as behind a load balancer
    second = stack.launcher.serve(stack.root / "api-2", {**stack.env, "SCENEBASE_WORKERS": "0"})
    assert "token:" not in second.stdout()
    with client(second, ADMIN_TOKEN) as admin:
        assert admin.whoami()["username"] == "admin"
        assert org_id in {o["id"] for o in admin.list_organizations()}
        assert {u["username"]: u["organization_id"] for u in admin.list_users()}["bob"] == org_id
    with client(second, user["token"]) as bob:
        me = bob.whoami()
        assert (me["username"], me["role"], me["organization_id"]) == ("bob", "tester", org_id)
        job = bob.get_job(first_job)
        assert (job.status, job.document["user"]) == ("finished", "bob")
        # a job queued through the second server runs on the shared workers and is visible through the first
        second_job = bob.run_integration_test(duration=0.2, steps=2)
    with client(stack.api, user["token"]) as bob:
        job = wait_job(bob, second_job)
        assert job.status == "finished"
    assert set(stack.job_workers([second_job]).values()) <= stack.worker_names()


def test_worker_processes_serve_organizations_fairly(stack: Stack) -> None:
    """Issue 8.7 across processes: two worker processes on Redis and PostgreSQL. Organization B queues two jobs
    after A's twelve; B's start as soon as a worker frees up (FIFO would have run them last)."""
    with client(stack.api, ADMIN_TOKEN) as admin:
        org_id = str(admin.add_organization("Fair Share Ltd")["id"])
        tester = admin.add_user("carol@fair.test", "carol", "tester", org_id)
        a_jobs = [admin.run_integration_test(duration=1.0, steps=4) for _ in range(12)]
    with client(stack.api, tester["token"]) as carol:
        b_jobs = [carol.run_integration_test(duration=1.0, steps=4) for _ in range(2)]
        for job_id in b_jobs:
            assert wait_job(carol, job_id, timeout_s=120).status == "finished"
    with client(stack.api, ADMIN_TOKEN) as admin:
        for job_id in a_jobs:
            assert wait_job(admin, job_id, timeout_s=120).status == "finished"
    with psycopg.connect(stack.catalog_url) as conn:
        rows = conn.execute("SELECT id FROM jobs WHERE id = ANY(%s) ORDER BY started_at", (a_jobs + b_jobs,)).fetchall()
    order = [str(r[0]) for r in rows]
    b_ranks = sorted(order.index(j) for j in b_jobs)
    # four worker threads were busy with A's jobs when B's arrived: B's take the next two free ones
    assert b_ranks[1] <= 7, (b_ranks, order)
