"""The evaluator's impact report."""

from __future__ import annotations

import polars as pl
from jinja2 import Environment

from dashboards.data import display_value
from dashboards.figures import bar_by_category, pivot_display

TABLE_DIMS = {
    "sample_flow": ["school_id"],
    "gains_by_band": ["school_id", "band"],
}
BAND_ORDER = ["none", "low", "medium", "high", "all"]


def dims_of(table: pl.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in ("measure", "value", "n", "status", "note")]


def section(name: str, table: pl.DataFrame) -> dict:
    dims = TABLE_DIMS.get(name) or dims_of(table)
    rows = pivot_display(table, dims, display_value)
    columns = dims + sorted({c for r in rows for c in r if c not in dims})
    return {"name": name, "title": name.replace("_", " ").capitalize(), "columns": columns, "rows": rows}


def render(env: Environment, manifest: dict, tables: dict[str, pl.DataFrame]) -> str:
    figures = []
    if "gains_by_band" in tables:
        overall = tables["gains_by_band"].filter(pl.col("school_id") == "ALL")
        figures.append(
            bar_by_category(
                overall,
                "band",
                "mean_gain",
                "Mean pre→post gain by usage band (all schools)",
                BAND_ORDER,
                "gain-by-band",
            )
        )
    order = [
        "sample_flow",
        "gains_by_band",
        *sorted(
            t
            for t in tables
            if t
            not in (
                "sample_flow",
                "gains_by_band",
                "reach",
                "usage_by_resource",
                "usage_by_week",
                "cross_school_use",
            )
        ),
    ]
    sections = [section(name, tables[name]) for name in order if name in tables]
    control = manifest.get("disclosure_control", {})
    return env.get_template("impact_report.html.j2").render(
        title="Impact report — shared learning resources",
        subtitle=f"Release {manifest.get('release', '')[:12]} · built from published aggregates only",
        sections=sections,
        figures=figures,
        control=control,
        manifest=manifest,
    )
