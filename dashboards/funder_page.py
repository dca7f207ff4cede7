"""The funder dashboard: headline tiles, weekly trends, resource use, the sharing network, results by
subgroup and the forest plot, with school / resource / term filters that run in the page (embedded
JSON + a little JavaScript: no server)."""

from __future__ import annotations

import json
import statistics

import plotly.graph_objects as go
import polars as pl
from jinja2 import Environment

from dashboards.data import (
    ALL,
    HIDDEN,
    embeddable_rows,
    fmt_ci,
    fmt_count,
    fmt_num,
    is_number,
    measure,
    measures_by_key,
    min_cell_size,
    value_of,
)
from dashboards.figures import BLUE, GREY, VERMILION, Figure, heatmap, to_figure
from dashboards.impact_page import forest_plots, subgroups

TERM_NAMES = {"fall": "Fall", "spring": "Spring"}


def term_of(week: str) -> str:
    """School term of an ISO week `YYYY-Www`: weeks 27–53 are the fall term of that year, weeks 1–26
    the spring term (a US school year; the published tables carry weeks, not dates)."""
    year, number = week.split("-W")
    return f"{'fall' if int(number) >= 27 else 'spring'}-{year}"


def term_label(term: str) -> str:
    season, year = term.split("-")
    return f"{TERM_NAMES[season]} {year}"


def term_order(term: str) -> tuple[str, int]:
    """Chronological: within a calendar year spring comes before fall."""
    season, year = term.split("-")
    return year, 0 if season == "spring" else 1


def _users(reach: pl.DataFrame | None, school: str) -> dict | None:
    return measure(reach, school_id=school, subgroup="all", subgroup_value="all", measure="users")


def resources_used(usage: pl.DataFrame | None, school: str) -> int:
    """Resources with any use: a hidden row still means the resource was used, so it counts."""
    if usage is None:
        return 0
    rows = usage.filter((pl.col("school_id") == school) & (pl.col("measure") == "users"))
    return rows.filter(pl.col("resource_id") != "all")["resource_id"].n_unique()


def median_weekly_minutes(weekly: pl.DataFrame | None, school: str, term: str = "all") -> float | None:
    """Median over weeks of the minutes per active student (published weeks only)."""
    if weekly is None:
        return None
    rows = weekly.filter(
        (pl.col("school_id") == school)
        & (pl.col("measure") == "minutes_per_active_user")
        & ~pl.col("status").is_in(HIDDEN)
        & pl.col("value").is_not_null()
    )
    values = [r["value"] for r in rows.iter_rows(named=True) if term == "all" or term_of(r["week"]) == term]
    return statistics.median(values) if values else None


def pooled_tile(pooled: pl.DataFrame | None) -> dict:
    rows = measures_by_key(pooled, ["comparison", "model"]).get(("users_vs_nonusers", "reml"), {})
    g = value_of(rows, "g")
    if g is None:
        return {
            "label": "Pooled effect, users vs non-users",
            "value": "suppressed" if rows else "—",
            "detail": "",
        }
    return {
        "label": "Pooled effect, users vs non-users (Hedges' g)",
        "value": fmt_num(g),
        "detail": f"95% CI {fmt_ci(value_of(rows, 'ci_low'), value_of(rows, 'ci_high'))}, REML, "
        f"{fmt_count(value_of(rows, 'k_schools'))} schools",
    }


def teacher_time_tile(survey: pl.DataFrame | None) -> dict | None:
    """Mean minutes saved per teacher per week, from the consortium row; None without a survey."""
    if survey is None:
        return None
    mean = measure(survey, school_id=ALL, measure="minutes_saved_per_week_mean")
    teachers = measure(survey, school_id=ALL, measure="teachers")
    tile = {"id": "tile-teacher-time", "label": "Teacher time saved"}
    if not is_number(mean):
        return {**tile, "value": "suppressed" if mean else "—", "detail": "teacher survey"}
    who = f"{fmt_count(teachers['value'])} responding teachers" if is_number(teachers) else "teacher survey"
    return {
        **tile,
        "value": f"{fmt_num(mean['value'], 0)} min",
        "detail": f"per teacher per week, mean of {who}",
    }


def tiles(tables: dict[str, pl.DataFrame]) -> list[dict]:
    reach, usage, weekly = tables.get("reach"), tables.get("usage_by_resource"), tables.get("usage_by_week")
    schools = sorted(
        {s for t in (reach, usage, weekly) if t is not None for s in t["school_id"].unique()} - {ALL}
    )
    users = _users(reach, ALL)
    minutes = median_weekly_minutes(weekly, ALL)
    return [
        {"id": "tile-schools", "label": "Schools in the network", "value": str(len(schools)), "detail": ""},
        {
            "id": "tile-reached",
            "label": "Students reached",
            "value": fmt_count(users["value"]) if is_number(users) else "suppressed" if users else "—",
            "detail": "students who used a shared resource",
        },
        {
            "id": "tile-resources",
            "label": "Shared resources used",
            "value": str(resources_used(usage, ALL)),
            "detail": "resources with any use",
        },
        {
            "id": "tile-minutes",
            "label": "Median weekly minutes",
            "value": fmt_num(minutes, 0) if minutes is not None else "—",
            "detail": "per active student, median over weeks",
        },
        {"id": "tile-effect", **pooled_tile(tables.get("pooled_effects"))},
        *([teacher] if (teacher := teacher_time_tile(tables.get("teacher_time_saved"))) else []),
    ]


# --- figures drawn for "all schools, all terms"; the page's script redraws them on a filter ---------


def weekly_figure(weekly: pl.DataFrame, name: str, title: str, y_title: str, div_id: str) -> Figure:
    rows = weekly.filter((pl.col("school_id") == ALL) & (pl.col("measure") == name)).sort("week")
    hidden = [r["week"] for r in rows.iter_rows(named=True) if r["status"] in HIDDEN]
    fig = go.Figure(
        [
            go.Scatter(
                x=rows["week"].to_list(),
                y=[None if r["status"] in HIDDEN else r["value"] for r in rows.iter_rows(named=True)],
                mode="lines+markers",
                name=y_title,
                line={"color": BLUE},
                connectgaps=False,
            ),
            # Suppressed weeks: a labelled marker along the top (its own 0–1 axis), never a zero.
            go.Scatter(
                x=hidden,
                y=[0.97] * len(hidden),
                yaxis="y2",
                mode="markers",
                name="suppressed week",
                marker={"symbol": "x-thin-open", "size": 10, "color": VERMILION, "line": {"width": 2}},
                hovertemplate="%{x}: suppressed<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        xaxis_title="ISO week",
        yaxis_title=y_title,
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        height=340,
    )
    alt = (
        f"{title}, all schools: {rows.height} weeks, "
        f"from {rows['week'].min()} to {rows['week'].max()}; {len(hidden)} weeks suppressed."
        if rows.height
        else f"{title}: no weeks published."
    )
    return to_figure(fig, alt, div_id, title)


def resource_figure(usage: pl.DataFrame) -> Figure:
    rows = usage.filter(
        (pl.col("school_id") == ALL) & (pl.col("measure") == "users") & (pl.col("resource_id") != "all")
    ).sort("resource_id")
    fig = go.Figure(
        go.Bar(
            x=rows["resource_id"].to_list(),
            y=[None if r["status"] in HIDDEN else r["value"] for r in rows.iter_rows(named=True)],
            marker_color=BLUE,
            hovertemplate="%{x}: %{y} students<extra></extra>",
        )
    )
    fig.update_layout(xaxis_title="resource", yaxis_title="students", height=360)
    return to_figure(
        fig,
        f"Students using each of {rows.height} shared resources, all schools.",
        "resource-usage",
        "Students using each shared resource — all schools",
    )


def sharing_figure(cross: pl.DataFrame) -> Figure:
    rows = cross.filter(
        (pl.col("measure") == "users")
        & (pl.col("user_school") != ALL)
        & (pl.col("contributing_school") != ALL)
    )
    users = sorted(rows["user_school"].unique().to_list())
    contributors = sorted(rows["contributing_school"].unique().to_list())
    lookup = {(r["user_school"], r["contributing_school"]): r for r in rows.iter_rows(named=True)}
    z, text = [], []
    for u in users:
        cells = [lookup.get((u, c)) for c in contributors]
        z.append([r["value"] if is_number(r) else None for r in cells])
        text.append(
            [
                "none" if r is None else "suppressed" if r["status"] in HIDDEN else fmt_count(r["value"])
                for r in cells
            ]
        )
    hidden = sum(row.count("suppressed") for row in text)
    busiest = max(
        (
            (u, c, lookup[(u, c)]["value"])
            for u in users
            for c in contributors
            if is_number(lookup.get((u, c)))
        ),
        key=lambda t: t[2],
        default=None,
    )
    alt = (
        f"Heatmap of {len(users)} schools' students using resources contributed by {len(contributors)} schools; "
        f"{hidden} cells suppressed"
        + (
            f"; largest flow: {busiest[0]} students using {busiest[1]}'s resources, {busiest[2]:.0f}."
            if busiest
            else "."
        )
    )
    return heatmap(
        z,
        text,
        contributors,
        users,
        "Cross-school sharing: students of a school (rows) using resources contributed by a school (columns)",
        "sharing-network",
        alt,
        "contributing school",
        "students' school",
    )


def reach_subgroup_figure(reach: pl.DataFrame) -> Figure:
    fig = go.Figure(go.Bar(x=[], y=[], marker_color=BLUE, text=[], textposition="outside"))
    fig.update_layout(
        xaxis_title="subgroup", yaxis_title="reach (% of enrolled)", yaxis_range=[0, 105], height=360
    )
    return to_figure(
        fig,
        "Share of enrolled students reached, by subgroup, for the selected school; suppressed groups are labelled.",
        "reach-subgroups",
        "Reach by subgroup — all schools",
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
            "reach": "suppressed"
            if r["status"] in HIDDEN
            else (r["note"] or "banded")
            if r["status"] == "banded"
            else f"{r['value']:.1f}%",
            "hidden": r["status"] in HIDDEN,
        }
        for r in rows.iter_rows(named=True)
        if r["subgroup_value"] != "all"
    ]


def embedded_data(manifest: dict, tables: dict[str, pl.DataFrame], forest_schools: list[str]) -> dict:
    """Everything the filters need, aggregated and disclosure-controlled: no row with 0 < n < k."""
    k = min_cell_size(manifest)
    weekly, usage, reach = tables.get("usage_by_week"), tables.get("usage_by_resource"), tables.get("reach")
    weeks = sorted(weekly["week"].unique().to_list()) if weekly is not None else []
    return {
        "k": k,
        "weekly": embeddable_rows(weekly, ["active_users", "minutes_per_active_user"], k)
        if weekly is not None
        else [],
        "resources": embeddable_rows(usage, ["users"], k) if usage is not None else [],
        "reach": embeddable_rows(reach, ["users", "reach_pct"], k) if reach is not None else [],
        "termOfWeek": {w: term_of(w) for w in weeks},
        "forestSchools": forest_schools,
    }


def filter_options(tables: dict[str, pl.DataFrame]) -> dict:
    schools = set()
    for name in ("reach", "usage_by_resource", "usage_by_week"):
        if name in tables:
            schools |= set(tables[name]["school_id"].unique().to_list())
    usage = tables.get("usage_by_resource")
    weekly = tables.get("usage_by_week")
    terms = (
        sorted({term_of(w) for w in weekly["week"].unique()}, key=term_order) if weekly is not None else []
    )
    return {
        "schools": sorted(schools - {ALL}),
        "resources": sorted(set(usage["resource_id"].unique().to_list()) - {"all"})
        if usage is not None
        else [],
        "terms": [{"id": t, "label": term_label(t)} for t in terms],
    }


def forest_schools(tables: dict[str, pl.DataFrame]) -> list[str]:
    """The schools drawn as points in the users-vs-non-users forest plot, in trace order."""
    by_key = measures_by_key(tables.get("impact_by_school"), ["school_id", "comparison"])
    return sorted(
        s
        for (s, c), rows in by_key.items()
        if c == "users_vs_nonusers" and s != ALL and is_number(rows.get("g"))
    )


def render(env: Environment, manifest: dict, tables: dict[str, pl.DataFrame]) -> str:
    if not manifest:
        return env.get_template("funder_dashboard.html.j2").render(
            title="Shared learning resources — funder dashboard", subtitle="", manifest=manifest
        )
    weekly, usage = tables.get("usage_by_week"), tables.get("usage_by_resource")
    trends = []
    if weekly is not None:
        trends = [
            weekly_figure(
                weekly,
                "active_users",
                "Active students per week — all schools",
                "active students",
                "trend-active",
            ),
            weekly_figure(
                weekly,
                "minutes_per_active_user",
                "Minutes per active student per week — all schools",
                "minutes",
                "trend-minutes",
            ),
        ]
    forests = forest_plots(tables)
    subgroup_figure, _ = subgroups(tables)
    reach = tables.get("reach")
    return env.get_template("funder_dashboard.html.j2").render(
        title="Shared learning resources — funder dashboard",
        subtitle=f"Aggregates only; groups of fewer than {min_cell_size(manifest)} students are never shown. "
        f"Release {manifest.get('release', '')[:12]}.",
        manifest=manifest,
        tiles=tiles(tables),
        options=filter_options(tables),
        trends=trends,
        resource_figure=resource_figure(usage) if usage is not None else None,
        sharing_figure=sharing_figure(tables["cross_school_use"]) if "cross_school_use" in tables else None,
        reach_figure=reach_subgroup_figure(reach) if reach is not None else None,
        subgroups=subgroup_rows(reach) if reach is not None else [],
        subgroup_figure=subgroup_figure,
        forest=forests[0] if forests else None,
        data_json=json.dumps(
            embedded_data(manifest, tables, forest_schools(tables)), separators=(",", ":")
        ).replace("<", "\\u003c"),  # never close the <script> early
        colors={"blue": BLUE, "vermilion": VERMILION, "grey": GREY},
    )
