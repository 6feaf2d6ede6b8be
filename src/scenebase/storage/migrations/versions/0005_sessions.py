"""session timelines: raw entity chunks, per-session resolution state, resolved columns

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Time series of sessions live outside the asset documents and their term index (see ``storage/tables.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PKType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def CText(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "session_entity_chunks",
        sa.Column("pk", PKType, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("session_uid", CText(255), nullable=False),
        sa.Column("entity_name", CText(255), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("influence", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("t_min", sa.Float, nullable=False),
        sa.Column("t_max", sa.Float, nullable=False),
        sa.Column("urgent", sa.Boolean, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_entity_chunks_session_name_time", "session_entity_chunks", ["owner", "session_uid", "entity_name", "t_min"]
    )
    op.create_table(
        "session_timelines",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("session_uid", CText(255), primary_key=True),
        sa.Column("write_seq", sa.Integer, nullable=False),
        sa.Column("auto_seq", sa.Integer, nullable=False),
        sa.Column("resolved_seq", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.Float, nullable=True),
        sa.Column("resolved_at", sa.Float, nullable=True),
        sa.Column("resolution", sa.Float, nullable=True),
        sa.Column("start_index", sa.BigInteger, nullable=True),
        sa.Column("length", sa.Integer, nullable=True),
        sa.Column("job_id", sa.String(64), nullable=True),
    )
    op.create_table(
        "session_columns",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("session_uid", CText(255), primary_key=True),
        sa.Column("entity_name", CText(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_session_columns_name", "session_columns", ["owner", "entity_name", "session_uid", "generation"])


def downgrade() -> None:
    op.drop_table("session_columns")
    op.drop_table("session_timelines")
    op.drop_table("session_entity_chunks")
