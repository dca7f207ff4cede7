"""Reading the release for rendering: published/ only, never restricted zones."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

HIDDEN = ("suppressed", "suppressed_secondary")


def load_release(published: Path) -> tuple[dict, dict[str, pl.DataFrame]]:
    manifest_path = published / "manifest.json"
    if not manifest_path.exists():
        return {}, {}
    manifest = json.loads(manifest_path.read_text())
    tables = {
        name: pl.read_parquet(published / entry["parquet"]) for name, entry in manifest["tables"].items()
    }
    return manifest, tables


def load_compliance(published: Path) -> dict:
    path = published / "compliance_report.json"
    return json.loads(path.read_text()) if path.exists() else {}


def display_value(row: dict, digits: int = 2) -> str:
    """What a reader sees for one tidy row: the number, a band, or why it is hidden."""
    status = row.get("status")
    if status in HIDDEN:
        return "suppressed"
    if status == "banded":
        return row.get("note") or "banded"
    if status == "not_estimable":
        return "not estimable"
    value = row.get("value")
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:,.{digits}f}"


def measure(table: pl.DataFrame | None, **where) -> dict | None:
    """The one row of `table` matching every `column == value` in `where`, as a dict."""
    if table is None:
        return None
    frame = table
    for column, value in where.items():
        if column not in frame.columns:
            return None
        frame = frame.filter(pl.col(column) == value)
    return frame.row(0, named=True) if frame.height else None
