"""Thin Definitions: each domain's own Definitions (assets, checks, sensors, schedules), merged."""

import dagster as dg

from pipelines.consortium import definitions as consortium_definitions
from pipelines.resources import default_resources
from pipelines.retention import definitions as retention_definitions
from pipelines.schools import definitions as schools_definitions

defs = dg.Definitions.merge(
    schools_definitions.defs,
    consortium_definitions.defs,
    retention_definitions.defs,
    dg.Definitions(resources=default_resources()),
)
