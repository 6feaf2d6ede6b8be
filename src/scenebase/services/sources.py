"""Reading media that users reference instead of upload: ``http(s)://`` URLs, ``s3://`` and ``file://`` URIs.

References are stored as given and read when the server needs the bytes (probing, thumbnails, zips). A
``file://`` URI must lie under one of ``SCENEBASE_ALLOWED_FILE_ROOTS`` after resolving symlinks and ``..``, so
a user cannot make the server read arbitrary files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from scenebase.services.errors import Forbidden, InvalidArgument, NotFound, PayloadTooLarge, Unavailable
from scenebase.settings import Settings
from scenebase.storage.scope import Scope


@dataclass
class Source:
    """A referenced file, readable locally: the file itself (``file://``) or a temporary download."""

    path: Path
    size: int
    name: str
    content_type: str | None = None


class SourceReader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._s3: Any = None

    def check(self, scope: Scope, ref: str) -> str:
        """Validate a reference without reading it (scheme and, for files, the allowed roots)."""
        scheme = urlparse(ref).scheme.lower()
        if scheme in ("http", "https", "s3"):
            return ref
        if scheme == "file":
            self._file_path(ref)
            return ref
        raise InvalidArgument(f"unsupported media reference {ref!r}: use http(s)://, s3:// or file://")

    def _file_path(self, ref: str) -> Path:
        path = Path(unquote(urlparse(ref).path)).resolve()
        roots = self.settings.file_roots()
        if not any(path == r or r in path.parents for r in roots):
            raise Forbidden(f"{ref!r} is outside the folders this server may read (SCENEBASE_ALLOWED_FILE_ROOTS)")
        return path

    @contextlib.contextmanager
    def open(self, scope: Scope, ref: str) -> Iterator[Source]:
        name = ref.rstrip("/").rsplit("/", 1)[-1] or ref
        if urlparse(ref).scheme.lower() == "file":
            path = self._file_path(ref)
            if not path.is_file():
                raise NotFound(f"{ref!r} does not exist")
            yield Source(path, path.stat().st_size, name)
            return
        data = self.read(scope, ref)
        with tempfile.TemporaryDirectory(prefix="scenebase-fetch-") as tmp:
            path = Path(tmp) / "source"
            path.write_bytes(data)
            yield Source(path, len(data), name)

    def read(self, scope: Scope, ref: str) -> bytes:
        scheme = urlparse(ref).scheme.lower()
        limit = self.settings.max_file_bytes
        if scheme == "file":
            path = self._file_path(ref)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise NotFound(f"{ref!r} does not exist") from None
            if size > limit:
                raise PayloadTooLarge(f"{ref!r} is {size} bytes; the limit is {limit}")
            return path.read_bytes()
        if scheme in ("http", "https"):
            return self._read_url(ref, limit)
        if scheme == "s3":
            return self._read_s3(ref, limit)
        raise InvalidArgument(f"unsupported media reference {ref!r}")

    def _read_url(self, url: str, limit: int) -> bytes:
        try:
            with httpx.stream("GET", url, timeout=self.settings.url_fetch_timeout_seconds, follow_redirects=True) as r:
                if r.status_code == 404:
                    raise NotFound(f"{url!r} answered 404")
                if r.status_code >= 400:
                    raise Unavailable(f"{url!r} answered HTTP {r.status_code}")
                chunks, total = [], 0
                for chunk in r.iter_bytes():
                    total += len(chunk)
                    if total > limit:
                        raise PayloadTooLarge(f"{url!r} is larger than {limit} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as e:
            raise Unavailable(f"cannot read {url!r}: {e}") from None

    def _read_s3(self, uri: str, limit: int) -> bytes:
        parsed = urlparse(uri)
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            self._s3 = boto3.client(
                "s3",
                endpoint_url=self.settings.s3_endpoint,
                region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
            )
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            obj = self._s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
            if obj.get("ContentLength", 0) > limit:
                raise PayloadTooLarge(f"{uri!r} is larger than {limit} bytes")
            return bytes(obj["Body"].read())
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise NotFound(f"{uri!r} does not exist") from None
            raise Unavailable(f"cannot read {uri!r}: {code or e}") from None
        except BotoCoreError as e:
            raise Unavailable(f"cannot read {uri!r}: {e}") from None
