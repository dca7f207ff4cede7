"""A small vectorized simulator of consortia with a known effect, for recovery and coverage tests.

The same data-generating model and default parameters as the demo consortium (demo/population.py):
prior attainment z ~ N(0, 1); usage propensity logit(0.7) + 0.6 z (+ a school shift): selection
bias; users' total minutes lognormal(log 550 + 0.35 z, 0.85), banded at 300 / 900 minutes (dose
1/3, 2/3, 1); pre = 50 + 10 z + N(0, 5); post = pre + 5 + 0.1 (pre - 50) + dose * true_effect *
POST_SD + u_school + N(0, 4), u_school ~ N(0, 2); attrition 7 % of users, 10.5 % of non-users.
Post depends on z only through pre, so adjusting for pre removes the selection; the naive
post-test difference does not (nor, because of the 0.1 slope, do gain scores entirely).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from transforms.impact.effect_size import NotEstimable
from transforms.impact.estimators import ancova_effect

BAND_NAMES = np.array(["none", "low", "medium", "high"])


@dataclass(frozen=True, slots=True)
class SimulationDesign:
    """Parameters of the data-generating model; defaults are the demo consortium's."""

    n_schools: int = 6
    students_per_school: int = 120
    true_effect: float = 0.25  # post-test shift at dose 1 (band high), in units of post_sd
    dose_by_band: tuple[float, float, float] = (1 / 3, 2 / 3, 1.0)  # low, medium, high
    user_share: float = 0.70  # at z = 0, averaged over schools
    selection: float = 0.6  # log-odds of use per SD of z: the source of selection bias
    school_usage_spread: float = 0.8  # school usage shifts on the logit scale, -spread..+spread
    usage_median_minutes: float = 550.0
    usage_z_slope: float = 0.35
    usage_log_sd: float = 0.85
    band_thresholds: tuple[float, float] = (300.0, 900.0)  # inclusive upper bounds of low, medium
    pre_mean: float = 50.0
    pre_z_scale: float = 10.0
    pre_noise_sd: float = 5.0
    growth: float = 5.0
    growth_slope: float = 0.1
    school_sd: float = 2.0
    post_noise_sd: float = 4.0
    attrition_users: float = 0.07
    attrition_non_users: float = 0.105

    @property
    def post_sd(self) -> float:
        """SD of post among non-users (the demo's unit of ``true_effect``)."""
        slope = 1.0 + self.growth_slope
        pre_var = self.pre_z_scale**2 + self.pre_noise_sd**2
        return math.sqrt(slope**2 * pre_var + self.school_sd**2 + self.post_noise_sd**2)

    def usage_intercepts(self) -> np.ndarray:
        """Fixed school usage rates (logit scale), so the population effect size is a constant."""
        base = math.log(self.user_share / (1.0 - self.user_share))
        return base + np.linspace(-self.school_usage_spread, self.school_usage_spread, self.n_schools)


def _simulate(
    design: SimulationDesign, n_consortia: int, students_per_school: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    shape = (n_consortia, design.n_schools, students_per_school)
    z = rng.standard_normal(shape)
    school_effect = rng.normal(0, design.school_sd, shape[:2])[..., None]
    logit = design.usage_intercepts()[None, :, None] + design.selection * z
    user = rng.random(shape) < 1.0 / (1.0 + np.exp(-logit))
    log_minutes = (
        math.log(design.usage_median_minutes)
        + design.usage_z_slope * z
        + design.usage_log_sd * rng.standard_normal(shape)
    )
    minutes = np.where(user, np.exp(log_minutes), 0.0)
    low_max, medium_max = design.band_thresholds
    band_index = np.where(user, 1 + (minutes > low_max) + (minutes > medium_max), 0)
    dose = np.concatenate([[0.0], np.asarray(design.dose_by_band)])[band_index]
    pre = design.pre_mean + design.pre_z_scale * z + design.pre_noise_sd * rng.standard_normal(shape)
    post = (
        pre
        + design.growth
        + design.growth_slope * (pre - design.pre_mean)
        + design.true_effect * design.post_sd * dose
        + school_effect
        + design.post_noise_sd * rng.standard_normal(shape)
    )
    attrition = np.where(user, design.attrition_users, design.attrition_non_users)
    post = np.where(rng.random(shape) < attrition, np.nan, post)
    return {
        "consortium": np.broadcast_to(np.arange(n_consortia)[:, None, None], shape),
        "school": np.broadcast_to(np.arange(design.n_schools)[None, :, None], shape),
        "z": z,
        "pre": pre,
        "post": post,
        "user": user,
        "band_index": band_index,
        "minutes": minutes,
    }


def simulate_consortia(design: SimulationDesign, n_consortia: int, seed: int) -> dict[str, np.ndarray]:
    """Arrays shaped (consortium, school, student) for ``n_consortia`` independent consortia."""
    return _simulate(design, n_consortia, design.students_per_school, np.random.default_rng(seed))


def simulate_analysis_frame(design: SimulationDesign, seed: int) -> pl.DataFrame:
    """One synthetic consortium as an analysis frame (docs/interfaces.md columns)."""
    rng = np.random.default_rng(seed)
    arrays = {k: v[0].reshape(-1) for k, v in _simulate(design, 1, design.students_per_school, rng).items()}
    n = arrays["z"].size
    # low attainment raises FRL status: subgroups correlate with prior attainment, as in schools
    frl = rng.random(n) < 1.0 / (1.0 + np.exp(0.5 + 0.8 * arrays["z"]))
    return pl.DataFrame(
        {
            "school_id": [f"S{s:02d}" for s in arrays["school"]],
            "student_pid": [f"{i:064x}" for i in range(n)],
            "pre": arrays["pre"],
            "post": arrays["post"],
            "minutes": arrays["minutes"],
            "active_weeks": np.where(arrays["user"], np.clip(arrays["minutes"] // 30, 1, 36), 0).astype(int),
            "band": BAND_NAMES[arrays["band_index"]],
            "user": arrays["user"],
            "grade": rng.integers(6, 9, n),
            "frl": frl,
            "ell": rng.random(n) < 0.15,
            "disability": rng.random(n) < 0.12,
            "sex": rng.choice(["F", "M", "X"], n, p=[0.49, 0.49, 0.02]),
        }
    ).with_columns(pl.col("post").fill_nan(None))


def population_effect_size(
    design: SimulationDesign, band: str | None = None, students_per_school: int = 200_000, seed: int = 0
) -> float:
    """The estimand: the adjusted g a huge consortium would give (fixed-effect mean over schools).

    The WWC standardizer is the within-arm post-test SD, which selection narrows, so the true g is
    not exactly ``true_effect``; it is computed here once with the same estimator on a large sample.
    ``band`` None means users vs non-users, otherwise that band vs 'none'.
    """
    population = replace(design, attrition_users=0.0, attrition_non_users=0.0)
    arrays = _simulate(population, 1, students_per_school, np.random.default_rng(seed))
    effects, weights = [], []
    for school in range(design.n_schools):
        post, pre = arrays["post"][0, school], arrays["pre"][0, school]
        band_index = arrays["band_index"][0, school]
        if band is None:
            keep, treated = np.ones_like(post, dtype=bool), band_index > 0
        else:
            code = int(np.flatnonzero(band == BAND_NAMES)[0])
            keep = (band_index == code) | (band_index == 0)
            treated = band_index == code
        estimate = ancova_effect(post[keep], pre[keep], treated[keep].astype(float))
        if isinstance(estimate, NotEstimable):
            raise ValueError(estimate.reason)
        effects.append(estimate.g)
        weights.append(1.0 / estimate.var_g)
    return float(np.average(effects, weights=weights))
