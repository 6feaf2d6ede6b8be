"""assets, search terms, unique names

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
PKType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


#: byte-order comparison on PostgreSQL whatever the cluster's locale: prefix ranges on dotted field names and
#: id ordering must not depend on a collation that ignores punctuation (SQLite compares bytes already)
def CText(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("pk", PKType, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("asset_type", sa.String(32), nullable=False),
        sa.Column("id", CText(255), nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("doc", JSONType, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("owner", "asset_type", "id", name="uq_assets_owner_type_id"),
    )
    op.create_index("ix_assets_owner_type_ts", "assets", ["owner", "asset_type", "timestamp", "pk"])
    op.create_table(
        "asset_terms",
        sa.Column("asset_pk", PKType, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("asset_type", sa.String(32), nullable=False),
        sa.Column("field", CText(255), nullable=False),
        sa.Column("vstr", CText(512), nullable=True),
        sa.Column("vnum", sa.Float, nullable=True),
    )
    op.create_index("ix_terms_str", "asset_terms", ["owner", "asset_type", "field", "vstr", "vnum", "asset_pk"])
    op.create_index("ix_terms_num", "asset_terms", ["owner", "asset_type", "field", "vnum", "asset_pk"])
    op.create_index("ix_terms_asset", "asset_terms", ["asset_pk", "field", "vstr", "vnum"])
    op.create_table(
        "names",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("ref_id", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("names")
    op.drop_table("asset_terms")
    op.drop_table("assets")
