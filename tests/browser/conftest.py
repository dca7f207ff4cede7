"""Browser fixtures: Debian's Chromium driven by Playwright, and the session's published release.

Skipped with a reason when Chromium or Playwright is absent, unless IMPACT_REQUIRE_BROWSER=1 (CI),
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "dashboards"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # page_visit.py

from release_fixture import hostile_release, released_home

from dashboards.render import CHROMIUM_FLAGS
from privacy.zones import Home

# The same flags the PDF print uses: file:// only, no network, no first-run work.
LAUNCH_ARGS = list(CHROMIUM_FLAGS)


def chromium_executable() -> str | None:
    configured = os.environ.get("IMPACT_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)


def unavailable(reason: str):
    if os.environ.get("IMPACT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"IMPACT_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    executable = chromium_executable()
    if executable is None:
        unavailable("Chromium not found (apt-get install chromium, or set IMPACT_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def release_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return released_home(tmp_path_factory)


@pytest.fixture(scope="session")
def hostile_published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hostile_release(tmp_path_factory)
