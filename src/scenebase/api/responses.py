"""HTTP helpers shared by the routes that serve files: byte ranges and ``Content-Disposition``."""

from __future__ import annotations

import re
from urllib.parse import quote

from scenebase.services.errors import RangeNotSatisfiable

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a ``Range`` header asks for in a file of ``size`` bytes, or None for the whole
    file (no header, or a form we do not serve such as several ranges: answering 200 with everything is allowed
    by RFC 9110). Raises RangeNotSatisfiable (416) for a range outside the file."""
    if not header:
        return None
    m = _RANGE.match(header)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"range {header!r} is empty for a file of {size} bytes")
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable(f"range {header!r} is outside the file's {size} bytes")
    return start, end


def content_disposition(disposition: str, filename: str) -> str:
    """A ``Content-Disposition`` value that is valid for any file name: an ASCII fallback (non-ASCII, quotes,
    backslashes and control characters replaced) plus the exact name in RFC 5987 ``filename*``."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "file"
    exact = quote(filename, safe="")
    if exact == fallback:
        return f'{disposition}; filename="{fallback}"'
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
