"""Secrets never reach a log: query values that carry credentials (``?token=``, presigned-URL signatures) are
replaced by ``REDACTED`` in every record, the access log's request line included.

``scenebase serve`` hands :func:`uvicorn_log_config` to uvicorn (every server process applies it) and puts
:class:`RedactSecrets` on the root handlers; tokens in ``Authorization`` headers are never logged at all.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

#: query keys whose values are credentials (compared case-insensitively)
SECRET_QUERY_KEYS = (
    "token",
    "access_token",
    "auth_token",
    "api_key",
    "apikey",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "awsaccesskeyid",
)
REDACTED = "REDACTED"

_SECRET_VALUE = re.compile(
    r"([?&](?:" + "|".join(re.escape(k) for k in SECRET_QUERY_KEYS) + r")=)[^&#\s\"']*", re.IGNORECASE
)


def redact_query(text: str) -> str:
    """``text`` with the value of every credential query parameter replaced by ``REDACTED``.

    >>> redact_query("GET /auth?token=abc&x=1")
    'GET /auth?token=REDACTED&x=1'
    """
    return _SECRET_VALUE.sub(r"\g<1>" + REDACTED, text)


def _redact(value: Any) -> Any:
    return redact_query(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Redacts credential query values in a record's message and arguments (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            # same length and order: uvicorn's AccessFormatter unpacks the access record's args by position
            record.args = tuple(_redact(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact(v) for k, v in record.args.items()}
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with :class:`RedactSecrets` on each of its handlers."""
    import uvicorn.config

    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": f"{__name__}.RedactSecrets"}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact_secrets"]
    return config


def redact_root_handlers() -> None:
    """Put :class:`RedactSecrets` on every handler of the root logger (messages of scenebase and libraries)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
