"""How each published table adds up, so disclosure control can protect them all together."""

from __future__ import annotations

import polars as pl

from privacy.suppression import TableSpec
from transforms.metrics import ALL_SCHOOLS, ALL_VALUES

ARM_COUNTS = ("n_treated", "n_comparison")

# Distinct-student counts add up over schools (a student belongs to one school) and over
# exclusive categories (usage bands, a subgroup's values), but NOT over resources or weeks (one
# student uses many): only the former are declared as totals.
KNOWN_SPECS = {
    "reach": TableSpec(
        "reach", ("school_id", "subgroup", "subgroup_value"),
        totals={"school_id": ALL_SCHOOLS, "subgroup_value": ALL_VALUES}, nested={"subgroup_value": "subgroup"},
        count_measure="students", extra_counts=("users", "non_users"), percentages={"reach_pct": "users"},
        row_sums={"students": ("users", "non_users")},
    ),
    "usage_by_resource": TableSpec(
        "usage_by_resource", ("school_id", "resource_id"), totals={"school_id": ALL_SCHOOLS},
        count_measure="users", sum_measures=("minutes_total",),
    ),
    "usage_by_week": TableSpec(
        "usage_by_week", ("school_id", "week"), totals={"school_id": ALL_SCHOOLS},
        count_measure="active_users", sum_measures=("minutes_total",),
    ),
    # Distinct responding teachers add up over schools like students do; the mean follows its count.
    "teacher_time_saved": TableSpec(
        "teacher_time_saved", ("school_id",), totals={"school_id": ALL_SCHOOLS}, count_measure="teachers",
    ),
    "cross_school_use": TableSpec(
        "cross_school_use", ("user_school", "contributing_school"), totals={"user_school": ALL_SCHOOLS},
        count_measure="users", sum_measures=("minutes_total",),
    ),
    "sample_flow": TableSpec(
        "sample_flow", ("school_id", "tests"), totals={"school_id": ALL_SCHOOLS, "tests": ALL_VALUES},
        count_measure="enrolled",
    ),
    "gains_by_band": TableSpec(
        "gains_by_band", ("school_id", "band"), totals={"school_id": ALL_SCHOOLS, "band": ALL_VALUES},
        count_measure="students_tested",
    ),
    # Users + non-users = all, and the four bands = all: each partition is a margin; the attrited
    # count is a cell of its own so a small one cannot be read off a published rate.
    "attrition": TableSpec(
        "attrition", ("partition", "group"), totals={"group": ALL_VALUES}, nested={"group": "partition"},
        count_measure="n_students", extra_counts=("n_attrited",),
        percentages={"attrition_pct": "n_attrited"},
    ),
    "attrition_differential": TableSpec(
        "attrition_differential", ("comparison",), count_measure="n_students_both_arms",
    ),
}  # fmt: skip
# Tables that disclosure control splits or reshapes, and the table they came from.
DERIVED_FROM = {"attrition_differential": "attrition"}
ATTRITION_PARTITIONS = {"users": "usage", "non_users": "usage"}
DIFFERENTIAL_ARMS = {"users_vs_nonusers": ("usage", "users", "non_users")} | {
    f"{band}_vs_none": ("band", f"band_{band}", "band_none") for band in ("low", "medium", "high")
}
# Disclosure control links equal (measure, dims) cells across tables as one number; tables whose
# counts mean something else under the same name get their own names.
MEASURE_RENAMES = {
    "baseline_equivalence": {"n_treated": "n_treated_pretested", "n_comparison": "n_comparison_pretested"},
    # the pooled model's arm counts: same name and comparison as impact_by_school's ALL row, which
    # need not be the same students (a school left out of pooling still counts there)
    "evidence_summary": {"n_treated": "n_treated_pooled", "n_comparison": "n_comparison_pooled"},
}


def dims_of(frame: pl.DataFrame) -> tuple[str, ...]:
    return tuple(c for c in frame.columns if c not in ("measure", "value", "n", "status", "note"))


def spec_for(name: str, frame: pl.DataFrame) -> TableSpec:
    """Known tables by name; the impact tables by their arm counts (each arm is a count cell)."""
    known = KNOWN_SPECS.get(name)
    if known is not None:
        return known
    measures = set(frame["measure"].unique().to_list())
    for treated, comparison in (ARM_COUNTS, *(tuple(r.values()) for r in MEASURE_RENAMES.values())):
        if {treated, comparison} <= measures:
            dims = dims_of(frame)
            totals, nested = {}, {}
            if "school_id" in dims and school_counts_add_up(frame, [treated, comparison]):
                totals = {"school_id": ALL_SCHOOLS}  # ALL − the other schools must not give one back
            if dims == ("subgroup", "subgroup_value"):
                totals, nested = {"subgroup_value": ALL_VALUES}, {"subgroup_value": "subgroup"}
            margins = {}
            if "school_id" in totals and "comparison" in dims and bands_complete(frame, treated):
                # users = low + medium + high in the treated arm: a small band is not users − the rest
                totals = {**totals, "comparison": USERS_COMPARISON}
                margins = {"comparison": (treated,)}
            return TableSpec(
                name, dims, totals=totals, nested=nested, count_measure=treated,
                extra_counts=(comparison,), margin_measures=margins,
            )  # fmt: skip
    if "n_students" in measures:
        return TableSpec(name, dims_of(frame), count_measure="n_students")
    raise ValueError(f"table {name!r} has no declared disclosure spec and no count measure")


USERS_COMPARISON = "users_vs_nonusers"
BAND_COMPARISONS = ("low_vs_none", "medium_vs_none", "high_vs_none")


def bands_complete(frame: pl.DataFrame, treated: str) -> bool:
    """Every row group has a treated count for users and for each band: the structure alone
    decides, so the release and the audit of the published files declare the same margin."""
    others = [d for d in dims_of(frame) if d != "comparison"]
    rows = frame.filter(pl.col("measure") == treated)
    if rows.height == 0:
        return False
    present = rows.group_by(others or pl.lit(1)).agg(pl.col("comparison").unique().alias("have"))
    wanted = {USERS_COMPARISON, *BAND_COMPARISONS}
    return all(wanted <= set(have) for have in present["have"].to_list())


def school_counts_add_up(frame: pl.DataFrame, counts: list[str]) -> bool:
    """Do the schools' arm counts add up to the ALL row (for every group where all are visible)?

    They do when every school is estimable; when a school is left out of the pooled model they do
    not, and declaring a margin that does not hold would be false (and refused by protect)."""
    others = [d for d in dims_of(frame) if d != "school_id"]
    rows = frame.filter(pl.col("measure").is_in(counts))
    is_all = pl.col("school_id") == ALL_SCHOOLS
    totals = rows.filter(is_all).select(*others, "measure", pl.col("value").alias("total"))
    parts = (
        rows.filter(~is_all)
        .group_by(*others, "measure")
        .agg(pl.col("value").sum().alias("parts"), pl.col("value").is_null().any().alias("hidden"))
    )
    joined = totals.join(parts, on=[*others, "measure"], how="inner").filter(
        ~pl.col("hidden") & pl.col("total").is_not_null()
    )
    # no fully visible group (the published view of a heavily suppressed table): nothing contradicts
    return bool(((joined["total"] - joined["parts"]).abs() < 1e-6).all()) if joined.height else True


def align_school_totals(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Make each ALL row's arm counts the sum of the schools' (where every school's is known).

    A comparison the pooled model cannot estimate reports 0 students at ALL; the true count is
    the schools' sum, and publishing that keeps the margin exact in both the true and the
    published view, so disclosure control and its audit see the same relations."""
    out = dict(tables)
    for name, frame in tables.items():
        dims = dims_of(frame)
        if "school_id" not in dims or not set(ARM_COUNTS) <= set(frame["measure"].unique().to_list()):
            continue
        others = [d for d in dims if d != "school_id"]
        is_all = pl.col("school_id") == ALL_SCHOOLS
        parts = (
            frame.filter(~is_all & pl.col("measure").is_in(ARM_COUNTS))
            .group_by(*others, "measure")
            .agg(pl.col("value").sum().alias("parts"), pl.col("value").is_null().any().alias("unknown"))
        )
        joined = frame.join(parts, on=[*others, "measure"], how="left")
        fix = (
            is_all & pl.col("measure").is_in(ARM_COUNTS) & pl.col("parts").is_not_null() & ~pl.col("unknown")
        )
        out[name] = joined.with_columns(
            pl.when(fix).then(pl.col("parts")).otherwise(pl.col("value")).alias("value")
        ).select(frame.columns)
    return out


def with_subgroup_margins(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Give subgroup_effects its margins: an `all` row per subgroup (the pooled arm counts) and an
    `unknown` row for students whose subgroup value k-anonymity suppressed, so that
    all = Σ values holds and disclosure control protects it (else all − the rest reveals a cell)."""
    subgroups, pooled = tables.get("subgroup_effects"), tables.get("pooled_effects")
    if subgroups is None or pooled is None or (subgroups["subgroup_value"] == ALL_VALUES).any():
        return tables
    arms = pooled.filter(
        (pl.col("comparison") == "users_vs_nonusers")
        & (pl.col("model") == "reml")
        & pl.col("measure").is_in(ARM_COUNTS)
    ).select("measure", pl.col("value").alias("total"))
    counts = subgroups.filter(pl.col("measure").is_in(ARM_COUNTS))
    extra = []
    for subgroup in sorted(counts["subgroup"].unique().to_list()):
        known = (
            counts.filter(pl.col("subgroup") == subgroup)
            .group_by("measure")
            .agg(pl.col("value").sum().alias("known"))
        )
        for row in arms.join(known, on="measure").iter_rows(named=True):
            extra.append(
                (subgroup, ALL_VALUES, row["measure"], row["total"], "all students of this comparison")
            )
            if row["total"] - row["known"] > 0:
                unknown = row["total"] - row["known"]
                extra.append(
                    (subgroup, "unknown", row["measure"], unknown, "value suppressed for k-anonymity")
                )
    if not extra:
        return tables
    added = pl.DataFrame(
        extra, schema=["subgroup", "subgroup_value", "measure", "value", "note"], orient="row"
    )
    added = added.with_columns(pl.col("value").cast(pl.Int64).alias("n"), pl.lit("published").alias("status"))
    return {
        **tables,
        "subgroup_effects": pl.concat([subgroups, added.select(subgroups.columns)], how="vertical_relaxed"),
    }


def with_count_n(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """A count cell's n is its own value (the arm's students), whatever the producer put in n."""
    is_count = pl.col("measure").is_in(list(spec.count_measures)) & pl.col("value").is_not_null()
    return frame.with_columns(
        pl.when(is_count).then(pl.col("value").round(0).cast(pl.Int64)).otherwise(pl.col("n")).alias("n")
    )


def table_specs(tables: dict[str, pl.DataFrame]) -> list[TableSpec]:
    return [spec_for(name, frame) for name, frame in sorted(tables.items())]


def reshape_attrition(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """attrition(group) → attrition(partition, group) with explicit attrited counts, plus
    attrition_differential(comparison) for the WWC comparison rows (which add up to nothing)."""
    table = tables.get("attrition")
    if table is None or "partition" in table.columns:
        return tables
    is_comparison = pl.col("group").is_in(list(DIFFERENTIAL_ARMS))
    groups = table.filter(~is_comparison)
    rates = groups.filter(pl.col("measure") == "attrition_pct").select(
        "group", (pl.col("value") * pl.col("n") / 100).round(0).alias("attrited")
    )
    attrited = (
        groups.filter(pl.col("measure") == "n_students")
        .join(rates, on="group")
        .with_columns(
            pl.lit("n_attrited").alias("measure"),
            pl.col("attrited").alias("value"),
            pl.col("attrited").cast(pl.Int64).alias("n"),
            pl.lit("students with a pre-test and no post-test").alias("note"),
        )
        .drop("attrited")
    )
    groups = pl.concat([groups, attrited.select(groups.columns)])
    partition = (
        pl.when(pl.col("group").str.starts_with("band_"))
        .then(pl.lit("band"))
        .otherwise(pl.col("group").replace_strict(ATTRITION_PARTITIONS, default="usage"))
    )
    members = groups.filter(pl.col("group") != ALL_VALUES).with_columns(partition.alias("partition"))
    totals = pl.concat(
        [
            groups.filter(pl.col("group") == ALL_VALUES).with_columns(pl.lit(p).alias("partition"))
            for p in ("usage", "band")
        ]
    )
    reshaped = pl.concat([members, totals]).select(
        "partition", "group", "measure", "value", "n", "status", "note"
    )
    differential = (
        table.filter(is_comparison)
        .rename({"group": "comparison"})
        .with_columns(pl.col("measure").replace({"n_students": "n_students_both_arms"}))
    )
    return {
        **tables,
        "attrition": reshaped.sort("partition", "group", "measure"),
        "attrition_differential": differential,
    }


def hide_differentials_of_hidden_arms(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """A comparison's attrition (its n, overall and differential rates) is a function of its two
    arms' rows: publish it only when both arms are published exactly, so it adds nothing."""
    differential, attrition = tables.get("attrition_differential"), tables.get("attrition")
    if differential is None or attrition is None:
        return tables
    exact = {
        (r["partition"], r["group"])
        for r in attrition.group_by("partition", "group")
        .agg((pl.col("status") == "published").all().alias("ok"))
        .filter(pl.col("ok"))
        .iter_rows(named=True)
    }
    hidden = [c for c, (part, a, b) in DIFFERENTIAL_ARMS.items() if not {(part, a), (part, b)} <= exact]
    hide = pl.col("comparison").is_in(hidden) & (pl.col("status") != "not_estimable")
    differential = differential.with_columns(
        pl.when(hide).then(pl.lit("suppressed_secondary")).otherwise(pl.col("status")).alias("status"),
        pl.when(hide).then(None).otherwise(pl.col("value")).alias("value"),
        pl.when(hide).then(None).otherwise(pl.col("n")).alias("n"),
        pl.when(hide)
        .then(pl.lit("suppressed: an arm is suppressed"))
        .otherwise(pl.col("note"))
        .alias("note"),
    )
    return {**tables, "attrition_differential": differential}


def prepared(tables: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], list[TableSpec]]:
    tables = align_school_totals(with_subgroup_margins(reshape_attrition(tables)))
    tables = {
        name: frame.with_columns(pl.col("measure").replace(MEASURE_RENAMES[name]))
        if name in MEASURE_RENAMES
        else frame
        for name, frame in tables.items()
    }
    specs = table_specs(tables)
    by_name = {s.name: s for s in specs}
    return {name: with_count_n(frame, by_name[name]) for name, frame in tables.items()}, specs


REASON_WORDS = {
    "primary": "fewer students than the minimum cell size",
    "complementary": "hidden so a total cannot reveal another hidden cell",
    "secondary": "computed from a hidden count",
    "banded": "a small numerator or complement: shown as a band",
}


def public_reason(reason: str) -> str:
    """The reason in words without the small count itself (which would undo the suppression)."""
    kind = reason.split(":", 1)[0].strip()
    return REASON_WORDS.get(kind, "disclosure control")


def protection_summary(result, rules) -> dict:
    """What the manifest and reports may say about suppression: counts, rules, the audit, reasons in words."""
    cells = sorted(result.cells, key=lambda c: (c.table, sorted(c.dims.items()), c.measure))
    reasons = [
        f"{c.table}: {', '.join(f'{k}={v}' for k, v in sorted(c.dims.items()))} · {c.measure} — {public_reason(c.reason)}"
        for c in cells
    ]
    narrowest = result.audit.narrowest
    return {
        "min_cell_size": rules.min_cell_size,
        "protection_fraction": rules.protection_fraction,
        "cells_suppressed": sum(1 for c in cells if c.status != "banded"),
        "cells_banded": sum(1 for c in cells if c.status == "banded"),
        "by_reason": {k: sum(1 for c in cells if c.reason.startswith(k)) for k in REASON_WORDS},
        "audit_ok": result.audit.passed,
        "audit_cells_checked": result.audit.cells_checked,
        "audit_narrowest": None
        if narrowest is None
        else {
            "table": narrowest.table,
            "cell": narrowest.cell,
            "width": round(narrowest.width, 6),
            "required": round(narrowest.required, 6),
        },
        "audit_failures": [f"{f.table}:{f.cell}: {f.problem}" for f in result.audit.failures],
        "reasons": reasons,
    }
