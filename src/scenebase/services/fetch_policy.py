"""Rules shared by every download of referenced media: which addresses may be reached, the overall deadline, and
how references appear in messages and logs (never with credentials or signed query strings).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

#: cloud metadata services; most are also link-local or private, listed so the intent survives stdlib changes
METADATA_ADDRESSES = frozenset(
    ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
_NAT64 = ip_network("64:ff9b::/96")


class AddressPolicy:
    """Public unicast addresses are reachable; anything else only when it lies in an operator-allowed network."""

    def __init__(self, allowed: list[IPNetwork]) -> None:
        self.allowed = list(allowed)

    def allows(self, address: IPAddress) -> bool:
        if any(address in net for net in self.allowed if net.version == address.version):
            return True
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            # ::ffff:10.0.0.1 and friends reach the IPv4 address: judge that one
            return self.allows(embedded)
        return is_public(address)


def is_public(address: IPAddress) -> bool:
    if address in METADATA_ADDRESSES or address.is_multicast or address.is_reserved or address.is_unspecified:
        return False
    if isinstance(address, IPv6Address) and address.is_site_local:
        return False
    embedded = _embedded_ipv4(address)
    if embedded is not None and not is_public(embedded):
        return False
    return address.is_global


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    if not isinstance(address, IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is a literal one (brackets and IPv6 zone stripped), else None."""
    try:
        return ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class Deadline:
    """A point in (monotonic) time by which a download must be over."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def step_timeout(self, step_seconds: float) -> float:
        """Timeout for one network step: never beyond the deadline, never zero (a zero timeout means 'no wait')."""
        return max(0.05, min(step_seconds, self.remaining()))


# ---------------------------------------------------------------------------------------------------------- display


def display_ref(ref: str) -> str:
    """``ref`` as shown in messages: scheme://host[:port]/path, without user, password, query or fragment."""
    try:
        parts = urlsplit(ref)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        shown = f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else parts.path
    except ValueError:
        # unparsable (e.g. an unclosed IPv6 bracket): drop what could be a credential by pattern
        shown = re.sub(r"//[^/@]*@", "//", ref.split("?", 1)[0].split("#", 1)[0])
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in shown)
    return shown if len(shown) <= 300 else shown[:297] + "..."


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@'\"<>]*@")
# query and header parameters that carry credentials: presigned S3/GCS/Azure URLs, tokens, passwords
_SECRET_PARAM = re.compile(
    r"(?P<key>(?:x-amz-|x-goog-)?(?:signature|credential|security-token|sig|token|access_token|password|passwd"
    r"|secret|api_key|apikey|key|awsaccesskeyid|code|auth)[a-z_\-]*)(?P<sep>=|%3d)(?P<value>[^&\s'\"<>,;]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with URL credentials and secret-looking query parameters masked."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}{m['sep']}***", text)


# ------------------------------------------------------------------------------------------------------------- logs

#: loggers of the libraries that download media (and ours); their records are redacted before any handler sees them
REDACTED_LOGGERS = ("httpx", "httpcore", "urllib3", "botocore", "boto3", "s3transfer", "scenebase.sources")
_installed = threading.Lock()
_factory_installed = False


def install_log_redaction() -> None:
    """Redact records of :data:`REDACTED_LOGGERS` at creation.

    A record factory rather than logger filters: the libraries log through child loggers (``httpcore.http11``,
    ``botocore.endpoint``...), which a filter on the parent does not see, and handlers belong to whoever configures
    logging (uvicorn, pytest). Idempotent.
    """
    global _factory_installed
    with _installed:
        if _factory_installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if record.name.startswith(REDACTED_LOGGERS):
                try:
                    message = record.getMessage()
                except Exception:  # a malformed log call: keep the record as the library made it
                    return record
                record.msg, record.args = redact(message), None
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True
