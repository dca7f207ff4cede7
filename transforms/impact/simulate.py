"""A small vectorized simulator of consortia with a known effect, for recovery and coverage tests.

Same data-generating model as the demo consortium:
prior attainment z ~ N(0, 1); usage propensity rises with z (selection bias); among users a usage
intensity, also rising with z, sets the band; post = pre + growth + true_effect * SD * dose(band)
+ school effect + noise. The pre-test measures z without error, so adjusting for it removes the
selection; the naive post-test difference does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from transforms.impact.effect_size import NotEstimable
from transforms.impact.estimators import ancova_effect

BAND_NAMES = np.array(["none", "low", "medium", "high"])


@dataclass(frozen=True, slots=True)
class SimulationDesign:
    """Parameters of the data-generating model (scores on a scale with SD ``score_sd``)."""

    n_schools: int = 6
    students_per_school: int = 120
    true_effect: float = 0.25  # post-test shift at dose 1, in units of score_sd
    dose_by_band: tuple[float, float, float] = (1 / 3, 2 / 3, 1.0)  # low, medium, high
    selection: float = 1.0  # logit slope of usage on z: the source of selection bias
    intensity_selection: float = 0.5  # slope of usage intensity on z among users
    score_mean: float = 200.0
    score_sd: float = 15.0
    growth: float = 10.0
    noise_sd: float = 7.5  # post-test noise given pre-test
    school_level_sd: float = 0.3  # school differences in mean attainment, in SD units
    school_growth_sd: float = 0.2  # school differences in growth, in SD units
    attrition_rate: float = 0.10  # missing completely at random
    minutes_per_intensity: float = 0.6

    def usage_intercepts(self) -> np.ndarray:
        """Fixed school usage rates (logit scale), so the population effect size is a constant."""
        return np.linspace(-0.8, 0.8, self.n_schools)


def _simulate(
    design: SimulationDesign, n_consortia: int, students_per_school: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    shape = (n_consortia, design.n_schools, students_per_school)
    z = rng.standard_normal(shape)
    school_level = rng.normal(0, design.school_level_sd, shape[:2])[..., None]
    school_growth = rng.normal(0, design.school_growth_sd, shape[:2])[..., None]
    logit = design.usage_intercepts()[None, :, None] + design.selection * z
    user = rng.random(shape) < 1.0 / (1.0 + np.exp(-logit))
    intensity = design.intensity_selection * z + rng.standard_normal(shape)
    # tertile-like cut points of intensity among users: -0.43 and 0.43 (N(0, ~1.1) scale)
    band_index = np.where(user, 1 + (intensity >= -0.43) + (intensity >= 0.43), 0)
    dose = np.concatenate([[0.0], np.asarray(design.dose_by_band)])[band_index]
    sd = design.score_sd
    pre = design.score_mean + sd * (school_level + z)
    post = (
        pre
        + design.growth
        + design.true_effect * sd * dose
        + sd * school_growth
        + design.noise_sd * rng.standard_normal(shape)
    )
    post = np.where(rng.random(shape) < design.attrition_rate, np.nan, post)
    minutes = np.where(user, np.exp(4.0 + design.minutes_per_intensity * intensity), 0.0)
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
    population = replace(design, attrition_rate=0.0)
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
