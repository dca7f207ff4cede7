"""Plotly figures with titles and alt text; Okabe–Ito colours (safe for colour-blind readers)."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import polars as pl

from dashboards.data import HIDDEN

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


@dataclass(frozen=True)
class Figure:
    html: str
    alt: str
    div_id: str


def to_figure(fig: go.Figure, alt: str, div_id: str) -> Figure:
    fig.update_layout(
        template="plotly_white",
        colorway=OKABE_ITO,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        autosize=True,
    )
    html = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"responsive": True, "displaylogo": False},
    )
    return Figure(html, alt, div_id)


def pivot_display(table: pl.DataFrame, dims: list[str], display) -> list[dict]:
    """Rows keyed by `dims`, one column per measure, each cell its display text."""
    rows: dict[tuple, dict] = {}
    for row in table.iter_rows(named=True):
        key = tuple(row[d] for d in dims)
        rows.setdefault(key, {d: row[d] for d in dims})[row["measure"]] = display(row)
    return list(rows.values())


def visible(table: pl.DataFrame) -> pl.DataFrame:
    return table.filter(~pl.col("status").is_in(HIDDEN) & pl.col("value").is_not_null())


def bar_by_category(
    table: pl.DataFrame, category: str, measure: str, title: str, order: list[str], div_id: str
) -> Figure:
    rows = table.filter(pl.col("measure") == measure)
    shown = {r[category]: r for r in rows.iter_rows(named=True)}
    cats = [c for c in order if c in shown]
    values = [shown[c]["value"] if shown[c]["status"] not in HIDDEN else None for c in cats]
    labels = ["suppressed" if shown[c]["status"] in HIDDEN else f"{shown[c]['value']:.1f}" for c in cats]
    fig = go.Figure(go.Bar(x=cats, y=values, text=labels, textposition="outside", marker_color=OKABE_ITO[0]))
    fig.update_layout(
        title=title, yaxis_title=measure.replace("_", " "), xaxis_title=category.replace("_", " ")
    )
    alt = f"{title}: " + "; ".join(f"{c} {lab}" for c, lab in zip(cats, labels, strict=True))
    return to_figure(fig, alt, div_id)


def forest_plot(rows: list[dict], title: str, div_id: str) -> Figure:
    """rows: label, g, low, high, kind ('school' or 'pooled'); hidden rows already removed."""
    labels = [r["label"] for r in rows]
    fig = go.Figure(
        go.Scatter(
            x=[r["g"] for r in rows],
            y=labels,
            mode="markers",
            marker={
                "symbol": ["diamond" if r["kind"] == "pooled" else "square" for r in rows],
                "size": 11,
                "color": OKABE_ITO[0],
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [r["high"] - r["g"] for r in rows],
                "arrayminus": [r["g"] - r["low"] for r in rows],
            },
        )
    )
    fig.add_vline(x=0, line_dash="dash", line_color="#57606a")
    fig.update_layout(
        title=title,
        xaxis_title="Hedges' g (95% CI)",
        yaxis={"autorange": "reversed"},
        height=120 + 32 * len(rows),
    )
    alt = f"{title}: " + "; ".join(
        f"{r['label']} g={r['g']:.2f} [{r['low']:.2f}, {r['high']:.2f}]" for r in rows
    )
    return to_figure(fig, alt, div_id)
