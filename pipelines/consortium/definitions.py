import dagster as dg

from pipelines.consortium.assets import published_release, reports
from pipelines.consortium.checks import disclosure_audit

defs = dg.Definitions(assets=[published_release, reports], asset_checks=[disclosure_audit])
