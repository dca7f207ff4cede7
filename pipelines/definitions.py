"""Thin Definitions: each domain's assets, checks, sensors and schedules, merged."""

import dagster as dg

from pipelines.consortium.assets import published_release, reports
from pipelines.resources import default_resources
from pipelines.schools.assets import staged_school
from pipelines.schools.sensors import landing_sensor

schools = dg.Definitions(assets=[staged_school], sensors=[landing_sensor])
consortium = dg.Definitions(assets=[published_release, reports])

defs = dg.Definitions.merge(schools, consortium, dg.Definitions(resources=default_resources()))
