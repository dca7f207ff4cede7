"""Writing the release: tidy tables as CSV + Parquet, and a manifest, all atomic and deterministic.

Determinism is a promise (same inputs and key → byte-identical `published/`): rows are sorted,
values rounded, and the manifest holds digests and inputs, never the wall-clock time (the audit
log records when).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from privacy.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from transforms.crashpoints import crash_point

SUPPRESSED_SYMBOL = "c"  # as UK official statistics: "confidential"
SIGNIFICANT_DIGITS = 6  # p = 0.00003 stays 3e-05, never 0.0
HIDDEN_STATUSES = ("suppressed", "suppressed_secondary")
# What a spreadsheet may run as a formula (OWASP "CSV Injection"; see inert_text) and what stays:
FORMULA_START = re.compile(r'^(?:[\t\r]|[\s"]*[=+\-@])')
FORMULA_SIGN = re.compile(r'^[\s"]*[=+\-@]')
CELL_BREAK = re.compile(r"([;\t\r\n])")  # our own `,` sits inside a quoted field
PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
MAY_START_FORMULA = r'(?:^|[;\t\r\n])[\s"]*[=+\-@]|^[\t\r]'  # a cheap filter (Polars regex)


def finalize(frame: pl.DataFrame) -> pl.DataFrame:
    """Null value and n of every hidden row, round values, and sort by every column but the values."""
    dims = [c for c in frame.columns if c not in ("value", "n", "status", "note")]
    hidden = pl.col("status").is_in(HIDDEN_STATUSES)
    return frame.with_columns(
        pl.when(hidden)
        .then(None)
        .otherwise(pl.col("value").round_sig_figs(SIGNIFICANT_DIGITS))
        .alias("value"),
        pl.when(hidden).then(None).otherwise(pl.col("n")).cast(pl.Int64).alias("n"),
    ).sort(dims, nulls_last=True, maintain_order=True)


def inert_text(cell: str) -> str:
    """A text cell as a spreadsheet must read it: as text, never as a formula (OWASP "CSV Injection").

    A cell that starts with `=`, `+`, `-`, `@`, tab or carriage return (or spaces or double quotes
    before one of the four signs) and is not a plain number gets a leading single quote: `-2.5`
    stays a number, `-2+3` becomes `'-2+3`. So does every sign that follows a `;`, tab or line break
    inside the cell, number or not: a spreadsheet that splits on `;` or tab (much of Europe) starts
    a cell there, and that cell runs on past ours to the next break.
    """
    head = "'" if FORMULA_START.match(cell) and not PLAIN_NUMBER.match(cell) else ""
    parts = CELL_BREAK.split(cell)  # text, break, text, break, ...
    for i in range(2, len(parts), 2):
        if FORMULA_SIGN.match(parts[i]):
            parts[i] = "'" + parts[i]
    return head + "".join(parts)


def inert_csv_field(frame: pl.DataFrame, name: str) -> pl.Expr:
    """Column `name` as CSV fields: `inert_text` on the (rare) cells that need it, then every
    cell wrapped in double quotes with inner quotes doubled; a null stays an empty field."""
    values = frame.get_column(name)
    suspects = values.filter(values.str.contains(MAY_START_FORMULA)).unique().to_list()
    changed = {v: inert_text(v) for v in suspects if inert_text(v) != v}
    column = pl.col(name)
    text = column.replace(list(changed), list(changed.values())) if changed else column
    quoted = pl.lit('"') + text.str.replace_all('"', '""', literal=True) + pl.lit('"')
    return pl.when(column.is_null()).then(pl.lit("")).otherwise(quoted)


def csv_text(frame: pl.DataFrame) -> str:
    """CSV with `c` in place of a hidden value and n; every text column made inert (`inert_csv_field`).

    The Parquet twin keeps the original values: it is typed data, not a spreadsheet."""
    hidden = pl.col("status").is_in(HIDDEN_STATUSES)
    text_columns = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    text = frame.with_columns(
        *(inert_csv_field(frame, name).alias(name) for name in text_columns),
        pl.when(hidden)
        .then(pl.lit(SUPPRESSED_SYMBOL))
        .otherwise(pl.col("value").cast(pl.String))
        .alias("value"),
        pl.when(hidden).then(pl.lit(SUPPRESSED_SYMBOL)).otherwise(pl.col("n").cast(pl.String)).alias("n"),
    )
    buffer = io.StringIO()
    # Text fields are quoted above; value and n are numbers, `c` or empty and need no quotes.
    text.write_csv(buffer, quote_style="never")
    return buffer.getvalue()


def write_table(tables_dir: Path, name: str, frame: pl.DataFrame) -> dict:
    """Write `<name>.csv` and `<name>.parquet` atomically; return their digests and row counts."""
    frame = finalize(frame)
    csv = csv_text(frame)
    atomic_write_text(tables_dir / f"{name}.csv", csv, mode=0o644)
    crash_point("publish.table")  # the crash tests kill here: a table's CSV new, its Parquet old
    with atomic_path(tables_dir / f"{name}.parquet", mode=0o644) as tmp:
        frame.write_parquet(tmp, statistics=False)
    parquet_bytes = (tables_dir / f"{name}.parquet").read_bytes()
    statuses = frame.group_by("status").len().sort("status")
    return {
        "csv": f"tables/{name}.csv",
        "parquet": f"tables/{name}.parquet",
        "csv_sha256": hashlib.sha256(csv.encode()).hexdigest(),
        "parquet_sha256": hashlib.sha256(parquet_bytes).hexdigest(),
        "rows": frame.height,
        "status_counts": dict(zip(statuses["status"].to_list(), statuses["len"].to_list(), strict=True)),
    }


def write_manifest(published: Path, manifest: Mapping) -> Path:
    path = published / "manifest.json"
    crash_point("publish.manifest")
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", mode=0o644)
    return path


def read_table(published: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(published / "tables" / f"{name}.parquet")


def release_fingerprint(parts: Mapping[str, str]) -> str:
    """One digest of everything a release was computed from (contract and file digests, key version)."""
    return hashlib.sha256(json.dumps(dict(sorted(parts.items())), sort_keys=True).encode()).hexdigest()


def write_bytes_published(published: Path, name: str, data: bytes) -> Path:
    return atomic_write_bytes(published / name, data, mode=0o644)
