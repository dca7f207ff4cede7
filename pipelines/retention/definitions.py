"""The retention domain's Definitions: the asset, its job and the daily schedule."""

from pipelines.retention.assets import retention_defs

defs = retention_defs
