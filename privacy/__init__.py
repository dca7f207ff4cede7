"""Pure privacy mechanisms over Polars frames (never imports Dagster)."""
