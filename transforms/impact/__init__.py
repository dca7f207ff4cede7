"""Impact statistics: effect sizes, baseline equivalence, pooling across schools, evidence tiers.

Plain functions over numpy arrays and Polars frames (no Dagster). The models, formulas and the
evidence rule are documented in docs/statistics.md.
"""

from transforms.impact.attrition import Attrition, attrition, attrition_pct
from transforms.impact.effect_size import (
    BaselineCategory,
    NotEstimable,
    baseline_category,
    baseline_equivalence_holds,
    hedges_correction,
    hedges_g,
    hedges_g_variance,
    improvement_index,
    pooled_sd,
)
from transforms.impact.estimators import (
    BaselineDifference,
    EffectEstimate,
    ancova_effect,
    baseline_difference,
    gain_score_effect,
    school_fixed_effects_effect,
    unadjusted_effect,
)
from transforms.impact.evidence import EvidenceStatement, essa_evidence, heterogeneity_label
from transforms.impact.pooling import (
    PooledEffect,
    cochran_q,
    dersimonian_laird_tau2,
    i_squared,
    pool_effects,
    prediction_interval,
    reml_tau2,
    restricted_log_likelihood,
)
from transforms.impact.tables import COMPARISONS, estimate_comparison, impact_tables

__all__ = [
    "COMPARISONS",
    "Attrition",
    "BaselineCategory",
    "BaselineDifference",
    "EffectEstimate",
    "EvidenceStatement",
    "NotEstimable",
    "PooledEffect",
    "ancova_effect",
    "attrition",
    "attrition_pct",
    "baseline_category",
    "baseline_difference",
    "baseline_equivalence_holds",
    "cochran_q",
    "dersimonian_laird_tau2",
    "essa_evidence",
    "estimate_comparison",
    "gain_score_effect",
    "hedges_correction",
    "hedges_g",
    "hedges_g_variance",
    "heterogeneity_label",
    "i_squared",
    "impact_tables",
    "improvement_index",
    "pool_effects",
    "pooled_sd",
    "prediction_interval",
    "reml_tau2",
    "restricted_log_likelihood",
    "school_fixed_effects_effect",
    "unadjusted_effect",
]
