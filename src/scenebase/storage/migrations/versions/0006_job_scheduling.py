"""indexes for fair job claims across organizations

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A worker claims the queued job of the organization with the fewest running jobs, then the one served least
recently (``services/jobs.py``). ``ix_jobs_status_owner_created`` answers "which organizations have queued or
running jobs, and their oldest queued one" from the index; ``ix_jobs_owner_started`` answers "when did this
organization's last job start" with one index probe instead of a scan of its job history.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_status_owner_created", "jobs", ["status", "owner", "created_at"])
    op.create_index("ix_jobs_owner_started", "jobs", ["owner", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_started", "jobs")
    op.drop_index("ix_jobs_status_owner_created", "jobs")
