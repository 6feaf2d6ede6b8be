"""Credentials in query strings never reach a log line (uvicorn's access log, or any other record)."""

from __future__ import annotations

import io
import logging
import logging.config

import pytest

from scenebase.api.log_redaction import RedactSecrets, redact_query, uvicorn_log_config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/auth?token=abc-def_1", "/auth?token=REDACTED"),
        ("/a?x=1&token=abc&y=2", "/a?x=1&token=REDACTED&y=2"),
        ("/a?TOKEN=abc", "/a?TOKEN=REDACTED"),
        ("/img?X-Amz-Credential=AK%2F1&X-Amz-Signature=f00d&X-Amz-Expires=60",
         "/img?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Expires=60"),
        ('fetch "https://h/p?sig=zz" failed', 'fetch "https://h/p?sig=REDACTED" failed'),
        ("/a?token=", "/a?token=REDACTED"),
        ("/a?tokens=1&my_token=2&notoken=3", "/a?tokens=1&my_token=2&notoken=3"),  # other keys stay
        ("/v1/jobs/token=abc", "/v1/jobs/token=abc"),  # a path segment, not a query value
    ],
)  # fmt: skip
def test_redact_query(text: str, expected: str) -> None:
    assert redact_query(text) == expected


def test_uvicorn_access_record_keeps_its_shape() -> None:
    """uvicorn's AccessFormatter unpacks the record's args by position: redaction keeps them a 5-tuple."""
    stream = io.StringIO()
    config = uvicorn_log_config()
    config["handlers"]["access"]["stream"] = stream
    config["loggers"] = {"test.access": {"handlers": ["access"], "level": "INFO", "propagate": False}}
    logging.config.dictConfig(config)
    logger = logging.getLogger("test.access")
    logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/auth?token=s3cret&x=1", "1.1", 200)
    line = stream.getvalue()
    assert '"GET /auth?token=REDACTED&x=1 HTTP/1.1" 200' in line
    assert "s3cret" not in line


def test_filter_redacts_message_and_named_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET /a?token=%(t)s", None, None)
    record.args = {"t": "/b?signature=zz"}
    assert RedactSecrets().filter(record) is True
    assert record.getMessage() == "GET /a?token=REDACTED"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "url %s code %d", ("/a?token=t0k", 3), None)
    RedactSecrets().filter(record)
    assert record.getMessage() == "url /a?token=REDACTED code 3"
