"""`protect`: primary, complementary and secondary suppression of all published tables together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from privacy.suppression.attacker import hidden_components
from privacy.suppression.audit import AuditReport, audit
from privacy.suppression.cells import CellRef, CellSystem, build_cell_system, canonical_key
from privacy.suppression.complementary import CellNeeds, PatternStats, complementary_pattern
from privacy.suppression.spec import (
    BANDED,
    PUBLIC_NOTE_SECONDARY,
    PUBLIC_NOTE_SUPPRESSED,
    SUPPRESSED,
    SUPPRESSED_SECONDARY,
    DisclosureRules,
    TableSpec,
)

REQUIRED_COLUMNS = ("measure", "value", "n", "status", "note")


@dataclass(frozen=True)
class SuppressedCell:
    """One row that is not published exactly, and why (restricted: the reason may name a small count)."""

    table: str
    dims: Mapping[str, str]
    measure: str
    status: str
    reason: str


@dataclass(frozen=True)
class ProtectionResult:
    tables: dict[str, pl.DataFrame]
    cells: tuple[SuppressedCell, ...]
    audit: AuditReport
    stats: PatternStats

    @property
    def suppressed_share(self) -> float:
        """Share of all rows of all tables that are not published exactly."""
        rows = sum(frame.height for frame in self.tables.values())
        return len(self.cells) / rows if rows else 0.0


def protect(
    tables: Mapping[str, pl.DataFrame],
    specs: Sequence[TableSpec],
    rules: DisclosureRules | None = None,
    *,
    links: Sequence[tuple[CellRef, CellRef]] = (),
    contributions: Mapping[str, pl.DataFrame] | None = None,
    method: str = "auto",
) -> ProtectionResult:
    """Suppress, band and audit every published table together; the one call the pipeline makes.

    `contributions` (per table: its dims, `measure`, `contribution`, one row per contributor) switches
    on the dominance rule for sum measures when `rules.dominance_p` is set. `method`: "auto", "mip",
    "greedy" (see `complementary_pattern`).
    """
    rules = rules or DisclosureRules()
    _check_inputs(tables, specs)
    system = build_cell_system(tables, specs, links)
    reasons = additive_primaries(system, rules)
    needs = cell_needs(system, rules, reasons)
    if contributions and rules.dominance_p:
        _apply_dominance(system, specs, contributions, rules, needs, reasons)
    pattern, stats = complementary_pattern(
        system,
        needs,
        mip_max_cells=rules.mip_max_cells,
        mip_time_limit=rules.mip_time_limit,
        max_rounds=rules.max_cut_rounds,
        method=method,
        mip_max_primaries=rules.mip_max_primaries,
    )
    reasons |= complementary_reasons(system, pattern, reasons)
    protected, cells = {}, []
    for spec in specs:
        frame, table_cells = _protect_table(tables[spec.name], spec, system, pattern, reasons, rules)
        protected[spec.name] = frame
        cells.extend(table_cells)
    report = audit(protected, specs, rules, links=links, truth=tables, truth_system=system)
    return ProtectionResult(protected, tuple(cells), report, stats)


def _check_inputs(tables: Mapping[str, pl.DataFrame], specs: Sequence[TableSpec]) -> None:
    for spec in specs:
        if spec.name not in tables:
            raise ValueError(f"no table named {spec.name!r}")
        missing = [c for c in (*spec.dims, *REQUIRED_COLUMNS) if c not in tables[spec.name].columns]
        if missing:
            raise ValueError(f"table {spec.name!r} lacks columns {missing}")


def additive_primaries(system: CellSystem, rules: DisclosureRules) -> dict[int, str]:
    """Count cells with a small count, sum cells over a small number of students."""
    reasons = {}
    k = rules.min_cell_size
    for c, cell in enumerate(system.cells):
        students = cell.value if cell.is_count else cell.n
        if students is not None and rules.is_small(students):
            what = "students" if cell.is_count else "students behind the sum"
            reasons[c] = (
                f"primary: {students:g} {what} (< {k})" if students else f"primary: 0 {what} (zeros unsafe)"
            )
    return reasons


def cell_needs(system: CellSystem, rules: DisclosureRules, primaries: Mapping[int, str]) -> CellNeeds:
    """Protection levels (primary: ± max(k, fraction·value), down only to 0) and information-loss weights.

    Weight = rows showing the cell × (1 + students behind it), plus a tiny stable tie-breaker by key
    order so equal-cost patterns are resolved the same way every run.
    """
    size = len(system.cells)
    value = np.array([cell.value or 0.0 for cell in system.cells])
    upper = np.array(
        [
            rules.protection_level(v, is_count=cell.is_count)
            for v, cell in zip(value, system.cells, strict=False)
        ]
    )
    students = np.array(
        [cell.value if cell.is_count else (cell.n or 0) for cell in system.cells], dtype=float
    )
    occurrences = np.array([len(cell.rows) for cell in system.cells], dtype=float)
    weight = occurrences * (1.0 + students) + 1e-6 * np.arange(size) / max(size, 1)
    primary = np.zeros(size, dtype=bool)
    primary[list(primaries)] = True
    return CellNeeds(
        value, upper, np.minimum(upper, value), sliding_levels(system, rules, value), weight, primary
    )


def sliding_levels(system: CellSystem, rules: DisclosureRules, value: np.ndarray) -> np.ndarray:
    """Width a non-primary hidden cell's interval needs so the value-blind audit passes.

    The audit asks width ≥ max(k, f·upper) for counts (f·upper for sums); upper ≤ value + width, so
    width ≥ f·value / (1 − f) suffices for the relative part.
    """
    fraction = rules.protection_fraction
    relative = fraction * value / (1.0 - fraction)
    floor = np.array([rules.min_cell_size if cell.is_count else 0.0 for cell in system.cells], dtype=float)
    return np.maximum(relative, floor)


def complementary_reasons(
    system: CellSystem, pattern: set[int], primaries: Mapping[int, str]
) -> dict[int, str]:
    """Name a primary cell that each complementary cell shares a hidden component with."""
    reasons = {}
    for cells, _ in hidden_components(system, pattern):
        protected = [system.cells[c].label() for c in cells if c in primaries]
        target = protected[0] if protected else "another complementary cell"
        more = f" (and {len(protected) - 1} more)" if len(protected) > 1 else ""
        for c in cells:
            if c not in primaries:
                reasons[c] = f"complementary: protects {target}{more}"
    return reasons


def _apply_dominance(
    system: CellSystem,
    specs: Sequence[TableSpec],
    contributions: Mapping[str, pl.DataFrame],
    rules: DisclosureRules,
    needs: CellNeeds,
    reasons: dict[int, str],
) -> None:
    """p% rule: the sum minus its two largest contributions must exceed p% of the largest."""
    p = rules.dominance_p / 100.0
    for spec in specs:
        if spec.name not in contributions or not spec.sum_measures:
            continue
        tops = (
            contributions[spec.name]
            .filter(pl.col("measure").is_in(list(spec.sum_measures)))
            .group_by([*spec.dims, "measure"])
            .agg(
                pl.col("contribution").sum().alias("total"),
                pl.col("contribution").top_k(2).alias("top"),
            )
        )
        for row in tops.iter_rows(named=True):
            c = system.cell_of(canonical_key(spec, row["measure"], row))
            if c is None:
                continue
            largest, second = ([*sorted(row["top"], reverse=True), 0.0, 0.0])[:2]
            shortfall = p * largest - (row["total"] - largest - second)
            if shortfall > 0:
                needs.upper[c] = max(needs.upper[c], shortfall)
                needs.lower[c] = min(needs.value[c], max(needs.lower[c], shortfall))
                needs.primary[c] = True  # a sensitive sum: protect it both ways
                reasons.setdefault(
                    c, f"primary: dominance (top two contributors leave < {rules.dominance_p:g}%)"
                )


def _protect_table(
    frame: pl.DataFrame,
    spec: TableSpec,
    system: CellSystem,
    pattern: set[int],
    reasons: Mapping[int, str],
    rules: DisclosureRules,
) -> tuple[pl.DataFrame, list[SuppressedCell]]:
    """Decide each row's status, then null what is not published exactly."""
    rows = frame.select([*spec.dims, "measure", "value", "n", "status", "note"]).to_dicts()
    statuses, notes, hide_value, hide_n, cells = [], [], [], [], []
    for row in rows:
        decision = row_decision(row, spec, system, pattern, reasons, rules)
        status, note, reason = decision if decision else (row["status"], row["note"], None)
        statuses.append(status)
        notes.append(note)
        hide_value.append(reason is not None)
        hide_n.append(reason is not None and status != BANDED)
        if reason is not None:
            dims = {d: row[d] for d in spec.dims}
            cells.append(SuppressedCell(spec.name, dims, row["measure"], status, reason))
    protected = frame.with_columns(
        pl.when(pl.Series(hide_value)).then(None).otherwise(pl.col("value")).alias("value"),
        pl.when(pl.Series(hide_n)).then(None).otherwise(pl.col("n")).alias("n"),
        pl.Series("status", statuses, dtype=pl.String),
        pl.Series("note", notes, dtype=pl.String),
    )
    return protected, cells


def row_decision(
    row: Mapping[str, object],
    spec: TableSpec,
    system: CellSystem,
    pattern: set[int],
    reasons: Mapping[int, str],
    rules: DisclosureRules,
) -> tuple[str, str, str] | None:
    """(status, public note, restricted reason) for a row not published as is, else None."""
    measure = row["measure"]
    if measure in spec.additive_measures:
        c = system.cell_of(canonical_key(spec, measure, row))
        return (SUPPRESSED, PUBLIC_NOTE_SUPPRESSED, reasons[c]) if c in pattern else None
    # Every count of the row's group: an effect size is as disclosive as its smaller arm.
    depends_on = list(spec.count_measures)
    if measure in spec.percentages and spec.percentages[measure] in spec.additive_measures:
        depends_on.append(spec.percentages[measure])
    for count_measure in depends_on:
        if system.cell_of(canonical_key(spec, count_measure, row)) in pattern:
            return SUPPRESSED_SECONDARY, PUBLIC_NOTE_SECONDARY, "secondary: count suppressed"
    n = row["n"]
    if n is not None and rules.is_small(n):
        return SUPPRESSED, PUBLIC_NOTE_SUPPRESSED, f"primary: {n} students (< {rules.min_cell_size})"
    if measure in spec.percentages:
        return percentage_decision(row, spec, system, rules)
    return None


def percentage_decision(
    row: Mapping[str, object], spec: TableSpec, system: CellSystem, rules: DisclosureRules
) -> tuple[str, str, str] | None:
    """Band a percentage whose numerator or complement is a small count; suppress it if no band fits."""
    value, n = row["value"], row["n"]
    if value is None or n is None:
        return None
    numerator_cell = system.cell_of(canonical_key(spec, spec.percentages[row["measure"]], row))
    if numerator_cell is not None:
        numerator = system.cells[numerator_cell].value or 0.0
    else:
        numerator = round(value * n / spec.percent_scale)
    complement = n - numerator
    percent = 100.0 * value / spec.percent_scale
    k = rules.min_cell_size
    if rules.is_small(numerator):
        if percent < rules.band_low_edge:
            return BANDED, rules.band_low, f"banded: numerator {numerator:g} (< {k})"
        return SUPPRESSED, PUBLIC_NOTE_SUPPRESSED, f"primary: numerator {numerator:g} (< {k})"
    if rules.is_small(complement):
        if percent > rules.band_high_edge:
            return BANDED, rules.band_high, f"banded: complement {complement:g} (< {k})"
        return SUPPRESSED, PUBLIC_NOTE_SUPPRESSED, f"primary: complement {complement:g} (< {k})"
    return None
