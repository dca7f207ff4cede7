"""Opening a page as a reader would, offline: shared by the browser tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DESKTOP, PHONE = 1280, 390


@dataclass
class Visit:
    page: object
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def open_page(browser, path: Path, width: int = DESKTOP) -> Visit:
    """Open `path` with every request routed: file:// and data: go through, anything else is
    aborted and recorded (a self-contained page makes none)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    visit = Visit(page)
    page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.console_errors.append(str(e)))

    def route(r):
        url = r.request.url
        if url.startswith(("file://", "data:")):
            r.continue_()
        else:
            visit.requests.append(url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.plotly-graph-div .main-svg').length > 0")
    return visit
