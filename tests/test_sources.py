"""Reading referenced media safely (issue 8 items 1, 2, 9, 13, 14): address checks on every redirect hop, DNS
pinning, deadlines and size caps, redacted logs and errors, per-organization roots, buckets and fetch slots, and an
API that keeps answering while URLs drip.

Every remote is a real HTTP server on a loopback address started here; 127.0.0.2 plays the internal service an
attacker wants to reach (the servers under test allow 127.0.0.1/32 only).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import io
import json
import logging
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydantic
import pytest
from PIL import Image as PILImage

from scenebase.clients import SceneEngineClient
from scenebase.errors import AssetError
from scenebase.models.assets import Image
from scenebase.services.errors import Forbidden, NotFound, PayloadTooLarge, Unavailable
from scenebase.services.fetch_policy import AddressPolicy, is_public, redact
from scenebase.services.sources import SourceReader
from scenebase.settings import Settings
from scenebase.storage.scope import Scope
from scenebase.testing import InProcessServer

DEFAULT = Scope.of("default")
LOOPBACK_ONLY = "127.0.0.1/32"
Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


def jpeg(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels, "RGB").save(buf, "JPEG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ test HTTP servers


class MediaServer:
    """A threaded HTTP server whose answer per path the test sets; it records every request it gets."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()  # ends dripping and silent answers
        self._lock = threading.Lock()
        outer = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with outer._lock:
                    outer.hits.append((self.path, dict(self.headers)))
                with contextlib.suppress(OSError):  # the client went away (deadline, size cap): expected here
                    outer.routes.get(self.path.split("?", 1)[0], status(404))(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), _Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def paths(self) -> list[str]:
        with self._lock:
            return [p for p, _ in self.hits]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)


def serve(body: bytes, content_type: str = "image/jpeg", length: bool = True) -> Handler:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        if length:
            h.send_header("Content-Length", str(len(body)))
        else:
            h.send_header("Connection", "close")  # the end of the body is the end of the connection
        h.end_headers()
        h.wfile.write(body)
        if not length:
            h.close_connection = True

    return handler


def redirect(location: str, code: int = 302) -> Handler:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(code)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handler


def status(code: int) -> Handler:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        body = b"internal error details" if code >= 500 else b"no"
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handler


def drip(server: MediaServer, total: int, every: float, sent: list[int]) -> Handler:
    """Announce ``total`` bytes and send one every ``every`` seconds, until the server is released."""

    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Content-Length", str(total))
        h.end_headers()
        h.wfile.flush()
        for _ in range(total):
            if server.release.wait(every):
                h.close_connection = True  # released: hang up mid-body
                return
            h.wfile.write(b"\xff")
            h.wfile.flush()
            sent.append(1)

    return handler


def silent(server: MediaServer) -> Handler:
    """Accept the request and answer nothing until released."""

    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        server.release.wait(120)
        h.close_connection = True

    return handler


@pytest.fixture
def media() -> Iterator[MediaServer]:
    srv = MediaServer("127.0.0.1")
    yield srv
    srv.close()


@pytest.fixture
def internal() -> Iterator[MediaServer]:
    """The service an attacker aims at: loopback, but not in the allowed network."""
    srv = MediaServer("127.0.0.2")
    srv.routes["/secret"] = serve(b"internal secrets", "text/plain")
    yield srv
    srv.close()


def reader(tmp_path: Path, **settings: Any) -> SourceReader:
    settings.setdefault("url_allowed_networks", LOOPBACK_ONLY)
    return SourceReader(Settings(data_dir=tmp_path / "data", **settings))


def peak_downloads(sources: SourceReader, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Most downloads each organization had running at once (counted inside the slot, where the cap applies)."""
    peak: dict[str, int] = {}
    now: dict[str, int] = {}
    lock = threading.Lock()
    real = sources._download

    def counted(scope: Scope, *args: Any, **kwargs: Any) -> Any:
        with lock:
            now[scope.org_id] = now.get(scope.org_id, 0) + 1
            peak[scope.org_id] = max(peak.get(scope.org_id, 0), now[scope.org_id])
        try:
            return real(scope, *args, **kwargs)
        finally:
            with lock:
                now[scope.org_id] -= 1

    monkeypatch.setattr(sources, "_download", counted)
    return peak


def temp_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "data" / "tmp"
    return sorted(folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------------------------------- SSRF (item 1)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True), ("2606:4700::1111", True), ("2002:808:808::1", True), ("64:ff9b::808:808", True),
        ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.0.1", False), ("192.168.1.1", False),
        ("169.254.169.254", False), ("100.64.0.1", False), ("100.100.100.200", False), ("0.0.0.0", False),
        ("224.0.0.1", False), ("255.255.255.255", False), ("240.0.0.1", False), ("::1", False), ("::", False),
        ("fe80::1", False), ("fc00::1", False), ("fd00:ec2::254", False), ("ff02::1", False), ("fec0::1", False),
        ("::ffff:127.0.0.1", False), ("2002:7f00:1::", False), ("64:ff9b::a00:1", False), ("2001::1", False),
    ],
)  # fmt: skip
def test_only_public_unicast_addresses_are_reachable_by_default(address: str, public: bool) -> None:
    assert AddressPolicy([]).allows(ip_address(address)) is public


def test_allowed_networks_open_exactly_what_they_list() -> None:
    policy = AddressPolicy([ip_network("10.0.0.0/8"), ip_network("fd12::/16")])
    assert policy.allows(ip_address("10.1.2.3")) and policy.allows(ip_address("::ffff:10.1.2.3"))
    assert policy.allows(ip_address("fd12::5"))
    assert policy.allows(ip_address("11.0.0.1")) and is_public(ip_address("11.0.0.1"))  # public stays reachable
    for refused in ("169.254.169.254", "127.0.0.1", "192.168.0.1", "fd13::1"):
        assert not policy.allows(ip_address(refused)), refused


def test_redaction_masks_credentials_in_library_log_lines() -> None:
    lines = {
        "GET https://u:pw@host/k?X-Amz-Signature=abc&X-Amz-Credential=AKID%2F1&x=1": ["pw", "abc", "AKID"],
        "headers={'Authorization': b'AWS4-HMAC-SHA256 Credential=AKID/2024, Signature=f00d'}": ["AKID", "f00d"],
        "GET /obj?sig=s3cr3t&token=t0k&Expires=1": ["s3cr3t", "t0k"],
    }
    for line, secrets in lines.items():
        masked = redact(line)
        assert all(secret not in masked for secret in secrets), masked
    assert redact("GET /a.jpg?x=1") == "GET /a.jpg?x=1"


@pytest.mark.parametrize(
    "target",
    [
        "internal",  # 127.0.0.2, a live service
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.2]:{iport}/secret",
        "http://0.0.0.0:{port}/",
        "http://2130706434:{iport}/secret",  # 127.0.0.2 spelled as a number
        "http://224.0.0.1/",
    ],
)
def test_redirect_to_a_refused_address_is_403_and_never_connects(
    tmp_path: Path, media: MediaServer, internal: MediaServer, target: str
) -> None:
    location = internal.url("/secret") if target == "internal" else target.format(port=media.port, iport=internal.port)
    media.routes["/a.jpg"] = redirect(location)
    with pytest.raises(Forbidden, match="redirects to an address that is not allowed"):
        reader(tmp_path).read(DEFAULT, media.url("/a.jpg"))
    assert internal.hits == []
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:70/x", "ftp://example.org/a"])
def test_redirect_to_another_scheme_is_refused(tmp_path: Path, media: MediaServer, location: str) -> None:
    media.routes["/a.jpg"] = redirect(location, 301)
    with pytest.raises(Forbidden, match="redirects to a non-HTTP URL"):
        reader(tmp_path).read(DEFAULT, media.url("/a.jpg"))


def test_loopback_is_refused_without_an_allowed_network(tmp_path: Path, media: MediaServer) -> None:
    media.routes["/a.jpg"] = serve(jpeg())
    strict = reader(tmp_path, url_allowed_networks="")
    with pytest.raises(Forbidden, match="its address is not allowed"):
        strict.check(DEFAULT, media.url("/a.jpg"))  # a literal address is refused before any download
    with pytest.raises(Forbidden, match="its address is not allowed"):
        strict.read(DEFAULT, f"http://localhost:{media.port}/a.jpg")  # a name is refused once resolved
    assert media.hits == []


def test_redirects_within_allowed_addresses_are_followed_and_bounded(tmp_path: Path, media: MediaServer) -> None:
    image = jpeg()
    media.routes["/a"] = redirect("/b", 301)
    media.routes["/b"] = redirect(media.url("/c.jpg"), 307)
    media.routes["/c.jpg"] = serve(image)
    media.routes["/loop"] = redirect("/loop")
    sources = reader(tmp_path)
    assert sources.read(DEFAULT, media.url("/a")) == image
    with pytest.raises(Unavailable, match="more than 5 redirects"):
        sources.read(DEFAULT, media.url("/loop"))
    assert media.paths().count("/loop") == 6


def test_a_url_that_served_a_jpeg_and_later_redirects_inside_is_not_served(
    tmp_path: Path, media: MediaServer, internal: MediaServer
) -> None:
    image = jpeg(80, 60)
    media.routes["/cam.jpg"] = serve(image)
    with InProcessServer(tmp_path / "srv", url_allowed_networks=LOOPBACK_ONLY) as srv:
        client = srv.client()
        image_id = client.add_image(image_url=media.url("/cam.jpg"), id="cam")
        assert client.get_image_bytes(image_id) == image
        http_client = srv.http()
        headers = {"Authorization": f"Bearer {client.auth_token}"}

        media.routes["/cam.jpg"] = redirect(internal.url("/secret"))
        for path in (f"/v1/images/{image_id}/file", f"/v1/images/{image_id}/thumbnail/small"):
            answer = http_client.get(path, headers=headers)
            assert answer.status_code == 403, path
            assert b"internal secrets" not in answer.content
        assert internal.hits == []

        # the URL now answers something else (an internal status page, an HTML login...): re-probed, refused
        media.routes["/cam.jpg"] = serve(b"<html>router admin</html>", "text/html")
        answer = http_client.get(f"/v1/images/{image_id}/file", headers=headers)
        assert answer.status_code == 415 and b"router admin" not in answer.content
        assert "no longer holds a valid image" in answer.json()["error"]["message"]

        media.routes["/cam.jpg"] = serve(image)
        assert client.get_image_bytes(image_id) == image


def test_dns_rebinding_cannot_switch_the_address_after_the_check(
    tmp_path: Path, media: MediaServer, internal: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name answers an allowed address once, then an internal one: the server connects to the first answer
    (Host header intact) and never asks again."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "media.rebind.test":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    image = jpeg()
    media.routes["/a.jpg"] = serve(image)
    internal.routes["/a.jpg"] = serve(b"internal", "text/plain")
    url = f"http://media.rebind.test:{media.port}/a.jpg"
    assert reader(tmp_path).read(DEFAULT, url) == image
    assert lookups == ["media.rebind.test"]
    assert media.hits[0][1]["Host"] == f"media.rebind.test:{media.port}"

    # a redirect is a new hop: resolved again, and this time the internal answer is refused
    media.routes["/hop"] = redirect(url)
    lookups.clear()
    with pytest.raises(Forbidden, match="redirects to an address"):
        reader(tmp_path).read(DEFAULT, f"http://media.rebind.test:{media.port}/hop")
    assert lookups == ["media.rebind.test", "media.rebind.test"]
    assert internal.hits == []


def test_https_to_a_pinned_address_keeps_the_server_name_and_verifies_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS goes to the checked address, with SNI and certificate verification for the URL's name."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=media.test",
         "-addext", "subjectAltName=DNS:media.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_side.sni_callback = lambda _sock, name, _ctx: names.append(name)
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket, "getaddrinfo",
        lambda host, *a, **k: real("127.0.0.1" if host in ("media.test", "other.test") else host, *a, **k),
    )  # fmt: skip
    secure = MediaServer("127.0.0.1", tls=server_side)
    try:
        image = jpeg()
        secure.routes["/a.jpg"] = serve(image)
        sources = reader(tmp_path)
        sources.urls._ssl = ssl.create_default_context(cafile=str(cert))  # trust the test's own CA
        assert sources.read(DEFAULT, f"https://media.test:{secure.port}/a.jpg") == image
        assert names == ["media.test"]
        assert secure.hits[0][1]["Host"] == f"media.test:{secure.port}"
        # another name on the same address: the certificate does not match it, so nothing is fetched
        with pytest.raises(Unavailable, match="connection failed"):
            sources.read(DEFAULT, f"https://other.test:{secure.port}/a.jpg")
        assert len(secure.hits) == 1
    finally:
        secure.close()


def test_a_name_answering_public_and_private_addresses_is_refused(
    tmp_path: Path, media: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def mixed(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "mixed.test":
            return real("127.0.0.1", port, *args, **kwargs) + real("10.9.9.9", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    media.routes["/a.jpg"] = serve(jpeg())
    with pytest.raises(Forbidden):
        reader(tmp_path).read(DEFAULT, f"http://mixed.test:{media.port}/a.jpg")
    assert media.hits == []


def test_connection_failures_read_alike(tmp_path: Path, media: MediaServer) -> None:
    """A closed port, a server that never answers and one that hangs up read the same: no port scanning."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    media.routes["/hang"] = silent(media)
    sources = reader(tmp_path, url_fetch_timeout_seconds=0.5, fetch_deadline_seconds=5)
    messages = []
    for url in (f"http://127.0.0.1:{closed_port}/x.jpg", media.url("/hang")):
        with pytest.raises(Unavailable) as info:
            sources.read(DEFAULT, url)
        messages.append(info.value.message.replace(str(closed_port), "PORT").replace(str(media.port), "PORT"))
    assert messages == [
        "cannot fetch URL http://127.0.0.1:PORT/x.jpg: connection failed",
        "cannot fetch URL http://127.0.0.1:PORT/hang: connection failed",
    ]


def test_http_errors_are_reported_without_the_answer(tmp_path: Path, media: MediaServer) -> None:
    media.routes["/boom.jpg"] = status(500)
    sources = reader(tmp_path)
    with pytest.raises(Unavailable) as info:
        sources.read(DEFAULT, media.url("/boom.jpg"))
    assert info.value.message == f"cannot fetch URL {media.url('/boom.jpg')}: it answered HTTP 500"
    with pytest.raises(NotFound):
        sources.read(DEFAULT, media.url("/none.jpg"))
    assert temp_files(tmp_path) == []


# --------------------------------------------------------------------------------------- deadlines, caps (item 2)


def test_a_dripping_url_fails_at_the_deadline(tmp_path: Path, media: MediaServer) -> None:
    sent: list[int] = []
    media.routes["/drip.jpg"] = drip(media, total=1000, every=0.2, sent=sent)
    sources = reader(tmp_path, fetch_deadline_seconds=1.5, url_fetch_timeout_seconds=1.0)
    with pytest.raises(Unavailable, match=r"did not finish within 1.5 s"):
        sources.read(DEFAULT, media.url("/drip.jpg"))
    assert 0 < len(sent) < 1000  # it was cut while the server was still dripping
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "unannounced"])
def test_a_url_larger_than_the_cap_is_413(tmp_path: Path, media: MediaServer, with_length: bool) -> None:
    media.routes["/big.jpg"] = serve(b"\xff" * 300_000, length=with_length)
    media.routes["/small.jpg"] = serve(jpeg())
    sources = reader(tmp_path, max_file_bytes=100_000)
    with pytest.raises(PayloadTooLarge, match="100000"):
        sources.read(DEFAULT, media.url("/big.jpg"))
    with pytest.raises(PayloadTooLarge):
        sources.read(DEFAULT, media.url("/small.jpg"), limit=100)  # a caller's own, smaller cap
    assert temp_files(tmp_path) == []


def test_open_yields_a_temporary_file_removed_on_exit(tmp_path: Path, media: MediaServer) -> None:
    image = jpeg()
    media.routes["/dir/cam%201.jpg"] = serve(image)
    sources = reader(tmp_path)
    with sources.open(DEFAULT, media.url("/dir/cam%201.jpg?sig=1")) as source:
        assert source.path.parent == tmp_path / "data" / "tmp"
        assert source.path.read_bytes() == image
        assert (source.size, source.name, source.content_type) == (len(image), "cam 1.jpg", "image/jpeg")
    assert not source.path.exists()
    with pytest.raises(RuntimeError), sources.open(DEFAULT, media.url("/dir/cam%201.jpg")) as source:
        raise RuntimeError("the caller failed")
    assert not source.path.exists()

    async def async_open() -> Path:
        async with sources.aopen(DEFAULT, media.url("/dir/cam%201.jpg")) as source:
            assert source.path.read_bytes() == image
            return source.path

    assert not asyncio.run(async_open()).exists()
    sources.close()


def test_fetch_slots_are_per_organization(tmp_path: Path, media: MediaServer) -> None:
    image = jpeg()
    media.routes["/hang"] = silent(media)
    media.routes["/a.jpg"] = serve(image)
    sources = reader(tmp_path, fetches_per_org=1, fetch_wait_seconds=0.3, fetch_deadline_seconds=30)
    org_a, org_b = Scope.of("org_a"), Scope.of("org_b")

    async def scenario() -> tuple[BaseException | None, bytes]:
        hanging = asyncio.ensure_future(sources.aread(org_a, media.url("/hang")))
        while media.paths().count("/hang") < 1:  # org A's only slot is taken
            await asyncio.sleep(0.01)
        refused: BaseException | None = None
        try:
            await sources.aread(org_a, media.url("/a.jpg"))
        except Unavailable as e:
            refused = e
        other = await sources.aread(org_b, media.url("/a.jpg"))
        media.release.set()
        with pytest.raises(Unavailable):
            await hanging
        return refused, other

    refused, other = asyncio.run(scenario())
    assert isinstance(refused, Unavailable)
    assert "too many URL fetches in flight for your organization" in refused.message
    assert other == image
    assert sources.slots.in_flight("org_a") == sources.slots.in_flight("org_b") == 0
    sources.close()


def test_waiting_fetches_take_freed_slots_in_turn(
    tmp_path: Path, media: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More fetches than slots, from event loops and threads at once: each waits for a slot, none is refused, and
    the remote never sees more than the organization's slots at a time."""
    image = jpeg()
    media.routes["/a.jpg"] = serve(image)
    sources = reader(tmp_path, fetches_per_org=2, fetch_wait_seconds=60)
    peak = peak_downloads(sources, monkeypatch)

    async def many() -> list[bytes]:
        return await asyncio.gather(*(sources.aread(DEFAULT, media.url("/a.jpg")) for _ in range(12)))

    with ThreadPoolExecutor(4) as pool:
        threads = [pool.submit(sources.read, DEFAULT, media.url("/a.jpg")) for _ in range(6)]
        loops = [pool.submit(asyncio.run, many()) for _ in range(2)]
        results = [f.result() for f in threads] + [b for f in loops for b in f.result()]
    assert results == [image] * 30
    assert peak == {"default": 2}
    assert sources.slots.in_flight("default") == 0
    sources.close()


# -------------------------------------------------------------------------------------------- redaction (item 9)


def test_logs_and_errors_never_show_credentials(
    tmp_path: Path, media: MediaServer, caplog: pytest.LogCaptureFixture
) -> None:
    other = MediaServer("127.0.0.1")  # another origin: credentials must not follow a redirect there
    try:
        image = jpeg()
        media.routes["/x"] = redirect(other.url("/y?X-Amz-Signature=abc&X-Amz-Credential=AKIDEXAMPLE"))
        other.routes["/y"] = serve(image)
        media.routes["/missing"] = status(404)
        sources = reader(tmp_path)
        with caplog.at_level(logging.DEBUG):
            url = f"http://user:secret@127.0.0.1:{media.port}/x?X-Amz-Signature=abc"
            assert sources.read(DEFAULT, url) == image
            with pytest.raises(NotFound) as info:
                sources.read(DEFAULT, f"http://user:secret@127.0.0.1:{media.port}/missing?X-Amz-Signature=abc")
        assert info.value.message == f"http://127.0.0.1:{media.port}/missing answered 404"
        assert any(r.name == "httpx" for r in caplog.records)  # the library did log the requests...
        logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
        for secret in ("secret", "abc", "AKIDEXAMPLE"):
            assert secret not in logged  # ...redacted
        assert media.hits[0][1]["Authorization"] == "Basic dXNlcjpzZWNyZXQ="  # user:secret, sent to its origin
        assert "Authorization" not in other.hits[0][1]
    finally:
        other.close()


# ------------------------------------------------------------------------------------------ settings (item 14)


def test_settings_formats_are_validated_at_startup(tmp_path: Path) -> None:
    for bad, problem in [
        ({"allowed_file_roots": "/data/a:/data/b"}, "names no organization"),
        ({"allowed_file_roots": "default=data/a"}, "is not absolute"),
        ({"allowed_file_roots": "a=/x;a=/y"}, "appears twice"),
        ({"allowed_s3_buckets": "default=Bad_Bucket"}, "is not a bucket name"),
        ({"url_allowed_networks": "10.0.0.0/8,intranet"}, "is not a CIDR"),
        ({"fetches_per_org": 0}, "at least 1"),
    ]:
        with pytest.raises(pydantic.ValidationError, match=problem):
            Settings(data_dir=tmp_path, **bad)
    settings = Settings(
        data_dir=tmp_path,
        allowed_file_roots=f"default={tmp_path}/a:{tmp_path}/b ; acme={tmp_path}/c",
        allowed_s3_buckets="default=raw,labels;acme=acme-data",
    )
    base = tmp_path.resolve()
    assert settings.file_roots("default") == [base / "a", base / "b"]
    assert settings.file_roots("acme") == [base / "c"] and settings.file_roots("other") == []
    assert settings.s3_buckets("acme") == {"acme-data"} and settings.s3_buckets("other") == frozenset()


def test_an_organization_cannot_read_another_organizations_root(tmp_path: Path) -> None:
    # organization ids are random: create the organizations, then configure their roots and restart (as an operator)
    tokens: dict[str, str] = {}
    with InProcessServer(tmp_path / "srv") as srv:
        admin = srv.client()
        for name in ("Org A", "Org B"):
            org_id = admin.add_organization(name)["id"]
            tokens[org_id] = admin.add_user(f"{org_id}@example.com", f"{org_id}-provider", "data_provider", org_id)[
                "token"
            ]
    a, b = sorted(tokens)
    roots = {org: tmp_path / org for org in (a, b)}
    for root in roots.values():
        root.mkdir()
        (root / "frame.jpg").write_bytes(jpeg())
    settings = ";".join(f"{org}={root}" for org, root in roots.items())
    with InProcessServer(tmp_path / "srv", allowed_file_roots=settings) as srv:
        admin = srv.client()
        clients = {org: srv.client(token) for org, token in tokens.items()}
        assert clients[a].add_image(image_uri=(roots[a] / "frame.jpg").as_uri(), id="mine") == "mine"
        for org, other in ((a, b), (b, a)):
            with pytest.raises(AssetError) as info:
                clients[org].add_image(image_uri=(roots[other] / "frame.jpg").as_uri(), id="theirs")
            assert info.value.status_code == 403
            assert "SCENEBASE_ALLOWED_FILE_ROOTS" in info.value.message
        with pytest.raises(AssetError) as info:  # the superadmin's organization has no roots at all
            admin.add_image(image_uri=(roots[a] / "frame.jpg").as_uri())
        assert info.value.status_code == 403


@pytest.mark.s3
def test_an_organization_cannot_read_another_organizations_bucket(
    seaweedfs_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", seaweedfs_server.region)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = seaweedfs_server.client()
    buckets = {org: f"{org.replace('_', '-')}-{uuid.uuid4().hex[:10]}" for org in ("org_a", "org_b")}
    image = jpeg()
    try:
        for bucket in buckets.values():
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key="cam/1.jpg", Body=image)
        sources = reader(
            tmp_path,
            s3_endpoint=seaweedfs_server.endpoint,
            allowed_s3_buckets=";".join(f"{org}={bucket}" for org, bucket in buckets.items()),
        )
        a, b = Scope.of("org_a"), Scope.of("org_b")
        assert sources.read(a, f"s3://{buckets['org_a']}/cam/1.jpg") == image
        assert sources.read(b, f"s3://{buckets['org_b']}/cam/1.jpg") == image
        with pytest.raises(Forbidden, match="SCENEBASE_ALLOWED_S3_BUCKETS"):
            sources.read(a, f"s3://{buckets['org_b']}/cam/1.jpg")
        with pytest.raises(NotFound):
            sources.read(a, f"s3://{buckets['org_a']}/cam/absent.jpg")
        with pytest.raises(PayloadTooLarge):
            sources.read(a, f"s3://{buckets['org_a']}/cam/1.jpg", limit=10)
        assert temp_files(tmp_path) == []
    finally:
        for bucket in buckets.values():
            for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
            s3.delete_bucket(Bucket=bucket)
        s3.close()


# ---------------------------------------------------------------------------------------- bad input (item 13)


def test_bad_references_fail_their_item_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "folder").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "boto3", None)  # the S3 extra is not installed
    with InProcessServer(
        tmp_path / "srv", allowed_file_roots=f"default={root}", allowed_s3_buckets="default=raw"
    ) as srv:
        client = srv.client()
        image_set = client.create_set("mixed", "images")
        bad = {
            "nul": Image(id="nul", image_uri="file:///data%00x"),
            "folder": Image(id="folder", image_uri=(root / "folder").as_uri()),
            "ipv6": Image(id="ipv6", image_url="http://[::1"),
            "s3": Image(id="s3", image_uri="s3://raw/cam/1.jpg"),
            "host": Image(id="host", image_uri="file://elsewhere/data/x.jpg"),
        }
        ids = client.add_images([Image(id="good", image_bytes=jpeg()), *bad.values()], image_set)
        assert ids == ["good"]
        errors = {e["index"]: e for e in client.last_errors}
        assert len(errors) == len(bad)
        for e in errors.values():
            assert 400 <= e["status"] < 500, e
        messages = sorted(e["error"] for e in errors.values())
        assert any("NUL" in m for m in messages)
        assert any("is a directory" in m for m in messages)
        assert any("not a valid URL" in m for m in messages)
        assert any("S3 support (boto3) is not installed" in m for m in messages)
        assert any("not on host 'elsewhere'" in m for m in messages)
        assert client.assets_in_set(image_set) == ["good"]


# ---------------------------------------------------------------------------- a real server under slow URLs (item 2)


class UvicornThread:
    """The app served by uvicorn on one event loop, as `scenebase serve` does (the in-process test transport gives
    every request its own loop and thread limiter, which would hide a starved request pool)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            self.thread.join(0.02)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def upload_url(base: str, token: str, url: str) -> httpx.Response:
    manifest = {"items": [{"url": url, "metadata": {"id": f"slow-{uuid.uuid4().hex[:8]}"}}]}
    files = {"manifest": (None, json.dumps(manifest), "application/json")}
    return httpx.post(f"{base}/v1/images/add/", files=files, headers={"Authorization": f"Bearer {token}"}, timeout=120)


def test_slow_urls_do_not_starve_the_api(tmp_path: Path, media: MediaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 2's attack: more slow URL uploads than the request thread pool has threads (40). Meanwhile /status,
    another organization's upload and even one of its URL fetches answer, while the slow fetches still drip."""
    uploads = 45
    sent: list[int] = []
    media.routes["/drip.jpg"] = drip(media, total=10_000, every=0.5, sent=sent)
    image = jpeg()
    media.routes["/fast.jpg"] = serve(image)
    settings = {"url_allowed_networks": LOOPBACK_ONLY, "fetches_per_org": 2, "fetch_threads": 4}
    with InProcessServer(tmp_path / "srv", fetch_wait_seconds=120, fetch_deadline_seconds=120, **settings) as srv:
        peak = peak_downloads(srv.runtime.sources, monkeypatch)
        admin = srv.client()
        org_b = admin.add_organization("Org B")["id"]
        token_b = admin.add_user("b@example.com", "b-provider", "data_provider", org_b)["token"]
        with UvicornThread(srv.app) as api, ThreadPoolExecutor(uploads) as pool:
            token = admin.auth_token or ""
            slow = [pool.submit(upload_url, api.url, token, media.url("/drip.jpg")) for _ in range(uploads)]
            while media.paths().count("/drip.jpg") < 2 or len(sent) < 2:  # both of the org's slots are dripping
                media.release.wait(0.05)

            status = httpx.get(f"{api.url}/status", timeout=30)
            with SceneEngineClient(auth_token=token_b, scene_engine_url=api.url) as b:
                b_id = b.add_image(image_bytes=image, id="b-upload")
                b_url_id = b.add_image(image_url=media.url("/fast.jpg"), id="b-url")
                b_bytes = b.get_image_bytes(b_url_id)
            pending = sum(not f.done() for f in slow)

            media.release.set()  # the drips hang up: every slow upload now fails fast
            answers = [f.result() for f in slow]
    assert status.status_code == 200 and status.json()["version"]
    assert (b_id, b_url_id, b_bytes) == ("b_upload", "b_url", image)
    assert pending == uploads  # all of that happened while every slow upload was still waiting
    assert peak == {"default": 2, org_b: 1}  # the flood never had more than its organization's 2 slots fetching
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert media.url("/drip.jpg") in answer.json()["error"]["message"]
