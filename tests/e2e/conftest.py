"""End-to-end fixtures (helpers live in ``procs.py``, importable from the test modules as ``procs``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import Launcher


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    logs = tmp_path / "logs"
    logs.mkdir()
    launcher = Launcher(logs)
    try:
        yield launcher
    finally:
        launcher.close()
