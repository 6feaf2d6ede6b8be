"""Blob store on any S3-compatible service (AWS S3, SeaweedFS, MinIO, ...).

Only imported for ``s3://`` URLs (see :func:`scenebase.storage.blobs.open_blob_store`), so ``boto3`` is needed
only by deployments that use S3.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlencode

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from scenebase.storage.blobs import CHUNK, BlobNotFound, check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
#: multipart above 16 MiB, in 16 MiB parts, 4 in flight: streaming a 2 GB video holds at most ~64 MiB
_PART = 16 * 1024 * 1024
_TRANSFER = TransferConfig(multipart_threshold=_PART, multipart_chunksize=_PART, max_concurrency=4)

# One boto3 session for the process: a new session re-reads botocore's service models (~0.1 s per client),
# while clients made from a shared one cost ~5 ms. Session.client() is not thread-safe, hence the lock;
# the clients themselves are.
_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def _make_client(**kwargs: Any) -> S3Client:
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        client = _session.client("s3", **kwargs)
    client.meta.events.register("before-send.s3", _drop_expect_header)
    return client


def _drop_expect_header(request: Any, **_kwargs: Any) -> None:
    """Send PUT bodies without ``Expect: 100-continue``.

    After a zero-byte PUT with that header, some servers (SeaweedFS, MinIO) send a late ``100 Continue`` that
    botocore reads as the answer to the next PUT on the pooled connection, which then stalls until the read
    timeout (60 s) and is silently retried (boto/botocore#3755, boto/boto3#1341). The header is not signed.
    Returns None so that botocore goes on to send the request.
    """
    request.headers.pop("Expect", None)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_not_found(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _error_code(exc) in _NOT_FOUND_CODES or (status == 404 and _error_code(exc) != "NoSuchBucket")


class _CountingReader:
    """A read-only stream that counts what boto3 reads through it and fills every read: s3transfer takes a
    short read of a non-seekable stream for its end, while sockets and pipes may return less than asked."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data = self._stream.read()
        else:
            parts: list[bytes] = []
            missing = size
            while missing > 0:
                piece = self._stream.read(missing)
                if not piece:
                    break
                parts.append(piece)
                missing -= len(piece)
            data = b"".join(parts)
        self.count += len(data)
        return data


class S3BlobStore:
    """Blobs as objects in one bucket, under ``prefix/`` when a prefix is given.

    Path-style addressing is used so that self-hosted services work without wildcard DNS.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = True,
    ) -> None:
        if not bucket:
            raise ValueError("S3 blob store needs a bucket: s3://BUCKET[/PREFIX]?endpoint=URL")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        query: dict[str, str] = {}
        if endpoint:
            query["endpoint"] = endpoint
        if region != "us-east-1":
            query["region"] = region
        path = f"/{prefix}" if prefix else ""
        self.url = f"s3://{bucket}{path}" + (f"?{urlencode(query)}" if query else "")
        config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}, max_pool_connections=32)
        self._client = _make_client(
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
        if create_bucket:
            self._ensure_bucket()

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> S3BlobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------------------

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status != 404 and _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- BlobStore -----------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        full = self._key(key)
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        self._client.put_object(Bucket=self.bucket, Key=full, Body=data, **extra)

    def put_file(self, key: str, path: Path, content_type: str | None = None, move: bool = False) -> None:
        full = self._key(key)
        extra: dict[str, Any] | None = {"ContentType": content_type} if content_type else None
        self._client.upload_file(str(path), self.bucket, full, ExtraArgs=extra, Config=_TRANSFER)
        if move:
            path.unlink(missing_ok=True)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str | None = None) -> int:
        full = self._key(key)
        extra: dict[str, Any] | None = {"ContentType": content_type} if content_type else None
        counted = _CountingReader(stream)
        self._client.upload_fileobj(counted, self.bucket, full, ExtraArgs=extra, Config=_TRANSFER)
        return counted.count

    def _get(self, key: str, full: str, byte_range: str | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if byte_range is not None:
            kwargs["Range"] = byte_range
        try:
            resp = self._client.get_object(**kwargs)
        except ClientError as exc:
            if _is_not_found(exc):
                raise BlobNotFound(key) from None
            raise
        body = resp["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def get(self, key: str) -> bytes:
        return self._get(key, self._key(key))

    def open(self, key: str) -> BinaryIO:
        try:
            resp = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _is_not_found(exc):
                raise BlobNotFound(key) from None
            raise
        body: BinaryIO = resp["Body"]  # botocore StreamingBody: read(n), close()
        return body

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        fd, tmp = tempfile.mkstemp(prefix="scenebase-blob-")
        os.close(fd)
        try:
            with contextlib.closing(self.open(key)) as body, open(tmp, "wb") as out:
                while chunk := body.read(CHUNK):
                    out.write(chunk)
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def open_range(self, key: str, start: int, length: int) -> bytes:
        full = self._key(key)
        if start < 0 or length < 0:
            raise ValueError(f"invalid byte range start={start} length={length}")
        if length == 0:
            self.size(key)  # still report a missing blob
            return b""
        try:
            return self._get(key, full, f"bytes={start}-{start + length - 1}")
        except ClientError as exc:
            # 416: the range starts at or past the end (also any range of a 0-byte blob).
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if _error_code(exc) == "InvalidRange" or status == 416:
                return b""
            raise

    def size(self, key: str) -> int:
        full = self._key(key)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _is_not_found(exc):
                raise BlobNotFound(key) from None
            raise
        return int(head["ContentLength"])

    def modified_at(self, key: str) -> float:
        full = self._key(key)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _is_not_found(exc):
                raise BlobNotFound(key) from None
            raise
        return float(head["LastModified"].timestamp())

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        full = self._key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if not _is_not_found(exc):
                raise

    def list(self, prefix: str = "") -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
            for obj in page.get("Contents", []):
                full = obj["Key"]
                if full.startswith(base):
                    yield full[len(base) :]
