"""A corpus of hostile and broken school exports, generated (never committed as blobs).

Each case starts from a clean one-school home (the demo's sch01: comma CSV, `%d/%m/%Y` dates)
and breaks one thing: a file's bytes, its name, the landing folder's shape or the contract.
`Expected` says what intake must do with the file the case is about, and which fragments the
message must hold (the file, the row and the field, never a value).

    python tests/corpus/export_corpus.py OUT_DIR     # writes every case's home under OUT_DIR to look at
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from demo.generate import generate_consortium

SCHOOL = "sch01"
EXPORT_DAY = "2027-06-15"  # the demo's export date (inside the agreement, which ends 2027-07-31)
OUTSIDE = "outside"  # a folder next to the home: must be left exactly as it was
TRAVERSAL_NAME = "usage_2027-06-16\n..\\..\\..\\outside\\evil.csv"  # legal on Linux, hostile elsewhere


@dataclass(frozen=True)
class Expected:
    file: str  # the landed file the case is about (its name as delivered)
    outcome: str  # accepted | rejected_rows | quarantined | duplicate | superseded
    fragments: tuple[str, ...] = ()  # must all appear in the file's message / quarantine reason
    reject: tuple[str, str, int | None] | None = None  # (field, reason fragment, first row)
    max_bytes: int | None = None  # the size limit the case runs under


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], None]
    expected: Expected
    notes: str = ""
    checks: tuple[str, ...] = field(default_factory=tuple)  # extra named checks for the test


# --- building blocks --------------------------------------------------------------------------


def export_file(home: Path, dataset: str, day: str = EXPORT_DAY, ext: str = "csv") -> Path:
    return home / "landing" / SCHOOL / dataset / f"{dataset}_{day}.{ext}"


def lines_of(home: Path, dataset: str) -> list[str]:
    return export_file(home, dataset).read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: list[str], ending: str = "\n", encoding: str = "utf-8") -> None:
    path.write_bytes((ending.join(lines) + ending).encode(encoding))  # one BOM at most


def replace_export(home: Path, dataset: str, lines: list[str], **kwargs) -> None:
    write_lines(export_file(home, dataset), lines, **kwargs)


def set_cell(line: str, index: int, value: str) -> str:
    cells = line.split(",")
    cells[index] = value
    return ",".join(cells)


def one_cell(dataset: str, row: int, column: int, value: str, day: str = EXPORT_DAY):
    """A case that changes one cell of the dataset's export (row 0 is the header)."""

    def mutate(home: Path) -> None:
        path = export_file(home, dataset, day)
        lines = path.read_text().splitlines()
        lines[row] = set_cell(lines[row], column, value)
        write_lines(path, lines)

    return mutate


def edit_contract(home: Path, dataset: str, edit: Callable[[dict], None]) -> None:
    """Apply `edit` to the dataset's schema object (or to the whole contract when dataset is '')."""
    path = home / "contracts" / f"dsa-{SCHOOL}.yaml"
    document = yaml.safe_load(path.read_text())
    target = document if not dataset else next(s for s in document["schema"] if s["name"] == dataset)
    edit(target)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def set_custom(entry: dict, name: str, value) -> None:
    custom = entry.setdefault("customProperties", [])
    for item in custom:
        if item["property"] == name:
            item["value"] = value
            return
    custom.append({"property": name, "value": value})


def field_entry(schema: dict, name: str) -> dict:
    return next(p for p in schema["properties"] if p["name"] == name)


def with_names(lines: list[str], given: str) -> list[str]:
    """Roster lines whose third data row's first name is `given` (a non-ASCII name for encodings)."""
    out = list(lines)
    out[3] = set_cell(out[3], 2, given)
    return out


# --- the cases --------------------------------------------------------------------------------


def _empty(home: Path) -> None:
    export_file(home, "attendance").write_bytes(b"")


def _header_only(home: Path) -> None:
    replace_export(home, "attendance", lines_of(home, "attendance")[:1])


def _truncated_last_line(home: Path) -> None:
    lines = lines_of(home, "usage")
    last = lines[-1]
    lines[-1] = last[: last.index(",", last.index(",") + 1)]  # cut after the second field
    export_file(home, "usage").write_text("\n".join(lines))  # and no final newline


def _wrong_delimiter(home: Path) -> None:
    replace_export(home, "usage", [line.replace(",", ";") for line in lines_of(home, "usage")])


def _utf16_with_bom(home: Path) -> None:
    replace_export(home, "roster", with_names(lines_of(home, "roster"), "Zoë"), encoding="utf-16")


def _utf16_declared(home: Path) -> None:
    replace_export(home, "roster", with_names(lines_of(home, "roster"), "Zoë"), encoding="utf-16-le")
    edit_contract(home, "roster", lambda s: set_custom(s, "encoding", "utf-16-le"))


def _latin1_declared(home: Path) -> None:
    replace_export(home, "roster", with_names(lines_of(home, "roster"), "Zoë"), encoding="latin-1")
    edit_contract(home, "roster", lambda s: set_custom(s, "encoding", "latin-1"))


def _latin1_undeclared(home: Path) -> None:
    replace_export(home, "roster", with_names(lines_of(home, "roster"), "Zoë"), encoding="latin-1")


def _utf8_bom(home: Path) -> None:
    path = export_file(home, "roster")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def _mixed_line_endings(home: Path) -> None:
    lines = lines_of(home, "roster")
    endings = ("\r\n", "\n", "\r")
    text = "".join(line + endings[i % 3] for i, line in enumerate(lines))
    export_file(home, "roster").write_bytes(text.encode())


def _quoted_newlines_and_delimiters(home: Path) -> None:
    lines = lines_of(home, "comments")
    lines[1] = set_cell(lines[1], 3, '"Worked hard, again.\nSpoke to home, twice; ""great"" week."')
    replace_export(home, "comments", lines)


def _repeated_header_row(home: Path) -> None:
    lines = lines_of(home, "usage")
    replace_export(home, "usage", [*lines[:6], lines[0], *lines[6:]])  # two exports concatenated


def _duplicated_header_column(home: Path) -> None:
    lines = lines_of(home, "roster")
    replace_export(home, "roster", [line + "," + line.split(",")[7] for line in lines])  # grade twice


def _duplicated_rows(home: Path) -> None:
    lines = lines_of(home, "usage")
    replace_export(home, "usage", [*lines, lines[2], lines[3]])


def _duplicate_student_in_roster(home: Path) -> None:
    lines = lines_of(home, "roster")
    replace_export(home, "roster", [*lines, set_cell(lines[1], 7, "5")])


def _required_column_missing(home: Path) -> None:
    replace_export(
        home,
        "assessments",
        [",".join(line.split(",")[:2] + line.split(",")[3:]) for line in lines_of(home, "assessments")],
    )


def _undeclared_column_of_names(home: Path) -> None:
    lines = lines_of(home, "attendance")
    names = ("Ada Lovelace", "Alan Turing", "Grace Hopper")
    replace_export(
        home,
        "attendance",
        [lines[0] + ",parent_name"] + [f"{line},{names[i % 3]}" for i, line in enumerate(lines[1:])],
    )


def _decimal_comma_undeclared(home: Path) -> None:
    lines = lines_of(home, "assessments")
    lines[2] = set_cell(lines[2], 2, '"45,5"')
    replace_export(home, "assessments", lines)


def _decimal_comma_declared(home: Path) -> None:
    lines = lines_of(home, "assessments")
    out = [lines[0]] + [
        set_cell(line, 2, '"' + line.split(",")[2].replace(".", ",") + '"') for line in lines[1:]
    ]
    replace_export(home, "assessments", out)
    edit_contract(
        home, "assessments", lambda s: set_custom(field_entry(s, "score"), "sourceFormat", "decimal_comma")
    )


def _thousands_separator_undeclared(home: Path) -> None:
    lines = lines_of(home, "usage")
    lines[4] = set_cell(lines[4], 3, '"1,000.0"')
    replace_export(home, "usage", lines)


def _dates_in_three_formats(home: Path) -> None:
    lines = lines_of(home, "assessments")
    spelled = ("2026-09-19", "Sep 19 2026")
    lines[2] = set_cell(lines[2], 3, spelled[0])
    lines[3] = set_cell(lines[3], 3, spelled[1])
    replace_export(home, "assessments", lines)


def _dates_declared_formats(home: Path) -> None:
    _dates_in_three_formats(home)
    edit_contract(
        home,
        "assessments",
        lambda s: set_custom(field_entry(s, "assessed_on"), "sourceFormat", "%d/%m/%Y|%Y-%m-%d|%b %d %Y"),
    )


def _every_row_rejected(home: Path) -> None:
    lines = lines_of(home, "assessments")
    replace_export(home, "assessments", [lines[0]] + [set_cell(line, 2, "absent") for line in lines[1:]])


def _same_file_twice(home: Path) -> None:
    source = export_file(home, "usage")
    shutil.copyfile(source, source.with_name(f"usage_{EXPORT_DAY} (1).csv"))


def _newer_replaces_older(home: Path) -> None:
    lines = lines_of(home, "attendance")
    replace_export(home, "attendance", lines)
    write_lines(export_file(home, "attendance", "2027-05-01"), lines[:-1])


def _broken_newest_falls_back(home: Path) -> None:
    shutil.copyfile(export_file(home, "roster"), export_file(home, "roster", "2027-05-01"))
    export_file(home, "roster").write_bytes(b"")


def _gzip(home: Path) -> None:
    source = export_file(home, "usage")
    source.with_name(source.name + ".gz").write_bytes(gzip.compress(source.read_bytes(), mtime=0))
    source.unlink()


def _gzip_bomb(home: Path) -> None:
    source = export_file(home, "attendance")
    bomb = gzip.compress(source.read_bytes() + b" " * (8 << 20), mtime=0)  # ~8 MB from a few KB
    source.with_name(source.name + ".gz").write_bytes(bomb)
    source.unlink()


def _zip_archive(home: Path) -> None:
    source = export_file(home, "usage")
    with zipfile.ZipFile(source.with_name(f"usage_{EXPORT_DAY}.zip"), "w") as archive:
        archive.write(source, source.name)
    source.unlink()


def _excel_renamed_csv(home: Path) -> None:
    path = export_file(home, "attendance")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")


def _binary_file(home: Path) -> None:
    export_file(home, "attendance").write_bytes(bytes(range(256)) * 4)


def _multi_gb_sparse(home: Path) -> None:
    with export_file(home, "usage", "2027-06-16").open("wb") as handle:
        handle.truncate(3 << 30)  # 3 GiB of holes: costs no disk and must cost no reading


def _symlink_outside(home: Path) -> None:
    secret = home.parent / OUTSIDE / "secret.csv"
    export_file(home, "usage", "2027-06-16").symlink_to(secret)


def _symlinked_dataset_folder(home: Path) -> None:
    folder = home / "landing" / SCHOOL / "comments"
    shutil.rmtree(folder)
    folder.symlink_to(home.parent / OUTSIDE, target_is_directory=True)


def _nested_traversal_folder(home: Path) -> None:
    nested = home / "landing" / SCHOOL / "usage" / ".." / "usage" / "deeper"
    nested.mkdir()
    shutil.copyfile(export_file(home, "usage"), nested / f"usage_{EXPORT_DAY}.csv")


def _newline_and_backslash_name(home: Path) -> None:
    shutil.copyfile(export_file(home, "usage"), export_file(home, "usage").with_name(TRAVERSAL_NAME))


def _email_like_name(home: Path) -> None:
    lines = lines_of(home, "usage")
    write_lines(export_file(home, "usage").with_name(f"jane.doe@example.org_{EXPORT_DAY}.csv"), lines[:-1])


def _fifo(home: Path) -> None:
    os.mkfifo(export_file(home, "usage", "2027-06-16"))


def _unknown_dataset_folder(home: Path) -> None:
    folder = home / "landing" / SCHOOL / "timetable"
    folder.mkdir()
    (folder / f"timetable_{EXPORT_DAY}.csv").write_text("a,b\n1,2\n")


def _expired_contract(home: Path) -> None:
    shutil.copyfile(export_file(home, "usage"), export_file(home, "usage", "2027-08-15"))


def _retired_contract(home: Path) -> None:
    edit_contract(home, "", lambda c: c.update(status="retired"))


def _jsonl_for_csv_contract(home: Path) -> None:
    path = export_file(home, "attendance")
    path.with_suffix(".jsonl").write_text('{"StudentNumber": "1"}\n')
    path.unlink()


def _as_format(home: Path, file_format: str, max_rows: int | None = None) -> None:
    """The attendance dataset declared in another file format (and row limit); its CSV removed."""

    def edit(schema: dict) -> None:
        schema["customProperties"] = [c for c in schema["customProperties"] if c["property"] != "delimiter"]
        set_custom(schema, "fileFormat", file_format)
        if max_rows:
            set_custom(schema, "maxRows", max_rows)

    edit_contract(home, "attendance", edit)
    export_file(home, "attendance").unlink()


def _deeply_nested_json(home: Path) -> None:
    _as_format(home, "jsonl")
    good = '{"StudentNumber": "1", "days_enrolled": 40, "days_present": 30}'
    deep = '{"StudentNumber": "2", "days_enrolled": ' + "[" * 50_000 + "]" * 50_000 + "}"
    export_file(home, "attendance", ext="jsonl").write_text(f"{good}\n{good}\n{deep}\n")


def _parquet_over_max_rows(home: Path) -> None:
    import polars as pl

    _as_format(home, "parquet", max_rows=100)
    rows = 101
    frame = pl.DataFrame(
        {"StudentNumber": ["1"] * rows, "days_enrolled": [40] * rows, "days_present": [30] * rows}
    )
    frame.write_parquet(export_file(home, "attendance", ext="parquet"))


F = f"_{EXPORT_DAY}.csv"
CASES: tuple[Case, ...] = (
    Case("empty_file", _empty, Expected("attendance" + F, "quarantined", ("attendance" + F, "file is empty"))),
    Case("header_only", _header_only, Expected("attendance" + F, "quarantined", ("attendance" + F, "no data rows"))),
    Case("truncated_last_line", _truncated_last_line, Expected("usage" + F, "rejected_rows", ("usage" + F, "too few fields", "first at row"), ("(row)", "too few fields", -1))),
    Case("wrong_delimiter", _wrong_delimiter, Expected("usage" + F, "quarantined", ("usage" + F, "field 'student_id'", "'StudentNumber' is missing", "';'-delimited"))),
    Case("utf16_with_bom", _utf16_with_bom, Expected("roster" + F, "accepted")),
    Case("utf16_declared", _utf16_declared, Expected("roster" + F, "accepted")),
    Case("latin1_declared", _latin1_declared, Expected("roster" + F, "accepted")),
    Case("latin1_undeclared", _latin1_undeclared, Expected("roster" + F, "quarantined", ("roster" + F, "row 3", "not valid utf-8 at line 4", "encoding"))),
    Case("utf8_bom", _utf8_bom, Expected("roster" + F, "accepted")),
    Case("mixed_line_endings", _mixed_line_endings, Expected("roster" + F, "accepted"), checks=("all_rows",)),
    Case("quoted_newlines_and_delimiters", _quoted_newlines_and_delimiters, Expected("comments" + F, "accepted"), checks=("all_rows",)),
    Case("repeated_header_row", _repeated_header_row, Expected("usage" + F, "rejected_rows", ("usage" + F, "repeated header row", "row 6"), ("(row)", "repeated header row", 6))),
    Case("duplicated_header_column", _duplicated_header_column, Expected("roster" + F, "quarantined", ("roster" + F, "field 'grade'", "appears twice"))),
    Case("duplicated_rows", _duplicated_rows, Expected("usage" + F, "rejected_rows", ("usage" + F, "exact duplicate"), ("(row)", "exact duplicate of an earlier row", -2))),
    Case("duplicate_student_in_roster", _duplicate_student_in_roster, Expected("roster" + F, "rejected_rows", ("roster" + F, "field 'student_id'", "duplicate"), ("student_id", "duplicate of an earlier row", None))),
    Case("required_column_missing", _required_column_missing, Expected("assessments" + F, "quarantined", ("assessments" + F, "field 'score'", "required column 'score' is missing"))),
    Case("undeclared_column_of_names", _undeclared_column_of_names, Expected("attendance" + F, "accepted"), checks=("dropped_parent_name",)),
    Case("decimal_comma_undeclared", _decimal_comma_undeclared, Expected("assessments" + F, "rejected_rows", ("assessments" + F, "field 'score'", "row 2"), ("score", "not a valid number", 2))),
    Case("decimal_comma_declared", _decimal_comma_declared, Expected("assessments" + F, "accepted")),
    Case("thousands_separator_undeclared", _thousands_separator_undeclared, Expected("usage" + F, "rejected_rows", ("usage" + F, "field 'minutes'", "row 4"), ("minutes", "not a valid number", 4))),
    Case("dates_in_three_formats", _dates_in_three_formats, Expected("assessments" + F, "rejected_rows", ("assessments" + F, "field 'assessed_on'", "2 rows, first at row 2"), ("assessed_on", "not a valid date", 2))),
    Case("dates_declared_formats", _dates_declared_formats, Expected("assessments" + F, "accepted")),
    Case("impossible_date", one_cell("roster", 4, 5, "30/02/2015"), Expected("roster" + F, "rejected_rows", ("roster" + F, "field 'birth_date'", "row 4"), ("birth_date", "not a valid date", 4))),
    Case("negative_minutes", one_cell("usage", 3, 3, "-5.0"), Expected("usage" + F, "rejected_rows", ("usage" + F, "field 'minutes'", "below minimum 0", "row 3"), ("minutes", "below minimum 0", 3))),
    Case("absurd_minutes", one_cell("usage", 5, 3, "100000"), Expected("usage" + F, "rejected_rows", ("usage" + F, "field 'minutes'", "above maximum 600", "row 5"), ("minutes", "above maximum 600", 5))),
    Case("not_a_number", one_cell("usage", 2, 3, "NaN"), Expected("usage" + F, "rejected_rows", ("usage" + F, "field 'minutes'", "row 2"), ("minutes", "not a valid number", 2))),
    Case("score_out_of_range", one_cell("assessments", 3, 2, "140"), Expected("assessments" + F, "rejected_rows", ("assessments" + F, "field 'score'", "above maximum 100", "row 3"), ("score", "above maximum 100", 3))),
    Case("student_not_in_roster", one_cell("usage", 2, 0, "999999"), Expected("usage" + F, "rejected_rows", ("usage" + F, "field 'student_id'", "student not in roster", "row 2"), ("student_id", "student not in roster", 2))),
    Case("every_row_rejected", _every_row_rejected, Expected("assessments" + F, "quarantined", ("assessments" + F, "every row was rejected", "field 'score'", "first at row 1"))),
    Case("same_file_twice", _same_file_twice, Expected(f"usage_{EXPORT_DAY} (1).csv", "duplicate", ("same content", "processed once"))),
    Case("newer_export_replaces_older", _newer_replaces_older, Expected("attendance_2027-05-01.csv", "superseded", ("replaced by", f"(exported {EXPORT_DAY})")), checks=("audit_both",)),
    Case("broken_newest_falls_back", _broken_newest_falls_back, Expected("roster" + F, "quarantined", ("roster" + F, "file is empty")), checks=("fallback_roster",)),
    Case("gzip", _gzip, Expected("usage" + F + ".gz", "accepted"), checks=("all_rows",)),
    Case("gzip_bomb", _gzip_bomb, Expected("attendance" + F + ".gz", "quarantined", ("attendance" + F + ".gz", "decompresses to over"), max_bytes=1 << 20)),
    Case("zip_archive", _zip_archive, Expected(f"usage_{EXPORT_DAY}.zip", "quarantined", (f"usage_{EXPORT_DAY}.zip", "zip archives are not accepted"))),
    Case("excel_renamed_csv", _excel_renamed_csv, Expected("attendance" + F, "quarantined", ("attendance" + F, "zip archive (or an Excel workbook)"))),
    Case("binary_file", _binary_file, Expected("attendance" + F, "quarantined", ("attendance" + F, "not valid utf-8 at line"))),
    Case("multi_gb_sparse_file", _multi_gb_sparse, Expected("usage_2027-06-16.csv", "quarantined", ("usage_2027-06-16.csv", "3221225472 bytes, over the"))),
    Case("symlink_outside_landing", _symlink_outside, Expected("usage_2027-06-16.csv", "quarantined", ("usage_2027-06-16.csv", "symbolic link")), checks=("outside_untouched",)),
    Case("symlinked_dataset_folder", _symlinked_dataset_folder, Expected("comments", "quarantined", ("comments", "symbolic link")), checks=("outside_untouched",)),
    Case("nested_traversal_folder", _nested_traversal_folder, Expected("usage" + F, "quarantined", ("usage" + F, f"not under landing/{SCHOOL}/<dataset>/")), checks=("outside_untouched",)),
    Case("newline_and_backslash_name", _newline_and_backslash_name, Expected(TRAVERSAL_NAME, "quarantined", ("control characters or a backslash",)), checks=("outside_untouched",)),
    Case("email_like_file_name", _email_like_name, Expected(f"jane.doe@example.org_{EXPORT_DAY}.csv", "superseded", ("replaced by",)), checks=("audit_no_email",)),
    Case("fifo_in_landing", _fifo, Expected("usage_2027-06-16.csv", "quarantined", ("usage_2027-06-16.csv", "not a regular file"))),
    Case("unknown_dataset_folder", _unknown_dataset_folder, Expected(f"timetable_{EXPORT_DAY}.csv", "quarantined", ("known dataset name",))),
    Case("expired_contract", _expired_contract, Expected("usage_2027-08-15.csv", "quarantined", ("usage_2027-08-15.csv", "after contract dsa-sch01 ended"))),
    Case("retired_contract", _retired_contract, Expected("roster" + F, "quarantined", ("roster" + F, "status 'retired'"))),
    Case("jsonl_for_csv_contract", _jsonl_for_csv_contract, Expected(f"attendance_{EXPORT_DAY}.jsonl", "quarantined", ("does not match the contract's fileFormat 'csv'",))),
    # issue 17: values a school controls that would become published labels, and bounds
    Case("resource_id_is_an_email", one_cell("usage", 3, 1, "pat.smith@example.org"), Expected("usage" + F, "rejected_rows", ("usage" + F, "field 'resource_id'", "looks like an e-mail address", "row 3"), ("resource_id", "e-mail", 3))),
    Case("resource_id_is_a_reserved_word", one_cell("usage", 4, 1, "ALL"), Expected("usage" + F, "rejected_rows", ("field 'resource_id'", "reserved word"), ("resource_id", "reserved word", 4))),
    Case("resource_id_is_a_formula", one_cell("usage", 2, 1, "@SUM(A1)"), Expected("usage" + F, "rejected_rows", ("field 'resource_id'", "spreadsheet formula"), ("resource_id", "spreadsheet formula", 2))),
    Case("catalogue_row_of_no_consortium_school", one_cell("resources", 1, 3, "sch02", "2026-09-01"), Expected("resources_2026-09-01.csv", "rejected_rows", ("field 'contributing_school'", "not a school of the consortium"), ("contributing_school", "not a school of the consortium", 1))),
    Case("deeply_nested_json_line", _deeply_nested_json, Expected(f"attendance_{EXPORT_DAY}.jsonl", "quarantined", (f"attendance_{EXPORT_DAY}.jsonl", "row 3", "nests deeper than 64 levels"))),
    Case("parquet_over_max_rows", _parquet_over_max_rows, Expected(f"attendance_{EXPORT_DAY}.parquet", "quarantined", ("has 101 rows, over the 100-row limit",))),
)  # fmt: skip


def build_base(root: Path, students: int = 30, weeks: int = 2) -> Path:
    """The clean one-school home every case starts from, plus the folder outside it."""
    generate_consortium(root / "home", schools=1, students_per_school=students, weeks=weeks, seed=11)
    outside = root / OUTSIDE
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.csv").write_text(
        "StudentNumber,teacher_name,written_on,text\n1,Not Here,01/01/2027,secret\n"
    )
    return root / "home"


def build_case(case: Case, base: Path, target: Path) -> Path:
    """A copy of `base` (home + outside folder) under `target` with the case applied; returns the home."""
    shutil.copytree(base.parent, target, symlinks=True)
    home = target / "home"
    case.build(home)
    return home


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "corpus-out")
    base = build_base(out / "_base")
    for case in CASES:
        build_case(case, base, out / case.name)
        print(f"{case.name}: {case.expected.outcome} ({case.expected.file!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
