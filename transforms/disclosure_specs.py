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
        count_measure="students", extra_counts=("users",), percentages={"reach_pct": "users"},
    ),
    "usage_by_resource": TableSpec(
        "usage_by_resource", ("school_id", "resource_id"), totals={"school_id": ALL_SCHOOLS},
        count_measure="users", sum_measures=("minutes_total",),
    ),
    "usage_by_week": TableSpec(
        "usage_by_week", ("school_id", "week"), totals={"school_id": ALL_SCHOOLS},
        count_measure="active_users", sum_measures=("minutes_total",),
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
}  # fmt: skip
# Disclosure control links equal (measure, dims) cells across tables as one number; tables whose
# counts mean something else under the same name get their own names.
MEASURE_RENAMES = {
    "baseline_equivalence": {"n_treated": "n_treated_pretested", "n_comparison": "n_comparison_pretested"},
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
            return TableSpec(name, dims_of(frame), count_measure=treated, extra_counts=(comparison,))
    if "n_students" in measures:
        return TableSpec(name, dims_of(frame), count_measure="n_students")
    raise ValueError(f"table {name!r} has no declared disclosure spec and no count measure")


def with_count_n(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """A count cell's n is its own value (the arm's students), whatever the producer put in n."""
    is_count = pl.col("measure").is_in(list(spec.count_measures)) & pl.col("value").is_not_null()
    return frame.with_columns(
        pl.when(is_count).then(pl.col("value").round(0).cast(pl.Int64)).otherwise(pl.col("n")).alias("n")
    )


def table_specs(tables: dict[str, pl.DataFrame]) -> list[TableSpec]:
    return [spec_for(name, frame) for name, frame in sorted(tables.items())]


def prepared(tables: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], list[TableSpec]]:
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
