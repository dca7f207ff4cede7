"""Render the three HTML outputs from published/ (self-contained: Plotly's JavaScript embedded), and
optionally a PDF of the impact report printed by headless Chromium (the charts are JavaScript, so an
engine without it, such as WeasyPrint, would print a report without its figures)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import plotly.offline
from jinja2 import Environment, PackageLoader

from dashboards import compliance_page, funder_page, impact_page
from dashboards.data import load_compliance, load_release
from privacy.atomic import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

# A headless print without network, extensions or first-run work: the page is file:// only.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-pdf-header-footer",
    "--virtual-time-budget=8000",  # lets Plotly draw before printing (0 never settles)
)
PDF_TIMEOUT_SECONDS = 120


@cache
def environment() -> Environment:
    # Every template is HTML and every value in it may come from a school: escape all of them
    # (not by file name); `| safe` only for Plotly's library and markup this code made inert.
    env = Environment(loader=PackageLoader("dashboards", "templates"), autoescape=True)
    env.globals["plotly_js"] = plotly.offline.get_plotlyjs()
    return env


def chromium_path() -> str | None:
    """IMPACT_CHROMIUM, else a Chromium or Chrome on the PATH."""
    configured = os.environ.get("IMPACT_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def pdf_wanted() -> bool:
    """PDF printing costs a browser start (several seconds), so it is asked for: IMPACT_REPORT_PDF=1."""
    return os.environ.get("IMPACT_REPORT_PDF", "").strip().lower() in ("1", "true", "yes")


def write_pdf(html: Path, pdf: Path, chromium: str | None = None) -> Path | None:
    """Print `html` to `pdf` (atomically) with headless Chromium; None when no browser is at hand
    or printing fails (the HTML report is complete without it)."""
    chromium = chromium or chromium_path()
    if chromium is None:
        log.info("no Chromium found: %s not written", pdf.name)
        return None
    with tempfile.TemporaryDirectory(prefix="impact-pdf-") as profile:
        try:
            with atomic_path(pdf, mode=0o644) as temporary:
                subprocess.run(
                    [
                        chromium,
                        *CHROMIUM_FLAGS,
                        f"--user-data-dir={profile}",
                        f"--print-to-pdf={temporary}",
                        html.resolve().as_uri(),
                    ],
                    check=True,
                    capture_output=True,
                    timeout=PDF_TIMEOUT_SECONDS,
                )
                if temporary.stat().st_size == 0 or not temporary.read_bytes().startswith(b"%PDF"):
                    raise RuntimeError("Chromium wrote no PDF")
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            log.warning("could not print %s: %s", pdf.name, exc)
            return None
    return pdf


def render_all(published: Path, pdf: bool | None = None) -> list[Path]:
    manifest, tables = load_release(published)
    compliance = load_compliance(published)
    env = environment()
    pages = {
        "impact_report.html": impact_page.render(env, manifest, tables),
        "funder_dashboard.html": funder_page.render(env, manifest, tables),
        "compliance_report.html": compliance_page.render(env, manifest, compliance),
    }
    written = []
    for name, html in pages.items():
        written.append(atomic_write_text(published / name, html, mode=0o644))
    printed = None
    if (pdf_wanted() if pdf is None else pdf) and manifest:
        printed = write_pdf(published / "impact_report.html", published / "impact_report.pdf")
    if printed is None:
        # a PDF of an earlier release would contradict the HTML beside it
        (published / "impact_report.pdf").unlink(missing_ok=True)
    else:
        written.append(printed)
    return written
