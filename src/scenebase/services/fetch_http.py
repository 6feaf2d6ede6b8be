"""Downloading ``http(s)://`` media without server-side request forgery.

Every hop (the URL and each redirect, followed here, at most :data:`MAX_REDIRECTS`) is resolved once, every
address it resolves to must be allowed by the :class:`AddressPolicy`, and the connection goes to the checked
address, with the original Host header and TLS server name: a second DNS answer (rebinding) is never asked for.
Errors say what the caller can act on, never how a connection failed (refused, reset or timed out would let a
user scan ports through the server); the details go to the DEBUG log, redacted.
"""

from __future__ import annotations

import base64
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from scenebase.services.errors import Forbidden, InvalidArgument, NotFound, PayloadTooLarge, Unavailable
from scenebase.services.fetch_policy import AddressPolicy, Deadline, IPAddress, display_ref, parse_ip, redact

log = logging.getLogger("scenebase.sources")

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NOT_ALLOWED = (
    "is not allowed (loopback, private, link-local, multicast, reserved or metadata addresses are refused; "
    "an operator may allow networks with SCENEBASE_URL_ALLOWED_NETWORKS)"
)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in resolver order, without duplicates."""
    out: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family in (socket.AF_INET, socket.AF_INET6):
            address = parse_ip(str(sockaddr[0]))
            if address is not None and address not in out:
                out.append(address)
    return out


def parse_http_url(ref: str, policy: AddressPolicy | None) -> httpx.URL:
    """Syntax of an ``http(s)://`` reference, and (given a policy) its address when it is a literal IP."""
    shown = display_ref(ref)
    try:
        url = httpx.URL(ref)
    except httpx.InvalidURL:
        raise InvalidArgument(f"{shown!r} is not a valid URL") from None
    if url.scheme not in _DEFAULT_PORTS:
        raise InvalidArgument(f"{shown!r}: only http:// and https:// URLs can be fetched")
    if not url.host:
        raise InvalidArgument(f"{shown!r} names no host")
    if url.port is not None and not 0 < url.port < 65536:
        raise InvalidArgument(f"{shown!r}: port {url.port} is out of range")
    literal = parse_ip(url.host)
    if literal is not None and policy is not None and not policy.allows(literal):
        raise Forbidden(f"cannot fetch URL {shown}: its address {_NOT_ALLOWED}")
    return url


@dataclass
class Fetched:
    size: int
    content_type: str | None


class UrlFetcher:
    def __init__(self, policy: AddressPolicy, step_seconds: float) -> None:
        self.policy = policy
        self.step_seconds = step_seconds
        self._ssl: ssl.SSLContext | None = None
        self._ssl_lock = threading.Lock()

    def _ssl_context(self) -> ssl.SSLContext:
        # built once: loading the CA bundle costs milliseconds per fetch otherwise
        with self._ssl_lock:
            if self._ssl is None:
                try:
                    import certifi

                    self._ssl = ssl.create_default_context(cafile=certifi.where())
                except ImportError:
                    self._ssl = ssl.create_default_context()
            return self._ssl

    def fetch(self, ref: str, dest: BinaryIO, deadline: Deadline, limit: int) -> Fetched:
        """Write the body of ``ref`` (after redirects) to ``dest``."""
        shown = display_ref(ref)
        url = parse_http_url(ref, self.policy)
        origin = (url.scheme, url.host, url.port)
        auth = _basic_auth(url)
        with httpx.Client(verify=self._ssl_context(), trust_env=False, follow_redirects=False) as client:
            for hop in range(MAX_REDIRECTS + 1):
                if hop:
                    url = parse_http_url(str(url), None)  # the address is checked with the others in _addresses
                send_auth = auth if (url.scheme, url.host, url.port) == origin else None
                response = self._connect(client, url, send_auth, shown, deadline, redirected=hop > 0)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        try:
                            url = url.join(location)
                        except httpx.InvalidURL:
                            raise Unavailable(f"cannot fetch URL {shown}: it redirects to an invalid URL") from None
                        if url.scheme not in _DEFAULT_PORTS:
                            raise Forbidden(f"cannot fetch URL {shown}: it redirects to a non-HTTP URL")
                        continue
                    return self._body(response, dest, shown, deadline, limit)
                finally:
                    response.close()
        raise Unavailable(f"cannot fetch URL {shown}: more than {MAX_REDIRECTS} redirects")

    def _addresses(self, url: httpx.URL, shown: str, redirected: bool) -> list[IPAddress]:
        port = url.port or _DEFAULT_PORTS[url.scheme]
        literal = parse_ip(url.host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = resolve(url.raw_host.decode("ascii"), port)
            except (OSError, UnicodeError) as e:
                log.debug("resolving %s failed: %s", shown, e)
                raise Unavailable(f"cannot fetch URL {shown}: its host name does not resolve") from None
        if not addresses:
            raise Unavailable(f"cannot fetch URL {shown}: its host name does not resolve")
        # all or nothing: a name answering a public and a private address must not reach the private one on a retry
        if not all(self.policy.allows(a) for a in addresses):
            where = "it redirects to an address that" if redirected else "its address"
            log.debug("refused %s: resolves to %s", shown, addresses)
            raise Forbidden(f"cannot fetch URL {shown}: {where} {_NOT_ALLOWED}")
        return addresses

    def _connect(
        self, client: httpx.Client, url: httpx.URL, auth: str | None, shown: str, deadline: Deadline, redirected: bool
    ) -> httpx.Response:
        addresses = self._addresses(url, shown, redirected)
        host_header = url.raw_host.decode("ascii") + (f":{url.port}" if url.port is not None else "")
        headers = {"Host": host_header, "Accept-Encoding": "identity", "User-Agent": "scenebase-fetch"}
        if auth is not None:
            headers["Authorization"] = auth
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        for address in addresses:
            if deadline.expired():
                break
            target = url.copy_with(host=str(address), port=url.port or _DEFAULT_PORTS[url.scheme], userinfo=b"")
            try:
                request = client.build_request(
                    "GET", target, headers=headers, extensions=extensions,
                    timeout=httpx.Timeout(deadline.step_timeout(self.step_seconds)),
                )  # fmt: skip
                return client.send(request, stream=True)
            except httpx.HTTPError as e:
                log.debug("fetching %s from %s failed: %s %s", shown, address, type(e).__name__, redact(str(e)))
        raise Unavailable(f"cannot fetch URL {shown}: connection failed")

    def _body(self, response: httpx.Response, dest: BinaryIO, shown: str, deadline: Deadline, limit: int) -> Fetched:
        status = response.status_code
        if status == 404 or status == 410:
            raise NotFound(f"{shown} answered {status}")
        if status >= 400 or status < 200 or status in _REDIRECTS:
            raise Unavailable(f"cannot fetch URL {shown}: it answered HTTP {status}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"{shown} is {int(declared)} bytes; the limit is {limit}")
        total = 0
        try:
            # decoded bytes are counted: a compressed answer cannot exceed the limit once inflated
            for chunk in response.iter_bytes():  # as they arrive: a chunk size would buffer past the deadline
                total += len(chunk)
                if total > limit:
                    raise PayloadTooLarge(f"{shown} is larger than {limit} bytes")
                dest.write(chunk)
                if deadline.expired():
                    break
        except httpx.HTTPError as e:
            log.debug("reading %s failed: %s %s", shown, type(e).__name__, redact(str(e)))
            if not deadline.expired():
                raise Unavailable(f"cannot fetch URL {shown}: connection failed") from None
        if deadline.expired():
            raise Unavailable(f"cannot fetch URL {shown}: it did not finish within {deadline.seconds:g} s")
        content_type = response.headers.get("content-type")
        return Fetched(size=total, content_type=content_type.split(";")[0].strip() or None if content_type else None)


def _basic_auth(url: httpx.URL) -> str | None:
    """``user:password@`` of a URL as a Basic header (sent to the URL's own origin only, never across redirects)."""
    if not url.userinfo:
        return None
    return "Basic " + base64.b64encode(f"{url.username}:{url.password}".encode()).decode("ascii")
