"""A plain-words evidence statement that never claims more than a non-randomized design allows.

Rule (explained in docs/statistics.md):
- never ESSA tier I: usage is chosen, not randomly assigned;
- tier II "Moderate" only if the pooled baseline difference meets the WWC requirement given our
  pre-test adjustment (|g_pre| <= 0.25), the pooled adjusted effect is positive and significant
  (p < alpha), at least 2 schools contribute and at least 350 students are analysed;
- tier III "Promising" if the adjusted effect is positive and significant but tier II fails;
- otherwise no tier ("no evidence of an effect", or "unfavourable" when significantly negative).

References
----------
U.S. Department of Education (2016, rev. 2023). Non-Regulatory Guidance: Using Evidence to
    Strengthen Education Investments (ESSA tiers; "large" = 350+ students, "multi-site" = 2+ sites).
What Works Clearinghouse (2022). Procedures and Standards Handbook v5.0 (baseline equivalence).
Higgins, J. P. T., Thompson, S. G., Deeks, J. J., & Altman, D. G. (2003). Measuring inconsistency
    in meta-analyses. BMJ, 327, 557-560 (I^2 benchmarks 25/50/75 %).
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.impact.effect_size import (
    BASELINE_ADJUSTABLE_MAX,
    NotEstimable,
    baseline_equivalence_holds,
)
from transforms.impact.pooling import PooledEffect

LARGE_SAMPLE_MIN_STUDENTS = 350
MULTI_SITE_MIN_SCHOOLS = 2


@dataclass(frozen=True, slots=True)
class EvidenceStatement:
    """ESSA tier (2, 3, or None), a short label and the sentence to publish."""

    tier: int | None
    label: str
    sentence: str


def heterogeneity_label(i2: float) -> str:
    """Words for I^2 after Higgins et al. (2003): <25 % low, <50 % moderate, <75 % substantial, else high."""
    if i2 < 0.25:
        return "low"
    if i2 < 0.50:
        return "moderate"
    if i2 < 0.75:
        return "substantial"
    return "high"


def format_p(p: float) -> str:
    """APA style: 'p < 0.001' below a thousandth, else three decimals."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _effect_phrase(pooled: PooledEffect, n_students: int) -> str:
    school_word = "school" if pooled.k == 1 else "schools"
    return (
        f"adjusted g = {pooled.estimate:.2f} [{pooled.ci_low:.2f}, {pooled.ci_high:.2f}], "
        f"{format_p(pooled.p)}, across {pooled.k} {school_word} ({n_students} students), "
        f"heterogeneity {heterogeneity_label(pooled.i2)}"
    )


def essa_evidence(
    pooled: PooledEffect | NotEstimable,
    baseline_g: float | NotEstimable,
    n_students: int,
    program: str = "the program",
    alpha: float = 0.05,
) -> EvidenceStatement:
    """Apply the evidence rule in this module's docstring to one comparison."""
    if isinstance(pooled, NotEstimable):
        return EvidenceStatement(None, "Not estimable", f"{program}: not estimable ({pooled.reason}).")
    phrase = _effect_phrase(pooled, n_students)
    significant = pooled.p < alpha
    if significant and pooled.estimate < 0:
        return EvidenceStatement(
            None,
            "Unfavourable",
            f"Unfavourable for {program}: {phrase}; users scored lower than comparable non-users.",
        )
    if not (significant and pooled.estimate > 0):
        return EvidenceStatement(
            None,
            "No evidence of an effect",
            f"No evidence of an effect of {program} (no ESSA tier): {phrase}; not statistically significant.",
        )
    baseline_ok = not isinstance(baseline_g, NotEstimable) and baseline_equivalence_holds(baseline_g)
    large = n_students >= LARGE_SAMPLE_MIN_STUDENTS
    multi_site = pooled.k >= MULTI_SITE_MIN_SCHOOLS
    caveat = "a non-randomized comparison: unmeasured differences between users and non-users may remain"
    if baseline_ok and large and multi_site:
        return EvidenceStatement(
            2,
            "Moderate (ESSA tier II)",
            f"Moderate (ESSA tier II) for {program}: {phrase}; groups equivalent at baseline "
            f"(g = {baseline_g:.2f}); {caveat}.",
        )
    reasons = []
    if isinstance(baseline_g, NotEstimable):
        reasons.append(f"baseline equivalence not estimable ({baseline_g.reason})")
    elif not baseline_ok:
        reasons.append(
            f"groups differed at baseline (g = {baseline_g:.2f}, beyond the WWC limit of "
            f"{BASELINE_ADJUSTABLE_MAX:.2f})"
        )
    if not large:
        reasons.append(f"fewer than {LARGE_SAMPLE_MIN_STUDENTS} students")
    if not multi_site:
        reasons.append(f"fewer than {MULTI_SITE_MIN_SCHOOLS} schools")
    return EvidenceStatement(
        3,
        "Promising (ESSA tier III)",
        f"Promising (ESSA tier III) for {program}: {phrase}; not tier II because "
        f"{'; '.join(reasons)}; {caveat}.",
    )
