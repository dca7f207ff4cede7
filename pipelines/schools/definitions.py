import dagster as dg

from pipelines.schools.assets import staged_school
from pipelines.schools.checks import staging_meets_contract
from pipelines.schools.sensors import landing_sensor

defs = dg.Definitions(assets=[staged_school], asset_checks=[staging_meets_contract], sensors=[landing_sensor])
