import dagster as dg

from dashboards.render import render_all
from pipelines.resources import ImpactHome
from pipelines.schools.assets import staged_school
from transforms.release_run import run_release


@dg.asset(
    deps=[staged_school],
    group_name="consortium",
    kinds={"parquet", "csv"},
    description="Aggregates of every school whose contract allows each purpose, after disclosure control.",
)
def published_release(context: dg.AssetExecutionContext, impact: ImpactHome) -> dg.MaterializeResult:
    outcome = run_release(impact.paths, impact.contracts(), actor=f"run-{context.run_id[:8]}")
    return dg.MaterializeResult(
        metadata={
            "unchanged": outcome.unchanged,
            "release": outcome.release_id[:16],
            "tables": len(outcome.table_rows),
            "rows_by_table": dg.MetadataValue.json(outcome.table_rows),
            "cells_suppressed": outcome.cells_suppressed,
        }
    )


@dg.asset(
    deps=[published_release],
    group_name="consortium",
    kinds={"html", "plotly"},
    description="impact_report.html, compliance_report.html, funder_dashboard.html — from published/ only.",
)
def reports(context: dg.AssetExecutionContext, impact: ImpactHome) -> dg.MaterializeResult:
    written = render_all(impact.paths.published)
    return dg.MaterializeResult(metadata={"files": dg.MetadataValue.json([p.name for p in written])})
