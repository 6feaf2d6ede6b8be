"""docs/sessions.md cannot rot: every ``python`` block of the page runs, in order and in one namespace, against a
fresh in-process server, and the page names every public sessions method of the client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from api.videos_common import make_clip
from scenebase.clients import SceneEngineClient
from scenebase.clients.sessions import SessionsMixin
from scenebase.testing import InProcessServer

PAGE = Path(__file__).resolve().parents[1] / "docs" / "sessions.md"


def python_blocks(markdown: str) -> list[tuple[int, str]]:
    """``(first line number, code)`` of each fenced ``python`` block, in order."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", markdown, re.S | re.M):
        blocks.append((markdown.count("\n", 0, match.start(1)) + 1, match.group(1)))
    return blocks


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SceneEngineClient]:
    # the files the page's examples name, made here (nothing is copied from ../shared/data)
    work = tmp_path / "work"
    work.mkdir()
    PILImage.new("RGB", (64, 48), (90, 120, 200)).save(work / "frame_0001.jpg", "JPEG")
    make_clip(work / "front_camera.mp4", 50)  # 2 s at 25 fps
    monkeypatch.chdir(work)
    with InProcessServer(tmp_path / "data", session_resolution_debounce_seconds=0.2) as srv:
        yield srv.client()


def test_every_example_of_the_page_runs(client: SceneEngineClient) -> None:
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 10, "the page lost its examples"
    namespace: dict[str, Any] = {"client": client}
    for line, code in blocks:
        # padded so that a traceback names the line of docs/sessions.md
        exec(compile("\n" * (line - 1) + code, str(PAGE), "exec"), namespace)


def test_the_page_names_every_sessions_method() -> None:
    text = PAGE.read_text()
    public = sorted(
        name for name in vars(SessionsMixin) if not name.startswith("_") and callable(getattr(SessionsMixin, name))
    )
    missing = [name for name in public if f"{name}(" not in text and f"`{name}`" not in text]
    assert not missing, f"docs/sessions.md does not describe {missing}"


def test_python_blocks_are_found_with_their_line_numbers() -> None:
    page = "intro\n```python\nx = 1\n```\ntext\n```bash\nls\n```\n```python\ny = 2\nz = 3\n```\n"
    assert python_blocks(page) == [(3, "x = 1\n"), (10, "y = 2\nz = 3\n")]
