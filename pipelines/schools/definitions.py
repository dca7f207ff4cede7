import dagster as dg

from pipelines.schools.assets import staged_school
from pipelines.schools.sensors import landing_sensor

defs = dg.Definitions(assets=[staged_school], sensors=[landing_sensor])
