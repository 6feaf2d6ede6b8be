"""Job records in the catalog: the source of truth for status, progress, stage, notes, leases and scheduling."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from scenebase.storage.catalog import Catalog
from scenebase.storage.scope import Scope
from scenebase.storage.tables import jobs

QUEUED, RUNNING, FINISHED, ABORTED = "queued", "running", "finished", "aborted"
TERMINAL = (FINISHED, ABORTED)
#: who moves a job through its states: a worker under a lease, or the caller through the client routes
SERVER_DRIVEN, CLIENT_DRIVEN = "server", "client"
#: notes kept per job. Every append rewrites the list, so an unbounded list makes a job's notes quadratic
#: (200k one-line notes filled a 287 MB WAL); past the limit the last note says how many more were dropped.
MAX_NOTES = 100
#: PostgreSQL advisory lock key that serializes claims (an arbitrary constant: "sbjobs" in ASCII)
_CLAIM_LOCK = 0x73626A6F6273


def _note(text: str) -> str:
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {text}"


def _capped(notes: list[str], text: str) -> list[str]:
    """``notes`` plus ``text``, holding at most MAX_NOTES entries: past that, the last one counts the dropped."""
    if len(notes) < MAX_NOTES - 1:
        return [*notes, _note(text)]
    dropped = 1
    if len(notes) >= MAX_NOTES:  # the last slot holds the overflow note already: "<time> <count> more ..."
        words = notes[MAX_NOTES - 1].split(" ", 2)
        if len(words) > 1 and words[1].isdigit():
            dropped += int(words[1])
    latest = text if len(text) <= 300 else text[:300] + "…"
    overflow = f"{dropped} more note(s) not kept (limit {MAX_NOTES}); the latest: {latest}"
    return [*notes[: MAX_NOTES - 1], _note(overflow)]


def _owners_with_queued(c: Connection) -> list[str]:
    """Organizations with queued jobs, by a skip scan of the (status, owner, created_at) index: one seek each."""
    owners: list[str] = []
    while True:
        q = select(jobs.c.owner).where(jobs.c.status == QUEUED)
        if owners:
            q = q.where(jobs.c.owner > owners[-1])
        owner = c.execute(q.order_by(jobs.c.owner).limit(1)).scalar()
        if owner is None:
            return owners
        owners.append(str(owner))


@dataclass(frozen=True)
class ClaimOutcome:
    """What a claim found: the job it took (None when none), and how many organizations with queued jobs it had
    to leave waiting because they already run as many jobs as they may."""

    job: dict[str, Any] | None
    held_back: int = 0


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

    def update(self, scope: Scope, job_id: str, note: str | None = None, **values: Any) -> bool:
        """Change fields of the organization's job; ``note`` is appended in the same transaction."""
        return self._update_where((jobs.c.id == job_id, jobs.c.owner == scope.org_id), note, values)

    def _update_where(self, where: tuple[Any, ...], note: str | None, values: dict[str, Any]) -> bool:
        values["updated_at"] = time.time()
        with self.catalog.write() as c:
            if note is not None:  # the notes under the row lock, so that a concurrent append is not lost
                row = c.execute(select(jobs.c.notes).where(*where).with_for_update()).first()
                if row is None:
                    return False
                values["notes"] = _capped(list(row[0] or []), note)
            res = c.execute(update(jobs).where(*where).values(**values))
        return res.rowcount > 0

    def append_note(self, scope: Scope | None, job_id: str, text: str) -> bool:
        """Append a timestamped note (at most MAX_NOTES are kept). ``scope=None`` is the system path."""
        with self.catalog.write() as c:
            # FOR UPDATE: on PostgreSQL two concurrent appends would otherwise both read the old list
            q = select(jobs.c.notes).where(jobs.c.id == job_id).with_for_update()
            if scope is not None:
                q = q.where(jobs.c.owner == scope.org_id)
            row = c.execute(q).first()
            if row is None:
                return False
            notes = _capped(list(row[0] or []), text)
            c.execute(update(jobs).where(jobs.c.id == job_id).values(notes=notes, updated_at=time.time()))
        return True

    # ---- system paths (workers and the reaper act for every organization) ----

    def system_get(self, job_id: str) -> dict[str, Any] | None:
        with self.catalog.read() as c:
            r = c.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return dict(r._mapping) if r else None

    def system_claim(self, job_id: str, claim: str, worker: str, lease_seconds: float) -> dict[str, Any] | None:
        """Atomically move a queued job to running under ``claim``. None if someone else has it."""
        with self.catalog.write() as c:
            return self._claim_in(c, job_id, claim, worker, lease_seconds)

    @staticmethod
    def _claim_in(c: Connection, job_id: str, claim: str, worker: str, lease_seconds: float) -> dict[str, Any] | None:
        now = time.time()
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

    def system_claim_next(
        self,
        claim: str,
        worker: str,
        lease_seconds: float,
        job_types: list[str],
        max_running_per_org: int | None = None,
    ) -> ClaimOutcome:
        """Claim the queued server job (of ``job_types``: the ones this worker has handlers for) that is fairest
        to run now, across organizations.

        The organization with the fewest running jobs goes first; among equals, the one whose last job started
        longest ago (never served: first); then its oldest queued job. An organization already running
        ``max_running_per_org`` jobs waits. Claims are serialized (SQLite write transactions are exclusive; on
        PostgreSQL an advisory transaction lock), so concurrent workers see each other's claims.
        """
        with self.catalog.write() as c:
            if c.dialect.name == "postgresql":
                c.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK)))
            runnable = (jobs.c.status == QUEUED, jobs.c.driven_by == SERVER_DRIVEN, jobs.c.job_type.in_(job_types))
            # per organization with queued jobs, its oldest runnable one: index seeks on (status, owner,
            # created_at) per organization, not an aggregate over every queued job (100k queued: 100 ms a claim)
            oldest: dict[str, tuple[float, str]] = {}
            for owner in _owners_with_queued(c):
                first = c.execute(
                    select(jobs.c.created_at, jobs.c.id)
                    .where(*runnable, jobs.c.owner == owner)
                    .order_by(jobs.c.created_at, jobs.c.id)
                    .limit(1)
                ).first()
                if first is not None:
                    oldest[owner] = (float(first[0]), str(first[1]))
            if not oldest:
                return ClaimOutcome(None)
            running: dict[str, int] = {
                str(owner): int(n)
                for owner, n in c.execute(
                    select(jobs.c.owner, func.count())
                    .where(jobs.c.status == RUNNING, jobs.c.owner.in_(list(oldest)))
                    .group_by(jobs.c.owner)
                )
            }
            cap = max_running_per_org
            open_ = [o for o in oldest if cap is None or running.get(o, 0) < cap]
            if not open_:
                return ClaimOutcome(None, len(oldest))
            last_start = {
                o: float(c.execute(select(func.max(jobs.c.started_at)).where(jobs.c.owner == o)).scalar() or 0.0)
                for o in open_
            }
            owner = min(open_, key=lambda o: (running.get(o, 0), last_start[o], oldest[o][0]))
            job = self._claim_in(c, oldest[owner][1], claim, worker, lease_seconds)
            return ClaimOutcome(job, len(oldest) - len(open_))

    def system_holds(self, job_id: str, claim: str) -> bool:
        """Whether ``claim`` still holds the job (a read: the worker's cancel check)."""
        with self.catalog.read() as c:
            row = c.execute(select(jobs.c.status, jobs.c.claim).where(jobs.c.id == job_id)).first()
        return row is not None and row[0] == RUNNING and row[1] == claim

    def system_update_claimed(self, job_id: str, claim: str, note: str | None = None, **values: Any) -> bool:
        """Update a running job only while ``claim`` still holds it; ``note`` is appended in the same transaction
        (an aborted job is never seen without the note that says why)."""
        return self._update_where((jobs.c.id == job_id, jobs.c.claim == claim, jobs.c.status == RUNNING), note, values)

    def system_requeue_claimed(self, job_id: str, claim: str, note: str) -> bool:
        """Give a running job back to the queue (its worker is stopping): the run does not count as an attempt."""
        held = (jobs.c.id == job_id, jobs.c.claim == claim, jobs.c.status == RUNNING)
        with self.catalog.write() as c:
            row = c.execute(select(jobs.c.notes).where(*held).with_for_update()).first()
            if row is None:
                return False
            values = {"status": QUEUED, "claim": None, "lease_expires_at": None, "updated_at": time.time(),
                      "attempts": jobs.c.attempts - 1, "notes": _capped(list(row[0] or []), note)}  # fmt: skip
            res = c.execute(update(jobs).where(*held).values(**values))
        return res.rowcount > 0

    def system_stale_queued(self, before: float, job_types: list[str], limit: int = 100) -> list[str]:
        """Ids of server jobs (of ``job_types``) queued since before ``before``, oldest first: candidates for a
        lost queue task."""
        q = (
            select(jobs.c.id)
            .where(jobs.c.status == QUEUED, jobs.c.driven_by == SERVER_DRIVEN, jobs.c.job_type.in_(job_types))
            .where(jobs.c.updated_at < before)
            .order_by(jobs.c.created_at)
            .limit(limit)
        )
        with self.catalog.read() as c:
            return [str(r[0]) for r in c.execute(q)]

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
            res = c.execute(update(jobs).where(*held).values(**values, notes=_capped(list(row[0] or []), note)))
        return res.rowcount > 0
