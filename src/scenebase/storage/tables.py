"""Catalog tables (SQLAlchemy Core). Alembic migrations in ``migrations/versions`` create the same schema;
``tests/contract/test_catalog.py`` checks that the two never drift apart.

Times are stored as float UNIX epochs (UTC): portable between SQLite and PostgreSQL and cheap to compare.
Every data table has an ``owner`` column (organization id) that the repositories always filter on. Its rows
also keep the organization from being deleted, unless ``identity_repo.GOES_WITH_ORGANIZATION`` says they go with it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    types,
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

#: Every organization id ever issued, kept after the organization is deleted: an id is never given out twice,
#: so data an organization left behind can never surface in a newer one.
organization_ids = Table(
    "organization_ids",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float, nullable=True),
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
    # "<org prefix>-<user prefix>-…" of a generated token, or "…": never a character of the secret
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
    # "server": queued for a worker, which claims it under a lease; "client": a record the caller drives through
    # the /v1/jobs run/progress/finish routes. The client routes refuse server jobs (they would hold no lease).
    Column("driven_by", String(16), nullable=False, server_default="server"),
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
    # fair claims: organizations with queued/running jobs, and when each one's last job started (migration 0005)
    Index("ix_jobs_status_owner_created", "status", "owner", "created_at"),
    Index("ix_jobs_owner_started", "owner", "started_at"),
)

#: 64-bit keys on PostgreSQL, the rowid alias on SQLite
PKType = BigInteger().with_variant(Integer(), "sqlite")


#: byte-order comparison on PostgreSQL whatever the cluster's locale: prefix ranges on dotted field names and
#: id ordering must not depend on a collation that ignores punctuation (SQLite compares bytes already)
def CText(length: int) -> types.TypeEngine[str]:
    return String(length).with_variant(String(length, collation="C"), "postgresql")


#: Every asset of every type (images, sets, zipfiles, ...) as one JSON document plus indexed columns.
assets = Table(
    "assets",
    metadata,
    Column("pk", PKType, primary_key=True, autoincrement=True),
    Column("owner", String(64), nullable=False),
    Column("asset_type", String(32), nullable=False),
    Column("id", CText(255), nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("doc", JSONType, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("owner", "asset_type", "id", name="uq_assets_owner_type_id"),
    Index("ix_assets_owner_type_ts", "owner", "asset_type", "timestamp", "pk"),
    # keyset paging of scans walks this in primary-key order
    Index("ix_assets_owner_type_pk", "owner", "asset_type", "pk"),
)

#: The search index: one row per (asset, dotted field, value). See ``domain/metadata.index_terms``.
asset_terms = Table(
    "asset_terms",
    metadata,
    Column("asset_pk", PKType, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("asset_type", String(32), nullable=False),
    Column("field", CText(255), nullable=False),
    Column("vstr", CText(512), nullable=True),
    Column("vnum", Float, nullable=True),
    # the asset's timestamp, repeated (terms are rewritten with their document): a string posting list can be
    # walked in time order, so a sorted search reads the postings of its most selective filter, not every asset
    Column("ts", Float, nullable=True),
    # postings: which assets have field=value (drives selective filters and aggregations)
    Index("ix_terms_str", "owner", "asset_type", "field", "vstr", "vnum", "asset_pk"),
    # numbers only (migration 0009): every reader names a number, which implies the predicate
    Index(
        "ix_terms_num",
        "owner",
        "asset_type",
        "field",
        "vnum",
        "asset_pk",
        sqlite_where=text("vnum IS NOT NULL"),
        postgresql_where=text("vnum IS NOT NULL"),
    ),
    # per-asset probe: does this asset have field=value (drives EXISTS checks along a sorted scan)
    Index("ix_terms_asset", "asset_pk", "field", "vstr", "vnum"),
    # string postings in time order (numbers sort by value, not time, and are left out)
    Index(
        "ix_terms_str_ts",
        "owner",
        "asset_type",
        "field",
        "vstr",
        "ts",
        "asset_pk",
        sqlite_where=text("vstr IS NOT NULL"),
        postgresql_where=text("vstr IS NOT NULL"),
    ),
)

#: Element positions: the terms of values inside an element of a list of objects (``annotations_meta``,
#: annotation entities), with the element's position, so that conditions on one element bind to the same element
#: (``nested_filters``). See ``domain/metadata.indexed_terms``. The flat terms stay in ``asset_terms``.
asset_element_terms = Table(
    "asset_element_terms",
    metadata,
    Column("asset_pk", PKType, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("asset_type", String(32), nullable=False),
    Column("field", CText(255), nullable=False),
    Column("vstr", CText(512), nullable=True),
    Column("vnum", Float, nullable=True),
    Column("pos", Integer, nullable=False),
    Index("ix_elem_str", "owner", "asset_type", "field", "vstr", "vnum", "asset_pk", "pos"),
    Index("ix_elem_num", "owner", "asset_type", "field", "vnum", "asset_pk", "pos"),
    Index("ix_elem_asset", "asset_pk", "field", "vstr", "vnum", "pos"),
)

#: Names unique per organization and kind (set names), enforced by the database under concurrency.
names = Table(
    "names",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("ref_id", String(255), nullable=False),
)


# ---- session timelines (FACTS 4): time series, never in the term index ------------------------------------------
# Raw entities are kept as columnar chunks (one row per name, type and influence of a written batch: arrays of
# times and values in ``payload``, see ``domain/timeline_data.EntityChunk``), so 100,000 measurements are a few
# rows to write and to read back for resolution. ``t_min``/``t_max`` bound the chunk's influence in time.
session_entity_chunks = Table(
    "session_entity_chunks",
    metadata,
    Column("pk", PKType, primary_key=True, autoincrement=True),
    Column("owner", String(64), nullable=False),
    Column("session_uid", CText(255), nullable=False),
    Column("entity_name", CText(255), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("influence", String(32), nullable=False),
    Column("count", Integer, nullable=False),
    Column("t_min", Float, nullable=False),
    Column("t_max", Float, nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    # one session's entities of one name over a time range
    Index("ix_entity_chunks_session_name_time", "owner", "session_uid", "entity_name", "t_min"),
)

#: Per session: which entity writes the resolved columns cover, and the grid they were resolved on.
session_timelines = Table(
    "session_timelines",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("session_uid", CText(255), primary_key=True),
    # bumped by every entity write; auto_seq: the last write that asked for automatic (debounced) resolution
    Column("write_seq", Integer, nullable=False),
    Column("auto_seq", Integer, nullable=False),
    # write_seq read by the last resolution before it read the entities: ready when it equals write_seq
    Column("resolved_seq", Integer, nullable=False),
    # bumped by every resolution: the version of the session's resolved columns (cache key)
    Column("generation", Integer, nullable=False),
    Column("changed_at", Float, nullable=True),
    Column("resolved_at", Float, nullable=True),
    Column("resolution", Float, nullable=True),
    Column("start_index", BigInteger, nullable=True),
    Column("length", Integer, nullable=True),
    Column("job_id", String(64), nullable=True),
)

#: The resolved timeline: one column per (session, entity name), a value per bucket in ``payload``
#: (``domain/timeline_data.Column``). Scenario search reads the columns of the names it tests across sessions.
session_columns = Table(
    "session_columns",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("session_uid", CText(255), primary_key=True),
    Column("entity_name", CText(255), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # which sessions have a column of this name, and of which generation (without reading payloads)
    Index("ix_session_columns_name", "owner", "entity_name", "session_uid", "generation"),
)

# ---- embeddings (FACTS 2.6, 7): one row per vector, never in the term index -----------------------------------
#: An asset has at most one vector per space (``index_name``); re-adding replaces it. The vector is the raw
#: little-endian float32 bytes. Written with one executemany per batch: no document, no index rows.
embeddings = Table(
    "embeddings",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("id", CText(255), primary_key=True),
    Column("index_name", CText(255), nullable=False),
    Column("asset_type", String(32), nullable=False),
    Column("asset_id", CText(255), nullable=False),
    Column("dims", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("model", CText(255), nullable=False),
    Column("version", CText(255), nullable=False),
    Column("layer", CText(255), nullable=True),
    Column("session_uid", CText(255), nullable=True),
    Column("timestamp", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    # a space's vectors in asset order (scans, the vectors of given assets)
    UniqueConstraint("owner", "index_name", "asset_type", "asset_id", name="uq_embeddings_space_asset"),
    # an asset's embeddings in every space (deleting the asset)
    Index("ix_embeddings_asset", "owner", "asset_type", "asset_id"),
)
