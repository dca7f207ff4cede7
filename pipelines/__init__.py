"""Dagster definitions, assets, checks, sensors, schedules and the `impact` CLI."""
