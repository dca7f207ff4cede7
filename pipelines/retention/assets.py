"""The daily retention schedule: one unpartitioned asset whose materializations are the history of
what retention deleted (counts and school ids only, never a value)."""

from datetime import date

import dagster as dg

from pipelines.resources import ImpactHome
from pipelines.retention.run import optional_key, run_retention


class RetentionConfig(dg.Config):
    as_of: str = ""  # YYYY-MM-DD; empty: today
    dry_run: bool = False


@dg.asset(
    group_name="retention",
    kinds={"python"},
    description="Deletes what the contracts no longer allow (landing, quarantine, staging rows, ended schools).",
)
def retention_enforced(
    context: dg.AssetExecutionContext, config: RetentionConfig, impact: ImpactHome
) -> dg.MaterializeResult:
    as_of = date.fromisoformat(config.as_of) if config.as_of else None
    outcome = run_retention(
        impact.paths,
        as_of,
        dry_run=config.dry_run,
        actor=f"run-{context.run_id[:8]}",
        key=optional_key(impact.pseudonym_key),
        max_bytes=impact.max_export_bytes,
    )
    plan, result = outcome.plan, outcome.result
    for note in (result.notes if result else []) + plan.warnings:
        context.log.warning(note)
    return dg.MaterializeResult(
        metadata={
            "as_of": plan.as_of.isoformat(),
            "dry_run": config.dry_run,
            "items_due": len(plan.items),
            "staging_rows_due": plan.rows_due,
            "files_deleted": result.files_deleted if result else 0,
            "partitions_rewritten": result.partitions_rewritten if result else 0,
            "rows_deleted": result.rows_deleted if result else 0,
            "schools_ended": dg.MetadataValue.json(sorted(plan.ended_schools)),
        }
    )


retention_job = dg.define_asset_job("retention_job", selection=[retention_enforced])


@dg.schedule(
    job=retention_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    # Running by default: a contract's deletion promise must not depend on someone switching it on.
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_retention(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every day at 02:30 UTC, as of the scheduled day (a late tick still deletes as of its own day)."""
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(
        run_key=f"retention-{day}",
        run_config=dg.RunConfig(ops={"retention_enforced": RetentionConfig(as_of=day)}),
        tags={"retention_as_of": day},
    )


retention_defs = dg.Definitions(
    assets=[retention_enforced], jobs=[retention_job], schedules=[daily_retention]
)
