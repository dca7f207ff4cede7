"""Reading the release for rendering (published/ only, never restricted zones) and formatting its
numbers for people: p < 0.001, 2–3 decimals, "suppressed" instead of a number that is hidden."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl

HIDDEN = ("suppressed", "suppressed_secondary")
TIDY = ("measure", "value", "n", "status", "note")
ALL = "ALL"


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


def min_cell_size(manifest: dict) -> int:
    return int(manifest.get("disclosure_control", {}).get("min_cell_size", 10))


def dims_of(table: pl.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in TIDY]


def is_hidden(row: dict | None) -> bool:
    return row is not None and row.get("status") in HIDDEN


def is_number(row: dict | None) -> bool:
    """A row whose value a reader may see as a number."""
    return (
        row is not None
        and row.get("status") not in (*HIDDEN, "banded", "not_estimable")
        and row.get("value") is not None
        and not math.isnan(row["value"])
    )


def fmt_count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_num(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "—"
    text = f"{value:,.{digits}f}"
    return "0." + "0" * digits if text.lstrip("-") == "0." + "0" * digits else text  # no "-0.00"


def fmt_p(p: float | None) -> str:
    """APA style: "< 0.001" below a thousandth, else three decimals."""
    if p is None or math.isnan(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def fmt_ci(low: float | None, high: float | None, digits: int = 2) -> str:
    return f"[{fmt_num(low, digits)}, {fmt_num(high, digits)}]"


def hidden_text(row: dict | None) -> str | None:
    """Why a row shows no number, in the words a reader sees; None when it has one."""
    if row is None:
        return "—"
    status = row.get("status")
    if status in HIDDEN:
        return "suppressed"
    if status == "banded":
        return row.get("note") or "banded"
    if status == "not_estimable":
        return "not estimable"
    if row.get("value") is None:
        return "—"
    return None


def display_value(row: dict | None, digits: int = 2) -> str:
    """What a reader sees for one tidy row: the number, a band, or why it is hidden."""
    text = hidden_text(row)
    if text is not None:
        return text
    value = row["value"]
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 1 else fmt_num(value, digits)


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


def measures_by_key(table: pl.DataFrame | None, dims: list[str]) -> dict[tuple, dict[str, dict]]:
    """{(dim values): {measure: row}} — one lookup for a table read cell by cell."""
    out: dict[tuple, dict[str, dict]] = {}
    if table is None:
        return out
    for row in table.iter_rows(named=True):
        out.setdefault(tuple(row[d] for d in dims), {})[row["measure"]] = row
    return out


def value_of(rows: dict[str, dict], name: str) -> float | None:
    row = rows.get(name)
    return row["value"] if is_number(row) else None


def safe_n(n: int | None, k: int) -> int | None:
    """n as a page may carry it: a count in (0, k) would disclose a small group, so it is dropped
    even if a table (wrongly) marks it published — defence in depth behind disclosure control."""
    return None if n is None or 0 < n < k else int(n)


def embeddable_rows(table: pl.DataFrame, measures: list[str], k: int) -> list[dict]:
    """Tidy rows for a page's embedded JSON: hidden rows carry no value or n, small n never appears."""
    rows = []
    for row in table.filter(pl.col("measure").is_in(measures)).iter_rows(named=True):
        small = row["n"] is not None and 0 < row["n"] < k
        hidden = row["status"] in HIDDEN or small
        out = {d: row[d] for d in dims_of(table)}
        out.update(
            measure=row["measure"],
            value=None if hidden or not is_number(row) else round(row["value"], 6),
            n=None if hidden else safe_n(row["n"], k),
            status="suppressed" if hidden else row["status"],
        )
        rows.append(out)
    return rows
