"""Shared fixtures. Real servers (PostgreSQL, SeaweedFS, Redis) start once per test session, on demand.

Sample data from ``../shared/data``: see ``tests/sample_data.py`` (the ``shared_data`` fixture below, or
``require_shared_data`` / ``needs_shared_data``); such tests skip, naming the folder, on a clone without it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Make ``tests/servers.py`` and ``tests/sample_data.py`` importable by name without turning tests/ into a package.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from sample_data import require_shared_data
from servers import (
    PostgresServer,
    RedisServer,
    SeaweedServer,
    start_postgres,
    start_redis,
    start_seaweedfs,
)


@pytest.fixture
def shared_data() -> Path:
    """The sample-data folder ``../shared/data``; the test skips when it is absent."""
    return require_shared_data()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()
