"""foundation: organizations, users, ownerships, jobs

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("username", sa.String(128), primary_key=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_users_organization_id", "users", ["organization_id"])
    op.create_table(
        "ownerships",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("access", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("owner", "access", name="uq_ownerships_owner_access"),
    )
    op.create_index("ix_ownerships_access", "ownerships", ["access"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("user", sa.String(128), nullable=True),
        sa.Column("job_type", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("stage", sa.Text, nullable=True),
        sa.Column("notes", JSONType, nullable=False),
        sa.Column("asset_type", sa.String(64), nullable=True),
        sa.Column("asset_id", sa.String(255), nullable=True),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("params", JSONType, nullable=True),
        sa.Column("result", JSONType, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("lease_expires_at", sa.Float, nullable=True),
        sa.Column("claim", sa.String(64), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_jobs_owner_created", "jobs", ["owner", "created_at"])
    op.create_index("ix_jobs_status_lease", "jobs", ["status", "lease_expires_at"])


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("ownerships")
    op.drop_table("users")
    op.drop_table("organizations")
