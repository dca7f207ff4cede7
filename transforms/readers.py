"""Read one school export, as its contract describes it, into a canonical typed frame.

Everything is read as text first and typed here, so one bad value rejects one row (counted by
field and reason, never printed) instead of failing a whole file. A problem that makes the whole
file unusable (unreadable, wrong encoding, a required column missing, no usable row) raises
`ExportError` naming the file, the field and, where there is one, the row.

Rows are numbered as data records: row 1 is the first record after the header (a quoted field
that spans lines is still one row). Nothing is guessed: a date, a number or an encoding the
contract does not declare is rejected, never interpreted (docs/reliability.md).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from contracts.model import DatasetTerms, FieldTerms
from privacy.files import export_date  # noqa: F401  (intake and tests read it from here)

ROW = "__row"  # 1-based data row number in the source file, kept until staging for messages
LINE_FIELD = "(row)"  # the "field" of a reject that concerns a whole row (its shape, not a value)
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_FIELD_CHARS = 1 << 20  # one CSV field; a larger one is a broken quote, not data
MAX_COLUMNS = 1_000  # no export of ours has more than ~20; 100,000 columns would be a wide bomb
MAX_JSON_DEPTH = 64  # an xAPI statement nests ~6 levels; json.loads recurses once per level
PARQUET_BATCH_ROWS = 65_536
TRUE_TOKENS = ("true", "t", "1", "y", "yes")
FALSE_TOKENS = ("false", "f", "0", "n", "no")
# What each declared file format may arrive as (plus an optional `.gz`).
SUFFIXES = {
    "csv": (".csv", ".txt", ".tsv"),
    "jsonl": (".jsonl", ".ndjson", ".json"),
    "xapi": (".jsonl", ".ndjson", ".json"),
    "parquet": (".parquet",),
}
# Number spellings a contract may declare as the field's `sourceFormat` (default: plain `1234.5`).
NUMBER_FORMATS = {
    "decimal_comma": (r"^-?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$", ".", ","),  # 1.234,5
    "decimal_comma_space": (r"^-?(\d{1,3}( \d{3})+|\d+)(,\d+)?$", " ", ","),  # 1 234,5
    "thousands_comma": (r"^-?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$", ",", "."),  # 1,234.5
}
PLAIN_NUMBER = r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$"
ZIP_MAGIC, GZIP_MAGIC, PARQUET_MAGIC = b"PK\x03\x04", b"\x1f\x8b", b"PAR1"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
UTF8_BOM = b"\xef\xbb\xbf"

csv.field_size_limit(MAX_FIELD_CHARS)


class ExportError(ValueError):
    """The whole file cannot be used; the message names the file, the field and the row."""

    def __init__(self, file: str, message: str, field: str | None = None, row: int | None = None) -> None:
        self.file, self.field, self.row, self.detail = file, field, row, message
        where = file + (f", row {row}" if row is not None else "") + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")


@dataclass
class ReadResult:
    frame: pl.DataFrame
    rows_in: int
    dropped_columns: list[str] = field(default_factory=list)
    rejects: Counter = field(default_factory=Counter)  # (field, reason) -> rows
    first_reject_rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. "decoded as UTF-16 (byte-order mark)"

    @property
    def rows_rejected(self) -> int:
        return self.rows_in - self.frame.height

    def reject(self, field_name: str, reason: str, rows: int, first_row: int | None) -> None:
        self.rejects[(field_name, reason)] += rows
        key = f"{field_name}:{reason}"
        if first_row is not None and (
            key not in self.first_reject_rows or first_row < self.first_reject_rows[key]
        ):
            self.first_reject_rows[key] = first_row

    def reject_summary(self) -> list[dict]:
        return [
            {"field": f, "reason": r, "rows": n, "first_row": self.first_reject_rows.get(f"{f}:{r}")}
            for (f, r), n in sorted(self.rejects.items())
        ]


@dataclass
class RawTable:
    """An all-text frame with the source's column names and `ROW`, plus rows refused for their shape."""

    frame: pl.DataFrame
    shape_rejects: list[tuple[str, int]] = field(default_factory=list)  # (reason, row)
    notes: list[str] = field(default_factory=list)
    undeclared_columns: list[str] = field(default_factory=list)  # left unread (Parquet reads only declared)


def _format_suffix(path: Path) -> str:
    """`.csv` for `x.csv` and `x.csv.gz`; the empty string when the name has no suffix."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _check_suffix(path: Path, terms: DatasetTerms) -> None:
    if path.suffix.lower() == ".zip":
        raise ExportError(path.name, "zip archives are not accepted: send the file itself (gzip allowed)")
    stem_suffix = _format_suffix(path)
    allowed = SUFFIXES.get(terms.file_format, ())
    if stem_suffix not in allowed:
        raise ExportError(
            path.name,
            f"file type '{stem_suffix or '(none)'}' does not match the contract's fileFormat "
            f"'{terms.file_format}' (expected {', '.join(allowed)}, optionally .gz)",
        )


def _raw_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, gunzipped when gzip, never more than `max_bytes` (a bomb stops at the limit)."""
    size = path.lstat().st_size
    if size > max_bytes:
        raise ExportError(path.name, f"file is {size} bytes, over the {max_bytes}-byte limit")
    data = path.read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            with gzip.open(io.BytesIO(data)) as stream:
                data = stream.read(max_bytes + 1)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ExportError(path.name, f"a broken gzip file ({type(exc).__name__})") from None
        if len(data) > max_bytes:
            raise ExportError(path.name, f"decompresses to over the {max_bytes}-byte limit")
    if data.startswith(ZIP_MAGIC):
        raise ExportError(path.name, "is a zip archive (or an Excel workbook), not a text export")
    return data


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _text(data: bytes, encoding: str, file: str, notes: list[str]) -> str:
    """Decode as the contract says; a byte-order mark, which cannot be mistaken, overrides it."""
    if data.startswith(UTF8_BOM):
        data, encoding = data[3:], "utf-8"
    elif data.startswith(UTF16_BOMS):
        if not encoding.lower().replace("-", "").startswith("utf16"):
            notes.append(f"decoded as UTF-16 (byte-order mark), not the contract's {encoding}")
        encoding = "utf-16"
    try:
        text = data.decode(encoding)
    except LookupError:
        raise ExportError(file, f"the contract's encoding '{encoding}' is not a known encoding") from None
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        raise ExportError(
            file,
            f"not valid {encoding} at line {line} (byte {exc.start}): declare the file's `encoding` "
            "in the contract (for example latin-1)",
            row=max(line - 1, 1),
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ExportError(
            file, f"contains NUL characters at line {line} (a binary file?)", row=max(line - 1, 1)
        )
    return text.removeprefix("\ufeff")


def _scalar_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _duration_minutes(duration: str) -> float | None:
    match = re.fullmatch(r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?", duration)
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return hours * 60 + minutes + seconds / 60


def _xapi_row(event: dict) -> dict:
    mbox = str((event.get("actor") or {}).get("mbox", ""))
    total = _duration_minutes(str((event.get("result") or {}).get("duration", "")))
    return {
        "student_email": mbox.removeprefix("mailto:") or None,
        "resource_id": str((event.get("object") or {}).get("id", "")).rsplit(":", 1)[-1] or None,
        "started_at": _scalar_text(event.get("timestamp")),
        "minutes": None if total is None else repr(total),
    }


def _json_lines(text: str, xapi: bool) -> RawTable:
    """One JSON object per line; a line that is not one is refused by itself (its row counted)."""
    if xapi:
        fast = _xapi_fast(text)
        if fast is not None:
            return fast
    return _json_lines_careful(text, xapi)


def _json_lines_careful(text: str, xapi: bool) -> RawTable:
    """The line-by-line reader: the reference every fast path must equal."""
    rows, shape_rejects, row_numbers = [], [], []
    row_no = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        row_no += 1
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            shape_rejects.append(("not valid JSON", row_no))
            continue
        if not isinstance(event, dict):
            shape_rejects.append(("not a JSON object", row_no))
            continue
        rows.append(_xapi_row(event) if xapi else {k: _scalar_text(v) for k, v in event.items()})
        row_numbers.append(row_no)
    columns = ["student_email", "resource_id", "started_at", "minutes"] if xapi else []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    frame = pl.DataFrame(
        {c: [row.get(c) for row in rows] for c in columns} | {ROW: row_numbers},
        schema={**dict.fromkeys(columns, pl.String), ROW: pl.Int64},
    )
    return RawTable(frame, shape_rejects)


# --- fast paths: Polars reads, accepted only when provably the same as the careful readers --------

# Exactly the characters Python's str.strip()/isspace() treat as whitespace, for Polars regexes.
_PY_SPACE = "[" + "".join(f"\\x{{{i:x}}}" for i in range(0x3001) if chr(i).isspace()) + "]"
# Line breaks str.splitlines() honours but JSON lines (and Polars) do not; '\r' is checked apart.
_ODD_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ESCAPED_KEY = re.compile(r'\\u[0-9a-fA-F]{4}(?:[^"\\]|\\.)*"\s*:')  # a key spelled with \u escapes
_XAPI_KEYS = ("actor", "mbox", "object", "id", "timestamp", "result", "duration")
_FAST_DURATION = r"^PT(?:([0-9]+(?:\.[0-9]+)?)H)?(?:([0-9]+(?:\.[0-9]+)?)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?$"
# What Polars makes of a JSON number, boolean, object or list it coerces to text: not surely a string.
_MAYBE_NOT_A_STRING = r"^(?:-?[0-9][0-9.eE+\-]*|true|false|null)$|^[\[{]|\x00"


def _quoted_fields(delimiter: str) -> re.Pattern:
    """A well-formed quoted field: opens at a field start, `""` inside, closes at a field end."""
    d = re.escape(delimiter)
    return re.compile(rf'(?:^|(?<=[{d}\n]))"(?:[^"]|"")*"(?=[{d}\r\n]|\Z)')


def _csv_fast(text: str, terms: DatasetTerms, file: str) -> RawTable | None:
    """The csv reader's table by Polars, or None when the text is not plainly well formed.

    Accepted only when: every '\r' ends a line as '\r\n'; every quote belongs to a well-formed
    quoted field; Polars raised nothing (so no record has too many fields) and the delimiters outside
    quotes number exactly (width - 1) per record (so none has too few); Polars' records are the
    text's lines outside quotes; the cells hold exactly the text's characters minus delimiters, line
    ends and quoting; no record is blank or repeats the header; no field is over the csv limit.
    """
    sep = terms.delimiter
    if len(sep) != 1 or sep in '"\r\n' or text.count("\r") != text.count("\r\n"):
        return None
    quotes = text.count('"')
    quoted = inner_seps = inner_newlines = inner_crs = consumed = 0
    if quotes:
        for match in _quoted_fields(sep).finditer(text):
            body = match.group()
            quoted += 1
            consumed += body.count('"')
            inner_seps += body.count(sep)
            inner_newlines += body.count("\n")
            inner_crs += body.count("\r")
        if consumed != quotes:
            return None
    try:
        raw = pl.read_csv(
            text.encode(),
            has_header=False,
            infer_schema=False,
            separator=sep,
            quote_char='"',
            empty_string_is_null=False,
        )
    except Exception:  # ragged (too many fields), or anything else Polars dislikes: the careful path
        return None
    width, height = raw.width, raw.height
    outer_seps = text.count(sep) - inner_seps
    outer_newlines = text.count("\n") - inner_newlines
    records = outer_newlines + (not text.endswith("\n"))
    if height == 0 or height != records or outer_seps != (width - 1) * height:
        return None
    lengths = raw.select(pl.all().str.len_chars())
    expected_chars = (
        len(text)
        - outer_seps
        - outer_newlines
        - (text.count("\r") - inner_crs)
        - quotes
        + (quotes - 2 * quoted) // 2
    )
    if raw.null_count().sum_horizontal().item() or lengths.sum().sum_horizontal().item() != expected_chars:
        return None
    if len(text) > MAX_FIELD_CHARS and lengths.max().max_horizontal().item() > MAX_FIELD_CHARS:
        return None
    header = list(raw.row(0))
    blank = pl.all_horizontal([pl.col(c).str.contains(f"^{_PY_SPACE}*$") for c in raw.columns])
    is_header = pl.all_horizontal([pl.col(c) == h for c, h in zip(raw.columns, header, strict=True)])
    if raw.select(blank.any()).item() or raw.slice(1).select(is_header.any()).item():
        return None
    try:
        names = _header_names(header, file, terms)
    except ExportError:
        return None  # the careful path raises it, in its own order
    hint = _wrong_delimiter_hint(header, terms)
    frame = raw.slice(1).rename(dict(zip(raw.columns, names, strict=True)))
    frame = frame.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW))
    return RawTable(frame, [], [hint] if hint else [])


def _xapi_key_paths(frame: pl.DataFrame) -> list[tuple[str, pl.Expr]] | None:
    """Every struct path ending in one of `_XAPI_KEYS`; None when one sits inside a list."""
    paths: list[tuple[str, pl.Expr]] = []

    def walk(name: str, dtype: pl.DataType, expr: pl.Expr | None) -> bool:
        if name in _XAPI_KEYS:
            if expr is None:
                return False
            paths.append((name, expr))
        if isinstance(dtype, pl.Struct):
            return all(
                walk(f.name, f.dtype, None if expr is None else expr.struct.field(f.name))
                for f in dtype.fields
            )
        if isinstance(dtype, pl.List | pl.Array):
            return walk("", dtype.inner, None)
        return True

    ok = all(walk(name, dtype, pl.col(name)) for name, dtype in frame.schema.items())
    return paths if ok else None


def _xapi_fast(text: str) -> RawTable | None:
    """The xAPI rows by Polars, or None when the lines are not plainly well formed.

    Accepted only when: lines end in '\n' or '\r\n' only; every line with content starts with '{'
    and Polars read each one as an object; each key read here is spelled plainly and occurs in the
    text exactly as often as Polars holds a value for it (no duplicate keys, no nulls); the four
    values are present, were JSON strings, and the duration is a plain `PT..H..M..S`.
    """
    if text.count("\r") != text.count("\r\n") or (not text.isascii() and _ODD_LINE_BREAKS.search(text)):
        return None  # (the ASCII ones other than '\r' are not valid JSON: Polars refuses them)
    if "\\u" in text and _ESCAPED_KEY.search(text):
        return None
    try:
        # A later row that does not fit the inferred schema loses keys or values: the counts below see it.
        raw = pl.read_ndjson(text.encode())
    except Exception:
        return None
    if raw.height == 0 or raw.height != text.startswith("{") + text.count("\n{"):
        return None
    schema = raw.schema
    for name, inner in (("actor", "mbox"), ("object", "id"), ("result", "duration")):
        dtype = schema.get(name)
        if (
            not isinstance(dtype, pl.Struct)
            or {f.name: f.dtype for f in dtype.fields}.get(inner) != pl.String
        ):
            return None
    if schema.get("timestamp") != pl.String:
        return None
    paths = _xapi_key_paths(raw)
    if paths is None:
        return None
    held = (
        raw.select([e.is_not_null().sum().alias(str(i)) for i, (_, e) in enumerate(paths)]).row(0)
        if paths
        else ()
    )
    counts = Counter()
    for (name, _), n in zip(paths, held, strict=True):
        counts[name] += n
    if any(text.count(f'"{key}"') != counts[key] for key in _XAPI_KEYS):
        return None
    values = raw.select(
        pl.col("actor").struct.field("mbox").alias("mbox"),
        pl.col("object").struct.field("id").alias("id"),
        pl.col("timestamp"),
        pl.col("result").struct.field("duration").alias("duration"),
    )
    parts = [pl.col("duration").str.extract(_FAST_DURATION, i).cast(pl.Float64) for i in (1, 2, 3)]
    total = parts[0].fill_null(0.0) * 60 + parts[1].fill_null(0.0) + parts[2].fill_null(0.0) / 60
    doubtful = pl.any_horizontal(
        *[pl.col(c).is_null() | pl.col(c).str.contains(_MAYBE_NOT_A_STRING) for c in values.columns],
        ~pl.col("duration").str.contains(_FAST_DURATION),
        pl.all_horizontal([p.is_null() for p in parts]),
        ~total.is_finite() | (total >= 1e16) | ((total != 0) & (total < 1e-4)),  # repr's spelling
    )
    if values.select(doubtful.any()).item():
        return None
    frame = values.select(
        pl.col("mbox").str.strip_prefix("mailto:").replace("", None).alias("student_email"),
        pl.col("id").str.split(":").list.last().replace("", None).alias("resource_id"),
        pl.col("timestamp").alias("started_at"),
        total.cast(pl.String).alias("minutes"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW),
    )
    return RawTable(frame, [])


def _header_names(header: list[str], file: str, terms: DatasetTerms) -> list[str]:
    """Stripped column names; a declared column named twice is ambiguous and refuses the file."""
    names = [h.strip() or f"(unnamed column {i + 1})" for i, h in enumerate(header)]
    declared = {f.source for f in terms.fields}
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            if name in declared:
                raise ExportError(
                    file,
                    f"column '{name}' appears twice in the header (columns {seen[name] + 1} and {i + 1})",
                    field=name,
                )
            names[i] = f"{name} ({i + 1})"
        seen.setdefault(name, i)
    return names


def _wrong_delimiter_hint(header: list[str], terms: DatasetTerms) -> str:
    if len(header) != 1:
        return ""
    for candidate in (",", ";", "\t", "|"):
        if candidate != terms.delimiter and header[0].count(candidate) >= 1:
            return f" (the header looks {candidate!r}-delimited; the contract says {terms.delimiter!r})"
    return ""


def _csv_table(text: str, terms: DatasetTerms, file: str) -> RawTable:
    """Polars when the text is plainly well formed (same table, proven), else the csv module."""
    fast = _csv_fast(text, terms, file)
    return fast if fast is not None else _csv_table_careful(text, terms, file)


def _csv_table_careful(text: str, terms: DatasetTerms, file: str) -> RawTable:
    """Records by the csv module: quoted delimiters and newlines, any line ending, ragged rows counted."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=terms.delimiter)
    records: list[list[str]] = []
    row_numbers: list[int] = []
    shape_rejects: list[tuple[str, int]] = []
    header: list[str] | None = None
    width, row_no = -1, 0  # no record has width -1: the header is found first
    try:
        for record in reader:
            if len(record) == width and record != header:  # the common case, kept cheap
                row_no += 1
                records.append(record)
                row_numbers.append(row_no)
            elif not any(cell.strip() for cell in record):
                continue  # blank line: not a row
            elif header is None:
                header, width = record, len(record)
            else:
                row_no += 1
                shaped = _shaped_record(record, header)
                if isinstance(shaped, str):
                    shape_rejects.append((shaped, row_no))
                else:
                    records.append(shaped)
                    row_numbers.append(row_no)
    except csv.Error as exc:
        raise ExportError(file, f"not a readable CSV ({exc})", row=row_no + 1) from None
    if header is None:
        raise ExportError(file, "file is empty")
    names = _header_names(header, file, terms)
    hint = _wrong_delimiter_hint(header, terms)
    frame = pl.DataFrame(records, schema=dict.fromkeys(names, pl.String), orient="row")
    frame = frame.with_columns(pl.Series(ROW, row_numbers, dtype=pl.Int64))
    return RawTable(frame, shape_rejects, [hint] if hint else [])


def _shaped_record(record: list[str], header: list[str]) -> list[str] | str:
    """The record fitted to the header, or why it cannot be (a reason, never its values)."""
    if record == header:
        return "repeated header row"
    if len(record) > len(header) and not any(c.strip() for c in record[len(header) :]):
        return record[: len(header)]  # trailing delimiters only
    if len(record) < len(header):
        return f"too few fields (truncated row?): expected {len(header)}"
    return f"too many fields: expected {len(header)}"


def _parquet_limits(path: Path, meta, max_bytes: int, max_rows: int) -> None:
    """Refuse from the footer alone, before a page is decoded: rows, columns, decoded bytes."""
    if meta.num_rows > max_rows:
        raise ExportError(
            path.name, f"has {meta.num_rows} rows, over the {max_rows}-row limit (the contract's maxRows)"
        )
    if meta.num_columns > MAX_COLUMNS:
        raise ExportError(path.name, f"has {meta.num_columns} columns, over the {MAX_COLUMNS}-column limit")
    decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if decoded > max_bytes:
        raise ExportError(path.name, f"decodes to {decoded} bytes, over the {max_bytes}-byte limit")


def _is_text(dtype) -> bool:
    import pyarrow as pa

    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    return any(kind(dtype) for kind in kinds)


def _decoded_bytes(column) -> int:
    """What a column costs once decoded; a dictionary column is counted value by value, so a
    million repeats of one long string count as a million strings, not as one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        lengths = pc.binary_length(column.dictionary).take(column.indices)
        return int(pc.sum(lengths).as_py() or 0) + 16 * len(column)
    return column.nbytes


def _parquet_table(path: Path, terms: DatasetTerms, max_bytes: int, max_rows: int) -> RawTable:
    """Only the declared columns are decoded, batch by batch, counting what they decode to."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = path.lstat().st_size
    if size > max_bytes:
        raise ExportError(path.name, f"file is {size} bytes, over the {max_bytes}-byte limit")
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except Exception as exc:  # pyarrow raises several kinds for a broken file
        raise ExportError(path.name, f"not a readable Parquet file ({type(exc).__name__})") from None
    _parquet_limits(path, parquet.metadata, max_bytes, max_rows)
    declared = {f.source for f in terms.fields}
    names = schema.names
    for name in sorted({n for n in names if n in declared and names.count(n) > 1}):
        raise ExportError(path.name, f"column '{name}' appears twice", field=name)
    wanted = [n for n in dict.fromkeys(names) if n in declared]
    text = [n for n in wanted if _is_text(schema.field(n).type)]
    batches, decoded = [], 0
    try:
        # Text columns stay dictionary-encoded while read, so their decoded size is counted first.
        parquet = pq.ParquetFile(path, read_dictionary=text)
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            decoded += sum(_decoded_bytes(column) for column in batch.columns)
            if decoded > max_bytes:
                raise ExportError(path.name, f"decodes to over the {max_bytes}-byte limit")
            batches.append(batch)
        if not wanted:  # no declared column: the rows still count (a required column is missing)
            rows = pl.int_range(1, parquet.metadata.num_rows + 1, dtype=pl.Int64, eager=True).alias(ROW)
            return RawTable(rows.to_frame(), undeclared_columns=list(dict.fromkeys(names)))
        empty = pa.schema([schema.field(n) for n in wanted])
        frame = pl.from_arrow(pa.Table.from_batches(batches) if batches else empty.empty_table())
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(path.name, f"not a readable Parquet file ({type(exc).__name__})") from None
    assert isinstance(frame, pl.DataFrame)
    typed = []
    for c in frame.columns:
        dtype = frame.schema[c]
        if isinstance(dtype, pl.Struct | pl.List | pl.Array | pl.Object):
            raise ExportError(path.name, "holds nested values (a struct or a list), not a value", field=c)
        typed.append(pl.col(c).dt.strftime("%Y-%m-%d") if dtype == pl.Date else pl.col(c).cast(pl.String))
    frame = frame.with_columns(typed).with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    undeclared = [n for n in dict.fromkeys(names) if n not in declared]
    return RawTable(frame, undeclared_columns=undeclared)


def read_raw_table(
    path: Path, terms: DatasetTerms, max_bytes: int = DEFAULT_MAX_BYTES, *, fast: bool = True
) -> RawTable:
    """The file as an all-text table with its source column names, a row number column and the
    rows refused for their shape (too few or too many fields, a repeated header, a bad JSON line).

    `fast=False` reads record by record only (the reference the fast paths are tested against)."""
    file = path.name
    _check_suffix(path, terms)
    if terms.file_format == "parquet":
        return _parquet_table(path, terms, max_bytes, terms.max_rows)
    data = _raw_bytes(path, max_bytes)
    if data.startswith(PARQUET_MAGIC):
        raise ExportError(file, f"is a Parquet file, but the contract's fileFormat is '{terms.file_format}'")
    notes: list[str] = []
    text = _text(data, terms.encoding, file, notes)
    if not text.strip():
        raise ExportError(file, "file is empty")
    xapi = terms.file_format == "xapi"
    if terms.file_format in ("xapi", "jsonl"):
        _refuse_deep_json(text, file)
        table = _json_lines(text, xapi) if fast else _json_lines_careful(text, xapi)
    else:
        table = _csv_table(text, terms, file) if fast else _csv_table_careful(text, terms, file)
    width = table.frame.width - 1
    if width > MAX_COLUMNS:
        raise ExportError(file, f"has {width} columns, over the {MAX_COLUMNS}-column limit")
    table.notes = notes + table.notes
    return table


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_MANY_OPENERS = re.compile(rf"^(?:[^\n\[{{]*+[\[{{]){{{MAX_JSON_DEPTH + 1}}}", re.MULTILINE)


def _json_depth(line: str, limit: int) -> int:
    """How deep brackets nest in one line, outside strings (stops counting past `limit`)."""
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(line):
        ch = token.group()[0]
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif ch in "]}":
            depth -= 1
    return deepest


def _refuse_deep_json(text: str, file: str) -> None:
    """A line nested deeper than MAX_JSON_DEPTH refuses the file (json.loads would recurse until
    RecursionError, a native parser until its stack ends). Only a line holding more than that many
    brackets can be that deep; a line-anchored regex finds those in one pass over the text."""
    if text.count("{") + text.count("[") <= MAX_JSON_DEPTH:
        return
    for match in _MANY_OPENERS.finditer(text):
        end = text.find("\n", match.start())
        line = text[match.start() : end if end >= 0 else len(text)]
        if _json_depth(line, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            before = text[: match.start()]
            row = sum(1 for part in before.splitlines() if part.strip()) + 1
            raise ExportError(file, f"a JSON line nests deeper than {MAX_JSON_DEPTH} levels", row=row)


def read_text_frame(path: Path, terms: DatasetTerms, max_bytes: int = DEFAULT_MAX_BYTES) -> pl.DataFrame:
    """The file as an all-text frame with its source column names and a row number column."""
    return read_raw_table(path, terms, max_bytes).frame


def _boolean(expr: pl.Expr, fmt: str | None) -> pl.Expr:
    text = expr.str.strip_chars().str.to_lowercase()
    trues, falses = list(TRUE_TOKENS), list(FALSE_TOKENS)
    if fmt and "/" in fmt:  # e.g. "Y/N": the school's true and false tokens
        t, f = (s.strip().lower() for s in fmt.split("/", 1))
        trues, falses = [t], [f]
    return pl.when(text.is_in(trues)).then(True).when(text.is_in(falses)).then(False).otherwise(None)


def _number(text: pl.Expr, fmt: str | None) -> pl.Expr:
    """A finite float in the declared spelling; anything else (1,5 without a format, NaN, inf) is null."""
    if fmt in NUMBER_FORMATS:
        pattern, thousands, decimal = NUMBER_FORMATS[fmt]
        plain = text.str.replace_all(re.escape(thousands), "", literal=False).str.replace(
            decimal, ".", literal=True
        )
        value = pl.when(text.str.contains(pattern)).then(plain).otherwise(None).cast(pl.Float64, strict=False)
    else:
        value = (
            pl.when(text.str.contains(PLAIN_NUMBER)).then(text).otherwise(None).cast(pl.Float64, strict=False)
        )
    return pl.when(value.is_finite()).then(value).otherwise(None)


def _first_parsed(text: pl.Expr, formats: list[str], dtype: pl.DataType) -> pl.Expr:
    """Several declared formats (`sourceFormat: "%d/%m/%Y|%Y-%m-%d"`) are tried in the contract's order."""
    return pl.coalesce([text.str.strptime(dtype, f.strip(), strict=False) for f in formats])


def _typed(expr: pl.Expr, terms: FieldTerms) -> pl.Expr:
    """Parse text into the field's logical type; an unparsable value becomes null (and is counted)."""
    text = expr.str.strip_chars()
    kind = terms.logical_type
    if kind == "integer":
        return text.cast(pl.Int64, strict=False)
    if kind == "number":
        return _number(text, terms.source_format)
    if kind == "boolean":
        return _boolean(text, terms.source_format)
    if kind == "date":
        return _first_parsed(text, (terms.source_format or "%Y-%m-%d").split("|"), pl.Date)
    if kind == "timestamp":
        if terms.source_format:
            return _first_parsed(text, terms.source_format.split("|"), pl.Datetime("us"))
        return text.str.to_datetime(time_zone="UTC", strict=False).dt.replace_time_zone(None)
    return pl.when(text == "").then(None).otherwise(text)


def _value_checks(present: list[FieldTerms]) -> list[tuple[str, str, pl.Expr]]:
    checks: list[tuple[str, str, pl.Expr]] = []
    for f in present:
        src, col = pl.col(f"__src_{f.name}"), pl.col(f.name)
        blank = src.is_null() | (src.cast(pl.String).str.strip_chars() == "")
        if f.required:
            checks.append((f.name, "missing value", blank))
        checks.append((f.name, f"not a valid {f.logical_type}", ~blank & col.is_null()))
        if f.minimum is not None:
            checks.append((f.name, f"below minimum {f.minimum:g}", col < f.minimum))
        if f.maximum is not None:
            checks.append((f.name, f"above maximum {f.maximum:g}", col > f.maximum))
        if f.allowed_values:
            allowed = col.is_not_null() & ~col.cast(pl.String).is_in(f.allowed_values)
            checks.append((f.name, "not an allowed value", allowed))
    return checks


def _reject_bad_values(typed: pl.DataFrame, checks: list, result: ReadResult) -> pl.DataFrame:
    if not checks or typed.is_empty():
        return typed
    flags = typed.select(
        pl.col(ROW), *[e.fill_null(False).alias(f"{i}") for i, (_, _, e) in enumerate(checks)]
    )
    for i, (name, reason, _) in enumerate(checks):
        bad = flags.filter(pl.col(f"{i}"))
        if bad.height:
            result.reject(name, reason, bad.height, int(bad[ROW].min()))
    any_bad = flags.select(pl.any_horizontal([pl.col(f"{i}") for i in range(len(checks))])).to_series()
    return typed.filter(~any_bad)


def _reject_exact_duplicates(typed: pl.DataFrame, terms: DatasetTerms, result: ReadResult) -> pl.DataFrame:
    """The very same row twice (every declared column equal) is one record delivered twice."""
    columns = [f.name for f in terms.fields]
    duplicated = typed.select(pl.struct(columns).is_first_distinct().not_()).to_series()
    if duplicated.any():
        rows = typed.filter(duplicated)[ROW]
        result.reject(LINE_FIELD, "exact duplicate of an earlier row", rows.len(), int(rows.min()))
        typed = typed.filter(~duplicated)
    return typed


def read_export(
    path: Path, terms: DatasetTerms, max_bytes: int = DEFAULT_MAX_BYTES, *, fast: bool = True
) -> ReadResult:
    """Read, map source columns to canonical ones, type them, and reject bad rows by reason.

    Raises `ExportError` when the file cannot be used at all, including when it has no data row
    or every row is rejected (an export that yields nothing is a failed export, not an empty one),
    and for anything a reader raises on a hostile file (only the error's class is named: a
    library's message may quote the file's bytes).
    `fast=False` skips the Polars fast paths (same result, slower; for tests and comparisons).
    """
    try:
        return _read_export(path, terms, max_bytes, fast=fast)
    except ExportError:
        raise
    except Exception as exc:  # RecursionError, MemoryError, a library's own: the file is refused
        raise ExportError(path.name, f"could not be read ({type(exc).__name__})") from None


def _read_export(path: Path, terms: DatasetTerms, max_bytes: int, *, fast: bool) -> ReadResult:
    table = read_raw_table(path, terms, max_bytes, fast=fast)
    raw, file = table.frame, path.name
    rows_in = raw.height + len(table.shape_rejects)
    if rows_in > terms.max_rows:
        raise ExportError(
            file, f"has {rows_in} rows, over the {terms.max_rows}-row limit (the contract's maxRows)"
        )
    declared_sources = {f.source for f in terms.fields}
    dropped = sorted(
        {c for c in raw.columns if c not in declared_sources and not c.startswith("__")}
        | set(table.undeclared_columns)
    )
    for f in terms.fields:
        if f.required and f.source not in raw.columns:
            hint = "".join(table.notes[-1:]) if table.notes and "delimited" in table.notes[-1] else ""
            raise ExportError(file, f"required column '{f.source}' is missing{hint}", f.name)
    if rows_in == 0:
        raise ExportError(file, "has a header but no data rows")
    present = [f for f in terms.fields if f.source in raw.columns]
    typed = raw.select(
        pl.col(ROW),
        *[pl.col(f.source).alias(f"__src_{f.name}") for f in present],
        *[_typed(pl.col(f.source).cast(pl.String), f).alias(f.name) for f in present],
        *[pl.lit(None, dtype=pl.String).alias(f.name) for f in terms.fields if f.source not in raw.columns],
    )
    result = ReadResult(frame=typed, rows_in=rows_in, dropped_columns=dropped, notes=table.notes)
    for reason, row in table.shape_rejects:
        result.reject(LINE_FIELD, reason, 1, row)
    typed = _reject_bad_values(typed, _value_checks(present), result)
    typed = _reject_exact_duplicates(
        typed.select(pl.col(ROW), *[pl.col(f.name) for f in terms.fields]), terms, result
    )
    result.frame = typed
    if typed.is_empty():
        raise ExportError(file, f"every row was rejected: {describe_rejects(result.reject_summary())}")
    return result


def describe_rejects(summary: list[dict], limit: int = 3) -> str:
    """`field 'minutes' above maximum 600 (2 rows, first at row 7); ...`: names and counts, never values."""
    ranked = sorted(summary, key=lambda r: (-r["rows"], r["field"], r["reason"]))
    parts = [
        (f"field '{r['field']}' " if r["field"] != LINE_FIELD else "")
        + f"{r['reason']} ({r['rows']} row{'s' if r['rows'] != 1 else ''}"
        + (f", first at row {r['first_row']})" if r.get("first_row") is not None else ")")
        for r in ranked[:limit]
    ]
    more = len(ranked) - limit
    return "; ".join(parts) + (f"; and {more} more reason{'s' if more > 1 else ''}" if more > 0 else "")
