"""Sample attrition in WWC terms: overall rate and the differential between arms.

Reference: What Works Clearinghouse (2022). Procedures and Standards Handbook v5.0, section on
attrition: overall attrition = share of the baseline sample without an outcome; differential
attrition = the absolute difference between the arms' rates, in percentage points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms.impact.effect_size import NotEstimable


@dataclass(frozen=True, slots=True)
class Attrition:
    """Attrition of one comparison: rates in percent, differential in percentage points."""

    overall_pct: float
    treated_pct: float
    comparison_pct: float
    n_treated: int
    n_comparison: int

    @property
    def differential_pp(self) -> float:
        return abs(self.treated_pct - self.comparison_pct)

    @property
    def n(self) -> int:
        return self.n_treated + self.n_comparison


def attrition_pct(has_outcome: np.ndarray) -> float | NotEstimable:
    """Percent of the baseline sample (students with a pre-test) that has no post-test."""
    has_outcome = np.asarray(has_outcome, dtype=bool)
    if has_outcome.size == 0:
        return NotEstimable("no students in the baseline sample")
    return 100.0 * float((~has_outcome).mean())


def attrition(has_outcome: np.ndarray, treated: np.ndarray) -> Attrition | NotEstimable:
    """Overall and per-arm attrition for a comparison (WWC Handbook v5.0).

    For a quasi-experimental design the WWC does not apply its attrition boundaries; it requires
    baseline equivalence in the analytic sample instead. We still report the rates so a reader
    can judge how much the analytic sample may differ from the students who started.
    """
    has_outcome = np.asarray(has_outcome, dtype=bool)
    is_treated = np.asarray(treated, dtype=bool)
    n_treated, n_comparison = int(is_treated.sum()), int((~is_treated).sum())
    if n_treated == 0 or n_comparison == 0:
        return NotEstimable("differential attrition needs students in both arms")
    return Attrition(
        overall_pct=100.0 * float((~has_outcome).mean()),
        treated_pct=100.0 * float((~has_outcome[is_treated]).mean()),
        comparison_pct=100.0 * float((~has_outcome[~is_treated]).mean()),
        n_treated=n_treated,
        n_comparison=n_comparison,
    )
