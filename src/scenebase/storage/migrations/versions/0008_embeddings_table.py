"""embeddings in a table of their own

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Embeddings were documents of the generic store (``asset_type = 'embeddings'``, about ten index rows each, the
vector as base64 in the JSON). They move to ``embeddings``: one row per (space, asset) with the raw float32
bytes. Existing documents are copied over (the latest one of an asset in a space wins, as its link did) and
removed from ``assets`` and the term index. The assets' ``embeddings.<index_name>`` links stay as they are.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    bind = op.get_bind()
    ctext = lambda n: sa.String(n).with_variant(sa.String(n, collation="C"), "postgresql")  # noqa: E731
    table = op.create_table(
        "embeddings",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("id", ctext(255), primary_key=True),
        sa.Column("index_name", ctext(255), nullable=False),
        sa.Column("asset_type", sa.String(32), nullable=False),
        sa.Column("asset_id", ctext(255), nullable=False),
        sa.Column("dims", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("model", ctext(255), nullable=False),
        sa.Column("version", ctext(255), nullable=False),
        sa.Column("layer", ctext(255), nullable=True),
        sa.Column("session_uid", ctext(255), nullable=True),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("owner", "index_name", "asset_type", "asset_id", name="uq_embeddings_space_asset"),
    )
    op.create_index("ix_embeddings_asset", "embeddings", ["owner", "asset_type", "asset_id"])

    assets = sa.table(
        "assets", sa.column("pk"), sa.column("owner"), sa.column("asset_type"), sa.column("timestamp"),
        sa.column("doc"), sa.column("updated_at"),
    )  # fmt: skip
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    last = 0
    while True:
        found = bind.execute(
            sa.select(assets.c.pk, assets.c.owner, assets.c.timestamp, assets.c.doc, assets.c.updated_at)
            .where(assets.c.asset_type == "embeddings", assets.c.pk > last)
            .order_by(assets.c.pk)
            .limit(BATCH)
        ).all()
        if not found:
            break
        last = found[-1][0]
        for _pk, owner, ts, doc, updated in found:
            data = json.loads(doc) if isinstance(doc, str) else doc
            if not data.get("vector") or not data.get("index_name") or not data.get("asset_id"):
                continue  # not a usable embedding: nothing to search with
            key = (owner, data["index_name"], data.get("media_type") or "images", data["asset_id"])
            row = {"owner": owner, "id": data["id"], "index_name": key[1], "asset_type": key[2],
                   "asset_id": key[3], "dims": int(data["ndim"]), "vector": base64.b64decode(data["vector"]),
                   "model": str(data.get("model") or "default"), "version": str(data.get("version") or "v1"),
                   "layer": data.get("layer"), "session_uid": data.get("session_uid"), "timestamp": float(ts),
                   "created_at": float(updated), "_updated": float(updated)}  # fmt: skip
            if key not in rows or rows[key]["_updated"] <= row["_updated"]:
                rows[key] = row
    by_id: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows.values():
        row.pop("_updated")
        by_id[(row["owner"], row["id"])] = row  # one id in two spaces: the later one (ids are the primary key)
    values = list(by_id.values())
    for start in range(0, len(values), BATCH):
        op.bulk_insert(table, values[start : start + BATCH])
    pks = sa.select(assets.c.pk).where(assets.c.asset_type == "embeddings").scalar_subquery()
    for name in ("asset_terms", "asset_element_terms"):
        terms = sa.table(name, sa.column("asset_pk"), sa.column("asset_type"))
        bind.execute(sa.delete(terms).where(terms.c.asset_type == "embeddings", terms.c.asset_pk.in_(pks)))
    bind.execute(sa.delete(assets).where(assets.c.asset_type == "embeddings"))


def downgrade() -> None:
    # the documents are not rebuilt: embeddings added after the upgrade would have to be added again
    op.drop_index("ix_embeddings_asset", "embeddings")
    op.drop_table("embeddings")
