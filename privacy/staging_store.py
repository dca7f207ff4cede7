"""The one way staging Parquet is written and read, so every rule about it lives in one place
(owner-only files, atomic replace; encryption at rest plugs in here)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from privacy.atomic import atomic_path


def write_staging_frame(path: Path, frame: pl.DataFrame, school_id: str) -> None:
    """Atomically replace `path` with `frame` (0600 file in a 0700 folder)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with atomic_path(path, mode=0o600) as tmp:
        frame.write_parquet(tmp, statistics=False)


def read_staging_frame(path: Path, school_id: str) -> pl.DataFrame:
    return pl.read_parquet(path)
