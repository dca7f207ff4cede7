"""Readers are bounded before they decode: Parquet rows, columns and decoded bytes from the footer
and as batches are read, rows per export (the contract's maxRows), JSON nesting depth; and any
error a reader meets on a hostile file becomes an ExportError naming the file, never a crash."""

import resource

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts.model import DatasetTerms, FieldTerms
from transforms import readers
from transforms.readers import MAX_JSON_DEPTH, ExportError, read_export


def text_field(name: str, required: bool = True) -> FieldTerms:
    return FieldTerms(name, "string", "attribute", "keep", name, required=required)


ROSTERISH = DatasetTerms("resources", "parquet", (text_field("resource_id"), text_field("subject")))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_small_parquet_of_millions_of_rows_is_refused_from_its_footer(tmp_path):
    """The issue's 91 KB roster of 3M identical rows took 4.2 GB; now its footer refuses it."""
    path = tmp_path / "resources_2026-10-01.parquet"
    table = pa.table(
        {"resource_id": pa.array(["R1"] * 3_000_000), "subject": pa.array(["maths"] * 3_000_000)}
    )
    pq.write_table(table, path, compression="zstd")
    assert path.stat().st_size < 200_000
    before = peak_rss_mib()
    with pytest.raises(ExportError, match=r"has 3000000 rows, over the 2000000-row limit"):
        read_export(path, ROSTERISH)
    assert peak_rss_mib() - before < 200  # nothing was decoded


def test_dictionary_encoded_repeats_are_counted_as_decoded(tmp_path):
    """Under the row limit, one long string repeated is counted once per row, not once."""
    path = tmp_path / "resources_2026-10-01.parquet"
    long = "x" * 10_000
    pq.write_table(pa.table({"resource_id": [long] * 5_000, "subject": ["m"] * 5_000}), path)
    with pytest.raises(ExportError, match="decodes to"):
        read_export(path, ROSTERISH, max_bytes=10_000_000)
    result = read_export(path, ROSTERISH, max_bytes=200_000_000)
    assert result.rows_in == 5_000 and result.frame["resource_id"].str.len_chars().max() == 10_000


def test_the_contracts_max_rows_applies_to_every_format(tmp_path):
    terms = DatasetTerms("resources", "csv", ROSTERISH.fields, max_rows=3)
    path = tmp_path / "resources_2026-10-01.csv"
    path.write_text("resource_id,subject\n" + "".join(f"R{i},maths\n" for i in range(4)))
    with pytest.raises(ExportError, match="has 4 rows, over the 3-row limit"):
        read_export(path, terms)
    path.write_text("resource_id,subject\n" + "".join(f"R{i},maths\n" for i in range(3)))
    assert read_export(path, terms).frame.height == 3


def test_only_declared_parquet_columns_are_decoded_and_undeclared_ones_counted(tmp_path):
    path = tmp_path / "resources_2026-10-01.parquet"
    pl.DataFrame({"resource_id": ["R1"], "subject": ["m"], "Jane Doe": ["x"], "notes": ["y"]}).write_parquet(
        path
    )
    result = read_export(path, ROSTERISH)
    assert result.frame.columns == [readers.ROW, "resource_id", "subject"]
    assert result.dropped_columns == ["Jane Doe", "notes"]


def test_a_nested_parquet_column_is_refused_with_its_field(tmp_path):
    path = tmp_path / "resources_2026-10-01.parquet"
    pl.DataFrame({"resource_id": [{"a": 1}], "subject": ["m"]}).write_parquet(path)
    with pytest.raises(ExportError, match="field 'resource_id': holds nested values"):
        read_export(path, ROSTERISH)


def test_too_many_columns_are_refused(tmp_path):
    terms = DatasetTerms("resources", "csv", ROSTERISH.fields)
    path = tmp_path / "resources_2026-10-01.csv"
    header = ",".join(["resource_id", "subject", *(f"c{i}" for i in range(readers.MAX_COLUMNS))])
    path.write_text(header + "\n" + ",".join(["R1", "m", *["1"] * readers.MAX_COLUMNS]) + "\n")
    with pytest.raises(ExportError, match="columns, over the 1000-column limit"):
        read_export(path, terms)


@pytest.mark.parametrize("fast", [True, False])
def test_a_deeply_nested_json_line_refuses_the_file_naming_the_row(tmp_path, fast):
    """Before: json.loads raised RecursionError and the school failed on every run."""
    terms = DatasetTerms("resources", "jsonl", ROSTERISH.fields)
    path = tmp_path / "resources_2026-10-01.jsonl"
    deep = '{"resource_id": "R2", "subject": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path.write_text('{"resource_id": "R1", "subject": "m"}\n\n' + deep + "\n")
    with pytest.raises(ExportError, match=rf"row 2: a JSON line nests deeper than {MAX_JSON_DEPTH} levels"):
        read_export(path, terms, fast=fast)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    terms = DatasetTerms("resources", "jsonl", ROSTERISH.fields)
    path = tmp_path / "resources_2026-10-01.jsonl"
    path.write_text(('{"resource_id": "R1", "subject": "' + "[{" * 200 + '"}\n') * 3)
    assert read_export(path, terms).frame.height == 1  # three equal rows: two exact duplicates


def test_any_error_a_reader_meets_becomes_an_export_error(tmp_path, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RecursionError("maximum recursion depth exceeded while decoding 'Jane Doe'")

    monkeypatch.setattr(readers, "_csv_table", explode)
    path = tmp_path / "resources_2026-10-01.csv"
    path.write_text("resource_id,subject\nR1,m\n")
    with pytest.raises(ExportError) as raised:
        read_export(path, DatasetTerms("resources", "csv", ROSTERISH.fields))
    assert str(raised.value) == f"{path.name}: could not be read (RecursionError)"  # never the message


def test_the_depth_scan_is_linear(tmp_path):
    """Ordinary xAPI lines (a few brackets each) cost one regex pass, not a parse."""
    import time

    line = '{"actor": {"mbox": "mailto:a@b.org"}, "object": {"id": "urn:r:1"}, "result": {"x": [1]}}\n'
    text = line * 200_000
    started = time.monotonic()
    readers._refuse_deep_json(text, "usage.jsonl")
    assert time.monotonic() - started < 5
