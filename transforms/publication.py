"""Writing the release: tidy tables as CSV + Parquet, and a manifest, all atomic and deterministic.

Determinism is a promise (same inputs and key → byte-identical `published/`): rows are sorted,
values rounded, and the manifest holds digests and inputs, never the wall-clock time (the audit
log records when).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from privacy.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from transforms.crashpoints import crash_point

SUPPRESSED_SYMBOL = "c"  # as UK official statistics: "confidential"
SIGNIFICANT_DIGITS = 6  # p = 0.00003 stays 3e-05, never 0.0
HIDDEN_STATUSES = ("suppressed", "suppressed_secondary")


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


def csv_text(frame: pl.DataFrame) -> str:
    """CSV with `c` in place of a hidden value and n."""
    hidden = pl.col("status").is_in(HIDDEN_STATUSES)
    text = frame.with_columns(
        pl.when(hidden)
        .then(pl.lit(SUPPRESSED_SYMBOL))
        .otherwise(pl.col("value").cast(pl.String))
        .alias("value"),
        pl.when(hidden).then(pl.lit(SUPPRESSED_SYMBOL)).otherwise(pl.col("n").cast(pl.String)).alias("n"),
    )
    buffer = io.StringIO()
    text.write_csv(buffer)
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
