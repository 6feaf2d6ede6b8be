"""Downloading ``s3://bucket/key`` media with the server's own keys (which buckets an organization may name is
decided by :class:`~scenebase.services.sources.SourceReader` before this runs)."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, BinaryIO

from scenebase.services.errors import Forbidden, InvalidArgument, NotFound, PayloadTooLarge, Unavailable
from scenebase.services.fetch_http import Fetched
from scenebase.services.fetch_policy import Deadline, redact

log = logging.getLogger("scenebase.sources")

CHUNK_BYTES = 1 << 16


def s3_available() -> bool:
    try:
        import boto3  # noqa: F401
        import botocore  # noqa: F401
    except ImportError:
        return False
    return True


class S3Fetcher:
    def __init__(self, endpoint: str | None, step_seconds: float) -> None:
        self.endpoint = endpoint
        self.step_seconds = step_seconds
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:  # boto3 clients are thread-safe once made, not while being made
            if self._client is None:
                if not s3_available():
                    raise InvalidArgument("this server cannot read s3:// URIs: its S3 extra is not installed")
                import boto3
                from botocore.config import Config

                self._client = boto3.client(
                    "s3",
                    endpoint_url=self.endpoint,
                    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                    config=Config(
                        s3={"addressing_style": "path"},
                        retries={"max_attempts": 2},
                        connect_timeout=self.step_seconds,
                        read_timeout=self.step_seconds,
                    ),
                )
            return self._client

    def fetch(self, bucket: str, key: str, shown: str, dest: BinaryIO, deadline: Deadline, limit: int) -> Fetched:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            obj = self._s3().get_object(Bucket=bucket, Key=key)
            declared = int(obj.get("ContentLength") or 0)
            if declared > limit:
                obj["Body"].close()
                raise PayloadTooLarge(f"{shown} is {declared} bytes; the limit is {limit}")
            total = 0
            body = obj["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    total += len(chunk)
                    if total > limit:
                        raise PayloadTooLarge(f"{shown} is larger than {limit} bytes")
                    dest.write(chunk)
                    if deadline.expired():
                        raise Unavailable(f"cannot read {shown}: it did not finish within {deadline.seconds:g} s")
            finally:
                body.close()
            return Fetched(size=total, content_type=obj.get("ContentType"))
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            log.debug("reading %s failed: %s", shown, redact(str(e)))
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise NotFound(f"{shown} does not exist") from None
            if code in ("AccessDenied", "403"):
                raise Forbidden(f"cannot read {shown}: the store denied access") from None
            raise Unavailable(f"cannot read {shown}: the store answered {code or 'an error'}") from None
        except (BotoCoreError, OSError) as e:
            # connection problems of every kind read alike (see fetch_http)
            log.debug("reading %s failed: %s %s", shown, type(e).__name__, redact(str(e)))
            raise Unavailable(f"cannot read {shown}: connection failed") from None
