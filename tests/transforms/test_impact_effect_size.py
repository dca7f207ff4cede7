"""Effect sizes and single-comparison estimators agree with statsmodels and with first principles."""

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.meta_analysis import effectsize_smd

from transforms.impact import (
    BaselineCategory,
    EffectEstimate,
    NotEstimable,
    ancova_effect,
    baseline_category,
    baseline_difference,
    baseline_equivalence_holds,
    gain_score_effect,
    hedges_g,
    improvement_index,
    school_fixed_effects_effect,
    unadjusted_effect,
)

# (mean1, mean2, sd1, sd2, n1, n2): balanced, unbalanced, negative, tiny and large samples
SMD_FIXTURES = [
    (105.0, 100.0, 15.0, 15.0, 50, 50),
    (3.2, 2.9, 1.1, 0.8, 12, 31),
    (-0.4, 0.3, 2.0, 2.5, 7, 5),
    (510.0, 498.0, 95.0, 102.0, 1200, 3400),
    (0.0, 0.0, 1.0, 3.0, 4, 4),
]


@pytest.mark.parametrize(("m1", "m2", "s1", "s2", "n1", "n2"), SMD_FIXTURES)
def test_hedges_g_matches_statsmodels_effectsize_smd(m1, m2, s1, s2, n1, n2):
    g, var_g = hedges_g(m1, m2, s1, s2, n1, n2)
    sm_g, sm_var = effectsize_smd(m1, s1, n1, m2, s2, n2)
    assert g == pytest.approx(sm_g, abs=1e-8)
    assert var_g == pytest.approx(sm_var, abs=1e-8)


def test_hedges_g_from_textbook_formula():
    # Hedges & Olkin (1985): d = diff / pooled SD; g = d * (1 - 3 / (4 (n1 + n2) - 9)).
    g, _ = hedges_g(105.0, 100.0, 12.0, 16.0, 20, 30)
    pooled = math.sqrt((19 * 144 + 29 * 256) / 48)
    assert g == pytest.approx(5.0 / pooled * (1 - 3 / (4 * 50 - 9)), rel=1e-12)


def test_hedges_g_rejects_degenerate_groups():
    with pytest.raises(ValueError, match="zero"):
        hedges_g(1.0, 1.0, 0.0, 0.0, 10, 10)
    with pytest.raises(ValueError, match="at least 2"):
        hedges_g(1.0, 0.0, 1.0, 1.0, 1, 10)


def test_improvement_index_is_u3_minus_50():
    assert improvement_index(0.0) == 0.0
    # WWC Handbook example scale: g = 0.25 -> about +10 percentile points
    assert improvement_index(0.25) == pytest.approx(100 * (stats.norm.cdf(0.25) - 0.5))
    assert round(improvement_index(0.25)) == 10
    assert improvement_index(-0.4) == pytest.approx(-improvement_index(0.4))


@pytest.mark.parametrize(
    ("g_pre", "category", "holds"),
    [
        (0.0, BaselineCategory.SATISFIED, True),
        (-0.05, BaselineCategory.SATISFIED, True),
        (0.051, BaselineCategory.REQUIRES_ADJUSTMENT, True),
        (-0.25, BaselineCategory.REQUIRES_ADJUSTMENT, True),
        (0.2501, BaselineCategory.NOT_SATISFIED, False),
    ],
)
def test_wwc_baseline_categories(g_pre, category, holds):
    assert baseline_category(g_pre) is category
    assert baseline_equivalence_holds(g_pre) is holds


def test_adjustable_baseline_needs_an_adjusting_model():
    assert not baseline_equivalence_holds(0.2, model_adjusts_for_pretest=False)
    assert baseline_equivalence_holds(0.03, model_adjusts_for_pretest=False)


def _school(seed: int, n: int = 80, effect: float = 3.0):
    rng = np.random.default_rng(seed)
    pre = rng.normal(50, 10, n)
    treated = (rng.random(n) < 1 / (1 + np.exp(-(pre - 50) / 10))).astype(float)
    post = 5 + 0.9 * pre + effect * treated + rng.normal(0, 5, n)
    return post, pre, treated


def test_ancova_effect_is_the_wwc_standardized_ols_coefficient():
    post, pre, treated = _school(1)
    result = ancova_effect(post, pre, treated)
    assert isinstance(result, EffectEstimate)
    fit = sm.OLS(post, sm.add_constant(np.column_stack([treated, pre]))).fit()
    t, c = post[treated == 1], post[treated == 0]
    n1, n2 = len(t), len(c)
    s_pooled = math.sqrt(((n1 - 1) * t.var(ddof=1) + (n2 - 1) * c.var(ddof=1)) / (n1 + n2 - 2))
    omega = 1 - 3 / (4 * (n1 + n2) - 9)
    assert result.difference == pytest.approx(fit.params[1], rel=1e-10)
    assert result.g == pytest.approx(omega * fit.params[1] / s_pooled, rel=1e-10)
    expected_var = (omega / s_pooled) ** 2 * fit.bse[1] ** 2 + result.g**2 / (2 * (n1 + n2 - 3.94))
    assert result.var_g == pytest.approx(expected_var, rel=1e-10)
    assert result.df == n1 + n2 - 3
    crit = stats.t.isf(0.025, n1 + n2 - 3)
    assert result.ci_low == pytest.approx(result.g - crit * result.se)
    assert result.p == pytest.approx(2 * stats.t.sf(result.g / result.se, n1 + n2 - 3))
    assert result.mean_treated - result.mean_comparison == pytest.approx(result.difference)
    assert (result.n_treated, result.n_comparison) == (n1, n2)


def test_ancova_is_more_precise_than_the_unadjusted_difference():
    post, pre, treated = _school(2, n=200)
    adjusted, naive = ancova_effect(post, pre, treated), unadjusted_effect(post, treated)
    assert adjusted.var_g < naive.var_g / 3  # pre-test explains most post-test variance


def test_gain_score_is_difference_in_mean_gains_over_post_sd():
    post, pre, treated = _school(3)
    result = gain_score_effect(post, pre, treated)
    gain = post - pre
    diff = gain[treated == 1].mean() - gain[treated == 0].mean()
    assert result.difference == pytest.approx(diff, rel=1e-10)
    assert result.sd_pooled == pytest.approx(ancova_effect(post, pre, treated).sd_pooled)


def test_baseline_difference_is_hedges_g_of_the_pretest():
    _, pre, treated = _school(4)
    result = baseline_difference(pre, treated)
    t, c = pre[treated == 1], pre[treated == 0]
    g, _ = effectsize_smd(t.mean(), t.std(ddof=1), len(t), c.mean(), c.std(ddof=1), len(c))
    assert result.g == pytest.approx(g, abs=1e-10)
    assert result.category is baseline_category(g)


def test_school_fixed_effects_model_matches_statsmodels_cluster_robust_ols():
    parts = [_school(seed, n=60) for seed in range(5)]
    post = np.concatenate([p[0] + 10 * i for i, p in enumerate(parts)])  # school shifts
    pre = np.concatenate([p[1] for p in parts])
    treated = np.concatenate([p[2] for p in parts])
    school = np.repeat([f"S{i}" for i in range(5)], 60)
    result = school_fixed_effects_effect(post, pre, treated, school)
    dummies = (school[:, None] == np.unique(school)[None, :]).astype(float)
    fit = sm.OLS(post, np.column_stack([treated, pre, dummies])).fit(
        cov_type="cluster", cov_kwds={"groups": np.unique(school, return_inverse=True)[1]}
    )
    assert result.difference == pytest.approx(fit.params[0], rel=1e-9)
    omega = 1 - 3 / (4 * len(post) - 9)
    expected_var = (omega / result.sd_pooled) ** 2 * fit.bse[0] ** 2 + result.g**2 / (2 * (len(post) - 3.94))
    assert result.var_g == pytest.approx(expected_var, rel=1e-9)  # same CR1 sandwich as statsmodels
    assert result.df == 4  # t with G - 1 df
    assert result.ci_low < result.g < result.ci_high


@pytest.mark.parametrize(
    ("post", "pre", "treated", "reason"),
    [
        ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], "no comparison"),
        ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0], "no treated"),
        ([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0], [1, 0, 0, 0, 0], "arm too small"),
        ([7.0, 7.0, 7.0, 7.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 0, 0], "post-test has zero variance"),
        ([1.0, 2.0, 3.0, 5.0], [3.0, 3.0, 3.0, 3.0], [1, 1, 0, 0], "pre-test has zero variance"),
        ([1.0, 2.0, 3.0, 5.0], [1.0, 1.0, 2.0, 2.0], [1, 1, 0, 0], "collinear"),
        ([np.nan] * 4, [1.0, 2.0, 3.0, 4.0], [1, 1, 0, 0], "no treated"),
    ],
)
def test_degenerate_schools_are_not_estimable(post, pre, treated, reason):
    result = ancova_effect(np.array(post), np.array(pre), np.array(treated, dtype=float))
    assert isinstance(result, NotEstimable)
    assert reason in result.reason


def test_exact_fit_is_not_estimable_instead_of_infinite_precision():
    pre = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    treated = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    result = ancova_effect(2 * pre + treated, pre, treated)
    assert isinstance(result, NotEstimable)
    assert "residual variance" in result.reason


def test_student_level_model_needs_two_schools():
    post, pre, treated = _school(5)
    result = school_fixed_effects_effect(post, pre, treated, np.array(["S1"] * len(post)))
    assert isinstance(result, NotEstimable)
    assert "2 schools" in result.reason
