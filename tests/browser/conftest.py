"""Real headless Chromium (Debian's ``chromium`` package) driven by Playwright's Python
package, against a real ``hub serve`` on loopback.

Playwright's own browser download does not work here and is never used: the browser is
``/usr/bin/chromium`` (``.ci/run`` installs it). Outside CI the tests skip with the reason
when Chromium or Playwright is missing; under CI (``CI=true``) they fail instead, as the
PostgreSQL fixtures do.

Screenshots go to the test's output directory; with ``UPDATE_SCREENSHOTS=1`` they are also
copied to ``docs/img/`` (so a normal run never rewrites committed files).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

CHROMIUM = Path(os.environ.get("PPRL_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_IMG = REPO / "docs" / "img"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (.ci/run installs Debian's chromium and the dev dependencies)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event
    loop running in the main thread while it is open, and later tests call asyncio.run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the browser tests need Playwright's Python package (pip install playwright)")
    if not CHROMIUM.is_file():
        _unavailable(f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Screens:
    """Screenshots of the pages a test visits, named in the order taken."""

    out: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Any, name: str) -> Path:
        """Screenshot ``page`` (after checking every form control on it is labelled)."""
        assert unlabelled(page) == [], (name, unlabelled(page))
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"console-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMG / path.name)
        return path


@pytest.fixture
def screens(tmp_path: Path) -> Screens:
    return Screens(tmp_path / "screenshots")


_UNLABELLED = """
() => Array.from(document.querySelectorAll('input, select, textarea, button'))
  .filter(el => el.type !== 'hidden')
  .filter(el => el.tagName === 'BUTTON'
    ? !el.textContent.trim()
    : !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML.slice(0, 120))
"""


def unlabelled(page: Any) -> list[str]:
    """Form controls without a label (a <label for>, an aria-label, or a button's text)."""
    found: list[str] = page.evaluate(_UNLABELLED)
    return found


def _console_error(errors: list[str], msg: Any) -> None:
    """Keep script errors and CSP violations; a 403 page's own status is expected."""
    if msg.type == "error" and "status of 403" not in msg.text:
        errors.append(msg.text)


def sign_in(browser: Any, url: str, token: str, *, javascript: bool = True) -> Any:
    """A fresh browser context (its own cookie jar) signed in to the console with the
    keyboard alone: Tab to the token field, type, Enter."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
        java_script_enabled=javascript,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: _console_error(errors, msg))
    page.goto(url + "/ui/")
    assert re.search(r"/ui/login", page.url), page.url
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "token":
            break
    else:
        raise AssertionError("the token field cannot be reached with the keyboard")
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/$"))
    page.errors = errors  # checked by the tests: no CSP violation, no script error
    return page


__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "Screens", "browser", "screens", "sign_in", "unlabelled"]
