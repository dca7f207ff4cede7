"""Impact estimators for one comparison (treated vs comparison), on plain numpy arrays.

Every estimator returns an :class:`EffectEstimate` on the Hedges' g scale or a
:class:`NotEstimable` saying why not, never NaN.

References
----------
Hedges, L. V. (1981). Journal of Educational Statistics, 6(2), 107-128 (small-sample correction).
Hedges, L. V., & Olkin, I. (1985). Statistical Methods for Meta-Analysis (variance of g).
Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009). Introduction to
    Meta-Analysis, ch. 4 and 12 (effect sizes from covariate-adjusted differences).
What Works Clearinghouse (2022). Procedures and Standards Handbook v5.0, Appendix E
    (ANCOVA-adjusted g: adjusted difference over the pooled unadjusted post-test SD, times omega).
Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. JEBS, 32(4), 341-370.
Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference.
    Journal of Human Resources, 50(2), 317-372.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from transforms.impact.effect_size import (
    BaselineCategory,
    NotEstimable,
    baseline_category,
    hedges_correction,
    hedges_g,
    improvement_index,
)

# Relative tolerance under which a standard deviation counts as zero (scores are O(1..1000)).
_ZERO_VARIANCE_RTOL = 1e-12


@dataclass(frozen=True, slots=True)
class EffectEstimate:
    """An effect on the Hedges' g scale with everything an evaluator needs to check it.

    ``difference`` is in score points; ``mean_treated`` is the WWC adjusted mean (comparison mean
    plus the adjusted difference); ``df`` is the t reference's degrees of freedom.
    """

    method: str
    g: float
    var_g: float
    ci_low: float
    ci_high: float
    p: float
    df: float
    difference: float
    sd_pooled: float
    mean_treated: float
    mean_comparison: float
    n_treated: int
    n_comparison: int

    @property
    def se(self) -> float:
        return math.sqrt(self.var_g)

    @property
    def improvement_index(self) -> float:
        return improvement_index(self.g)

    @property
    def n(self) -> int:
        return self.n_treated + self.n_comparison


@dataclass(frozen=True, slots=True)
class BaselineDifference:
    """Baseline (pre-test) Hedges' g in the analytic sample and its WWC category."""

    g: float
    var_g: float
    n_treated: int
    n_comparison: int

    @property
    def category(self) -> BaselineCategory:
        return baseline_category(self.g)

    @property
    def n(self) -> int:
        return self.n_treated + self.n_comparison


def _complete(*arrays: np.ndarray) -> list[np.ndarray]:
    """Keep rows where every array is finite (nulls arrive from polars as NaN)."""
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    return [a[keep] for a in arrays]


def _arm_sizes_problem(n_treated: int, n_comparison: int, min_n: int) -> NotEstimable | None:
    floor = max(min_n, 2)  # an SD needs two students per arm
    if n_treated == 0:
        return NotEstimable("no treated students with both tests")
    if n_comparison == 0:
        return NotEstimable("no comparison students with both tests")
    if n_treated < floor or n_comparison < floor:
        return NotEstimable(
            f"arm too small: {n_treated} treated and {n_comparison} comparison students with both "
            f"tests; need at least {floor} in each"
        )
    return None


def pooled_within_group_sd(values: np.ndarray, groups: np.ndarray) -> float:
    """sqrt(sum_j (n_j - 1) s_j^2 / sum_j (n_j - 1)) over the groups (arms, or school x arm cells)."""
    _, codes = np.unique(groups, return_inverse=True)
    counts = np.bincount(codes).astype(float)
    means = np.bincount(codes, weights=values) / counts
    sum_sq = np.bincount(codes, weights=(values - means[codes]) ** 2)
    dof = float(np.sum(counts - 1.0))
    return math.sqrt(float(sum_sq.sum()) / dof) if dof > 0 else 0.0


def _is_zero_sd(sd: float, values: np.ndarray) -> bool:
    scale = max(1.0, float(np.max(np.abs(values))))
    return not sd > _ZERO_VARIANCE_RTOL * scale


def _g_from_difference(
    method: str,
    difference: float,
    var_difference: float,
    sd_pooled: float,
    df: float,
    mean_comparison: float,
    n_treated: int,
    n_comparison: int,
    alpha: float,
) -> EffectEstimate | NotEstimable:
    """Standardize a model-based difference the WWC way and attach its sampling variance.

    g = omega * difference / S. Var(g) = (omega / S)^2 Var(difference) + g^2 / (2 (N - 3.94)):
    the first term is the model's own precision (so a pre-test covariate's gain in precision is
    kept, Borenstein et al. 2009 ch. 12), the second the Hedges & Olkin term for estimating S.
    """
    n_total = n_treated + n_comparison
    omega = hedges_correction(n_total)
    g = omega * difference / sd_pooled
    var_g = (omega / sd_pooled) ** 2 * var_difference + g**2 / (2.0 * (n_total - 3.94))
    if not (math.isfinite(g) and math.isfinite(var_g) and var_g > 0):
        return NotEstimable("sampling variance is zero or undefined (outcome fits exactly)")
    se = math.sqrt(var_g)
    crit = float(stats.t.isf(alpha / 2.0, df))
    p = float(2.0 * stats.t.sf(abs(g) / se, df))
    return EffectEstimate(
        method=method,
        g=g,
        var_g=var_g,
        ci_low=g - crit * se,
        ci_high=g + crit * se,
        p=p,
        df=float(df),
        difference=difference,
        sd_pooled=sd_pooled,
        mean_treated=mean_comparison + difference,
        mean_comparison=mean_comparison,
        n_treated=n_treated,
        n_comparison=n_comparison,
    )


def _ols(y: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Classical OLS: coefficients, their covariance and residual df; None when rank-deficient."""
    n_obs, n_par = design.shape
    if np.linalg.matrix_rank(design) < n_par or n_obs <= n_par:
        return None
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    df_resid = n_obs - n_par
    sigma2 = float(resid @ resid) / df_resid
    cov = sigma2 * np.linalg.inv(design.T @ design)
    return coef, cov, float(df_resid)


def _no_residual_variance(y: np.ndarray, design: np.ndarray, coef: np.ndarray, sd_y: float) -> bool:
    """An exact fit (up to rounding) would claim infinite precision; treat it as not estimable."""
    residual_sd = float(np.std(y - design @ coef))
    return residual_sd <= 1e-9 * sd_y


def ancova_effect(
    post: np.ndarray, pre: np.ndarray, treated: np.ndarray, min_n: int = 2, alpha: float = 0.05
) -> EffectEstimate | NotEstimable:
    """Pre-test-adjusted impact: OLS post ~ 1 + treated + pre, standardized as WWC does.

    The adjusted difference (the ``treated`` coefficient) is divided by the pooled within-arm SD of
    the *unadjusted* post-test and multiplied by Hedges' omega (WWC Handbook v5.0, Appendix E).
    CI and p use t with N - 3 df. Students missing either test are dropped (analytic sample).
    """
    post, pre, treated = _complete(post, pre, treated)
    is_treated = treated > 0.5
    n_treated, n_comparison = int(is_treated.sum()), int((~is_treated).sum())
    if (problem := _arm_sizes_problem(n_treated, n_comparison, min_n)) is not None:
        return problem
    sd_post = pooled_within_group_sd(post, is_treated)
    if _is_zero_sd(sd_post, post):
        return NotEstimable("post-test has zero variance within arms")
    if _is_zero_sd(float(np.std(pre)), pre):
        return NotEstimable("pre-test has zero variance; cannot adjust for it")
    design = np.column_stack([np.ones_like(post), is_treated.astype(float), pre - pre.mean()])
    fit = _ols(post, design)
    if fit is None:
        return NotEstimable("pre-test is collinear with the comparison; cannot adjust for it")
    coef, cov, df_resid = fit
    if _no_residual_variance(post, design, coef, sd_post):
        return NotEstimable("no residual variance: post-test is an exact function of pre-test and arm")
    return _g_from_difference(
        "ancova",
        float(coef[1]),
        float(cov[1, 1]),
        sd_post,
        df_resid,
        float(post[~is_treated].mean()),
        n_treated,
        n_comparison,
        alpha,
    )


def gain_score_effect(
    post: np.ndarray, pre: np.ndarray, treated: np.ndarray, min_n: int = 2, alpha: float = 0.05
) -> EffectEstimate | NotEstimable:
    """Difference in mean gains (post - pre), standardized by the pooled post-test SD (WWC).

    Equivalent to ANCOVA with the pre-test slope fixed at 1. ``mean_*`` are mean gains.
    """
    post, pre, treated = _complete(post, pre, treated)
    is_treated = treated > 0.5
    n_treated, n_comparison = int(is_treated.sum()), int((~is_treated).sum())
    if (problem := _arm_sizes_problem(n_treated, n_comparison, min_n)) is not None:
        return problem
    sd_post = pooled_within_group_sd(post, is_treated)
    if _is_zero_sd(sd_post, post):
        return NotEstimable("post-test has zero variance within arms")
    gain = post - pre
    design = np.column_stack([np.ones_like(gain), is_treated.astype(float)])
    fit = _ols(gain, design)
    if fit is None or _no_residual_variance(gain, design, fit[0], sd_post):
        return NotEstimable("gain scores have zero variance within arms")
    coef, cov, df_resid = fit
    return _g_from_difference(
        "gain",
        float(coef[1]),
        float(cov[1, 1]),
        sd_post,
        df_resid,
        float(gain[~is_treated].mean()),
        n_treated,
        n_comparison,
        alpha,
    )


def unadjusted_effect(
    post: np.ndarray, treated: np.ndarray, min_n: int = 2, alpha: float = 0.05
) -> EffectEstimate | NotEstimable:
    """Naive post-test Hedges' g with no adjustment (shown only to expose selection bias).

    Variance from :func:`~transforms.impact.effect_size.hedges_g`; CI/p use t with N - 2 df.
    """
    post, treated = _complete(post, treated)
    is_treated = treated > 0.5
    n_treated, n_comparison = int(is_treated.sum()), int((~is_treated).sum())
    if (problem := _arm_sizes_problem(n_treated, n_comparison, min_n)) is not None:
        return problem
    sd_post = pooled_within_group_sd(post, is_treated)
    if _is_zero_sd(sd_post, post):
        return NotEstimable("post-test has zero variance within arms")
    t_post, c_post = post[is_treated], post[~is_treated]
    g, var_g = hedges_g(
        t_post.mean(), c_post.mean(), t_post.std(ddof=1), c_post.std(ddof=1), n_treated, n_comparison
    )
    se = math.sqrt(var_g)
    df = n_treated + n_comparison - 2
    crit = float(stats.t.isf(alpha / 2.0, df))
    return EffectEstimate(
        method="unadjusted",
        g=g,
        var_g=var_g,
        ci_low=g - crit * se,
        ci_high=g + crit * se,
        p=float(2.0 * stats.t.sf(abs(g) / se, df)),
        df=float(df),
        difference=float(t_post.mean() - c_post.mean()),
        sd_pooled=sd_post,
        mean_treated=float(t_post.mean()),
        mean_comparison=float(c_post.mean()),
        n_treated=n_treated,
        n_comparison=n_comparison,
    )


def baseline_difference(
    pre: np.ndarray, treated: np.ndarray, min_n: int = 2
) -> BaselineDifference | NotEstimable:
    """Hedges' g of the pre-test between arms, in the analytic sample the caller passes.

    WWC Handbook v5.0 requires quasi-experimental designs to show baseline equivalence on the
    analytic sample (students with the outcome), so pass only students with a post-test.
    """
    (pre, treated) = _complete(pre, treated)
    is_treated = treated > 0.5
    n_treated, n_comparison = int(is_treated.sum()), int((~is_treated).sum())
    if (problem := _arm_sizes_problem(n_treated, n_comparison, min_n)) is not None:
        return problem
    t_pre, c_pre = pre[is_treated], pre[~is_treated]
    if _is_zero_sd(pooled_within_group_sd(pre, is_treated), pre):
        return NotEstimable("pre-test has zero variance within arms")
    g, var_g = hedges_g(
        t_pre.mean(), c_pre.mean(), t_pre.std(ddof=1), c_pre.std(ddof=1), n_treated, n_comparison
    )
    return BaselineDifference(g=g, var_g=var_g, n_treated=n_treated, n_comparison=n_comparison)


def _demean_by_group(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Subtract each group's mean (the within transformation for fixed effects)."""
    means = np.bincount(codes, weights=values) / np.bincount(codes)
    return values - means[codes]


def school_fixed_effects_effect(
    post: np.ndarray,
    pre: np.ndarray,
    treated: np.ndarray,
    school: np.ndarray,
    min_n: int = 2,
    alpha: float = 0.05,
) -> EffectEstimate | NotEstimable:
    """Student-level pooled ANCOVA with school fixed effects and cluster-robust SE by school.

    OLS post ~ treated + pre + school dummies. Usage varies *within* schools, so the dummies absorb
    every school-level shock (the reason WWC/Hedges 2007 clustering corrections exist for
    cluster-assigned designs); the CR1 sandwich by school additionally lets effects and residuals
    vary by school. With G schools the reference is t with G - 1 df (Cameron & Miller 2015); with
    few schools this is still approximate. g standardizes by the pooled within school x arm SD.

    Computed by the within (school-demeaning) transformation, which gives the same coefficients
    (Frisch-Waugh-Lovell) and the same CR1 covariance as statsmodels
    ``OLS(...).fit(cov_type="cluster")`` on the dummy design (the dummies' cluster scores are zero),
    with K = 2 + G in the small-sample factor G/(G-1) (N-1)/(N-K); it avoids an N x G design.
    """
    post = np.asarray(post, dtype=float)
    pre = np.asarray(pre, dtype=float)
    treated = np.asarray(treated, dtype=float)
    school = np.asarray(school)
    keep = np.isfinite(post) & np.isfinite(pre) & np.isfinite(treated)
    post, pre, treated, school = post[keep], pre[keep], treated[keep], school[keep]
    is_treated = treated > 0.5
    n_treated, n_comparison = int(is_treated.sum()), int((~is_treated).sum())
    if (problem := _arm_sizes_problem(n_treated, n_comparison, min_n)) is not None:
        return problem
    school_ids, school_code = np.unique(school, return_inverse=True)
    n_schools, n_obs = len(school_ids), len(post)
    if n_schools < 2:
        return NotEstimable("cluster-robust SE needs at least 2 schools")
    sd_post = pooled_within_group_sd(post, school_code * 2 + is_treated)
    if _is_zero_sd(sd_post, post):
        return NotEstimable("post-test has zero variance within schools and arms")
    n_params = 2 + n_schools
    y = _demean_by_group(post, school_code)
    design = np.column_stack(
        [_demean_by_group(is_treated.astype(float), school_code), _demean_by_group(pre, school_code)]
    )
    if np.linalg.matrix_rank(design) < 2 or n_obs <= n_params:
        return NotEstimable("pre-test or arm is collinear with schools; cannot adjust")
    bread = np.linalg.inv(design.T @ design)
    coef = bread @ design.T @ y
    resid = y - design @ coef
    if float(np.std(resid)) <= 1e-9 * sd_post:
        return NotEstimable("no residual variance: post-test is an exact function of pre-test and arm")
    scores = np.column_stack(
        [np.bincount(school_code, weights=design[:, j] * resid) for j in range(design.shape[1])]
    )
    small_sample = n_schools / (n_schools - 1) * (n_obs - 1) / (n_obs - n_params)
    cov = small_sample * bread @ (scores.T @ scores) @ bread
    var_difference = float(cov[0, 0])
    if not var_difference > 0:
        return NotEstimable("cluster-robust variance is zero")
    return _g_from_difference(
        "school_fixed_effects",
        float(coef[0]),
        var_difference,
        sd_post,
        n_schools - 1,
        float(post[~is_treated].mean()),
        n_treated,
        n_comparison,
        alpha,
    )
