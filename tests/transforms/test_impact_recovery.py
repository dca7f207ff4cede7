"""Recovery: on seeded synthetic consortia with a known effect, the adjusted pooled CI covers the
truth about 95 % of the time and the naive unadjusted estimate is biased by selection."""

import numpy as np
import pytest

from transforms.impact import (
    ancova_effect,
    pool_effects,
    school_fixed_effects_effect,
    unadjusted_effect,
)
from transforms.impact.simulate import SimulationDesign, population_effect_size, simulate_consortia

N_CONSORTIA = 400
BINARY_DOSE = SimulationDesign(dose_by_band=(1.0, 1.0, 1.0))  # every user gets the full effect


def _pooled(estimates, model):
    return pool_effects([e.g for e in estimates], [e.var_g for e in estimates], model)


@pytest.fixture(scope="module")
def replications():
    design = BINARY_DOSE
    truth = population_effect_size(design)
    sims = simulate_consortia(design, N_CONSORTIA, seed=20240601)
    out = {"truth": truth, "fixed": [], "reml": [], "student": [], "naive": []}
    for c in range(N_CONSORTIA):
        adjusted, naive = [], []
        for s in range(design.n_schools):
            post, pre = sims["post"][c, s], sims["pre"][c, s]
            user = sims["user"][c, s].astype(float)
            adjusted.append(ancova_effect(post, pre, user))
            naive.append(unadjusted_effect(post, user))
        out["fixed"].append(_pooled(adjusted, "fixed"))
        out["reml"].append(_pooled(adjusted, "reml"))
        out["naive"].append(_pooled(naive, "fixed"))
        out["student"].append(
            school_fixed_effects_effect(
                sims["post"][c].ravel(),
                sims["pre"][c].ravel(),
                sims["user"][c].ravel().astype(float),
                sims["school"][c].ravel(),
            )
        )
    return out


def _coverage(results, truth):
    return float(np.mean([r.ci_low <= truth <= r.ci_high for r in results]))


def test_truth_is_near_the_designed_effect():
    # the demo's unit is the marginal post SD of non-users; the WWC standardizer is the SD within
    # school and arm, which excludes school differences and is narrowed by selection: g is a bit larger
    assert 0.25 < population_effect_size(BINARY_DOSE) < 0.28


@pytest.mark.parametrize("model", ["fixed", "reml", "student"])
def test_adjusted_95ci_covers_the_truth(replications, model):
    coverage = _coverage(replications[model], replications["truth"])
    assert 0.92 <= coverage <= 0.98, f"{model} coverage {coverage:.3f}"


def test_adjusted_estimate_is_unbiased(replications):
    estimates = np.array([r.estimate for r in replications["reml"]])
    monte_carlo_se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - replications["truth"]) < 3 * monte_carlo_se + 0.005


def test_naive_unadjusted_estimate_is_biased_by_selection(replications):
    estimates = np.array([r.estimate for r in replications["naive"]])
    bias = estimates.mean() - replications["truth"]
    assert bias > 0.3  # users had higher prior attainment: the naive g credits it to usage
    assert _coverage(replications["naive"], replications["truth"]) < 0.05


def test_dosage_effects_rise_with_band():
    design = SimulationDesign()  # dose 1/3, 2/3, 1 for low, medium, high
    truths = [population_effect_size(design, band) for band in ("low", "medium", "high")]
    assert truths[0] < truths[1] < truths[2]
    sims = simulate_consortia(design, 60, seed=7)
    covered = {band: 0 for band in ("low", "medium", "high")}
    means = {}
    for code, band in enumerate(("low", "medium", "high"), start=1):
        pooled = []
        for c in range(60):
            estimates = []
            for s in range(design.n_schools):
                bands = sims["band_index"][c, s]
                keep = (bands == code) | (bands == 0)
                estimates.append(
                    ancova_effect(
                        sims["post"][c, s][keep], sims["pre"][c, s][keep], (bands[keep] == code).astype(float)
                    )
                )
            result = _pooled(estimates, "reml")
            pooled.append(result.estimate)
            covered[band] += result.ci_low <= truths[code - 1] <= result.ci_high
        means[band] = float(np.mean(pooled))
    assert means["low"] < means["medium"] < means["high"]
    assert all(count >= 0.85 * 60 for count in covered.values()), covered
