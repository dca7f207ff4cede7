import dagster as dg

from pipelines.consortium.assets import published_release
from pipelines.resources import ImpactHome
from transforms.release_run import published_audit


@dg.asset_check(
    asset=published_release, blocking=True, description="The attacker's LP audit over the published files."
)
def disclosure_audit(impact: ImpactHome) -> dg.AssetCheckResult:
    report = published_audit(impact.paths, impact.contracts())
    narrowest = report.narrowest
    return dg.AssetCheckResult(
        passed=report.passed,
        metadata={
            "cells_checked": report.cells_checked,
            "failures": len(report.failures),
            "narrowest_width": None if narrowest is None else float(narrowest.width),
            "required_width": None if narrowest is None else float(narrowest.required),
        },
    )
