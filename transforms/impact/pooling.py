"""Pooling school-level effects: fixed effect, DerSimonian-Laird and REML random effects.

References
----------
Hedges, L. V., & Olkin, I. (1985). Statistical Methods for Meta-Analysis (inverse-variance pooling).
DerSimonian, R., & Laird, N. (1986). Meta-analysis in clinical trials. Controlled Clinical
    Trials, 7(3), 177-188.
Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance estimators in the
    random-effects model. JEBS, 30(3), 261-293 (REML, Fisher scoring).
Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a meta-analysis.
    Statistics in Medicine, 21(11), 1539-1558 (I^2, typical within-study variance).
Higgins, J. P. T., Thompson, S. G., & Spiegelhalter, D. J. (2009). A re-evaluation of
    random-effects meta-analysis. JRSS A, 172(1), 137-159 (prediction interval, t with k - 2 df).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from transforms.impact.effect_size import NotEstimable

PoolingModel = Literal["fixed", "dl", "reml"]
POOLING_MODELS: tuple[PoolingModel, ...] = ("fixed", "dl", "reml")


@dataclass(frozen=True, slots=True)
class PooledEffect:
    """A pooled effect with its heterogeneity statistics.

    ``pi_low``/``pi_high`` are None when no prediction interval exists (fixed-effect model, or
    fewer than 3 schools); ``pi_reason`` then says why.
    """

    model: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p: float
    tau2: float
    i2: float
    q: float
    q_df: int
    q_p: float
    k: int
    pi_low: float | None
    pi_high: float | None
    pi_reason: str


@dataclass(frozen=True, slots=True)
class Heterogeneity:
    """Cochran's Q with its df and chi-square p-value."""

    q: float
    df: int
    p: float


def _as_arrays(effects, variances) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(effects, dtype=float), np.asarray(variances, dtype=float)


def _inputs_problem(effects: np.ndarray, variances: np.ndarray) -> NotEstimable | None:
    if effects.shape != variances.shape or effects.ndim != 1:
        return NotEstimable("effects and variances must be 1-d arrays of equal length")
    if len(effects) < 2:
        return NotEstimable(f"only {len(effects)} school(s) with an estimate; pooling needs at least 2")
    if not (np.all(np.isfinite(effects)) and np.all(np.isfinite(variances))):
        return NotEstimable("an effect or variance is not finite")
    if np.any(variances <= 0):
        return NotEstimable("a sampling variance is zero or negative")
    return None


def cochran_q(effects, variances) -> Heterogeneity:
    """Q = sum w_i (y_i - mu_FE)^2 with w_i = 1/v_i, chi-square with k - 1 df (DerSimonian & Laird 1986)."""
    y, v = _as_arrays(effects, variances)
    w = 1.0 / v
    mu = float(w @ y / w.sum())
    q = float(w @ (y - mu) ** 2)
    df = len(y) - 1
    return Heterogeneity(q=q, df=df, p=float(stats.chi2.sf(q, df)) if df > 0 else 1.0)


def dersimonian_laird_tau2(effects, variances) -> float:
    """Method-of-moments tau^2 = max(0, (Q - (k-1)) / (sum w - sum w^2 / sum w)) (DerSimonian & Laird 1986).

    statsmodels' ``combine_effects(method_re="dl")`` does not truncate at 0; they agree when Q > k-1.
    """
    y, v = _as_arrays(effects, variances)
    w = 1.0 / v
    het = cochran_q(y, v)
    c = w.sum() - (w**2).sum() / w.sum()
    return float(max(0.0, (het.q - het.df) / c))


def restricted_log_likelihood(tau2: float, effects, variances) -> float:
    """REML log-likelihood of tau^2 (up to a constant), Viechtbauer (2005) eq. 11.

    -1/2 [sum log(v_i + tau2) + log sum w_i + sum w_i (y_i - mu_hat)^2], w_i = 1/(v_i + tau2).
    """
    y, v = _as_arrays(effects, variances)
    w = 1.0 / (v + tau2)
    mu = float(w @ y / w.sum())
    return -0.5 * float(np.log(v + tau2).sum() + math.log(w.sum()) + w @ (y - mu) ** 2)


def reml_tau2(effects, variances, tol: float = 1e-12, max_iter: int = 200) -> float:
    """REML estimate of tau^2 by Fisher scoring, truncated at 0 (Viechtbauer 2005, section 3.5).

    Score: 1/2 [sum w^2 (y - mu)^2 - tr P]; information: 1/2 tr P^2 with P = W - W 1 1' W / sum w.
    Starts from the DerSimonian-Laird value and halves steps that would lower the likelihood.
    """
    y, v = _as_arrays(effects, variances)
    tau2 = dersimonian_laird_tau2(y, v)
    for _ in range(max_iter):
        w = 1.0 / (v + tau2)
        sw = w.sum()
        mu = float(w @ y / sw)
        trace_p = sw - (w**2).sum() / sw
        trace_p2 = (w**2).sum() - 2.0 * (w**3).sum() / sw + ((w**2).sum() / sw) ** 2
        score = float((w**2) @ (y - mu) ** 2) - trace_p
        step = score / trace_p2
        new = max(0.0, tau2 + step)
        # step-halving keeps the ascent monotone when the quadratic approximation overshoots
        while restricted_log_likelihood(new, y, v) < restricted_log_likelihood(tau2, y, v) - 1e-15:
            step /= 2.0
            new = max(0.0, tau2 + step)
            if abs(step) < tol:
                break
        if abs(new - tau2) < tol * max(1.0, tau2):
            return float(new)
        tau2 = new
    return float(tau2)


def typical_within_variance(variances) -> float:
    """s^2 = (k-1) sum w / ((sum w)^2 - sum w^2), Higgins & Thompson (2002) eq. 9."""
    w = 1.0 / np.asarray(variances, dtype=float)
    return float((len(w) - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum()))


def i_squared(tau2: float, variances) -> float:
    """I^2 = tau^2 / (tau^2 + s^2) (Higgins & Thompson 2002); equals max(0, (Q-df)/Q) for DL."""
    s2 = typical_within_variance(variances)
    return float(tau2 / (tau2 + s2)) if tau2 > 0 else 0.0


def i_squared_from_q(het: Heterogeneity) -> float:
    """I^2 = max(0, (Q - df) / Q), Higgins & Thompson (2002) eq. 10; 0 when Q = 0."""
    return max(0.0, (het.q - het.df) / het.q) if het.q > 0 else 0.0


def prediction_interval(
    estimate: float, se: float, tau2: float, k: int, alpha: float = 0.05
) -> tuple[float, float] | NotEstimable:
    """Where a new school's true effect is expected: mu +- t_{k-2} sqrt(tau^2 + se^2).

    Higgins, Thompson & Spiegelhalter (2009); needs k >= 3 schools.
    """
    if k < 3:
        return NotEstimable(f"prediction interval needs at least 3 schools (have {k})")
    half = float(stats.t.isf(alpha / 2.0, k - 2)) * math.sqrt(tau2 + se**2)
    return estimate - half, estimate + half


def _weighted_mean(y: np.ndarray, v: np.ndarray, tau2: float) -> tuple[float, float]:
    w = 1.0 / (v + tau2)
    return float(w @ y / w.sum()), math.sqrt(1.0 / w.sum())


def pool_effects(
    effects, variances, model: PoolingModel = "reml", alpha: float = 0.05
) -> PooledEffect | NotEstimable:
    """Inverse-variance pooled effect under ``model`` in fixed | dl | reml.

    Fixed: weights 1/v_i (Hedges & Olkin 1985). Random: weights 1/(v_i + tau^2) with tau^2 by
    DerSimonian-Laird (1986) or REML (Viechtbauer 2005). CI and p use the normal reference, as
    statsmodels ``combine_effects`` (``use_t=False``) and metafor do by default.
    """
    y, v = _as_arrays(effects, variances)
    if (problem := _inputs_problem(y, v)) is not None:
        return problem
    het = cochran_q(y, v)
    if model == "fixed":
        tau2, i2 = 0.0, i_squared_from_q(het)
    elif model == "dl":
        tau2 = dersimonian_laird_tau2(y, v)
        i2 = i_squared(tau2, v)
    elif model == "reml":
        tau2 = reml_tau2(y, v)
        i2 = i_squared(tau2, v)
    else:
        raise ValueError(f"unknown pooling model {model!r}")
    estimate, se = _weighted_mean(y, v, tau2)
    crit = float(stats.norm.isf(alpha / 2.0))
    if model == "fixed":
        interval: tuple[float, float] | NotEstimable = NotEstimable(
            "the fixed-effect model assumes one common effect, so it has no prediction interval"
        )
    else:
        interval = prediction_interval(estimate, se, tau2, len(y), alpha)
    pi_low, pi_high = (None, None) if isinstance(interval, NotEstimable) else interval
    return PooledEffect(
        model=model,
        estimate=estimate,
        se=se,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        p=float(2.0 * stats.norm.sf(abs(estimate) / se)),
        tau2=tau2,
        i2=i2,
        q=het.q,
        q_df=het.df,
        q_p=het.p,
        k=len(y),
        pi_low=pi_low,
        pi_high=pi_high,
        pi_reason=interval.reason if isinstance(interval, NotEstimable) else "",
    )
