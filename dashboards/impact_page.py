"""The evaluator's impact report: sample flow, baseline equivalence, impact, forest plots, dosage,
subgroups, evidence, methods and what was suppressed — every number from published/ tables."""

from __future__ import annotations

import re

import polars as pl
from jinja2 import Environment

from dashboards.data import (
    ALL,
    fmt_ci,
    fmt_count,
    fmt_num,
    fmt_p,
    fmt_pct,
    hidden_text,
    is_number,
    measures_by_key,
    min_cell_size,
    value_of,
)
from dashboards.figures import Estimate, Figure, dose_chart, effects_chart, forest_plot
from transforms.metrics import DEFAULT_BAND_THRESHOLDS

COMPARISONS = {
    "users_vs_nonusers": "Users vs non-users",
    "low_vs_none": "Low use vs non-users",
    "medium_vs_none": "Medium use vs non-users",
    "high_vs_none": "High use vs non-users",
}
MODELS = {
    "reml": "Random effects (REML)",
    "dl": "Random effects (DerSimonian–Laird)",
    "fixed": "Fixed effect",
}
BANDS = ("low", "medium", "high")
SUBGROUP_NAMES = {
    "frl": "Free/reduced-price lunch",
    "ell": "English learner",
    "disability": "Disability",
    "grade": "Grade",
    "sex": "Sex",
}
WWC_WORDS = {
    "satisfied": "satisfied (|g| ≤ 0.05)",
    "requires_statistical_adjustment": "requires statistical adjustment (0.05 < |g| ≤ 0.25; the model adjusts)",
    "not_satisfied": "not satisfied (|g| > 0.25)",
}
TABLE_TITLES = {
    "reach": "Reach",
    "usage_by_resource": "Usage by resource",
    "usage_by_week": "Usage by week",
    "cross_school_use": "Cross-school use",
    "sample_flow": "Sample flow",
    "gains_by_band": "Gains by usage band",
    "impact_by_school": "Impact by school",
    "pooled_effects": "Pooled effects",
    "baseline_equivalence": "Baseline equivalence",
    "dosage_response": "Dosage–response",
    "subgroup_effects": "Subgroup effects",
    "attrition": "Attrition",
    "evidence_summary": "Evidence summary",
}
MEASURE_WORDS = {
    "students": "students",
    "users": "students using shared resources",
    "reach_pct": "share reached (%)",
    "attrited": "students without a post-test",
    "n_treated": "treated students",
    "n_comparison": "comparison students",
    "n_treated_pretested": "treated students with a pre-test",
    "n_comparison_pretested": "comparison students with a pre-test",
    "students_tested": "students with both tests",
    "minutes_total": "total minutes",
    "minutes_per_user": "minutes per student",
    "active_users": "active students",
}


def shown(row: dict | None, fmt) -> str:
    """A cell's text: the formatted number, or why there is none ("suppressed", "not estimable")."""
    return fmt(row["value"]) if is_number(row) else hidden_text(row)


def cell(row: dict | None, fmt) -> dict:
    text = shown(row, fmt)
    return {"text": text, "hidden": not is_number(row)}


def g_with_ci(rows: dict[str, dict]) -> dict:
    g = rows.get("g")
    if not is_number(g):
        return cell(g, fmt_num)
    return {
        "text": f"{fmt_num(g['value'])} {fmt_ci(value_of(rows, 'ci_low'), value_of(rows, 'ci_high'))}",
        "hidden": False,
    }


def arm_total(rows: dict[str, dict], treated: str = "n_treated", comparison: str = "n_comparison") -> dict:
    """Students in both arms, only when both arm counts are published (a sum with one hidden arm
    would let a reader subtract the other)."""
    a, b = rows.get(treated), rows.get(comparison)
    if is_number(a) and is_number(b):
        return {"text": fmt_count(a["value"] + b["value"]), "hidden": False}
    return {"text": "suppressed" if not (is_number(a) and is_number(b)) else "—", "hidden": True}


# --- sample flow -------------------------------------------------------------------------------


def sample_flow(tables: dict[str, pl.DataFrame]) -> dict | None:
    """Enrolled → with a pre-test → with both tests, from the additive test-status cells.

    A sum or rate is shown only when every cell it adds is published (a sum over a hidden cell
    would let a reader subtract the others)."""
    table = tables.get("sample_flow")
    if table is None:
        return None
    by_cell = measures_by_key(table, ["school_id", "tests"])
    schools = sorted({k[0] for k in by_cell if k[0] != ALL})

    def enrolled(school: str, tests: str) -> dict | None:
        return by_cell.get((school, tests), {}).get("enrolled")

    def total(rows: list[dict | None]) -> dict:
        if all(is_number(r) for r in rows):
            return {"text": fmt_count(sum(r["value"] for r in rows)), "hidden": False}
        return {"text": "suppressed", "hidden": True}

    def line(school: str) -> dict:
        both, pre_only = enrolled(school, "pre_and_post"), enrolled(school, "pre_only")
        rate = (
            {"text": fmt_pct(100 * pre_only["value"] / (both["value"] + pre_only["value"])), "hidden": False}
            if is_number(both) and is_number(pre_only) and (both["value"] + pre_only["value"])
            else {"text": "suppressed", "hidden": True}
        )
        return {
            "school": "All schools" if school == ALL else school,
            "enrolled": cell(enrolled(school, "all"), fmt_count),
            "with_pre": total([both, pre_only]),
            "with_post": cell(both, fmt_count),
            "attrited": cell(pre_only, fmt_count),
            "attrition": rate,
        }

    return {"schools": len(schools), "total": line(ALL), "rows": [line(s) for s in schools]}


def attrition(tables: dict[str, pl.DataFrame]) -> list[dict]:
    table = tables.get("attrition")
    if table is None:
        return []
    by_group = measures_by_key(table, ["group"])  # "all" sits in both partitions with equal values
    by_group |= measures_by_key(tables.get("attrition_differential"), ["comparison"])
    order = ["all", "users", "non_users", *(f"band_{b}" for b in ("none", *BANDS)), *COMPARISONS]
    names = {"all": "All students", "users": "Users", "non_users": "Non-users"} | {
        f"band_{b}": f"Usage band: {b}" for b in ("none", *BANDS)
    }
    out = []
    for group in [g for g in order if (g,) in by_group]:
        rows = by_group[(group,)]
        comparison = group in COMPARISONS
        out.append(
            {
                "group": COMPARISONS.get(group) or names.get(group, group),
                "n": cell(rows.get("n_students_both_arms" if comparison else "n_students"), fmt_count),
                "rate": cell(rows.get("overall_pct" if comparison else "attrition_pct"), fmt_pct),
                "differential": cell(rows.get("differential_pp"), lambda v: f"{v:.1f} pp")
                if comparison
                else {"text": "", "hidden": False},
            }
        )
    return out


# --- baseline, impact, pooling ---------------------------------------------------------------


def wwc_category(row: dict | None) -> dict:
    if not is_number(row):
        return cell(row, fmt_num)
    match = re.search(r"WWC: (\w+)", row.get("note") or "")
    key = match.group(1) if match else ""
    return {
        "text": WWC_WORDS.get(key, key.replace("_", " ") or "—"),
        "hidden": False,
        "ok": key != "not_satisfied",
    }


def baseline(tables: dict[str, pl.DataFrame]) -> dict[str, list[dict]]:
    """{school: rows per comparison}; ALL (the consortium's fixed-effect mean) first."""
    table = tables.get("baseline_equivalence")
    by_key = measures_by_key(table, ["school_id", "comparison"])
    schools = sorted({k[0] for k in by_key}, key=lambda s: (s != ALL, s))
    out: dict[str, list[dict]] = {}
    for school in schools:
        out[school] = [
            {
                "comparison": label,
                "n_treated": cell(rows.get("n_treated_pretested"), fmt_count),
                "n_comparison": cell(rows.get("n_comparison_pretested"), fmt_count),
                "g_pre": cell(rows.get("g_pre"), fmt_num),
                "category": wwc_category(rows.get("g_pre")),
            }
            for comparison, label in COMPARISONS.items()
            if (rows := by_key.get((school, comparison)))
        ]
    return out


def schools_estimated(by_key: dict[tuple, dict], comparison: str) -> int:
    return sum(
        1 for (s, c), rows in by_key.items() if c == comparison and s != ALL and is_number(rows.get("g"))
    )


def impact_rows(tables: dict[str, pl.DataFrame], school: str = ALL, by_key: dict | None = None) -> list[dict]:
    """The headline impact table: the student-level school fixed-effects model (ALL) or one school.
    `by_key`: impact_by_school already indexed (a page of 1,000 schools indexes it once, not 1,000 times)."""
    if by_key is None:
        by_key = measures_by_key(tables.get("impact_by_school"), ["school_id", "comparison"])
    out = []
    for comparison, label in COMPARISONS.items():
        rows = by_key.get((school, comparison))
        if not rows:
            continue
        out.append(
            {
                "comparison": label,
                "adj_treated": cell(rows.get("adj_mean_treated"), fmt_num),
                "comparison_mean": cell(rows.get("mean_comparison"), fmt_num),
                "difference": cell(rows.get("difference"), fmt_num),
                "g": g_with_ci(rows),
                "p": cell(rows.get("p"), fmt_p),
                "index": cell(rows.get("improvement_index"), lambda v: f"{v:+.1f}"),
                "n_treated": cell(rows.get("n_treated"), fmt_count),
                "n_comparison": cell(rows.get("n_comparison"), fmt_count),
                "students": arm_total(rows),
                "schools": {"text": str(schools_estimated(by_key, comparison)), "hidden": False}
                if school == ALL
                else {"text": "1", "hidden": False},
            }
        )
    return out


def pooled_rows(tables: dict[str, pl.DataFrame]) -> list[dict]:
    by_key = measures_by_key(tables.get("pooled_effects"), ["comparison", "model"])
    out = []
    for comparison, label in COMPARISONS.items():
        models = [m for m in MODELS if (comparison, m) in by_key]
        for model in models:
            rows, model_label = by_key[(comparison, model)], MODELS[model]
            low, high = rows.get("pi_low"), rows.get("pi_high")
            out.append(
                {
                    "comparison": label,
                    "model": model_label,
                    "headline": model == "reml",
                    "first": model == models[0],
                    "span": len(models),
                    "g": g_with_ci(rows),
                    "p": cell(rows.get("p"), fmt_p),
                    "tau2": cell(rows.get("tau2"), lambda v: fmt_num(v, 3)),
                    "i2": cell(rows.get("i2"), lambda v: fmt_pct(100 * v, 0)),
                    "q": cell(rows.get("q"), fmt_num),
                    "q_p": cell(rows.get("q_p"), fmt_p),
                    "pi": {"text": fmt_ci(low["value"], high["value"]), "hidden": False}
                    if is_number(low) and is_number(high)
                    else cell(low, fmt_num),
                    "k": cell(rows.get("k_schools"), fmt_count),
                    "students": arm_total(rows),
                }
            )
    return out


def heterogeneity_words(rows: dict[str, dict]) -> str:
    tau2, i2, q, q_p = (value_of(rows, m) for m in ("tau2", "i2", "q", "q_p"))
    if tau2 is None or i2 is None:
        return "Heterogeneity: suppressed or not estimable."
    text = f"Heterogeneity (REML): τ² = {fmt_num(tau2, 3)}, I² = {fmt_pct(100 * i2, 0)}"
    if q is not None and q_p is not None:
        text += f", Q = {fmt_num(q)} (p {fmt_p(q_p) if q_p < 0.001 else '= ' + fmt_p(q_p)})"
    low, high = value_of(rows, "pi_low"), value_of(rows, "pi_high")
    text += (
        f"; 95% prediction interval {fmt_ci(low, high)}."
        if low is not None
        else "; no prediction interval (fewer than 3 schools or hidden)."
    )
    return text


def school_estimate(school: str, rows: dict[str, dict]) -> Estimate:
    g = rows.get("g")
    if not is_number(g):
        return Estimate(school, None, hidden=hidden_text(g))
    se = value_of(rows, "se")
    return Estimate(
        school,
        g["value"],
        value_of(rows, "ci_low"),
        value_of(rows, "ci_high"),
        weight=1 / se**2 if se else None,
    )


def forest_plots(tables: dict[str, pl.DataFrame]) -> list[Figure]:
    by_school = measures_by_key(tables.get("impact_by_school"), ["school_id", "comparison"])
    pooled = measures_by_key(tables.get("pooled_effects"), ["comparison", "model"])
    figures = []
    for index, (comparison, label) in enumerate(COMPARISONS.items()):
        schools = sorted(s for s, c in by_school if c == comparison and s != ALL)
        if not schools:
            continue
        estimates = [school_estimate(s, by_school[(s, comparison)]) for s in schools]
        reml = pooled.get((comparison, "reml"), {})
        pooled_estimate = school_estimate("Pooled (REML)", reml) if reml else None
        low, high = value_of(reml, "pi_low"), value_of(reml, "pi_high")
        figures.append(
            forest_plot(
                estimates,
                pooled_estimate,
                (low, high) if low is not None and high is not None else None,
                f"{label}: effect by school and pooled",
                f"forest-{index}",
                heterogeneity_words(reml),
            )
        )
    return figures


# --- dosage, subgroups, evidence --------------------------------------------------------------


def dosage(tables: dict[str, pl.DataFrame]) -> tuple[Figure | None, list[dict]]:
    by_band = measures_by_key(tables.get("dosage_response"), ["band"])
    bands = [b for b in BANDS if (b,) in by_band]
    if not bands:
        return None, []
    estimates = [school_estimate(f"{b} use", by_band[(b,)]) for b in bands]
    figure = dose_chart(
        estimates,
        "Dosage–response: effect of each usage band vs non-users (REML pooled, 95% CI)",
        "dosage-response",
    )
    rows = [
        {
            "band": b,
            "g": g_with_ci(by_band[(b,)]),
            "p": cell(by_band[(b,)].get("p"), fmt_p),
            "tau2": cell(by_band[(b,)].get("tau2"), lambda v: fmt_num(v, 3)),
            "k": cell(by_band[(b,)].get("k_schools"), fmt_count),
            "students": arm_total(by_band[(b,)]),
        }
        for b in bands
    ]
    return figure, rows


def subgroup_label(subgroup: str, value: str) -> str:
    words = {"true": "yes", "false": "no"}
    return f"{SUBGROUP_NAMES.get(subgroup, subgroup)}: {words.get(value, value)}"


def subgroups(tables: dict[str, pl.DataFrame]) -> tuple[Figure | None, list[dict]]:
    by_key = measures_by_key(tables.get("subgroup_effects"), ["subgroup", "subgroup_value"])
    keys = sorted(by_key, key=lambda k: (k[0], k[1].zfill(3)))
    if not keys:
        return None, []
    estimates = [school_estimate(subgroup_label(*k), by_key[k]) for k in keys]
    figure = effects_chart(
        estimates,
        "Users vs non-users within subgroups (REML pooled, 95% CI; exploratory)",
        "subgroup-effects",
        "Hedges' g (95% CI)",
    )
    rows = [
        {
            "subgroup": subgroup_label(*k),
            "g": g_with_ci(by_key[k]),
            "p": cell(by_key[k].get("p"), fmt_p),
            "p_bh": cell(by_key[k].get("p_bh"), fmt_p),
            "k": cell(by_key[k].get("k_schools"), fmt_count),
            "students": arm_total(by_key[k]),
        }
        for k in keys
    ]
    return figure, rows


def evidence(tables: dict[str, pl.DataFrame]) -> list[dict]:
    by_key = measures_by_key(tables.get("evidence_summary"), ["comparison"])
    out = []
    for comparison, label in COMPARISONS.items():
        rows = by_key.get((comparison,))
        if not rows:
            continue
        tier = rows.get("essa_tier")
        hidden = not is_number(tier)
        out.append(
            {
                "comparison": label,
                "tier": hidden_text(tier)
                if hidden
                else {3: "Tier III", 2: "Tier II"}.get(int(tier["value"]), "No tier"),
                "sentence": "Suppressed: a count behind this comparison is below the minimum cell size."
                if hidden
                else tier.get("note") or "",
                "hidden": hidden,
                "headline": comparison == "users_vs_nonusers",
            }
        )
    return out


# --- methods and suppression -------------------------------------------------------------------

REASON = re.compile(r"^(?P<table>[^:]+): (?P<dims>.*) · (?P<measure>\S+) — (?P<why>.+)$")


def reason_in_words(reason: str) -> dict:
    """ "reach: school_id=sch01, subgroup=sex · users — why" → readable parts for a list."""
    match = REASON.match(reason)
    if not match:
        return {"table": "", "where": reason, "what": "", "why": ""}
    dims = [d.split("=", 1) for d in match["dims"].split(", ") if "=" in d]
    where = ", ".join(
        f"{'school' if k in ('school_id', 'user_school') else k.replace('_', ' ')} {v}"
        for k, v in dims
        if v not in ("all", ALL)
    )
    return {
        "table": TABLE_TITLES.get(match["table"], match["table"]),
        "where": where or "all students",
        "what": MEASURE_WORDS.get(match["measure"], match["measure"].replace("_", " ")),
        "why": match["why"],
    }


def suppressed_list(manifest: dict) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for reason in manifest.get("disclosure_control", {}).get("reasons", []):
        words = reason_in_words(reason)
        grouped.setdefault(words["table"], []).append(words)
    return grouped


def not_estimable_list(tables: dict[str, pl.DataFrame]) -> list[dict]:
    """Estimates the models could not make, with the statistical reason (not disclosure control)."""
    out = []
    for name in (
        "impact_by_school",
        "pooled_effects",
        "baseline_equivalence",
        "dosage_response",
        "subgroup_effects",
    ):
        table = tables.get(name)
        if table is None:
            continue
        rows = table.filter(pl.col("status") == "not_estimable")
        dims = [c for c in table.columns if c not in ("measure", "value", "n", "status", "note")]
        seen = set()
        for row in rows.iter_rows(named=True):
            key = (*(row[d] for d in dims), row["note"])
            if key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "table": TABLE_TITLES.get(name, name),
                    "where": ", ".join(str(COMPARISONS.get(row[d], row[d])) for d in dims),
                    "why": row["note"],
                }
            )
    return out


def tables_used(manifest: dict) -> list[dict]:
    return [
        {
            "name": TABLE_TITLES.get(name, name),
            "file": entry.get("csv", ""),
            "purpose": entry.get("purpose", ""),
            "rows": entry.get("rows", 0),
            "schools": ", ".join(sorted({c["school_id"] for c in entry.get("contracts", [])})),
            "contracts": ", ".join(f"{c['contract_id']} v{c['version']}" for c in entry.get("contracts", [])),
            "statuses": ", ".join(f"{k} {v}" for k, v in sorted(entry.get("status_counts", {}).items())),
        }
        for name, entry in sorted(manifest.get("tables", {}).items())
    ]


def context(manifest: dict, tables: dict[str, pl.DataFrame]) -> dict:
    dose_figure, dose_rows = dosage(tables)
    subgroup_figure, subgroup_rows = subgroups(tables)
    control = manifest.get("disclosure_control", {})
    baselines = baseline(tables)
    impact_index = measures_by_key(tables.get("impact_by_school"), ["school_id", "comparison"])
    return {
        "flow": sample_flow(tables),
        "attrition": attrition(tables),
        "baseline_all": baselines.pop(ALL, []),
        "baseline_schools": baselines,
        "impact": impact_rows(tables, ALL, impact_index),
        "impact_schools": {
            s: impact_rows(tables, s, impact_index) for s in sorted({k[0] for k in impact_index}) if s != ALL
        },
        "pooled": pooled_rows(tables),
        "forests": forest_plots(tables),
        "dose_figure": dose_figure,
        "dose_rows": dose_rows,
        "subgroup_figure": subgroup_figure,
        "subgroup_rows": subgroup_rows,
        "evidence": evidence(tables),
        "control": control,
        "k": min_cell_size(manifest),
        "suppressed": suppressed_list(manifest),
        "not_estimable": not_estimable_list(tables),
        "tables_used": tables_used(manifest),
        # The release is built with the default bands (transforms.release.build_tables).
        "band_thresholds": DEFAULT_BAND_THRESHOLDS,
    }


def render(env: Environment, manifest: dict, tables: dict[str, pl.DataFrame]) -> str:
    return env.get_template("impact_report.html.j2").render(
        title="Impact report — shared learning resources",
        subtitle=f"Release {manifest.get('release', '')[:12]} · built from published aggregates only",
        manifest=manifest,
        **(context(manifest, tables) if manifest else {}),
    )
