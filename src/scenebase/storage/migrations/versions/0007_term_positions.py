"""element positions for nested filters; string postings in time order

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

* ``asset_element_terms``: the terms of values inside elements of lists of objects, with the element's position
  (``nested_filters``: conditions bound to one ``annotations_meta`` entry or one annotation entity). Filled here
  from the stored documents that have a list of objects.
* ``asset_terms.ts``: the asset's timestamp on each term (filled here), and the partial index
  ``ix_terms_str_ts`` (string postings in time order), so a search sorted by time walks the postings of its most
  selective filter instead of every asset of the type.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NOT_INDEXED = frozenset({"object_access", "thumbnails", "owner", "id"})
MAX_TERM_LENGTH = 512
BATCH = 500
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _element_terms(doc: dict[str, Any]) -> set[tuple[str, str | None, float | None, int]]:
    # a frozen copy of the element part of scenebase.domain.metadata.indexed_terms: a migration must not change
    # when the code does. Kinds' never-indexed fields are not known here; they only add a few needless rows.
    from datetime import UTC, datetime

    out: set[tuple[str, str | None, float | None, int]] = set()

    def epoch(text: str) -> float | None:
        if not _ISO_START.match(text):
            return None
        t = text.strip()
        t = t[:-1] + "+00:00" if t.endswith("Z") else t
        try:
            dt = datetime.fromisoformat(t)
        except ValueError:
            return None
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()

    def walk(path: str, value: Any, pos: int | None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{path}.{k}", v, pos)
        elif isinstance(value, list):
            numbered = pos is None and any(isinstance(v, dict) for v in value)
            for i, v in enumerate(value):
                walk(path, v, i if numbered else pos)
        elif pos is None:
            return
        elif isinstance(value, bool):
            out.add((path, "true" if value else "false", None, pos))
        elif isinstance(value, int | float):
            if math.isfinite(float(value)):
                out.add((path, None, float(value), pos))
        elif isinstance(value, str) and len(value) <= MAX_TERM_LENGTH:
            out.add((path, value, epoch(value), pos))

    for key, value in doc.items():
        if key not in NOT_INDEXED:
            walk(str(key), value, None)
    return out


def upgrade() -> None:
    bind = op.get_bind()
    pk_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    ctext = lambda n: sa.String(n).with_variant(sa.String(n, collation="C"), "postgresql")  # noqa: E731
    elements = op.create_table(
        "asset_element_terms",
        sa.Column("asset_pk", pk_type, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("asset_type", sa.String(32), nullable=False),
        sa.Column("field", ctext(255), nullable=False),
        sa.Column("vstr", ctext(512), nullable=True),
        sa.Column("vnum", sa.Float, nullable=True),
        sa.Column("pos", sa.Integer, nullable=False),
    )
    op.add_column("asset_terms", sa.Column("ts", sa.Float, nullable=True))
    op.execute(
        "UPDATE asset_terms SET ts = (SELECT assets.timestamp FROM assets WHERE assets.pk = asset_terms.asset_pk)"
    )

    # documents with a list of objects: their JSON text holds "[{" (the serializers of both catalogs write no
    # space there); a value containing "[{" only makes an extra candidate
    assets = sa.table("assets", sa.column("pk"), sa.column("owner"), sa.column("asset_type"), sa.column("doc"))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(assets.c.pk, assets.c.owner, assets.c.asset_type, assets.c.doc)
            .where(assets.c.pk > last, sa.cast(assets.c.doc, sa.Text).like("%[{%"))
            .order_by(assets.c.pk)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        batch = []
        for pk, owner, asset_type, doc in rows:
            data = json.loads(doc) if isinstance(doc, str) else doc
            for field, vstr, vnum, pos in _element_terms(data):
                batch.append({"asset_pk": pk, "owner": owner, "asset_type": asset_type, "field": field,
                              "vstr": vstr, "vnum": vnum, "pos": pos})  # fmt: skip
        if batch:
            op.bulk_insert(elements, batch)

    op.create_index("ix_elem_str", "asset_element_terms",
                    ["owner", "asset_type", "field", "vstr", "vnum", "asset_pk", "pos"])  # fmt: skip
    op.create_index("ix_elem_num", "asset_element_terms", ["owner", "asset_type", "field", "vnum", "asset_pk", "pos"])
    op.create_index("ix_elem_asset", "asset_element_terms", ["asset_pk", "field", "vstr", "vnum", "pos"])
    op.create_index(
        "ix_terms_str_ts",
        "asset_terms",
        ["owner", "asset_type", "field", "vstr", "ts", "asset_pk"],
        sqlite_where=sa.text("vstr IS NOT NULL"),
        postgresql_where=sa.text("vstr IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_terms_str_ts", "asset_terms")
    with op.batch_alter_table("asset_terms") as batch:
        batch.drop_column("ts")
    op.drop_table("asset_element_terms")
