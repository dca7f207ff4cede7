"""Plotly figures with titles and alt text; Okabe–Ito colours (safe for colour-blind readers).

Titles are rendered by the page (an <h3> that wraps at phone width), not inside the plot; each
figure carries a sentence of alt text that states the numbers a sighted reader would take away.

Plotly draws a subset of HTML in every label, tick, hover text, title and annotation (`<a href>`
becomes a link, `<b>` bold), so `to_figure` escapes every string of a figure (`plot_text`) except
Plotly's templates, which are code: data goes into x, y, text or customdata, never into a template.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import polars as pl

from dashboards.data import HIDDEN, fmt_ci, fmt_num

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
BLUE, ORANGE, GREEN, VERMILION, PURPLE, SKY = OKABE_ITO[:6]
GREY = "#57606a"
# A sequential scale that stays readable in grey and for every colour-vision type (light → dark blue).
SEQUENTIAL = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]]
CONFIG = {"responsive": True, "displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


@dataclass(frozen=True)
class Figure:
    html: str
    alt: str
    div_id: str
    title: str = ""
    notes: list[str] = field(default_factory=list)


# Plotly templates ("%{x}: %{y}<extra></extra>"): written in this code, with Plotly's markup on purpose.
TEMPLATE_KEYS = frozenset({"hovertemplate", "texttemplate", "hovertemplatefallback"})


def plot_text(text: str) -> str:
    """A string as Plotly must show it, as text: `<`, `>` and `&` escaped. Plotly decodes these three
    entities back into characters (it does not know `&quot;`, so quotes stay as they are)."""
    return html.escape(text, quote=False)


def inert(value: Any, key: str = "") -> Any:
    """Every string in a figure's JSON (data, layout, annotations, tick labels) escaped for Plotly,
    except the templates (TEMPLATE_KEYS)."""
    if isinstance(value, str):
        return value if key in TEMPLATE_KEYS else plot_text(value)
    if isinstance(value, dict):
        return {k: inert(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [inert(v, key) for v in value]
    if getattr(value, "dtype", None) is not None and value.dtype.kind in "OUS":  # numpy strings
        return [inert(v, key) for v in value.tolist()]
    return value


def to_figure(
    fig: go.Figure, alt: str, div_id: str, title: str = "", notes: list[str] | None = None
) -> Figure:
    fig.update_layout(
        template="plotly_white",
        colorway=OKABE_ITO,
        margin={"l": 10, "r": 10, "t": 20, "b": 40},
        autosize=True,
        font={"family": "system-ui, sans-serif", "size": 13},
        showlegend=fig.layout.showlegend if fig.layout.showlegend is not None else False,
    )
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(automargin=True)
    safe = go.Figure(inert(fig.to_plotly_json()), skip_invalid=False)
    markup = safe.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG)
    return Figure(markup, alt, div_id, title, notes or [])


def bar_by_category(
    table: pl.DataFrame, category: str, measure: str, title: str, order: list[str], div_id: str
) -> Figure:
    """Bars per category; a hidden value is drawn as no bar with the word "suppressed" on the axis."""
    rows = table.filter(pl.col("measure") == measure)
    shown = {r[category]: r for r in rows.iter_rows(named=True)}
    cats = [c for c in order if c in shown]
    values = [None if shown[c]["status"] in HIDDEN else shown[c]["value"] for c in cats]
    labels = ["suppressed" if shown[c]["status"] in HIDDEN else fmt_num(shown[c]["value"], 1) for c in cats]
    fig = go.Figure(go.Bar(x=cats, y=values, text=labels, textposition="outside", marker_color=BLUE))
    fig.update_layout(yaxis_title=measure.replace("_", " "), xaxis_title=category.replace("_", " "))
    alt = f"{title}: " + "; ".join(f"{c} {lab}" for c, lab in zip(cats, labels, strict=True))
    return to_figure(fig, alt, div_id, title)


@dataclass(frozen=True)
class Estimate:
    """One line of a forest-style chart; g is None when the estimate is hidden (`hidden` says why)."""

    label: str
    g: float | None
    low: float | None = None
    high: float | None = None
    weight: float | None = None
    hidden: str | None = None

    @property
    def words(self) -> str:
        if self.g is None:
            return f"{self.label} {self.hidden or 'not shown'}"
        return f"{self.label} g = {fmt_num(self.g)} {fmt_ci(self.low, self.high)}"


def _marker_sizes(estimates: list[Estimate]) -> list[float]:
    """Square area proportional to the inverse-variance weight, as in a conventional forest plot."""
    weights = [e.weight or 0.0 for e in estimates]
    top = max(weights, default=0.0) or 1.0
    return [8 + 12 * (w / top) ** 0.5 for w in weights]


def forest_plot(
    schools: list[Estimate],
    pooled: Estimate | None,
    prediction: tuple[float, float] | None,
    title: str,
    div_id: str,
    heterogeneity: str = "",
    x_title: str = "Hedges' g (95% CI)",
    kind: str = "Forest plot",
) -> Figure:
    """Schools' g with 95% CIs, the pooled estimate as a diamond, the prediction interval as a bar.

    A numeric y axis (ticks relabelled) lets the diamond be drawn as a true polygon.
    """
    labels = [e.label + (f" ({e.hidden})" if e.g is None else "") for e in schools]
    shown = [(i, e) for i, e in enumerate(schools) if e.g is not None]
    sizes = _marker_sizes([e for _, e in shown])
    fig = go.Figure(
        go.Scatter(
            x=[e.g for _, e in shown],
            y=[i for i, _ in shown],
            mode="markers",
            name="schools",
            marker={"symbol": "square", "size": sizes, "color": BLUE},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [e.high - e.g for _, e in shown],
                "arrayminus": [e.g - e.low for _, e in shown],
                "color": BLUE,
            },
            customdata=[e.words for _, e in shown],
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    ticks = list(range(len(schools)))
    if pooled is not None and pooled.g is not None:
        y = len(schools) + 0.5
        labels.append(pooled.label)
        ticks.append(y)
        fig.add_trace(
            go.Scatter(
                x=[pooled.low, pooled.g, pooled.high, pooled.g, pooled.low],
                y=[y, y - 0.3, y, y + 0.3, y],
                fill="toself",
                mode="lines",
                name="pooled",
                line={"color": VERMILION},
                hoverinfo="text",
                text=pooled.words,
            )
        )
        if prediction is not None:
            fig.add_trace(
                go.Scatter(
                    x=list(prediction),
                    y=[y + 0.55, y + 0.55],
                    mode="lines",
                    name="95% prediction interval",
                    line={"color": VERMILION, "width": 2, "dash": "dot"},
                    hoverinfo="text",
                    text=f"95% prediction interval {fmt_ci(*prediction)}",
                )
            )
    fig.add_vline(x=0, line_dash="dash", line_color=GREY)
    fig.update_layout(
        xaxis_title=x_title,
        # explicit reversed range: rows without an estimate keep their labelled place
        yaxis={"tickvals": ticks, "ticktext": labels, "range": [max(ticks) + 0.9, -0.7], "zeroline": False},
        height=140 + 34 * len(ticks),
    )
    parts = [e.words for e in schools]
    if pooled is not None:
        parts.append(pooled.words)
    if prediction is not None:
        parts.append(f"95% prediction interval {fmt_ci(*prediction)}")
    alt = f"{kind}, {title}: " + "; ".join(parts) + (f". {heterogeneity}" if heterogeneity else "")
    return to_figure(fig, alt, div_id, title, [heterogeneity] if heterogeneity else [])


def effects_chart(estimates: list[Estimate], title: str, div_id: str, x_title: str) -> Figure:
    """g with 95% CIs per category (subgroups), hidden ones labelled on their row; equal squares
    because these are separate estimates, not weighted parts of one pooled result."""
    equal = [Estimate(e.label, e.g, e.low, e.high, None, e.hidden) for e in estimates]
    return forest_plot(equal, None, None, title, div_id, x_title=x_title, kind="Chart")


def dose_chart(estimates: list[Estimate], title: str, div_id: str) -> Figure:
    """Effect by usage band, left to right in rising use; a hidden band keeps its place, labelled."""
    labels = [e.label for e in estimates]
    shown = [e for e in estimates if e.g is not None]
    fig = go.Figure(
        go.Scatter(
            x=[e.label for e in shown],
            y=[e.g for e in shown],
            mode="markers+lines",
            line={"color": BLUE, "dash": "dot"},
            marker={"size": 11, "color": BLUE, "symbol": "square"},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [e.high - e.g for e in shown],
                "arrayminus": [e.g - e.low for e in shown],
                "color": BLUE,
            },
            customdata=[e.words for e in shown],
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    for e in estimates:
        if e.g is None:
            fig.add_annotation(
                x=e.label,
                y=0,
                text=e.hidden or "not shown",
                showarrow=False,
                yshift=14,
                font={"color": VERMILION},
            )
    fig.add_hline(y=0, line_dash="dash", line_color=GREY)
    fig.update_layout(
        xaxis={
            "title": "usage band (vs non-users)",
            "categoryorder": "array",
            "categoryarray": labels,
            "type": "category",
            "range": [-0.5, len(labels) - 0.5],
        },
        yaxis_title="Hedges' g (95% CI)",
        height=380,
    )
    alt = f"Chart, {title}: " + "; ".join(e.words for e in estimates)
    return to_figure(fig, alt, div_id, title)


def heatmap(
    z: list[list[float | None]],
    text: list[list[str]],
    x: list[str],
    y: list[str],
    title: str,
    div_id: str,
    alt: str,
    x_title: str,
    y_title: str,
) -> Figure:
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=y,
            text=text,
            texttemplate="%{text}",
            colorscale=SEQUENTIAL,
            colorbar={"title": {"text": "students"}, "thickness": 12},
            hovertemplate=f"{y_title} %{{y}} · {x_title} %{{x}}: %{{text}}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_layout(
        xaxis_title=x_title, yaxis_title=y_title, yaxis={"autorange": "reversed"}, height=120 + 36 * len(y)
    )
    return to_figure(fig, alt, div_id, title)
