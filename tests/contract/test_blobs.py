"""Contract tests that every :class:`BlobStore` backend must pass.

Backends: ``LocalBlobStore`` on a temp folder, and ``S3BlobStore`` against a real SeaweedFS (session fixture
``seaweedfs_server``), with and without a key prefix, on a fresh bucket per test.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from scenebase.storage.blobs import BlobNotFound, BlobStore, LocalBlobStore, open_blob_store
from servers import SeaweedServer, free_port

MB = 1024 * 1024


@dataclass
class Backend:
    name: str
    store: BlobStore
    # Stores that share the backend (same bucket or a sibling folder) but must never see this store's keys.
    neighbors: list[BlobStore]
    # The same kind of store pointed at nothing: any I/O through it fails (not with ValueError).
    unreachable: Callable[[], BlobStore]
    server: SeaweedServer | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def _close(store: object) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _new_bucket() -> str:
    return f"test-{uuid.uuid4().hex[:24]}"


def _drop_bucket(server: SeaweedServer, bucket: str) -> None:
    client = server.client()
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    finally:
        client.close()


def _local_backend(tmp_path: Path) -> Backend:
    def unreachable() -> BlobStore:
        store = LocalBlobStore(tmp_path / "gone")
        (tmp_path / "gone").rmdir()
        return store

    return Backend(
        name="local",
        store=LocalBlobStore(tmp_path / "store"),
        neighbors=[LocalBlobStore(tmp_path / "store-x"), LocalBlobStore(tmp_path / "other")],
        unreachable=unreachable,
    )


def _s3_backend(server: SeaweedServer, prefix: str) -> Backend:
    bucket = _new_bucket()
    store = open_blob_store(server.blob_url(bucket, prefix))
    backend = Backend(name="s3", store=store, neighbors=[], unreachable=lambda: store, server=server)
    backend.cleanups.append(lambda: _drop_bucket(server, bucket))
    if prefix:
        # Same bucket: the bucket root, a parent prefix and a prefix that merely starts with ours.
        backend.neighbors = [
            open_blob_store(server.blob_url(bucket)),
            open_blob_store(server.blob_url(bucket, prefix.rsplit("/", 1)[0])),
            open_blob_store(server.blob_url(bucket, prefix + "-x")),
        ]
    else:
        other = _new_bucket()
        backend.neighbors = [open_blob_store(server.blob_url(other))]
        backend.cleanups.append(lambda: _drop_bucket(server, other))

    def unreachable() -> BlobStore:
        dead = f"http://127.0.0.1:{free_port()}"
        url = f"s3://{bucket}/{prefix}?endpoint={dead}&access_key=k&secret_key=s&create_bucket=false"
        made = open_blob_store(url)
        backend.cleanups.append(lambda: _close(made))
        return made

    backend.unreachable = unreachable
    return backend


@pytest.fixture(
    params=[
        pytest.param("local", id="local"),
        pytest.param("s3", id="s3", marks=pytest.mark.s3),
        pytest.param("s3-prefix", id="s3-prefix", marks=pytest.mark.s3),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        b = _local_backend(tmp_path)
    else:
        server: SeaweedServer = request.getfixturevalue("seaweedfs_server")
        b = _s3_backend(server, "data/set1" if request.param == "s3-prefix" else "")
    try:
        yield b
    finally:
        for store in [b.store, *b.neighbors]:
            _close(store)
        for cleanup in reversed(b.cleanups):
            cleanup()


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.store


def _payload(n: int) -> bytes:
    return os.urandom(n) if n <= 4096 else (bytes(range(256)) * (n // 256 + 1))[:n]


# -- put / get -------------------------------------------------------------------------------------


def test_satisfies_protocol(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)
    assert isinstance(store.url, str) and store.url


@pytest.mark.parametrize("n", [0, 1, 1000, 5 * MB], ids=["0B", "1B", "1KB", "5MB"])
def test_put_get_round_trip(store: BlobStore, n: int) -> None:
    data = _payload(n)
    store.put("org/images/abc/original", data, content_type="application/octet-stream")
    assert store.get("org/images/abc/original") == data
    assert store.size("org/images/abc/original") == n
    assert store.exists("org/images/abc/original")


def test_key_charset(store: BlobStore) -> None:
    key = "A-z_0.9~@#!=/x.y-z"
    store.put(key, b"ok")
    assert store.get(key) == b"ok"
    assert list(store.list()) == [key]


def test_overwrite(store: BlobStore) -> None:
    store.put("k", b"first version, longer")
    store.put("k", b"second")
    assert store.get("k") == b"second"
    assert store.size("k") == 6
    store.put("k", b"")
    assert store.get("k") == b""
    assert list(store.list()) == ["k"]


def test_exists(store: BlobStore) -> None:
    assert not store.exists("a/b")
    store.put("a/b", b"x")
    assert store.exists("a/b")
    assert not store.exists("a")  # a "folder" is not a blob
    assert not store.exists("a/b/c")
    store.delete("a/b")
    assert not store.exists("a/b")


def test_size(store: BlobStore) -> None:
    store.put("s/zero", b"")
    store.put("s/three", b"abc")
    assert store.size("s/zero") == 0
    assert store.size("s/three") == 3


def test_modified_at(store: BlobStore) -> None:
    before = time.time()
    store.put("m/one", b"x")
    # the server's clock and ours may differ by a little; a wrong unit (ms) or a missing time would be far off
    assert abs(store.modified_at("m/one") - before) < 300
    with pytest.raises(BlobNotFound):
        store.modified_at("m/none")


# -- ranges ----------------------------------------------------------------------------------------


def test_open_range(store: BlobStore) -> None:
    data = bytes(range(256)) * 4  # 1024 bytes
    store.put("r", data)
    assert store.open_range("r", 0, 10) == data[:10]  # start
    assert store.open_range("r", 500, 100) == data[500:600]  # middle
    assert store.open_range("r", 1000, 24) == data[1000:]  # exactly the end
    assert store.open_range("r", 1000, 100) == data[1000:]  # runs past the end
    assert store.open_range("r", 0, 1024) == data  # whole blob
    assert store.open_range("r", 1023, 1) == data[1023:]  # last byte
    assert store.open_range("r", 1024, 10) == b""  # starts at the end
    assert store.open_range("r", 5000, 10) == b""  # starts past the end
    assert store.open_range("r", 10, 0) == b""  # empty range


def test_open_range_of_empty_blob(store: BlobStore) -> None:
    store.put("empty", b"")
    assert store.open_range("empty", 0, 10) == b""


def test_open_range_large(store: BlobStore) -> None:
    data = _payload(5 * MB)
    store.put("big", data)
    assert store.open_range("big", 3 * MB + 17, MB) == data[3 * MB + 17 : 4 * MB + 17]


# -- delete ----------------------------------------------------------------------------------------


def test_delete(store: BlobStore) -> None:
    store.put("d/1", b"1")
    store.put("d/2", b"2")
    store.delete("d/1")
    assert not store.exists("d/1")
    with pytest.raises(BlobNotFound):
        store.get("d/1")
    assert store.get("d/2") == b"2"
    assert list(store.list()) == ["d/2"]


def test_delete_missing_is_noop(store: BlobStore) -> None:
    store.delete("never/was")
    store.put("once", b"x")
    store.delete("once")
    store.delete("once")
    assert list(store.list()) == []


# -- list ------------------------------------------------------------------------------------------


KEYS = ["a/1", "a/2", "a/sub/3", "ab", "b/1", "top"]


def test_list(store: BlobStore) -> None:
    assert list(store.list()) == []
    for key in KEYS:
        store.put(key, key.encode())
    assert sorted(store.list()) == KEYS
    assert sorted(store.list("")) == KEYS
    assert sorted(store.list("a/")) == ["a/1", "a/2", "a/sub/3"]
    assert sorted(store.list("a")) == ["a/1", "a/2", "a/sub/3", "ab"]
    assert sorted(store.list("a/sub/")) == ["a/sub/3"]
    assert sorted(store.list("top")) == ["top"]
    assert list(store.list("zzz")) == []
    for key in store.list():  # listed keys are usable keys
        assert store.get(key) == key.encode()


def test_list_is_isolated_from_neighbors(backend: Backend) -> None:
    store = backend.store
    store.put("mine/1", b"mine")
    for i, neighbor in enumerate(backend.neighbors):
        neighbor.put("mine/1", f"theirs {i}".encode())
        neighbor.put(f"theirs/{i}", b"x")
        neighbor.put("only-theirs", b"x")
    assert sorted(store.list()) == ["mine/1"]
    assert sorted(store.list("mine/")) == ["mine/1"]
    assert list(store.list("theirs/")) == []
    assert store.get("mine/1") == b"mine"
    assert not store.exists("only-theirs")
    with pytest.raises(BlobNotFound):
        store.get("only-theirs")
    store.delete("mine/1")
    for i, neighbor in enumerate(backend.neighbors):
        assert neighbor.get("mine/1") == f"theirs {i}".encode()


def test_list_many_keys(store: BlobStore) -> None:
    """More keys than one S3 ListObjectsV2 page (1000)."""
    keys = [f"many/{i:05d}" for i in range(1050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.put(k, b"."), keys))
    store.put("other", b".")
    assert sorted(store.list("many/")) == keys
    assert len(list(store.list())) == len(keys) + 1


# -- missing and invalid keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        lambda s: s.get("no/such/key"),
        lambda s: s.size("no/such/key"),
        lambda s: s.open_range("no/such/key", 0, 10),
        lambda s: s.open_range("no/such/key", 0, 0),
    ],
    ids=["get", "size", "open_range", "open_range-0"],
)
def test_missing_key_raises_blob_not_found(store: BlobStore, op: Callable[[BlobStore], Any]) -> None:
    store.put("no/such/other", b"x")
    with pytest.raises(BlobNotFound) as info:
        op(store)
    assert isinstance(info.value, KeyError)
    assert not store.exists("no/such/key")


INVALID_KEYS = ["../x", "/abs", "a//b", "a/./b", "back\\slash", "", "a/..", "..", "trailing/", "sp ace", "é"]

OPERATIONS: list[tuple[str, Callable[[BlobStore, str, Path], Any]]] = [
    ("put", lambda s, k, f: s.put(k, b"x")),
    ("put_file", lambda s, k, f: s.put_file(k, f)),
    ("get", lambda s, k, f: s.get(k)),
    ("open_range", lambda s, k, f: s.open_range(k, 0, 1)),
    ("size", lambda s, k, f: s.size(k)),
    ("exists", lambda s, k, f: s.exists(k)),
    ("delete", lambda s, k, f: s.delete(k)),
]


def test_invalid_keys_raise_value_error(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    for key in INVALID_KEYS:
        for name, op in OPERATIONS:
            try:
                op(store, key, src)
            except ValueError as exc:
                assert "invalid blob key" in str(exc), (name, key, exc)
            else:
                pytest.fail(f"{name}({key!r}) did not raise ValueError")
    assert list(store.list()) == []


def test_invalid_keys_rejected_before_io(backend: Backend, tmp_path: Path) -> None:
    """On a store whose backend is gone, a bad key still gives ValueError: nothing was attempted."""
    dead = backend.unreachable()
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    for key in ["../x", "/abs", "a//b", "a/./b", "back\\slash", ""]:
        for name, op in OPERATIONS:
            with pytest.raises(ValueError, match="invalid blob key"):
                op(dead, key, src)
                pytest.fail(f"{name}({key!r}) did not raise")
    if backend.name == "local":
        assert not (tmp_path / "gone").exists()
        assert not (tmp_path / "x").exists()


# -- put_file --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 100_000, 9 * MB], ids=["0B", "100KB", "9MB-multipart"])
def test_put_file(store: BlobStore, tmp_path: Path, n: int) -> None:
    data = _payload(n)
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    store.put_file("files/upload.bin", src, content_type="application/octet-stream")
    assert store.get("files/upload.bin") == data
    assert store.size("files/upload.bin") == n
    assert src.read_bytes() == data  # the source is left alone


def test_put_file_missing_source(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.put_file("k", tmp_path / "does-not-exist")
    assert not store.exists("k")


# -- streams ---------------------------------------------------------------------------------------


class _OneWayStream(io.RawIOBase):
    """A non-seekable stream that hands out at most ``step`` bytes per read (like a network body)."""

    def __init__(self, data: bytes, step: int = 65536) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._step if size is None or size < 0 else min(size, self._step)
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(out)
        return out


@pytest.mark.parametrize("n", [0, 100_000, 20 * MB], ids=["0B", "100KB", "20MB-multipart"])
def test_put_stream(store: BlobStore, n: int) -> None:
    data = _payload(n)
    written = store.put_stream("files/streamed.bin", _OneWayStream(data), content_type="video/mp4")
    assert written == n
    assert store.size("files/streamed.bin") == n
    assert store.get("files/streamed.bin") == data


def test_put_stream_from_current_position(store: BlobStore) -> None:
    stream = io.BytesIO(b"headerPAYLOAD")
    stream.seek(6)
    assert store.put_stream("k", stream) == 7
    assert store.get("k") == b"PAYLOAD"


def test_open_reads_in_pieces(store: BlobStore) -> None:
    data = _payload(3 * MB)
    store.put("big/blob", data)
    with contextlib.closing(store.open("big/blob")) as fh:
        pieces = []
        while chunk := fh.read(MB // 3):
            pieces.append(chunk)
    assert b"".join(pieces) == data
    assert len(pieces) >= 3


def test_local_path(store: BlobStore) -> None:
    data = _payload(100_000)
    store.put("media/clip.mp4", data)
    with store.local_path("media/clip.mp4") as path:
        assert path.is_file()
        assert path.read_bytes() == data
        seen = path
    if not isinstance(store, LocalBlobStore):  # a remote store's temporary copy is gone afterwards
        assert not seen.exists()
    assert store.get("media/clip.mp4") == data


@pytest.mark.parametrize("op", ["open", "local_path"])
def test_stream_of_missing_blob(store: BlobStore, op: str) -> None:
    with pytest.raises(BlobNotFound):
        if op == "open":
            store.open("no/such/blob")
        else:
            with store.local_path("no/such/blob"):
                pass


# -- URLs ------------------------------------------------------------------------------------------


def test_url_reopens_same_store(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    store = backend.store
    store.put("x/y", b"via url")
    if backend.server is not None:
        # The URL carries no secrets: credentials come from the environment.
        assert backend.server.access_key not in store.url
        assert backend.server.secret_key not in store.url
        assert parse_qs(urlparse(store.url).query) == {"endpoint": [backend.server.endpoint]}
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", backend.server.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", backend.server.secret_key)
    again = open_blob_store(store.url)
    try:
        assert type(again) is type(store)
        assert again.url == store.url
        assert again.get("x/y") == b"via url"
        assert list(again.list()) == ["x/y"]
    finally:
        _close(again)


def test_open_blob_store_file_url(tmp_path: Path) -> None:
    store = open_blob_store((tmp_path / "blobs").as_uri())
    assert isinstance(store, LocalBlobStore)
    assert store.root == (tmp_path / "blobs").resolve()
    assert (tmp_path / "blobs").is_dir()
    store.put("a", b"1")
    assert (tmp_path / "blobs" / "a").read_bytes() == b"1"
    spaced = open_blob_store((tmp_path / "with space").as_uri())  # percent-encoded path
    assert isinstance(spaced, LocalBlobStore)
    assert spaced.root == (tmp_path / "with space").resolve()


def test_open_blob_store_s3_url_parsing() -> None:
    from scenebase.storage.s3 import S3BlobStore

    dead = f"http://127.0.0.1:{free_port()}"
    url = f"s3://my-bucket/some/prefix/?endpoint={dead}&region=eu-west-1&access_key=AK&secret_key=SK"
    url += "&create_bucket=false"
    store = open_blob_store(url)  # create_bucket=false: no I/O
    try:
        assert isinstance(store, S3BlobStore)
        assert store.bucket == "my-bucket"
        assert store.prefix == "some/prefix"
        assert store.endpoint == dead
        assert store.region == "eu-west-1"
        assert store.url.startswith("s3://my-bucket/some/prefix?")
        assert "AK" not in store.url and "SK" not in store.url
        query = parse_qs(urlparse(store.url).query)
        assert query["endpoint"] == [dead]
    finally:
        store.close()


@pytest.mark.parametrize("url", ["ftp://host/path", "http://host/bucket", "relative/path", "/abs/path", ""])
def test_open_blob_store_unknown_scheme(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported blob URL"):
        open_blob_store(url)


# -- S3 specifics ----------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_create_bucket_flag(seaweedfs_server: SeaweedServer) -> None:
    from botocore.exceptions import ClientError

    client = seaweedfs_server.client()
    bucket = _new_bucket()
    try:
        store = open_blob_store(seaweedfs_server.blob_url(bucket) + "&create_bucket=false")
        _close(store)
        with pytest.raises(ClientError):
            client.head_bucket(Bucket=bucket)
        store = open_blob_store(seaweedfs_server.blob_url(bucket))  # creates it
        again = open_blob_store(seaweedfs_server.blob_url(bucket))  # already there: fine
        client.head_bucket(Bucket=bucket)
        store.put("k", b"v")
        assert again.get("k") == b"v"
        _close(store)
        _close(again)
    finally:
        _drop_bucket(seaweedfs_server, bucket)
        client.close()


@pytest.mark.s3
def test_s3_layout_and_content_type(seaweedfs_server: SeaweedServer, tmp_path: Path) -> None:
    client = seaweedfs_server.client()
    bucket = _new_bucket()
    store = open_blob_store(seaweedfs_server.blob_url(bucket, "/p/q/"))
    try:
        store.put("img/1", b"png", content_type="image/png")
        src = tmp_path / "v.mp4"
        src.write_bytes(b"mp4")
        store.put_file("vid/1", src, content_type="video/mp4")
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
        assert keys == ["p/q/img/1", "p/q/vid/1"]
        assert client.head_object(Bucket=bucket, Key="p/q/img/1")["ContentType"] == "image/png"
        assert client.head_object(Bucket=bucket, Key="p/q/vid/1")["ContentType"] == "video/mp4"
    finally:
        _close(store)
        _drop_bucket(seaweedfs_server, bucket)
        client.close()


def test_a_folder_removed_behind_the_store_is_made_again(tmp_path: Path) -> None:
    """The folder store remembers which folders exist (no mkdir per write); one removed meanwhile is recreated."""
    store = LocalBlobStore(tmp_path / "blobs")
    store.put("images/a.jpg", b"a")
    spooled = tmp_path / "upload.bin"
    for n, write in enumerate(
        [
            lambda: store.put("images/b.jpg", b"b"),
            lambda: store.put_stream("images/b.jpg", io.BytesIO(b"b")),
            lambda: (spooled.write_bytes(b"b"), store.put_file("images/b.jpg", spooled, move=True)),
            lambda: (spooled.write_bytes(b"b"), store.put_file("images/b.jpg", spooled)),
        ]
    ):
        shutil.rmtree(tmp_path / "blobs" / "images")
        write()
        assert store.get("images/b.jpg") == b"b", n
    with pytest.raises(FileNotFoundError):  # a missing source is still an error, not a folder to make
        store.put_file("images/c.jpg", tmp_path / "nothing.bin", move=True)
