"""Renders canonical frames the way a school exports them, and writes the files deterministically.

CSV and plain JSON lines carry dates, timestamps and booleans as the school spells them (its
contract's ``sourceFormat``); Parquet keeps them typed; xAPI wraps usage in statements.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl

from demo.fields import FieldSpec, dataset_fields, needs_source_format, source_format
from demo.profiles import FILE_EXTENSIONS, SchoolProfile

XAPI_VERB = "http://adlnet.gov/expapi/verbs/experienced"


def export_path(home: Path, profile: SchoolProfile, dataset: str, export_date: date) -> Path:
    extension = FILE_EXTENSIONS[profile.file_format(dataset)]
    folder = home / "landing" / profile.school_id / dataset
    return folder / f"{dataset}_{export_date.isoformat()}.{extension}"


def _as_text(spec: FieldSpec, profile: SchoolProfile) -> pl.Expr:
    column = pl.col(spec.name)
    fmt = source_format(spec, profile)
    if spec.kind == "bool":
        true_word, false_word = fmt.split("/")
        return pl.when(column).then(pl.lit(true_word)).otherwise(pl.lit(false_word)).alias(spec.name)
    return column.dt.strftime(fmt).alias(spec.name)


def school_layout(frame: pl.DataFrame, profile: SchoolProfile, dataset: str) -> pl.DataFrame:
    """Canonical frame -> the school's columns, names and spellings (declared fields, then extras)."""
    specs = dataset_fields(dataset, profile)
    declared = {spec.name for spec in specs}
    columns = [
        _as_text(spec, profile) if needs_source_format(spec, profile, dataset) else pl.col(spec.name)
        for spec in specs
    ]
    extras = [name for name in frame.columns if name not in declared and dataset == "roster"]
    renames = {spec.name: profile.source_column(dataset, spec.name) for spec in specs}
    return frame.select(*columns, *extras).rename(renames)


def xapi_lines(frame: pl.DataFrame, profile: SchoolProfile) -> list[str]:
    timestamps = frame["started_at"].dt.strftime(profile.timestamp_format).to_list()
    rows = zip(
        frame["student_email"].to_list(),
        frame["resource_id"].to_list(),
        timestamps,
        frame["minutes"].to_list(),
        strict=True,
    )
    return [
        json.dumps(
            {
                "actor": {"mbox": f"mailto:{email}"},
                "verb": {"id": XAPI_VERB},
                "object": {"id": f"urn:resource:{resource}"},
                "timestamp": timestamp,
                "result": {"duration": f"PT{round(minutes)}M"},
            }
        )
        for email, resource, timestamp, minutes in rows
    ]


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_frame(path: Path, frame: pl.DataFrame, profile: SchoolProfile, dataset: str) -> None:
    """Write an already school-shaped frame in the school's file format (not xAPI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    file_format = profile.file_format(dataset)
    if file_format == "parquet":
        # No timestamps or random ids in Parquet metadata: identical input gives identical bytes.
        frame.write_parquet(path, compression="zstd", statistics=True, row_group_size=100_000)
    elif file_format == "jsonl":
        frame.write_ndjson(path)
    else:
        frame.write_csv(path, separator=profile.delimiter_for(dataset), line_terminator="\n")


def write_export(path: Path, frame: pl.DataFrame, profile: SchoolProfile, dataset: str) -> int:
    """Write one canonical dataset as the school exports it; returns the rows written."""
    if profile.file_format(dataset) == "xapi":
        write_lines(path, xapi_lines(frame, profile))
    else:
        write_frame(path, school_layout(frame, profile, dataset), profile, dataset)
    return frame.height
