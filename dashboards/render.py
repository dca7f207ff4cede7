"""Render the three HTML outputs from published/ (self-contained: Plotly's JavaScript embedded)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import plotly.offline
from jinja2 import Environment, PackageLoader, select_autoescape

from dashboards import compliance_page, funder_page, impact_page
from dashboards.data import load_compliance, load_release
from privacy.atomic import atomic_write_text


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dashboards", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    env.globals["plotly_js"] = plotly.offline.get_plotlyjs()
    return env


def render_all(published: Path) -> list[Path]:
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
    return written
