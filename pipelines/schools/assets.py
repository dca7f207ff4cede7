import dagster as dg

from pipelines.resources import ImpactHome
from pipelines.schools.partitions import schools_partitions
from privacy.audit_log import AuditLog
from privacy.encryption import DataKeyStore
from transforms.intake import intake_school
from transforms.scrubbing import roster_text_scrubber


@dg.asset(
    partitions_def=schools_partitions,
    group_name="schools",
    kinds={"parquet", "polars"},
    description="One school's exports: contract-checked, minimized, pseudonymized into staging/ (restricted).",
)
def staged_school(context: dg.AssetExecutionContext, impact: ImpactHome) -> dg.MaterializeResult:
    home = impact.paths
    school_id = context.partition_key
    # A wrong master key stops here, before intake moves, logs or removes anything of the school.
    DataKeyStore.from_env(home.root).check_master(school_id)
    result = intake_school(
        home,
        impact.contracts(),
        school_id,
        impact.pseudonym_key(),
        roster_text_scrubber,
        audit=AuditLog.for_home(home.root, actor=f"run-{context.run_id[:8]}"),
        max_bytes=impact.max_export_bytes,
    )
    # Counts and names only: Dagster's event log lives outside the restricted zones' guarantees.
    return dg.MaterializeResult(
        metadata={
            "skipped_unchanged": result.skipped,
            "contract": result.contract or "none",
            "staged_rows": dg.MetadataValue.json(result.staged_rows),
            "files_quarantined": len(result.quarantined),
            "rows_rejected": sum(r["rows"] for f in result.files for r in f.get("rejects", [])),
            "pii_findings_in_free_text": dg.MetadataValue.json(result.pii_findings),
        }
    )
