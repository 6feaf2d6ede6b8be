"""Job records in the catalog: the source of truth for status, progress, stage, notes and leases."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, insert, select, update

from scenebase.storage.catalog import Catalog
from scenebase.storage.scope import Scope
from scenebase.storage.tables import jobs

QUEUED, RUNNING, FINISHED, ABORTED = "queued", "running", "finished", "aborted"
TERMINAL = (FINISHED, ABORTED)
#: who moves a job through its states: a worker under a lease, or the caller through the client routes
SERVER_DRIVEN, CLIENT_DRIVEN = "server", "client"


def _note(text: str) -> str:
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {text}"


class JobRepo:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def create(self, scope: Scope, job_id: str, **fields: Any) -> dict[str, Any]:
        now = time.time()
        row = {
            "id": job_id,
            "owner": scope.org_id,
            "user": scope.username,
            "driven_by": SERVER_DRIVEN,
            "status": QUEUED,
            "progress": 0.0,
            "notes": [],
            "tags": [],
            "attempts": 0,
            "max_attempts": 1,
            "created_at": now,
            "updated_at": now,
            **fields,
        }
        with self.catalog.write() as c:
            c.execute(insert(jobs).values(**row))
        return row

    def get(self, scope: Scope, job_id: str) -> dict[str, Any] | None:
        with self.catalog.read() as c:
            r = c.execute(select(jobs).where(jobs.c.id == job_id, jobs.c.owner.in_(scope.readable))).first()
        return dict(r._mapping) if r else None

    def list_jobs(self, scope: Scope, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(jobs).where(jobs.c.owner.in_(scope.readable)).order_by(jobs.c.created_at.desc()).limit(limit)
        if status:
            q = q.where(jobs.c.status == status)
        with self.catalog.read() as c:
            return [dict(r._mapping) for r in c.execute(q)]

    def update(self, scope: Scope, job_id: str, **values: Any) -> bool:
        values["updated_at"] = time.time()
        with self.catalog.write() as c:
            res = c.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.owner == scope.org_id).values(**values))
        return res.rowcount > 0

    def append_note(self, scope: Scope | None, job_id: str, text: str) -> bool:
        """Append a timestamped note. ``scope=None`` is the system (worker/reaper) path."""
        with self.catalog.write() as c:
            # FOR UPDATE: on PostgreSQL two concurrent appends would otherwise both read the old list
            q = select(jobs.c.notes).where(jobs.c.id == job_id).with_for_update()
            if scope is not None:
                q = q.where(jobs.c.owner == scope.org_id)
            row = c.execute(q).first()
            if row is None:
                return False
            notes = [*(row[0] or []), _note(text)]
            c.execute(update(jobs).where(jobs.c.id == job_id).values(notes=notes, updated_at=time.time()))
        return True

    # ---- system paths (workers and the reaper act for every organization) ----

    def system_get(self, job_id: str) -> dict[str, Any] | None:
        with self.catalog.read() as c:
            r = c.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return dict(r._mapping) if r else None

    def system_claim(self, job_id: str, claim: str, worker: str, lease_seconds: float) -> dict[str, Any] | None:
        """Atomically move a queued job to running under ``claim``. None if someone else has it."""
        now = time.time()
        with self.catalog.write() as c:
            res = c.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == QUEUED)
                .values(
                    status=RUNNING,
                    claim=claim,
                    worker=worker,
                    attempts=jobs.c.attempts + 1,
                    lease_expires_at=now + lease_seconds,
                    started_at=now,
                    updated_at=now,
                )
            )
            if res.rowcount == 0:
                return None
            r = c.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return dict(r._mapping) if r else None

    def system_update_claimed(self, job_id: str, claim: str, **values: Any) -> bool:
        """Update a running job only while ``claim`` still holds it."""
        values["updated_at"] = time.time()
        with self.catalog.write() as c:
            res = c.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.claim == claim, jobs.c.status == RUNNING)
                .values(**values)
            )
        return res.rowcount > 0

    def system_expired(self, now: float) -> list[dict[str, Any]]:
        q = select(jobs).where(and_(jobs.c.status == RUNNING, jobs.c.lease_expires_at < now))
        with self.catalog.read() as c:
            return [dict(r._mapping) for r in c.execute(q)]

    def system_release_expired(self, job: dict[str, Any], now: float, retry: bool, note: str) -> bool:
        """Requeue (``retry``) or abort a job whose lease expired, unless it changed meanwhile."""
        values: dict[str, Any] = {"claim": None, "lease_expires_at": None, "updated_at": now}
        if retry:
            values.update(status=QUEUED)
        else:
            values.update(status=ABORTED, finished_at=now, stage=f"Error :{note}")
        held = (jobs.c.id == job["id"], jobs.c.status == RUNNING, jobs.c.claim == job["claim"])
        with self.catalog.write() as c:
            # the current notes, not the snapshot's: the worker may have added some since
            row = c.execute(select(jobs.c.notes).where(*held).with_for_update()).first()
            if row is None:
                return False
            res = c.execute(update(jobs).where(*held).values(**values, notes=[*(row[0] or []), _note(note)]))
        return res.rowcount > 0
