"""The README and docs say what the code does: generated tables must be current."""

from __future__ import annotations

from pathlib import Path

from scenebase.clients import SceneEngineClient
from scenebase.clients import search as search_client
from scenebase.clients.method_status import status_table
from scenebase.domain.search import (
    EXISTS_KEYS,
    FILTER_KEYS,
    KNOWN_KEYS,
    MISPLACED_KEYS,
    RANGE_KEYS,
    TIME_RANGE_KEYS,
)
from scenebase.services.assets import SUMMARY_KEYS, SUMMARY_KEYS_NOT_BUILT
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


def test_search_reference_names_every_key_of_the_language() -> None:
    doc = (REPO / "docs" / "search.md").read_text()
    keys = KNOWN_KEYS | FILTER_KEYS | EXISTS_KEYS | RANGE_KEYS | TIME_RANGE_KEYS | SUMMARY_KEYS | SUMMARY_KEYS_NOT_BUILT
    for key in sorted(keys | set(MISPLACED_KEYS)):
        assert f"`{key}`" in doc, f"docs/search.md does not mention `{key}`"
    for needle in ("X-Scenebase-Warning", "last_warnings", "InvalidTimeError", "searchable_field_statistics"):
        assert needle in doc, needle
    assert "(docs/search.md)" in (REPO / "README.md").read_text()


def test_search_docstrings_link_the_reference_not_the_spec() -> None:
    for method in (SceneEngineClient.search_assets, SceneEngineClient.search_meta, SceneEngineClient.summary_meta,
                   SceneEngineClient.search_within_set, SceneEngineClient.get_searchable_field_statistics):  # fmt: skip
        doc = method.__doc__ or ""
        assert "docs/search.md" in doc and "FACTS" not in doc, method.__name__
    assert "FACTS" not in (search_client.__doc__ or "") and "docs/search.md" in (search_client.__doc__ or "")
