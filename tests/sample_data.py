"""Real sample files live in ``../shared/data`` beside the checkout (never copied into the repository).

A clone without that folder must still pass: every test that reads it skips with the reason
"needs ../shared/data (<path>): not present beside this checkout". Use one of:

- the ``shared_data`` fixture (``tests/conftest.py``): the folder's ``Path``, or the test skips; for tests that
  use module-level paths, ``@pytest.mark.usefixtures("shared_data")``;
- ``require_shared_data("coco/panopticapi")`` inside a test, for one file or folder;
- ``needs_shared_data`` as a decorator (also right for parametrized tests whose parameters list its files).

Import from test modules as ``from sample_data import ...`` (tests/ is on ``sys.path``, like ``servers``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def missing_reason(relative: str = "") -> str:
    """The skip reason: names the folder (and the file, when one is meant) and where it was looked for."""
    path = SHARED_DATA / relative if relative else SHARED_DATA
    what = f"{relative}, looked for {path}" if relative else f"looked for {path}"
    return f"needs ../shared/data ({what}): not present beside this checkout"


def require_shared_data(relative: str = "") -> Path:
    """``../shared/data/<relative>``; skips the calling test when it is not there."""
    path = SHARED_DATA / relative if relative else SHARED_DATA
    if not path.exists():
        pytest.skip(missing_reason(relative))
    return path


needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=missing_reason())
