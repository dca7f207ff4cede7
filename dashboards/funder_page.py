"""The funder dashboard: headline tiles, trends, the sharing network, reach by subgroup."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import polars as pl
from jinja2 import Environment

from dashboards.data import HIDDEN, display_value, measure
from dashboards.figures import OKABE_ITO, Figure, to_figure


def tiles(tables: dict[str, pl.DataFrame]) -> list[dict]:
    reach = tables.get("reach")
    out = []
    schools = reach.filter(pl.col("school_id") != "ALL")["school_id"].n_unique() if reach is not None else 0
    out.append({"label": "Schools in the network", "value": str(schools)})
    users = measure(reach, school_id="ALL", subgroup="all", subgroup_value="all", measure="users")
    out.append({"label": "Students reached", "value": display_value(users) if users else "—"})
    pct = measure(reach, school_id="ALL", subgroup="all", subgroup_value="all", measure="reach_pct")
    out.append(
        {
            "label": "Reach (% of enrolled)",
            "value": (display_value(pct, 1) + ("%" if pct and pct["status"] == "published" else ""))
            if pct
            else "—",
        }
    )
    resources = tables.get("usage_by_resource")
    if resources is not None:
        used = resources.filter(
            (pl.col("school_id") == "ALL") & (pl.col("resource_id") != "all") & (pl.col("measure") == "users")
        )
        out.append({"label": "Shared resources used", "value": str(used.height)})
    weekly = tables.get("usage_by_week")
    if weekly is not None:
        rows = weekly.filter(
            (pl.col("school_id") == "ALL")
            & (pl.col("measure") == "minutes_per_active_user")
            & ~pl.col("status").is_in(HIDDEN)
        )
        if rows.height:
            out.append(
                {
                    "label": "Median weekly minutes per active student",
                    "value": f"{rows['value'].median():.0f}",
                }
            )
    return out


def usage_trend(weekly: pl.DataFrame) -> tuple[Figure, dict]:
    """Trend of active users per week; data for every school embedded so a filter can switch it."""
    rows = weekly.filter(pl.col("measure") == "active_users").sort("week")
    series = {}
    for school, part in rows.group_by("school_id", maintain_order=True):
        series[school[0]] = {
            "x": part["week"].to_list(),
            "y": [
                None if s in HIDDEN else v
                for v, s in zip(part["value"].to_list(), part["status"].to_list(), strict=True)
            ],
        }
    overall = series.get("ALL", {"x": [], "y": []})
    fig = go.Figure(
        go.Scatter(
            x=overall["x"],
            y=overall["y"],
            mode="lines+markers",
            line={"color": OKABE_ITO[0]},
            connectgaps=False,
        )
    )
    fig.update_layout(
        title="Active students per week (gaps are suppressed weeks)",
        xaxis_title="ISO week",
        yaxis_title="active students",
    )
    return to_figure(
        fig, "Weekly active students of shared resources; suppressed weeks are left as gaps.", "usage-trend"
    ), series


def sharing_network(cross: pl.DataFrame) -> Figure:
    rows = cross.filter(
        (pl.col("measure") == "users")
        & (pl.col("user_school") != "ALL")
        & (pl.col("contributing_school") != "ALL")
    )
    users = sorted(rows["user_school"].unique().to_list())
    contributors = sorted(rows["contributing_school"].unique().to_list())
    lookup = {(r["user_school"], r["contributing_school"]): r for r in rows.iter_rows(named=True)}
    z, text = [], []
    for u in users:
        z_row, t_row = [], []
        for c in contributors:
            r = lookup.get((u, c))
            hidden = r is None or r["status"] in HIDDEN
            z_row.append(None if hidden else r["value"])
            t_row.append(
                "suppressed"
                if r is not None and r["status"] in HIDDEN
                else ("" if r is None else f"{r['value']:.0f}")
            )
        z.append(z_row)
        text.append(t_row)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=contributors,
            y=users,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar={"title": "students"},
        )
    )
    fig.update_layout(
        title="Cross-school sharing: students of a school (rows) using resources contributed by a school (columns)",
        xaxis_title="contributing school",
        yaxis_title="students' school",
    )
    return to_figure(
        fig,
        "Heatmap of students using resources contributed by each school; suppressed cells are labelled.",
        "sharing-network",
    )


def subgroup_rows(reach: pl.DataFrame) -> list[dict]:
    rows = reach.filter((pl.col("measure") == "reach_pct") & (pl.col("subgroup") != "all")).sort(
        "school_id", "subgroup", "subgroup_value"
    )
    return [
        {
            "school": r["school_id"],
            "subgroup": r["subgroup"],
            "value": r["subgroup_value"],
            "reach": display_value(r, 1),
            "status": r["status"],
        }
        for r in rows.iter_rows(named=True)
    ]


def render(env: Environment, manifest: dict, tables: dict[str, pl.DataFrame]) -> str:
    figures, trend_data = [], {}
    if "usage_by_week" in tables:
        fig, trend_data = usage_trend(tables["usage_by_week"])
        figures.append(fig)
    if "cross_school_use" in tables:
        figures.append(sharing_network(tables["cross_school_use"]))
    reach = tables.get("reach")
    subgroups = subgroup_rows(reach) if reach is not None else []
    schools = sorted({r["school"] for r in subgroups})
    return env.get_template("funder_dashboard.html.j2").render(
        title="Shared learning resources — funder dashboard",
        subtitle="Aggregates only; groups smaller than the minimum cell size are never shown.",
        tiles=tiles(tables),
        figures=figures,
        subgroups=subgroups,
        schools=schools,
        trend_json=json.dumps(trend_data),
        manifest=manifest,
    )
