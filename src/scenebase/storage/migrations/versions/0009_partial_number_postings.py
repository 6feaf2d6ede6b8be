"""number postings hold only the terms that have a number

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

``ix_terms_num`` (owner, asset_type, field, vnum, asset_pk) held every term, also the string-only ones (about a
third of an image's), whose ``vnum`` is NULL. Every query that reads it names a number (a value, a range, or
``vnum IS NOT NULL``), which implies the index's predicate on both databases; the rest read ``ix_terms_str``.
Measured on PostgreSQL: a sixth less work to write an image's terms. The index is rebuilt (minutes on a catalog of
millions of assets).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ["owner", "asset_type", "field", "vnum", "asset_pk"]


def upgrade() -> None:
    op.drop_index("ix_terms_num", "asset_terms")
    predicate = sa.text("vnum IS NOT NULL")
    op.create_index("ix_terms_num", "asset_terms", COLUMNS, sqlite_where=predicate, postgresql_where=predicate)


def downgrade() -> None:
    op.drop_index("ix_terms_num", "asset_terms")
    op.create_index("ix_terms_num", "asset_terms", COLUMNS)
