"""Statistical disclosure control for every published table, together.

Public API (plain Python over Polars; never imports Dagster)::

    TableSpec(name, dims, totals={dim: label}, count_measure="students", extra_counts=(),
              sum_measures=(), percentages={pct: numerator_count}, nested={child: parent},
              percent_scale=100.0)
    DisclosureRules(min_cell_size=10, zeros_unsafe=False, protection_fraction=0.10,
                    dominance_p=None, band_low_edge=5.0, band_high_edge=95.0,
                    mip_max_cells=30_000, mip_max_primaries=50, mip_time_limit=60.0,
                    max_cut_rounds=50)
    strictest_rules(rules, contract_min_cells) -> DisclosureRules
    protect(tables, specs, rules=None, *, links=(), contributions=None, method="auto")
        -> ProtectionResult(tables, cells: tuple[SuppressedCell, ...], audit: AuditReport, stats)
    audit(tables, specs, rules, *, links=(), truth=None) -> AuditReport
    CellRef(table, dims, measure)   # explicit links: protect(..., links=[(CellRef, CellRef)])

Primary: counts with 0 < n < k (zeros if `zeros_unsafe`); derived measures over n < k; percentages
with a small numerator or complement banded (`<5%`/`>95%`) or, if no band fits, suppressed.
Complementary: one binary per additive cell across all tables (linked cells are one cell), a MIP
minimizing Σ (rows × (1 + students)) with Fischetti–Salazar cuts from the attacker LPs (HiGHS);
greedy fallback. Secondary: measures computed from a suppressed count. See docs/disclosure_control.md.
"""

from privacy.suppression.audit import AuditReport, IntervalCheck, audit
from privacy.suppression.cells import CellRef
from privacy.suppression.complementary import PatternStats
from privacy.suppression.protect import ProtectionResult, SuppressedCell, protect
from privacy.suppression.spec import (
    BANDED,
    NOT_ESTIMABLE,
    PUBLISHED,
    SUPPRESSED,
    SUPPRESSED_SECONDARY,
    DisclosureRules,
    TableSpec,
    strictest_rules,
)

__all__ = [
    "BANDED",
    "NOT_ESTIMABLE",
    "PUBLISHED",
    "SUPPRESSED",
    "SUPPRESSED_SECONDARY",
    "AuditReport",
    "CellRef",
    "DisclosureRules",
    "IntervalCheck",
    "PatternStats",
    "ProtectionResult",
    "SuppressedCell",
    "TableSpec",
    "audit",
    "protect",
    "strictest_rules",
]
