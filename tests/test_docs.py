"""The README and docs say what the code does: generated tables must be current."""

from __future__ import annotations

from pathlib import Path

from scenebase.clients.method_status import status_table
from scenebase.settings import Settings, config_table

REPO = Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    head = readme[:1500]
    assert "scenebase serve --data-dir" in head
    assert "bash .ci/run" in head


def test_readme_config_table_is_current() -> None:
    assert config_table() in (REPO / "README.md").read_text(), "regenerate with: scenebase docs config"


def test_readme_method_table_is_current() -> None:
    assert status_table() in (REPO / "README.md").read_text(), "regenerate with: scenebase docs methods"


def test_every_setting_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"SCENEBASE_{name.upper()}" in readme


def test_benchmarks_documented() -> None:
    doc = (REPO / "docs" / "benchmarks.md").read_text()
    assert "whoami" in doc and "2026" in doc
