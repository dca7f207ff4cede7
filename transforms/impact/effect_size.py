"""Standardized mean differences and the WWC conventions built on them.

References
----------
Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. Journal of Educational Statistics, 6(2), 107-128.
Hedges, L. V., & Olkin, I. (1985). Statistical Methods for Meta-Analysis. Academic Press.
What Works Clearinghouse (2022). Procedures and Standards Handbook, Version 5.0. IES, U.S. ED.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from scipy import stats


@dataclass(frozen=True, slots=True)
class NotEstimable:
    """An outcome that could not be estimated, with the reason in plain words.

    Returned instead of raising or producing NaN, so that tables can say why a cell is empty.
    """

    reason: str


def hedges_correction(n_total: float) -> float:
    """Small-sample bias correction omega = 1 - 3 / (4N - 9).

    Hedges (1981) eq. 6e approximation; WWC Handbook v5.0 (Appendix E) uses the same factor with
    N = n1 + n2. It multiplies Cohen's d to give Hedges' g.
    """
    return 1.0 - 3.0 / (4.0 * n_total - 9.0)


def pooled_sd(sd1: float, sd2: float, n1: float, n2: float) -> float:
    """Pooled within-group standard deviation, sqrt(((n1-1)s1^2 + (n2-1)s2^2) / (n1+n2-2)).

    The WWC standardizer for continuous outcomes (Handbook v5.0, Appendix E).
    """
    return math.sqrt(((n1 - 1.0) * sd1**2 + (n2 - 1.0) * sd2**2) / (n1 + n2 - 2.0))


def hedges_g_variance(g: float, n1: float, n2: float) -> float:
    """Large-sample variance of Hedges' g: (n1+n2)/(n1 n2) + g^2 / (2 (N - 3.94)).

    Hedges & Olkin (1985, ch. 5) give g^2 / (2N) for the second term; we use N - 3.94 exactly as
    ``statsmodels.stats.meta_analysis.effectsize_smd`` does (a closer small-sample
    approximation, see Borenstein et al. 2009), so both tools give the same number.
    """
    n = n1 + n2
    return n / (n1 * n2) + g**2 / (2.0 * (n - 3.94))


def hedges_g(mean1: float, mean2: float, sd1: float, sd2: float, n1: float, n2: float) -> tuple[float, float]:
    """Hedges' g of ``mean1 - mean2`` (group 1 = treated) and its variance.

    g = omega * (mean1 - mean2) / s_pooled with omega from :func:`hedges_correction`
    (Hedges 1981; Hedges & Olkin 1985; WWC Handbook v5.0). Agrees with
    ``statsmodels.stats.meta_analysis.effectsize_smd`` (note its argument order differs).
    Raises ``ValueError`` when the pooled SD is zero or an arm has fewer than 2 students; the
    table layer turns such inputs into :class:`NotEstimable` before calling.
    """
    if n1 < 2 or n2 < 2:
        raise ValueError("each group needs at least 2 observations")
    s = pooled_sd(sd1, sd2, n1, n2)
    if not s > 0:
        raise ValueError("pooled standard deviation is zero")
    g = hedges_correction(n1 + n2) * (mean1 - mean2) / s
    return g, hedges_g_variance(g, n1, n2)


def improvement_index(g: float) -> float:
    """WWC improvement index: 100 * (Phi(g) - 0.5), i.e. U3 minus 50 percentile points.

    The expected change in percentile rank of an average comparison student had they received
    the intervention (WWC Handbook v5.0, Appendix E; Cohen's U3).
    """
    return 100.0 * (float(stats.norm.cdf(g)) - 0.5)


class BaselineCategory(StrEnum):
    """WWC baseline-equivalence categories (Handbook v5.0, section on QEDs)."""

    SATISFIED = "satisfied"
    REQUIRES_ADJUSTMENT = "requires_statistical_adjustment"
    NOT_SATISFIED = "not_satisfied"


# WWC thresholds on |g| of the baseline (pre-test) difference in the analytic sample.
BASELINE_SATISFIED_MAX = 0.05
BASELINE_ADJUSTABLE_MAX = 0.25


def baseline_category(g_pre: float) -> BaselineCategory:
    """Classify a baseline difference: |g| <= 0.05 satisfied; <= 0.25 needs adjustment; else not.

    WWC Handbook v5.0: differences between 0.05 and 0.25 SD satisfy the requirement only if the
    impact model adjusts for the baseline measure (ours does, by ANCOVA on the pre-test).
    """
    size = abs(g_pre)
    if size <= BASELINE_SATISFIED_MAX:
        return BaselineCategory.SATISFIED
    if size <= BASELINE_ADJUSTABLE_MAX:
        return BaselineCategory.REQUIRES_ADJUSTMENT
    return BaselineCategory.NOT_SATISFIED


def baseline_equivalence_holds(g_pre: float, model_adjusts_for_pretest: bool = True) -> bool:
    """True when the WWC baseline requirement is met given the impact model's adjustment."""
    category = baseline_category(g_pre)
    if category is BaselineCategory.SATISFIED:
        return True
    return category is BaselineCategory.REQUIRES_ADJUSTMENT and model_adjusts_for_pretest
