import warnings

import dagster as dg

from pipelines.resources import ImpactHome
from pipelines.schools.assets import staged_school
from pipelines.schools.partitions import schools_partitions
from privacy.audit_log import AuditLog
from transforms.validation import agreement_for_staging, validate_school, write_expectations

DESCRIPTION = (
    "Great Expectations suites derived from the school's contract (columns, types, required, unique, "
    "allowed values, ranges, row counts) over its staging. A failure stops this school's downstream "
    "assets and keeps it out of the consortium release; other schools go on."
)


def _staging_meets_contract(
    context: dg.AssetCheckExecutionContext, impact: ImpactHome
) -> dg.AssetCheckResult:
    home = impact.paths
    school_id = context.partition_key
    agreement = agreement_for_staging(home, impact.contracts(), school_id)
    if agreement is None:
        return dg.AssetCheckResult(
            passed=True,
            description="no valid contract: nothing was staged, nothing to check",
            metadata={"datasets_checked": 0},
        )
    report = validate_school(home, agreement, school_id)
    write_expectations(home, report)
    AuditLog.for_home(home.root, actor=f"run-{context.run.run_id[:8]}").append(
        "validated",
        school_id=school_id,
        datasets=report["datasets_checked"],
        ok=report["passed"],
        count=report["expectations_evaluated"],
        failed_count=report["expectations_failed"],
    )
    # Counts and names only: Dagster's event log sits outside the restricted zones.
    return dg.AssetCheckResult(
        passed=report["passed"],
        metadata={
            "contract": report["contract"],
            "datasets_checked": len(report["datasets_checked"]),
            "datasets_failed": dg.MetadataValue.json(report["datasets_failed"]),
            "expectations_evaluated": report["expectations_evaluated"],
            "expectations_failed": report["expectations_failed"],
        },
    )


# Partitioned asset checks are a Dagster "preview" feature; we rely on it knowingly (one verdict per
# school partition), so its warning is not repeated at every import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    staging_meets_contract = dg.asset_check(
        asset=staged_school,
        name="staging_meets_contract",
        blocking=True,
        partitions_def=schools_partitions,
        description=DESCRIPTION,
    )(_staging_meets_contract)
