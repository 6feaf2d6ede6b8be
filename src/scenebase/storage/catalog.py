"""The catalog: one SQL database (SQLite embedded, PostgreSQL scale-out) reached through SQLAlchemy Core.

``Catalog.write()`` yields a connection inside a write transaction, ``Catalog.read()`` one for reads.
On SQLite, writes start with ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of
failing with "database is locked" when a read transaction tries to upgrade; reads use a second engine
with deferred transactions so they never wait for a writer (WAL mode).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from scenebase import fastjson

log = logging.getLogger("scenebase.catalog")
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: PostgreSQL SQLSTATEs of a transaction that lost a race and can simply run again
_RETRYABLE_SQLSTATES = {"40001": "serialization failure", "40P01": "deadlock", "55P03": "lock not available"}


class ConcurrentWrite(Exception):
    """A write collided with a concurrent one (e.g. both created the same id); running it again resolves it."""


def write_conflict(exc: BaseException) -> tuple[int, str] | None:
    """``(http_status, text)`` when ``exc`` is a write conflict rather than a bug: 503 for a busy catalog
    (locked SQLite file, PostgreSQL deadlock / serialization failure), 409 for a duplicate key; else None."""
    if isinstance(exc, ConcurrentWrite):
        return 409, str(exc) or "a concurrent write changed the same records"
    if isinstance(exc, IntegrityError):
        return 409, "a concurrent write created the same record"
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
        if sqlstate in _RETRYABLE_SQLSTATES:
            return 503, f"the catalog is busy ({_RETRYABLE_SQLSTATES[sqlstate]})"
        text = str(getattr(exc, "orig", exc)).lower()
        if "database is locked" in text or "database is busy" in text:
            return 503, "the catalog is busy (database is locked)"
    return None


def _retryable(exc: BaseException) -> bool:
    conflict = write_conflict(exc)
    return conflict is not None


def _sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


#: page size of a new SQLite catalog. The index tables take most writes: an annotation inserts ~34 index rows into
#: five B-trees each, and with SQLite's default 4 KiB pages add_annotations ran 12-15 % slower (in-process, four
#: threads) than with 8 KiB pages, and ingestion similarly
SQLITE_PAGE_SIZE = 8192

#: WAL pages after which a writer copies the WAL into the database itself; below that the checkpointer thread does
#: it between writes (SQLite's default, 1,000 pages, has every large write transaction checkpoint as it commits)
WAL_AUTOCHECKPOINT_PAGES = 16_384


class _Checkpointer:
    """Copies the write-ahead log back into the database file on its own thread and connection, woken after each
    write transaction commits, so that the writer (SQLite allows one at a time) does not: a batch of 500
    annotations appends ~4,000 pages to the WAL, and copying them at commit held the write lock ~5 % longer.
    PASSIVE checkpoints never wait for readers or writers; a writer still checkpoints itself when the WAL passes
    ``WAL_AUTOCHECKPOINT_PAGES`` (which is also what lets the WAL start over under a steady stream of writes)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def committed(self) -> None:
        """Called as a write transaction commits (SQLAlchemy's ``commit`` event, just before the commit itself):
        nothing here may fail that write. Starts the thread when there is none (first write, after ``stop``, or
        after the thread could not open the database)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            with self._lock:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    stop = threading.Event()
                    thread = threading.Thread(target=self._run, args=(stop,), name="scenebase-checkpoint", daemon=True)
                    try:
                        thread.start()
                    except RuntimeError as e:  # no thread to be had now (shutdown): the writer checkpoints itself
                        log.warning("background checkpoints paused: %s", e)
                        return
                    self._thread, self._stop = thread, stop
        self._wake.set()

    def _run(self, stop: threading.Event) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as e:  # tried again after the next write
            log.warning("background checkpoints paused: %s", e)
            return
        try:
            while not stop.is_set():
                self._wake.wait(1.0)
                if stop.is_set():
                    break
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:  # a checkpoint that cannot run now runs after the next write
                    log.debug("background checkpoint: %s", e)
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the thread (``Catalog.dispose``); a later write, if the catalog is used again, starts a new one."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
            self._wake.set()
        if thread is not None:
            thread.join(timeout=10)


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 60},
        json_deserializer=fastjson.loads,
        json_serializer=fastjson.dumps,
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        # takes effect when the file is created (an existing catalog keeps its page size)
        cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        # each asset writes ~30-60 index rows into four indexes: with SQLite's default 2 MB page cache those inserts
        # miss the cache once the catalog grows; 64 MB per connection keeps the hot index pages in memory
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        if immediate:
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


#: rows a process writes into a PostgreSQL table before it asks for new statistics
ANALYZE_MIN_ROWS = 1000
#: ... and then: this many times what the last statistics saw (the table quadrupled), so a growing table is
#: analyzed O(log n) times. Row counts between two analyses stay right (the planner scales the statistics' rows
#: per page by the table's pages now); what was missing on a new catalog were any statistics at all.
ANALYZE_GROWTH = 3.0
#: ... until the statistics saw this many rows: from then on autovacuum keeps them (it analyzes a table after a
#: tenth of it changed, looking once a minute); the planner only went wrong while there were none
ANALYZE_UNTIL_ROWS = 10_000
#: key of ``Connection.info`` under which a repository counts the rows it inserted per table (see ``Catalog.write``)
WRITTEN_ROWS = "scenebase_written_rows"


def count_written(conn: Connection, table: str, rows: int) -> None:
    """Record that ``rows`` rows go into ``table`` when ``conn``'s transaction commits."""
    written = conn.info.setdefault(WRITTEN_ROWS, {})
    written[table] = written.get(table, 0) + rows


class _Analyzer:
    """PostgreSQL only: ``ANALYZE`` a table on a thread of its own once the rows this process wrote into it since its
    statistics were taken pass ``ANALYZE_GROWTH`` times what those statistics saw (at least ``ANALYZE_MIN_ROWS``),
    until the statistics saw ``ANALYZE_UNTIL_ROWS``; autovacuum keeps them from then on.
    A table this process has not analyzed yet starts from the statistics it has (a restarted server does not
    analyze a large table again after its first thousand rows).

    Autovacuum does the same, but looks once a minute: on a new catalog the first minute of ingestion ran without
    statistics, and the planner took each batch's lookup of 100 ids by ``(owner, asset_type, id)`` for a one-row
    range scan of the organization's ``(owner, asset_type, pk)`` index, filtering ids: every request read every asset
    (measured: 6,000 rows read per lookup after three batches of 2,000 images)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._added: dict[str, int] = {}
        self._seen: dict[str, float] = {}  # rows the table's statistics saw (pg_class.reltuples) after our ANALYZE
        self._thread: threading.Thread | None = None
        self.analyzed: list[str] = []  # tables analyzed, in order (for tests and logs)

    def _due(self, table: str) -> bool:
        seen = self._seen.get(table, 0.0)
        return seen < ANALYZE_UNTIL_ROWS and self._added.get(table, 0) >= max(ANALYZE_MIN_ROWS, ANALYZE_GROWTH * seen)

    def wrote(self, table: str, rows: int) -> None:
        if rows <= 0:
            return
        with self._lock:
            self._added[table] = self._added.get(table, 0) + rows
            if not self._due(table) or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="scenebase-analyze", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                unknown = [t for t in self._added if t not in self._seen and self._due(t)]
            for table in unknown:  # first sight: what the table's statistics (if any) saw already
                seen = self._reltuples(table)
                with self._lock:
                    self._seen[table] = seen
            with self._lock:
                due = [t for t in self._added if self._due(t)]
                if not due:
                    self._thread = None
                    return
                for table in due:
                    self._added[table] = 0
            for table in due:  # names from this package's code, never from a request
                try:
                    with self._engine.begin() as conn:
                        conn.exec_driver_sql(f"ANALYZE {table}")
                except Exception as exc:  # a failed ANALYZE leaves it to autovacuum; the write succeeded
                    log.warning("ANALYZE %s failed: %s", table, exc)
                    continue
                seen = self._reltuples(table)
                with self._lock:
                    self._seen[table] = seen
                    self.analyzed.append(table)

    def _reltuples(self, table: str) -> float:
        """The rows ``table``'s statistics saw; 0 when it has none (or on an error)."""
        try:
            with self._engine.connect() as conn:
                found = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,))
                return max(float(found.scalar() or 0.0), 0.0)  # -1: never analyzed
        except Exception as exc:
            log.warning("reading the statistics of %s failed: %s", table, exc)
            return 0.0


class Catalog:
    """Owns the engines. Repositories (``scenebase.storage.repos``) take a :class:`Catalog`."""

    def __init__(self, url: str) -> None:
        self.url = url
        sa_url = make_url(_sqlalchemy_url(url))
        self.dialect = sa_url.get_backend_name()
        self._checkpointer: _Checkpointer | None = None
        self.analyzer: _Analyzer | None = None
        if self.dialect == "sqlite":
            db = sa_url.database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            self._write_engine = _sqlite_engine(str(sa_url), immediate=True)
            self._read_engine = _sqlite_engine(str(sa_url), immediate=False)
            if db and db != ":memory:":
                checkpointer = _Checkpointer(db)
                self._checkpointer = checkpointer
                event.listen(self._write_engine, "commit", lambda _conn: checkpointer.committed())
        elif self.dialect == "postgresql":
            engine = create_engine(
                sa_url,
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                json_deserializer=fastjson.loads,
                json_serializer=fastjson.dumps,
            )
            self._write_engine = self._read_engine = engine
            self.analyzer = _Analyzer(engine)
        else:
            raise ValueError(f"unsupported catalog URL {url!r}: use sqlite:///PATH or postgresql://...")
        self._migrate_lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._write_engine.begin() as conn:
            conn.info.pop(WRITTEN_ROWS, None)  # the info outlives the checkout: drop a rolled-back write's counts
            yield conn
            written: dict[str, int] = conn.info.pop(WRITTEN_ROWS, None) or {}
        for table, rows in written.items():  # committed
            self.wrote(table, rows)

    def write_retrying(self, fn: Callable[[Connection], T], attempts: int = 4) -> T:
        """Run ``fn`` in a write transaction; when it loses a race with a concurrent writer (see
        :func:`write_conflict`), run it again in a new transaction, up to ``attempts`` times. ``fn`` must not
        have effects outside the transaction."""
        for attempt in range(1, attempts + 1):
            try:
                with self.write() as conn:
                    return fn(conn)
            except (DBAPIError, ConcurrentWrite) as exc:
                if attempt == attempts or not _retryable(exc):
                    raise
                log.info("write conflict (attempt %d of %d), retrying: %s", attempt, attempts, type(exc).__name__)
                time.sleep(0.01 * 2**attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def wrote(self, table: str, rows: int) -> None:
        """``rows`` new rows were committed into ``table`` (PostgreSQL: may start an ``ANALYZE``, see
        :class:`_Analyzer`; SQLite needs none: it has no statistics unless asked)."""
        if self.analyzer is not None:
            self.analyzer.wrote(table, rows)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._read_engine.connect() as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent, safe with several servers)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._migrate_lock, self._write_engine.begin() as conn:
            if self.dialect == "postgresql":
                # several servers may start together: one migrates, the others wait for it
                conn.execute(text("SELECT pg_advisory_xact_lock(7461)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def current_revision(self) -> str | None:
        with self.read() as conn:
            try:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            except Exception:
                return None
            return row[0] if row else None

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._write_engine.dispose()
        if self._read_engine is not self._write_engine:
            self._read_engine.dispose()
