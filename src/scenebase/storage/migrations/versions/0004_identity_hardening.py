"""organization ids never reused; who drives a job; token hints without secret characters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

* ``organization_ids`` records every organization id ever issued (back-filled from ``organizations``).
* ``jobs.driven_by``: ``server`` for queued jobs that a worker runs under a lease, ``client`` for records the
  caller drives. Existing client records are the ones created without parameters (``POST /v1/jobs/add/``).
* ``users.token_hint``: hints of operator-given tokens (``SCENEBASE_ADMIN_TOKEN``) held the token's first
  characters; every hint that is not the public ``<org>-<user>-…`` prefix of the user becomes ``…``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UNKNOWN_HINT = "…"


def _token_prefix(org_id: str, username: str) -> str:
    # a frozen copy of scenebase.domain.ids.token_prefix: a migration must not change when the code does
    org_part = "".join(c for c in org_id.lower() if c.isalnum())[:8] or "org"
    user_part = "".join(c for c in username.lower() if c.isalnum())[:8] or "user"
    return f"{org_part}-{user_part}"


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "organization_ids",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=True),
    )
    op.execute("INSERT INTO organization_ids (id, created_at) SELECT id, created_at FROM organizations")

    op.add_column("jobs", sa.Column("driven_by", sa.String(16), nullable=False, server_default="server"))
    # JSON columns hold SQL NULL when the column was omitted and JSON null when None was written
    json_null = "'null'::jsonb" if bind.dialect.name == "postgresql" else "'null'"
    op.execute(f"UPDATE jobs SET driven_by = 'client' WHERE params IS NULL OR params = {json_null}")

    users = sa.table(
        "users", sa.column("username", sa.String), sa.column("organization_id", sa.String), sa.column("token_hint")
    )
    rows = bind.execute(sa.select(users.c.username, users.c.organization_id, users.c.token_hint)).all()
    for username, org_id, hint in rows:
        if hint != f"{_token_prefix(org_id, username)}-…":
            bind.execute(users.update().where(users.c.username == username).values(token_hint=UNKNOWN_HINT))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("driven_by")
    op.drop_table("organization_ids")
