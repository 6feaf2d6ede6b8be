"""Every relative link in README.md and docs/*.md points at a file that exists, and a ``#anchor`` at a heading of
the page it names. Links out of the repository (``../shared/...``) are checked where that folder is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: inline links ``[text](target "title")`` and images ``![alt](target)``; reference definitions ``[label]: target``
INLINE = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def doc_pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def links(markdown: str) -> list[str]:
    """Link targets outside code blocks and code spans (code may show link syntax without meaning a link)."""
    text = CODE_SPAN.sub("", FENCE.sub("", markdown))
    return [m.group(1) for m in INLINE.finditer(text)] + [m.group(1) for m in REFERENCE.finditer(text)]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation but ``-`` and ``_`` dropped, spaces
    to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Anchors of a page's headings; a repeated heading gets ``-1``, ``-2``, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", markdown), re.M):
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(page: Path, repo: Path, outside: bool) -> list[str]:
    """What is wrong with the relative links of ``page`` (``outside``: the links that leave ``repo`` instead of
    those within it)."""
    problems = []
    for target in links(page.read_text()):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # a URL: not this test's business (no network at test time)
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if dest.is_relative_to(repo) == outside:
            continue
        where = f"{page.relative_to(repo)}: link {target!r}"
        if not dest.exists():
            problems.append(f"{where}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            problems.append(f"{where}: {dest.name} has no heading with anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_at_files_that_exist(page: Path) -> None:
    assert not broken_links(page, REPO, outside=False)


def test_links_out_of_the_repository_point_at_files_that_exist() -> None:
    shared = REPO.parent / "shared"
    if not shared.is_dir():
        pytest.skip(f"links into {shared} are checked where that folder is there; it is missing")
    problems = [p for page in doc_pages() for p in broken_links(page, REPO, outside=True)]
    assert not problems


def test_the_checker_finds_broken_links_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# There\n\n## Some `code`: and more\n\n## Repeat\n\n## Repeat\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/there.md) [ok](docs/there.md#some-code-and-more) [ok](docs/there.md#repeat-1) [ok](#top)\n"
        "[gone](docs/missing.md) [bad anchor](docs/there.md#nowhere) [self](#nowhere-here)\n"
        "[web](https://example.com/x.md) `[in code](docs/nope.md)`\n\n```\n[in a block](docs/nope.md)\n```\n"
        "[ref]: docs/also-missing.md\n\n# Top\n"
    )
    problems = broken_links(page, tmp_path, outside=False)
    assert [p.split(": link ")[1].split(":")[0] for p in problems] == [
        "'docs/missing.md'",
        "'docs/there.md#nowhere'",
        "'#nowhere-here'",
        "'docs/also-missing.md'",
    ]
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "README.md").write_text("[design](../DESIGN.md) [local](README.md)\n")
    inner = tmp_path / "repo"
    assert broken_links(inner / "README.md", inner, outside=False) == []
    assert len(broken_links(inner / "README.md", inner, outside=True)) == 1  # ../DESIGN.md is missing


def mentioned_doc_pages(text: str) -> set[str]:
    """``docs/<page>.md`` named anywhere in a text, as a link or not."""
    return set(re.findall(r"(?<![\w/.-])docs/[\w.-]+\.md", text))


def test_doc_pages_named_in_prose_and_code_exist() -> None:
    """The README's method table once sent readers to docs/sessions.md before it existed: a page named in plain
    text (README, docs, the method notes and messages in src/) must exist too."""
    texts = {str(p.relative_to(REPO)): p.read_text() for p in [*doc_pages(), *sorted((REPO / "src").rglob("*.py"))]}
    missing = sorted(
        f"{where}: {name}" for where, text in texts.items() for name in mentioned_doc_pages(text)
        if not (REPO / name).is_file()
    )  # fmt: skip
    assert not missing


def test_mentions_are_found() -> None:
    text = "see docs/search.md, [x](docs/a-b.md#c) and `docs/sessions.md`; not mydocs/x.md nor ../docs/y.md"
    assert mentioned_doc_pages(text) == {"docs/search.md", "docs/a-b.md", "docs/sessions.md"}
