"""Pooling agrees with statsmodels (FE, DL), a published REML example, and direct REML maximization."""

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

from transforms.impact import (
    NotEstimable,
    PooledEffect,
    cochran_q,
    dersimonian_laird_tau2,
    pool_effects,
    reml_tau2,
)

# Heterogeneous school effects (Q > k - 1, so statsmodels' untruncated DL tau^2 is positive)
HETEROGENEOUS = (
    np.array([0.12, 0.45, -0.05, 0.31, 0.22, 0.60, 0.02]),
    np.array([0.010, 0.020, 0.015, 0.008, 0.030, 0.025, 0.012]),
)
FEW_SCHOOLS = (np.array([0.3, 0.1, 0.5]), np.array([0.02, 0.03, 0.01]))

# BCG vaccine trials (Colditz et al. 1994), log risk ratios: metafor's dat.bcg worked example.
_TPOS = np.array([4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27.0])
_TNEG = np.array([119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886.0])
_CPOS = np.array([11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29.0])
_CNEG = np.array([128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825.0])
BCG_Y = np.log((_TPOS / (_TPOS + _TNEG)) / (_CPOS / (_CPOS + _CNEG)))
BCG_V = 1 / _TPOS - 1 / (_TPOS + _TNEG) + 1 / _CPOS - 1 / (_CPOS + _CNEG)


@pytest.mark.parametrize("fixture", [HETEROGENEOUS, FEW_SCHOOLS, (BCG_Y, BCG_V)])
def test_fixed_and_dl_match_statsmodels_combine_effects(fixture):
    effects, variances = fixture
    reference = combine_effects(effects, variances, method_re="dl")
    ci_fe, ci_re, _, _ = reference.conf_int(use_t=False)
    fixed = pool_effects(effects, variances, "fixed")
    dl = pool_effects(effects, variances, "dl")
    assert reference.tau2 > 0  # fixtures chosen so statsmodels' untruncated tau^2 is valid
    assert fixed.estimate == pytest.approx(reference.mean_effect_fe, abs=1e-8)
    assert fixed.se == pytest.approx(reference.sd_eff_w_fe, abs=1e-8)
    assert [fixed.ci_low, fixed.ci_high] == pytest.approx(list(ci_fe), abs=1e-8)
    assert dl.tau2 == pytest.approx(reference.tau2, abs=1e-8)
    assert dl.estimate == pytest.approx(reference.mean_effect_re, abs=1e-8)
    assert dl.se == pytest.approx(reference.sd_eff_w_re, abs=1e-8)
    assert [dl.ci_low, dl.ci_high] == pytest.approx(list(ci_re), abs=1e-8)
    assert fixed.q == pytest.approx(reference.q, abs=1e-8)
    assert fixed.q_p == pytest.approx(reference.test_homogeneity().pvalue, abs=1e-8)
    assert fixed.i2 == pytest.approx(reference.i2, abs=1e-8)
    assert dl.i2 == pytest.approx(reference.i2, abs=1e-8)  # tau2/(tau2+s2) == (Q-df)/Q for DL


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels takes sqrt of a negative HKSJ variance
def test_dl_truncates_negative_tau2_at_zero_unlike_statsmodels():
    effects, variances = np.array([0.20, 0.21, 0.19]), np.array([0.05, 0.04, 0.06])
    assert cochran_q(effects, variances).q < 2
    assert combine_effects(effects, variances, method_re="dl").tau2 < 0
    dl, fixed = pool_effects(effects, variances, "dl"), pool_effects(effects, variances, "fixed")
    assert dl.tau2 == 0.0 and dl.i2 == 0.0
    assert dl.estimate == pytest.approx(fixed.estimate)


def test_reml_matches_published_bcg_example():
    # Viechtbauer (2010, J Stat Softw 36(3)) metafor rma(yi, vi) on dat.bcg, REML:
    # estimate -0.7145, se 0.1798, tau^2 0.3132, I^2 92.22 %, Q(df = 12) = 152.2330
    reml = pool_effects(BCG_Y, BCG_V, "reml")
    assert reml.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert reml.se == pytest.approx(0.1798, abs=5e-5)
    assert reml.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert reml.i2 == pytest.approx(0.9222, abs=5e-5)
    assert reml.q == pytest.approx(152.2330, abs=5e-4)
    # and the same source's DerSimonian-Laird numbers: tau^2 0.3088, estimate -0.7141
    dl = pool_effects(BCG_Y, BCG_V, "dl")
    assert dl.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert dl.estimate == pytest.approx(-0.7141, abs=5e-5)


def _restricted_loglik_matrix_form(tau2, y, v):
    """REML log-likelihood of y ~ N(1 mu, V), V = diag(v + tau2), written from the LMM formula
    -1/2 [log|V| + log|X'V^-1 X| + r' V^-1 r] (Harville 1977), independent of the module's version."""
    x = np.ones((len(y), 1))
    v_inv = np.diag(1 / (v + tau2))
    xtvx = x.T @ v_inv @ x
    mu = np.linalg.solve(xtvx, x.T @ v_inv @ y)
    r = y - x @ mu
    return -0.5 * (np.log(v + tau2).sum() + np.log(np.linalg.det(xtvx)) + r @ v_inv @ r)


@pytest.mark.parametrize("fixture", [HETEROGENEOUS, FEW_SCHOOLS, (BCG_Y, BCG_V)])
def test_reml_tau2_maximizes_the_restricted_likelihood(fixture):
    effects, variances = fixture
    direct = optimize.minimize_scalar(
        lambda t: -_restricted_loglik_matrix_form(t, effects, variances),
        bounds=(0.0, 5.0),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert reml_tau2(effects, variances) == pytest.approx(direct.x, abs=1e-6)


def test_reml_is_zero_when_the_likelihood_peaks_at_the_boundary():
    effects, variances = np.array([0.20, 0.21, 0.19]), np.array([0.05, 0.04, 0.06])
    assert reml_tau2(effects, variances) == 0.0


def test_reml_differs_from_statsmodels_iterated_paule_mandel():
    # statsmodels' method_re="iterated" is Paule-Mandel, a different estimator: not a REML check.
    pm = combine_effects(BCG_Y, BCG_V, method_re="iterated").tau2
    assert abs(pm - reml_tau2(BCG_Y, BCG_V)) > 1e-3


def test_prediction_interval_uses_t_with_k_minus_2_df():
    effects, variances = HETEROGENEOUS
    reml = pool_effects(effects, variances, "reml")
    half = stats.t.isf(0.025, len(effects) - 2) * np.sqrt(reml.tau2 + reml.se**2)
    assert reml.pi_low == pytest.approx(reml.estimate - half)
    assert reml.pi_high == pytest.approx(reml.estimate + half)
    assert reml.pi_low < reml.ci_low < reml.ci_high < reml.pi_high


def test_pooling_degenerate_inputs_are_not_estimable():
    one = pool_effects([0.2], [0.01], "reml")
    assert isinstance(one, NotEstimable) and "at least 2" in one.reason
    zero_var = pool_effects([0.2, 0.3], [0.01, 0.0], "fixed")
    assert isinstance(zero_var, NotEstimable) and "variance" in zero_var.reason
    two = pool_effects([0.2, 0.3], [0.01, 0.02], "dl")
    assert isinstance(two, PooledEffect)
    assert two.pi_low is None and "3 schools" in two.pi_reason
    fixed = pool_effects([0.2, 0.3, 0.1], [0.01, 0.02, 0.01], "fixed")
    assert fixed.pi_low is None and fixed.tau2 == 0.0


def test_dersimonian_laird_formula_by_hand():
    effects, variances = HETEROGENEOUS
    w = 1 / variances
    mu = (w * effects).sum() / w.sum()
    q = (w * (effects - mu) ** 2).sum()
    expected = (q - (len(w) - 1)) / (w.sum() - (w**2).sum() / w.sum())
    assert dersimonian_laird_tau2(effects, variances) == pytest.approx(expected, rel=1e-12)
