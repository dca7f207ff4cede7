"""A minimal contract-driven reader, so tests check that each contract really describes its files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import yaml


def custom(entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {entry["property"]: entry["value"] for entry in entries or []}


def load_contract(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def schema_of(contract: dict[str, Any], dataset: str) -> dict[str, Any] | None:
    return next((obj for obj in contract["schema"] if obj["name"] == dataset), None)


def read_raw(path: Path, schema: dict[str, Any]) -> pl.DataFrame:
    """The file as the school wrote it, guided only by the contract's schema-level terms."""
    terms = custom(schema.get("customProperties"))
    file_format = terms["fileFormat"]
    if file_format == "parquet":
        return pl.read_parquet(path)
    if file_format == "xapi":
        return pl.DataFrame([_flatten_statement(json.loads(line)) for line in path.read_text().splitlines()])
    if file_format == "jsonl":
        return pl.read_ndjson(path)
    return pl.read_csv(path, separator=terms["delimiter"], infer_schema=False)


def _flatten_statement(statement: dict[str, Any]) -> dict[str, Any]:
    duration = statement["result"]["duration"]
    assert duration.startswith("PT") and duration.endswith("M")
    return {
        "student_email": statement["actor"]["mbox"].removeprefix("mailto:"),
        "resource_id": statement["object"]["id"].removeprefix("urn:resource:"),
        "started_at": statement["timestamp"],
        "minutes": float(duration[2:-1]),
    }


_TYPES = {"integer": pl.Int64, "number": pl.Float64, "string": pl.String}


def _parse(column: pl.Expr, field: dict[str, Any], terms: dict[str, Any], series: pl.Series) -> pl.Expr:
    fmt = terms.get("sourceFormat")
    logical = field["logicalType"]
    if series.dtype != pl.String or logical == "string":
        return column.cast(_TYPES[logical]) if logical in _TYPES else column
    if logical == "boolean":
        true_word, false_word = fmt.split("/")
        return pl.when(column == true_word).then(True).when(column == false_word).then(False)
    if logical == "date":
        return column.str.strptime(pl.Date, fmt, strict=True)
    if logical == "timestamp":
        return column.str.strptime(pl.Datetime("us"), fmt, strict=True)
    return column.cast(_TYPES[logical], strict=True)


def read_canonical(path: Path, schema: dict[str, Any]) -> pl.DataFrame:
    """Canonical, typed columns: renames by sourceColumn, parses by sourceFormat, strictly."""
    raw = read_raw(path, schema)
    columns = []
    for field in schema["properties"]:
        terms = custom(field.get("customProperties"))
        source = terms.get("sourceColumn", field["name"])
        columns.append(_parse(pl.col(source), field, terms, raw[source]).alias(field["name"]))
    return raw.select(columns)


def undeclared_columns(path: Path, schema: dict[str, Any]) -> set[str]:
    raw = read_raw(path, schema)
    declared = {
        custom(f.get("customProperties")).get("sourceColumn", f["name"]) for f in schema["properties"]
    }
    return set(raw.columns) - declared
