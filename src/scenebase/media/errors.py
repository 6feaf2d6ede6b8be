"""The one base of the media libraries' decode errors."""

from __future__ import annotations


class MediaDecodeError(ValueError):
    """Bytes that are not usable media of the expected kind. ``problem`` says what is wrong (shown to users);
    ``name`` is the file name given by the caller (or the path's name), if any."""

    def __init__(self, problem: str, *, name: str | None = None) -> None:
        self.problem = problem
        self.name = name
        super().__init__(f"{name!r}: {problem}" if name else problem)
