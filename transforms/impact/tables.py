"""Tidy publication tables of the impact analysis (format: docs/interfaces.md, "Published tables").

Every table: dimension columns, then measure, value, n, status ('published' | 'not_estimable'),
note. ``n`` is the number of distinct students behind the value, both arms together; each
comparison also carries ``n_treated`` and ``n_comparison`` measure rows so disclosure control can
check each arm. Not-estimable values are null (never NaN) with the reason in ``note``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from statsmodels.stats.multitest import multipletests

from transforms.impact.attrition import Attrition, attrition
from transforms.impact.effect_size import NotEstimable, baseline_category, baseline_equivalence_holds
from transforms.impact.estimators import (
    BaselineDifference,
    EffectEstimate,
    ancova_effect,
    baseline_difference,
    gain_score_effect,
    school_fixed_effects_effect,
)
from transforms.impact.evidence import essa_evidence
from transforms.impact.pooling import POOLING_MODELS, PooledEffect, pool_effects
from transforms.metrics import usage_band

BANDS = ("low", "medium", "high")
COMPARISONS = ("users_vs_nonusers", *(f"{band}_vs_none" for band in BANDS))
HEADLINE_MODEL = "reml"
SUBGROUPS = ("frl", "ell", "disability", "grade")
ALL_SCHOOLS = "ALL"

PUBLISHED = "published"
NOT_ESTIMABLE = "not_estimable"

Estimator = Callable[..., EffectEstimate | NotEstimable]


# --- preparing the comparison ------------------------------------------------------------------


def assign_bands(analysis: pl.DataFrame, band_thresholds: Sequence[float] | None = None) -> pl.DataFrame:
    """Re-band usage from total minutes when thresholds are given, else keep the frame's band.

    ``band_thresholds = (low_max, medium_max)``, inclusive upper bounds in total minutes, applied
    with :func:`transforms.metrics.usage_band` so the bands match the published usage tables.
    """
    if band_thresholds is None:
        return analysis
    return analysis.with_columns(
        usage_band(pl.col("minutes"), band_thresholds).alias("band"), (pl.col("minutes") > 0).alias("user")
    )


def comparison_frame(analysis: pl.DataFrame, comparison: str) -> pl.DataFrame:
    """The students in a comparison's two arms with a boolean ``treated`` column."""
    if comparison == "users_vs_nonusers":
        return analysis.with_columns(pl.col("user").fill_null(False).alias("treated"))
    band = comparison.removesuffix("_vs_none")
    if band not in BANDS:
        raise ValueError(f"unknown comparison {comparison!r}")
    return analysis.filter(pl.col("band").is_in([band, "none"])).with_columns(
        (pl.col("band") == band).alias("treated")
    )


def _has_outcome() -> pl.Expr:
    """True for students with both tests; nulls and NaNs both count as missing."""
    return pl.col("post").is_not_null() & pl.col("post").is_not_nan() & pl.col("pre").is_not_null()


def analytic_sample(frame: pl.DataFrame) -> pl.DataFrame:
    """Students with both a pre-test and a post-test (the WWC analytic sample)."""
    return frame.filter(_has_outcome())


def _arrays(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        frame["post"].cast(pl.Float64).to_numpy(),
        frame["pre"].cast(pl.Float64).to_numpy(),
        frame["treated"].cast(pl.Float64).to_numpy(),
    )


@dataclass
class ComparisonResult:
    """Everything estimated for one comparison on one (sub)sample."""

    comparison: str
    arm_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    by_school: dict[str, EffectEstimate | NotEstimable] = field(default_factory=dict)
    gain_by_school: dict[str, EffectEstimate | NotEstimable] = field(default_factory=dict)
    baseline_by_school: dict[str, BaselineDifference | NotEstimable] = field(default_factory=dict)
    pooled: dict[str, PooledEffect | NotEstimable] = field(default_factory=dict)
    baseline_pooled: float | NotEstimable = field(default_factory=lambda: NotEstimable("not computed"))
    student_level: EffectEstimate | NotEstimable = field(default_factory=lambda: NotEstimable("not computed"))

    def estimable_schools(self) -> list[str]:
        return [s for s, e in self.by_school.items() if isinstance(e, EffectEstimate)]

    def pooled_arm_counts(self) -> tuple[int, int]:
        """Arm sizes summed over the schools that contribute to the pooled estimate."""
        schools = self.estimable_schools()
        return (
            sum(self.by_school[s].n_treated for s in schools),
            sum(self.by_school[s].n_comparison for s in schools),
        )

    def total_arm_counts(self) -> tuple[int, int]:
        return (
            sum(t for t, _ in self.arm_counts.values()),
            sum(c for _, c in self.arm_counts.values()),
        )


def pooled_baseline(baselines: Sequence[BaselineDifference | NotEstimable]) -> float | NotEstimable:
    """Inverse-variance (fixed-effect) mean of the schools' baseline g.

    Baseline equivalence describes *this* sample, so fixed-effect weights are the right summary; it
    is within-school, matching the impact models that compare students within their school.
    """
    usable = [b for b in baselines if isinstance(b, BaselineDifference)]
    if not usable:
        return NotEstimable("no school has both arms with a pre-test and a post-test")
    if len(usable) == 1:
        return usable[0].g
    pooled = pool_effects([b.g for b in usable], [b.var_g for b in usable], "fixed")
    return pooled if isinstance(pooled, NotEstimable) else pooled.estimate


def estimate_comparison(
    frame: pl.DataFrame,
    comparison: str,
    min_n: int = 2,
    alpha: float = 0.05,
    include_gain: bool = False,
    estimator: Estimator = ancova_effect,
) -> ComparisonResult:
    """Per-school effects, their pooling under each model, baseline and the student-level model.

    ``frame`` must already carry ``treated`` (see :func:`comparison_frame`).
    """
    result = ComparisonResult(comparison)
    sample = analytic_sample(frame).sort("school_id")
    for (school_id,), school in sample.group_by("school_id", maintain_order=True):
        post, pre, treated = _arrays(school)
        result.arm_counts[school_id] = (int(treated.sum()), int((1 - treated).sum()))
        result.by_school[school_id] = estimator(post, pre, treated, min_n=min_n, alpha=alpha)
        result.baseline_by_school[school_id] = baseline_difference(pre, treated, min_n=min_n)
        if include_gain:
            result.gain_by_school[school_id] = gain_score_effect(post, pre, treated, min_n, alpha)
    if not result.by_school:
        reason = NotEstimable("no students with both a pre-test and a post-test")
        result.pooled = dict.fromkeys(POOLING_MODELS, reason)
        result.baseline_pooled = reason
        result.student_level = reason
        return result
    estimates = [result.by_school[s] for s in result.estimable_schools()]
    for model in POOLING_MODELS:
        result.pooled[model] = pool_effects(
            [e.g for e in estimates], [e.var_g for e in estimates], model, alpha
        )
    result.baseline_pooled = pooled_baseline(list(result.baseline_by_school.values()))
    contributing = sample.filter(pl.col("school_id").is_in(result.estimable_schools()))
    if contributing.height == 0:
        result.student_level = NotEstimable("no school has an estimable comparison")
    else:
        post, pre, treated = _arrays(contributing)
        result.student_level = school_fixed_effects_effect(
            post, pre, treated, contributing["school_id"].to_numpy(), min_n, alpha
        )
    return result


# --- tidy rows ---------------------------------------------------------------------------------


def _row(dims: dict, measure: str, value, n: int | None, note: str = "") -> dict:
    """One tidy row; a missing or non-finite value becomes null with status not_estimable."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return {
            **dims,
            "measure": measure,
            "value": None,
            "n": n,
            "status": NOT_ESTIMABLE,
            "note": note or "not estimable",
        }
    return {**dims, "measure": measure, "value": float(value), "n": n, "status": PUBLISHED, "note": note}


def _arm_rows(dims: dict, n_treated: int, n_comparison: int) -> list[dict]:
    n = n_treated + n_comparison
    return [_row(dims, "n_treated", n_treated, n), _row(dims, "n_comparison", n_comparison, n)]


EFFECT_MEASURES = (
    "g",
    "se",
    "ci_low",
    "ci_high",
    "p",
    "improvement_index",
    "difference",
    "adj_mean_treated",
    "mean_comparison",
)


def _effect_values(estimate: EffectEstimate) -> dict[str, float]:
    return {
        "g": estimate.g,
        "se": estimate.se,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
        "p": estimate.p,
        "improvement_index": estimate.improvement_index,
        "difference": estimate.difference,
        "adj_mean_treated": estimate.mean_treated,
        "mean_comparison": estimate.mean_comparison,
    }


def _effect_rows(
    dims: dict, estimate: EffectEstimate | NotEstimable, n: int, note: str, prefix: str = ""
) -> list[dict]:
    if isinstance(estimate, NotEstimable):
        return [_row(dims, prefix + m, None, n, estimate.reason) for m in EFFECT_MEASURES]
    values = _effect_values(estimate)
    return [_row(dims, prefix + m, values[m], estimate.n, note) for m in EFFECT_MEASURES]


POOLED_MEASURES = ("g", "se", "ci_low", "ci_high", "p", "tau2", "i2", "q", "q_p", "pi_low", "pi_high")


def _pooled_rows(dims: dict, pooled: PooledEffect | NotEstimable, n: int, note: str) -> list[dict]:
    if isinstance(pooled, NotEstimable):
        return [_row(dims, m, None, n, pooled.reason) for m in (*POOLED_MEASURES, "k_schools")]
    values = {
        "g": pooled.estimate,
        "se": pooled.se,
        "ci_low": pooled.ci_low,
        "ci_high": pooled.ci_high,
        "p": pooled.p,
        "tau2": pooled.tau2,
        "i2": pooled.i2,
        "q": pooled.q,
        "q_p": pooled.q_p,
        "pi_low": pooled.pi_low,
        "pi_high": pooled.pi_high,
        "k_schools": float(pooled.k),
    }
    return [
        _row(dims, m, v, n, pooled.pi_reason if m.startswith("pi_") and v is None else note)
        for m, v in values.items()
    ]


_TABLE_DIMS = {
    "impact_by_school": ("school_id", "comparison"),
    "pooled_effects": ("comparison", "model"),
    "baseline_equivalence": ("school_id", "comparison"),
    "dosage_response": ("band",),
    "subgroup_effects": ("subgroup", "subgroup_value"),
    "attrition": ("group",),
    "evidence_summary": ("comparison",),
}


def _tidy(table: str, rows: list[dict]) -> pl.DataFrame:
    schema = {dim: pl.String for dim in _TABLE_DIMS[table]} | {
        "measure": pl.String,
        "value": pl.Float64,
        "n": pl.Int64,
        "status": pl.String,
        "note": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


# --- the tables ----------------------------------------------------------------------------------

MODEL_NOTES = {
    "fixed": "inverse-variance fixed effect (Hedges & Olkin 1985)",
    "dl": "random effects, DerSimonian & Laird (1986) tau2; normal CI; PI t(k-2)",
    "reml": "random effects, REML tau2 (Viechtbauer 2005); normal CI; PI t(k-2)",
}
ANCOVA_NOTE = "ANCOVA post ~ arm + pre; g = omega * adjusted diff / pooled post SD (WWC v5.0)"
STUDENT_LEVEL_NOTE = "student-level ANCOVA, school fixed effects, cluster-robust SE by school, t(G-1)"


def impact_by_school_rows(result: ComparisonResult, include_gain: bool) -> list[dict]:
    rows: list[dict] = []
    for school_id, estimate in result.by_school.items():
        dims = {"school_id": school_id, "comparison": result.comparison}
        n_t, n_c = result.arm_counts[school_id]
        rows += _arm_rows(dims, n_t, n_c)
        rows += _effect_rows(dims, estimate, n_t + n_c, ANCOVA_NOTE)
        if include_gain:
            gain = result.gain_by_school[school_id]
            rows += _effect_rows(dims, gain, n_t + n_c, "gain-score difference / pooled post SD", "gain_")
    dims = {"school_id": ALL_SCHOOLS, "comparison": result.comparison}
    n_t, n_c = result.pooled_arm_counts()
    rows += _arm_rows(dims, n_t, n_c)
    rows += _effect_rows(dims, result.student_level, n_t + n_c, STUDENT_LEVEL_NOTE)
    return rows


def pooled_effects_rows(result: ComparisonResult) -> list[dict]:
    rows: list[dict] = []
    n_t, n_c = result.pooled_arm_counts()
    for model in POOLING_MODELS:
        dims = {"comparison": result.comparison, "model": model}
        rows += _arm_rows(dims, n_t, n_c)
        rows += _pooled_rows(dims, result.pooled[model], n_t + n_c, MODEL_NOTES[model])
    return rows


def baseline_rows(result: ComparisonResult) -> list[dict]:
    rows: list[dict] = []
    entries: list[tuple[str, BaselineDifference | float | NotEstimable, int, int]] = [
        (s, b, *result.arm_counts[s]) for s, b in result.baseline_by_school.items()
    ]
    entries.append((ALL_SCHOOLS, result.baseline_pooled, *result.total_arm_counts()))
    for school_id, baseline, n_t, n_c in entries:
        dims = {"school_id": school_id, "comparison": result.comparison}
        rows += _arm_rows(dims, n_t, n_c)
        if isinstance(baseline, NotEstimable):
            rows += [_row(dims, m, None, n_t + n_c, baseline.reason) for m in ("g_pre", "meets_wwc")]
            continue
        g_pre = baseline.g if isinstance(baseline, BaselineDifference) else baseline
        note = f"WWC: {baseline_category(g_pre).value}"
        if school_id == ALL_SCHOOLS:
            note += "; fixed-effect mean of within-school baseline g"
        rows.append(_row(dims, "g_pre", g_pre, n_t + n_c, note))
        rows.append(_row(dims, "meets_wwc", float(baseline_equivalence_holds(g_pre)), n_t + n_c, note))
    return rows


def dosage_rows(results: dict[str, ComparisonResult]) -> list[dict]:
    rows: list[dict] = []
    for band in BANDS:
        result = results[f"{band}_vs_none"]
        dims = {"band": band}
        n_t, n_c = result.pooled_arm_counts()
        rows += _arm_rows(dims, n_t, n_c)
        pooled = result.pooled[HEADLINE_MODEL]
        note = f"vs band 'none'; {MODEL_NOTES[HEADLINE_MODEL]}"
        rows += [r for r in _pooled_rows(dims, pooled, n_t + n_c, note) if r["measure"] in _DOSE_MEASURES]
    return rows


_DOSE_MEASURES = ("g", "se", "ci_low", "ci_high", "p", "tau2", "k_schools")
_SUBGROUP_MEASURES = ("g", "ci_low", "ci_high", "p", "k_schools")


def _subgroup_values(analysis: pl.DataFrame, column: str) -> list:
    if column not in analysis.columns:
        return []
    return sorted(v for v in analysis[column].unique().to_list() if v is not None)


def _value_label(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def subgroup_rows(analysis: pl.DataFrame, min_n: int, alpha: float) -> list[dict]:
    """Users vs non-users within each subgroup value; BH-adjusted p across the whole family.

    Benjamini & Hochberg (1995) false discovery rate via statsmodels ``multipletests('fdr_bh')``;
    the family is every estimable subgroup x value row.
    """
    frame = comparison_frame(analysis, "users_vs_nonusers")
    cells = []
    for column in SUBGROUPS:
        for value in _subgroup_values(frame, column):
            subset = frame.filter(pl.col(column) == value)
            result = estimate_comparison(subset, "users_vs_nonusers", min_n, alpha)
            cells.append((column, _value_label(value), result))
    family = [
        (i, r.pooled[HEADLINE_MODEL].p)
        for i, (_, _, r) in enumerate(cells)
        if isinstance(r.pooled[HEADLINE_MODEL], PooledEffect)
    ]
    p_bh: dict[int, float] = {}
    if family:
        _, adjusted, _, _ = multipletests([p for _, p in family], alpha=alpha, method="fdr_bh")
        p_bh = {i: float(a) for (i, _), a in zip(family, adjusted, strict=True)}
    rows: list[dict] = []
    for i, (column, label, result) in enumerate(cells):
        dims = {"subgroup": column, "subgroup_value": label}
        n_t, n_c = result.pooled_arm_counts()
        rows += _arm_rows(dims, n_t, n_c)
        pooled = result.pooled[HEADLINE_MODEL]
        note = f"users vs non-users; {MODEL_NOTES[HEADLINE_MODEL]}"
        rows += [r for r in _pooled_rows(dims, pooled, n_t + n_c, note) if r["measure"] in _SUBGROUP_MEASURES]
        reason = pooled.reason if isinstance(pooled, NotEstimable) else ""
        bh_note = reason or f"Benjamini-Hochberg over {len(family)} rows"
        rows.append(_row(dims, "p_bh", p_bh.get(i), n_t + n_c, bh_note))
    return rows


def _attrition_group_rows(group: str, has_outcome: np.ndarray) -> list[dict]:
    dims = {"group": group}
    n = int(has_outcome.size)
    if n == 0:
        return [
            _row(dims, "n_students", 0, 0),
            _row(dims, "attrition_pct", None, 0, "no students in this group"),
        ]
    return [
        _row(dims, "n_students", n, n, "students with a pre-test"),
        _row(dims, "attrition_pct", 100.0 * float((~has_outcome).mean()), n, "share without a post-test"),
    ]


def _differential_rows(group: str, result: Attrition | NotEstimable, n: int) -> list[dict]:
    dims = {"group": group}
    rows = [_row(dims, "n_students", n, n, "students with a pre-test in both arms")]
    if isinstance(result, NotEstimable):
        return [*rows, _row(dims, "differential_pp", None, n, result.reason)]
    differential_note = "WWC differential attrition, |treated - comparison|"
    return [
        *rows,
        _row(dims, "overall_pct", result.overall_pct, result.n, "WWC overall attrition"),
        _row(dims, "differential_pp", result.differential_pp, result.n, differential_note),
    ]


def attrition_rows(analysis: pl.DataFrame) -> list[dict]:
    """Attrition overall, by arm and band, and differential for each comparison (WWC terms).

    The baseline sample is every student with a pre-test; attrited = no post-test.
    """
    frame = analysis.filter(pl.col("pre").is_not_null() & pl.col("pre").is_not_nan())
    has_post = frame.select(_has_outcome().fill_null(False))[:, 0].to_numpy().astype(bool)
    rows = _attrition_group_rows("all", has_post)
    user = frame["user"].fill_null(False).to_numpy().astype(bool)
    rows += _attrition_group_rows("users", has_post[user])
    rows += _attrition_group_rows("non_users", has_post[~user])
    rows += _differential_rows("users_vs_nonusers", attrition(has_post, user), int(has_post.size))
    band = frame["band"].to_numpy()
    for name in ("none", *BANDS):
        rows += _attrition_group_rows(f"band_{name}", has_post[band == name])
    for name in BANDS:
        arms = (band == name) | (band == "none")
        rows += _differential_rows(
            f"{name}_vs_none", attrition(has_post[arms], band[arms] == name), int(arms.sum())
        )
    return rows


def evidence_rows(results: dict[str, ComparisonResult], program: str, alpha: float) -> list[dict]:
    rows: list[dict] = []
    for comparison, result in results.items():
        n_t, n_c = result.pooled_arm_counts()
        statement = essa_evidence(
            result.pooled[HEADLINE_MODEL], result.baseline_pooled, n_t + n_c, program, alpha
        )
        dims = {"comparison": comparison}
        rows += _arm_rows(dims, n_t, n_c)
        tier = float(statement.tier) if statement.tier is not None else 0.0
        rows.append(_row(dims, "essa_tier", tier, n_t + n_c, statement.sentence))
    return rows


def impact_tables(
    analysis: pl.DataFrame,
    band_thresholds: Sequence[float] | None = None,
    min_n: int = 2,
    alpha: float = 0.05,
    include_gain: bool = False,
    program: str = "the shared teaching resources",
) -> dict[str, pl.DataFrame]:
    """All impact publication tables from the student-level analysis frame.

    Returns impact_by_school, pooled_effects, baseline_equivalence, dosage_response,
    subgroup_effects, attrition and evidence_summary (tidy; see the module docstring).
    ``min_n`` is the fewest students with both tests per arm and school for an estimate.
    """
    analysis = assign_bands(analysis, band_thresholds)
    results = {
        comparison: estimate_comparison(
            comparison_frame(analysis, comparison), comparison, min_n, alpha, include_gain
        )
        for comparison in COMPARISONS
    }
    by_school, pooled, baseline = [], [], []
    for result in results.values():
        by_school += impact_by_school_rows(result, include_gain)
        pooled += pooled_effects_rows(result)
        baseline += baseline_rows(result)
    return {
        "impact_by_school": _tidy("impact_by_school", by_school),
        "pooled_effects": _tidy("pooled_effects", pooled),
        "baseline_equivalence": _tidy("baseline_equivalence", baseline),
        "dosage_response": _tidy("dosage_response", dosage_rows(results)),
        "subgroup_effects": _tidy("subgroup_effects", subgroup_rows(analysis, min_n, alpha)),
        "attrition": _tidy("attrition", attrition_rows(analysis)),
        "evidence_summary": _tidy("evidence_summary", evidence_rows(results, program, alpha)),
    }
