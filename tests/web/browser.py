"""Headless Chromium for the web app tests and benchmark: Debian's ``chromium`` driven by Python Playwright (never a
downloaded browser; .ci/run installs both), signed in with a personal token."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scenebase.api.webapp import BUILD_COMMAND, WEBAPP_DIST

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip


def missing_prerequisite() -> str | None:
    """What the browser tests lack, named with the command that installs it (None: nothing)."""
    if not (WEBAPP_DIST / "index.html").is_file():
        return f"the web app bundle is not built ({WEBAPP_DIST}): run {BUILD_COMMAND}"
    if not CHROMIUM.is_file() and not shutil.which("chromium"):
        return "Debian's chromium is not installed: apt-get install -y chromium (bash .ci/run does it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed: pip install -e '.[dev]' (bash .ci/run does it)"
    return None


@contextmanager
def browser_page(base_url: str, token: str, width: int = 1280, height: int = 800) -> Iterator[object]:
    """A page signed in to the web app at ``base_url`` (the token goes through the sign-in form)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{base_url}/app/signin")
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            page.wait_for_selector("[data-testid=me]:has-text('admin')")
            yield page
        finally:
            browser.close()
