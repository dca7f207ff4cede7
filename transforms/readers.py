"""Read one school export, as its contract describes it, into a canonical typed frame.

Everything is read as text first and typed here, so one bad value rejects one row (counted by
field and reason, never printed) instead of failing a whole file. A problem that makes the whole
file unusable (unreadable, a required column missing) raises `ExportError` naming the file and field.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from contracts.model import DatasetTerms, FieldTerms

ROW = "__row"  # 1-based data row number in the source file, kept until staging for messages
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
TRUE_TOKENS = ("true", "t", "1", "y", "yes")
FALSE_TOKENS = ("false", "f", "0", "n", "no")


class ExportError(ValueError):
    """The whole file cannot be used; the message names the file and the field."""

    def __init__(self, file: str, message: str, field: str | None = None) -> None:
        self.file, self.field, self.detail = file, field, message
        where = f"{file}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")


@dataclass
class ReadResult:
    frame: pl.DataFrame
    rows_in: int
    dropped_columns: list[str] = field(default_factory=list)
    rejects: Counter = field(default_factory=Counter)  # (field, reason) -> rows
    first_reject_rows: dict[str, int] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return self.rows_in - self.frame.height

    def reject_summary(self) -> list[dict]:
        return [
            {"field": f, "reason": r, "rows": n, "first_row": self.first_reject_rows.get(f"{f}:{r}")}
            for (f, r), n in sorted(self.rejects.items())
        ]


DATED_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def export_date(path: Path) -> date:
    """The export's date from its name (`<dataset>_<YYYY-MM-DD>.<ext>`), else its modification date."""
    match = DATED_NAME.search(path.name)
    if match:
        try:
            return date.fromisoformat(match.group(1))
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime).date()


def _raw_bytes(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size > max_bytes:
        raise ExportError(path.name, f"file is {size} bytes, over the {max_bytes}-byte limit")
    data = path.read_bytes()
    if path.suffix == ".gz":
        with gzip.open(io.BytesIO(data)) as stream:
            data = stream.read(max_bytes + 1)  # bounded: a gzip bomb stops at the limit
        if len(data) > max_bytes:
            raise ExportError(path.name, f"decompresses to over the {max_bytes}-byte limit")
    return data


def _text(data: bytes, encoding: str, file: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ExportError(file, f"cannot be decoded as {encoding}: {exc.reason}") from exc


def _xapi_frame(text: str, file: str) -> pl.DataFrame:
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            mbox = str(event.get("actor", {}).get("mbox", ""))
            duration = str(event.get("result", {}).get("duration", ""))
            minutes = re.fullmatch(
                r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?", duration
            )
            total = (
                float(minutes.group(1) or 0) * 60
                + float(minutes.group(2) or 0)
                + float(minutes.group(3) or 0) / 60
                if minutes
                else None
            )
            rows.append(
                {
                    "student_email": mbox.removeprefix("mailto:") or None,
                    "resource_id": str(event.get("object", {}).get("id", "")).rsplit(":", 1)[-1] or None,
                    "started_at": event.get("timestamp"),
                    "minutes": None if total is None else repr(total),
                    ROW: line_no,
                }
            )
        except (json.JSONDecodeError, AttributeError):
            rows.append({ROW: line_no, "__bad_json": "1"})
    schema = {
        "student_email": pl.String,
        "resource_id": pl.String,
        "started_at": pl.String,
        "minutes": pl.String,
        ROW: pl.Int64,
        "__bad_json": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def read_text_frame(path: Path, terms: DatasetTerms, max_bytes: int = DEFAULT_MAX_BYTES) -> pl.DataFrame:
    """The file as an all-text frame with its source column names and a row number column."""
    file = path.name
    if terms.file_format == "parquet":
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars raises several kinds for a broken file
            raise ExportError(file, f"not a readable Parquet file ({type(exc).__name__})") from exc
        frame = frame.with_columns(
            [
                pl.col(c).dt.strftime("%Y-%m-%d") if frame.schema[c] == pl.Date else pl.col(c).cast(pl.String)
                for c in frame.columns
            ]
        )
        return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    text = _text(_raw_bytes(path, max_bytes), terms.encoding, file)
    if terms.file_format == "xapi":
        return _xapi_frame(text, file)
    if terms.file_format == "jsonl":
        try:
            frame = pl.read_ndjson(io.StringIO(text), infer_schema_length=None)
        except Exception as exc:
            raise ExportError(file, f"not valid JSON lines ({type(exc).__name__})") from exc
        frame = frame.with_columns(pl.all().cast(pl.String))
        return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    if not text.strip():
        raise ExportError(file, "file is empty")
    try:
        frame = pl.read_csv(
            io.StringIO(text),
            separator=terms.delimiter,
            infer_schema=False,
            truncate_ragged_lines=False,
        )
    except Exception as exc:
        raise ExportError(file, f"not a readable CSV with delimiter {terms.delimiter!r} ({exc})") from exc
    frame = frame.rename({c: c.strip() for c in frame.columns})
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def _boolean(expr: pl.Expr, fmt: str | None) -> pl.Expr:
    text = expr.str.strip_chars().str.to_lowercase()
    trues, falses = list(TRUE_TOKENS), list(FALSE_TOKENS)
    if fmt and "/" in fmt:  # e.g. "Y/N": the school's true and false tokens
        t, f = (s.strip().lower() for s in fmt.split("/", 1))
        trues, falses = [t], [f]
    return pl.when(text.is_in(trues)).then(True).when(text.is_in(falses)).then(False).otherwise(None)


def _typed(expr: pl.Expr, terms: FieldTerms) -> pl.Expr:
    """Parse text into the field's logical type; an unparsable value becomes null (and is counted)."""
    text = expr.str.strip_chars()
    kind = terms.logical_type
    if kind == "integer":
        return text.cast(pl.Int64, strict=False)
    if kind == "number":
        return text.cast(pl.Float64, strict=False)
    if kind == "boolean":
        return _boolean(text, terms.source_format)
    if kind == "date":
        return text.str.strptime(pl.Date, terms.source_format or "%Y-%m-%d", strict=False)
    if kind == "timestamp":
        if terms.source_format:
            return text.str.strptime(pl.Datetime("us"), terms.source_format, strict=False)
        return text.str.to_datetime(time_zone="UTC", strict=False).dt.replace_time_zone(None)
    return pl.when(text == "").then(None).otherwise(text)


def read_export(path: Path, terms: DatasetTerms, max_bytes: int = DEFAULT_MAX_BYTES) -> ReadResult:
    """Read, map source columns to canonical ones, type them, and reject bad rows by reason."""
    raw = read_text_frame(path, terms, max_bytes)
    file = path.name
    rows_in = raw.height
    declared_sources = {f.source for f in terms.fields}
    dropped = sorted(c for c in raw.columns if c not in declared_sources and not c.startswith("__"))
    for f in terms.fields:
        if f.required and f.source not in raw.columns:
            raise ExportError(file, f"required column '{f.source}' is missing", f.name)
    present = [f for f in terms.fields if f.source in raw.columns]
    typed = raw.select(
        pl.col(ROW),
        *[pl.col(f.source).alias(f"__src_{f.name}") for f in present],
        *[_typed(pl.col(f.source).cast(pl.String), f).alias(f.name) for f in present],
        *[pl.lit(None, dtype=pl.String).alias(f.name) for f in terms.fields if f.source not in raw.columns],
        *([pl.col("__bad_json")] if "__bad_json" in raw.columns else []),
    )
    result = ReadResult(frame=typed, rows_in=rows_in, dropped_columns=dropped)
    keep = pl.lit(True)
    checks: list[tuple[str, str, pl.Expr]] = []
    if "__bad_json" in typed.columns:
        checks.append(("(line)", "not valid JSON", pl.col("__bad_json").is_not_null()))
    for f in present:
        src, col = pl.col(f"__src_{f.name}"), pl.col(f.name)
        blank = src.is_null() | (src.cast(pl.String).str.strip_chars() == "")
        if f.required:
            checks.append((f.name, "missing value", blank))
        checks.append((f.name, f"not a valid {f.logical_type}", ~blank & col.is_null()))
        if f.minimum is not None:
            checks.append((f.name, f"below minimum {f.minimum}", col < f.minimum))
        if f.maximum is not None:
            checks.append((f.name, f"above maximum {f.maximum}", col > f.maximum))
        if f.allowed_values:
            checks.append(
                (
                    f.name,
                    "not an allowed value",
                    col.is_not_null() & ~col.cast(pl.String).is_in(f.allowed_values),
                )
            )
    if checks:
        flags = typed.select(
            pl.col(ROW), *[e.fill_null(False).alias(f"{i}") for i, (_, _, e) in enumerate(checks)]
        )
        for i, (name, reason, _) in enumerate(checks):
            bad = flags.filter(pl.col(f"{i}"))
            if bad.height:
                result.rejects[(name, reason)] += bad.height
                result.first_reject_rows[f"{name}:{reason}"] = int(bad[ROW].min())
        any_bad = pl.any_horizontal([pl.col(f"{i}") for i in range(len(checks))])
        keep = ~pl.Series(flags.select(any_bad).to_series())
        typed = typed.filter(keep)
    result.frame = typed.select(pl.col(ROW), *[pl.col(f.name) for f in terms.fields])
    return result
