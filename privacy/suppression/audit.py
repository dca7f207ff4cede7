"""The attacker's audit of published tables (like sdcTable `attack()` / tau-Argus, with an interval).

For every hidden additive cell: the smallest and largest true value consistent with every published
value and every margin relation across all tables (values ≥ 0, integrality relaxed). The audit reads
only what is published; the optional true tables serve one sanity check (the interval holds the truth).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from privacy.suppression.attacker import ComponentLP, hidden_components
from privacy.suppression.cells import CellRef, CellSystem, build_cell_system
from privacy.suppression.spec import BANDED, PUBLISHED, DisclosureRules, TableSpec

TOLERANCE = 1e-6


@dataclass(frozen=True)
class IntervalCheck:
    """What an attacker can learn about one hidden cell, or a published value that breaks a rule."""

    table: str
    cell: str
    lower: float
    upper: float
    required: float
    problem: str | None = None

    @property
    def width(self) -> float:
        return self.upper - self.lower


@dataclass(frozen=True)
class AuditReport:
    cells_checked: int
    narrowest: IntervalCheck | None
    failures: tuple[IntervalCheck, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        head = f"audit {'passed' if self.passed else 'FAILED'}: {self.cells_checked} hidden cells checked"
        if self.narrowest is not None:
            n = self.narrowest
            head += f"; narrowest {n.table}:{n.cell} width {n.width:g} (needs {n.required:g})"
        return head + "".join(f"\n  {f.table}:{f.cell}: {f.problem}" for f in self.failures)


def required_width(upper: float, *, is_count: bool, rules: DisclosureRules) -> float:
    """The width an attacker's interval must keep, from published information only (no true value).

    `protect` keeps [value − p, value + p] (floored at 0) open with p = max(k, fraction·value), which
    implies width ≥ max(k, fraction·upper) for counts and ≥ fraction·upper for sums.
    """
    relative = rules.protection_fraction * upper if math.isfinite(upper) else 0.0
    return max(float(rules.min_cell_size), relative) if is_count else relative


def check_interval(
    table: str, label: str, lower: float, upper: float, *, is_count: bool, rules: DisclosureRules
) -> IntervalCheck:
    required = required_width(upper, is_count=is_count, rules=rules)
    problem = None
    if upper - lower < required - TOLERANCE * max(1.0, required):
        problem = f"interval [{lower:g}, {upper:g}] narrower than {required:g}"
    elif is_count and lower > TOLERANCE and upper < rules.min_cell_size:
        problem = f"interval [{lower:g}, {upper:g}] pins a count in (0, {rules.min_cell_size})"
    return IntervalCheck(table, label, lower, upper, required, problem)


def audit(
    tables: Mapping[str, pl.DataFrame],
    specs: Sequence[TableSpec],
    rules: DisclosureRules,
    *,
    links: Sequence[tuple[CellRef, CellRef]] = (),
    truth: Mapping[str, pl.DataFrame] | None = None,
    truth_system: CellSystem | None = None,
) -> AuditReport:
    """Attack the published `tables` (suppressed rows have a non-published status) and report.
    `truth_system`: the true tables' cell system when the caller has built it (`protect` has)."""
    started = time.perf_counter()
    system = build_cell_system(tables, specs, links, published_only=True)
    small_counts = published_small_counts(tables, specs, rules)
    checks, exact = attacker_checks(system, rules)
    if truth is not None or truth_system is not None:
        _assert_truth_fits(system, truth_system or build_cell_system(truth, specs, links), checks, exact)
    narrowest = min(checks.values(), key=lambda ch: (ch.width, ch.table, ch.cell), default=None)
    failures = tuple(ch for ch in (*small_counts, *checks.values()) if ch.problem is not None)
    return AuditReport(len(checks), narrowest, failures, time.perf_counter() - started)


def attacker_checks(system: CellSystem, rules: DisclosureRules) -> tuple[dict[int, IntervalCheck], set[int]]:
    """Every hidden cell's check, one reused LP per component of hidden cells, and the cells whose
    interval was solved exactly.

    A cell is solved exactly (its min and max) when its witnessed range fails the check (the
    exact interval is at least as wide, so it may still pass) and when it could be the narrowest;
    a cell whose witnessed range passes, passes. So failures and the narrowest are exact, and the
    other cells' intervals are reported as the witnessed inner bounds.
    """
    hidden = [c for c, cell in enumerate(system.cells) if cell.value is None]
    checks: dict[int, IntervalCheck] = {}
    exact: set[int] = set()
    for cells, rows in hidden_components(system, hidden):
        lp = ComponentLP(system, cells, rows, lambda c: system.cells[c].value)

        def check(c: int, lower: float, upper: float) -> IntervalCheck:
            cell = system.cells[c]
            return check_interval(
                cell.rows[0][0], cell.label(), lower, upper, is_count=cell.is_count, rules=rules
            )

        def unsettled(c: int, lp: ComponentLP = lp) -> bool:  # no witness yet, or one that fails
            low, high = lp.seen(c)
            return not math.isfinite(low) or check(c, low, high).problem is not None

        lp.explore(cells, lambda c, unsettled=unsettled: (unsettled(c), unsettled(c)))
        narrowest = math.inf
        for c in cells:
            if unsettled(c):
                checks[c] = check(c, *lp.extremes(c))
                exact.add(c)
                narrowest = min(narrowest, checks[c].width)
            else:
                checks[c] = check(c, *lp.seen(c))
        # the narrowest is exact: solve each cell whose witnessed width does not rule it out
        for c in sorted(cells, key=lambda c: checks[c].width):
            if checks[c].width > narrowest + TOLERANCE * max(1.0, narrowest):
                break
            if c not in exact:
                checks[c] = check(c, *lp.extremes(c))
                exact.add(c)
                narrowest = min(narrowest, checks[c].width)
    return checks, exact


def published_small_counts(
    tables: Mapping[str, pl.DataFrame], specs: Sequence[TableSpec], rules: DisclosureRules
) -> list[IntervalCheck]:
    """Every published (or banded) row whose n is a small count: a failure whatever its measure."""
    found = []
    for spec in specs:
        visible = tables[spec.name].filter(
            pl.col("status").is_in([PUBLISHED, BANDED]) & pl.col("n").is_not_null()
        )
        for row in visible.iter_rows(named=True):
            if rules.is_small(row["n"]):
                where = ", ".join(f"{d}={row[d]}" for d in spec.dims)
                label = f"{row['measure']}[{where}]"
                found.append(
                    IntervalCheck(spec.name, label, row["n"], row["n"], 0.0, f"published n={row['n']}")
                )
    return found


def _assert_truth_fits(
    published: CellSystem, true: CellSystem, checks: Mapping[int, IntervalCheck], exact: set[int]
) -> None:
    """The attacker's model of the tables is right: the true values are ≥ 0 and satisfy every
    relation with the published values as constants (the truth is one of its points), and each
    interval solved exactly holds the true value (the LPs were built from those relations)."""

    def truth(c: int) -> float:
        return true.cells[true.index[published.cells[c].key]].value or 0.0

    for total, children in published.relations:
        values = [
            published.cells[c].value if published.cells[c].value is not None else truth(c)
            for c in (total, *children)
        ]
        expected, found = values[0], sum(values[1:])
        if abs(expected - found) > TOLERANCE * max(1.0, abs(expected)):
            raise AssertionError(
                f"audit misreads relations: {published.cells[total].label()} = {expected} "
                f"but its parts add up to {found}"
            )
    for c, check in checks.items():
        value = truth(c)
        slack = TOLERANCE * max(1.0, abs(value))
        if value < -slack or (c in exact and not check.lower - slack <= value <= check.upper + slack):
            raise AssertionError(
                f"audit misreads relations: {published.cells[c].label()} = {value} "
                f"outside [{check.lower}, {check.upper}]"
            )
