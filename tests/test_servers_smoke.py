"""The real-server fixtures start, answer and are usable."""

from __future__ import annotations

import uuid

import pytest

from servers import PostgresServer, RedisServer


@pytest.mark.postgres
def test_postgres_select_1_and_pgvector(postgres_server: PostgresServer) -> None:
    import psycopg

    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert row is not None, "the vector extension was not created"
        assert conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone() == (1.0,)


@pytest.mark.postgres
def test_postgres_create_database(postgres_server: PostgresServer) -> None:
    import psycopg

    name = f"smoke_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    assert url == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/{name}"
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() == (1,)
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v vector(3))")
            conn.execute("INSERT INTO t VALUES (1, '[1,0,0]'), (2, '[0,1,0]')")
            nearest = conn.execute("SELECT id FROM t ORDER BY v <-> '[0.9,0.1,0]' LIMIT 1").fetchone()
            assert nearest == (1,)
    finally:
        postgres_server.drop_database(name)


@pytest.mark.redis
def test_redis_ping(redis_server: RedisServer) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping() is True
        client.set("smoke", b"ok")
        assert client.get("smoke") == b"ok"
    finally:
        client.close()
