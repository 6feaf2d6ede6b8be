"""Catalog tables (SQLAlchemy Core). Alembic migrations in ``migrations/versions`` create the same schema;
``tests/contract/test_catalog.py`` checks that the two never drift apart.

Times are stored as float UNIX epochs (UTC): portable between SQLite and PostgreSQL and cheap to compare.
Every data table has an ``owner`` column (organization id) that the repositories always filter on.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

#: JSON on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("username", String(128), primary_key=True),
    Column("email", String(320), nullable=True),
    Column("role", String(32), nullable=False),
    Column("organization_id", String(64), ForeignKey("organizations.id"), nullable=False, index=True),
    # sha256 of the personal token; the token itself is shown once, at creation.
    Column("token_hash", String(64), nullable=False, unique=True),
    # first two dash-separated parts of the token, to recognise it in listings
    Column("token_hint", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

ownerships = Table(
    "ownerships",
    metadata,
    Column("id", String(64), primary_key=True),
    # data owned by `owner` becomes readable by members of `access`
    Column("owner", String(64), ForeignKey("organizations.id"), nullable=False),
    Column("access", String(64), ForeignKey("organizations.id"), nullable=False, index=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("owner", "access", name="uq_ownerships_owner_access"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("user", String(128), nullable=True),
    Column("job_type", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("description", Text, nullable=True),
    Column("stage", Text, nullable=True),
    Column("notes", JSONType, nullable=False),
    Column("asset_type", String(64), nullable=True),
    Column("asset_id", String(255), nullable=True),
    Column("tags", JSONType, nullable=False),
    Column("params", JSONType, nullable=True),
    Column("result", JSONType, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=1),
    # set while running; a worker renews it. Expired lease + status running = the worker died.
    Column("lease_expires_at", Float, nullable=True),
    # random token of the run that holds the job, so a presumed-dead worker cannot overwrite a retry
    Column("claim", String(64), nullable=True),
    Column("worker", String(255), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Index("ix_jobs_owner_created", "owner", "created_at"),
    Index("ix_jobs_status_lease", "status", "lease_expires_at"),
)
