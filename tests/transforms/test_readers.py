from pathlib import Path

import polars as pl
import pytest

from contracts.model import DatasetTerms, FieldTerms
from transforms.readers import ExportError, export_date, read_export


def roster_terms(delimiter: str = ",") -> DatasetTerms:
    return DatasetTerms(
        name="roster",
        file_format="csv",
        delimiter=delimiter,
        fields=(
            FieldTerms(
                "student_id", "string", "linkage_key", "pseudonymize", "Pupil", required=True, unique=True
            ),
            FieldTerms(
                "birth_date",
                "date",
                "quasi_identifier",
                "generalize:birth_year",
                "DOB",
                "%d/%m/%Y",
                required=True,
            ),
            FieldTerms("grade", "integer", "quasi_identifier", "keep", "grade", minimum=0, maximum=12),
            FieldTerms("frl", "boolean", "sensitive", "keep", "frl", "Y/N"),
        ),
    )


def write(tmp_path: Path, text: str, name: str = "roster_2027-06-15.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_maps_columns_types_and_drops_undeclared(tmp_path):
    path = write(
        tmp_path,
        "Pupil;DOB;grade;frl;parent_name\n001;02/03/2015;4;Y;Jane Doe\n002;31/12/2014;5;N;John Roe\n",
    )
    result = read_export(path, roster_terms(";"))
    frame = result.frame
    assert frame.columns == ["__row", "student_id", "birth_date", "grade", "frl"]
    assert frame["student_id"].to_list() == ["001", "002"]  # leading zeros kept: read as text
    assert frame["birth_date"].dt.year().to_list() == [2015, 2014]
    assert frame["frl"].to_list() == [True, False]
    assert result.dropped_columns == ["parent_name"]
    assert "Jane Doe" not in str(result.reject_summary())


def test_bad_rows_are_counted_by_field_and_reason_without_values(tmp_path):
    text = "Pupil,DOB,grade,frl\n1,02/03/2015,4,Y\n2,2015-03-02,4,N\n3,01/01/2015,99,N\n,01/01/2015,3,N\n"
    result = read_export(write(tmp_path, text), roster_terms())
    assert result.frame["student_id"].to_list() == ["1"]
    summary = {(r["field"], r["reason"]): (r["rows"], r["first_row"]) for r in result.reject_summary()}
    assert summary[("birth_date", "not a valid date")] == (1, 2)
    assert summary[("grade", "above maximum 12")] == (1, 3)
    assert summary[("student_id", "missing value")] == (1, 4)
    assert "2015-03-02" not in str(summary)


def test_missing_required_column_names_file_and_field(tmp_path):
    path = write(tmp_path, "Pupil,grade\n1,3\n")
    with pytest.raises(ExportError) as info:
        read_export(path, roster_terms())
    assert info.value.file == "roster_2027-06-15.csv" and info.value.field == "birth_date"
    assert "DOB" in str(info.value)


def test_empty_file_and_oversized_file_are_export_errors(tmp_path):
    with pytest.raises(ExportError, match="empty"):
        read_export(write(tmp_path, ""), roster_terms())
    with pytest.raises(ExportError, match="limit"):
        read_export(write(tmp_path, "Pupil,DOB\n1,02/03/2015\n"), roster_terms(), max_bytes=5)


def test_xapi_usage_lines(tmp_path):
    terms = DatasetTerms(
        name="usage",
        file_format="xapi",
        fields=(
            FieldTerms(
                "student_email", "string", "linkage_key", "pseudonymize", "student_email", required=True
            ),
            FieldTerms("resource_id", "string", "attribute", "keep", "resource_id", required=True),
            FieldTerms(
                "started_at", "timestamp", "attribute", "generalize:iso_week", "started_at", required=True
            ),
            FieldTerms("minutes", "number", "attribute", "keep", "minutes", minimum=0, maximum=600),
        ),
    )
    line = (
        '{"actor": {"mbox": "mailto:a.b@example.org"}, "object": {"id": "urn:resource:RES-001"},'
        ' "timestamp": "2026-09-08T10:15:00Z", "result": {"duration": "PT1H5M"}}\n'
    )
    result = read_export(write(tmp_path, line + "not json\n", "usage_2027-06-15.jsonl"), terms)
    row = result.frame.row(0, named=True)
    assert (row["student_email"], row["resource_id"], row["minutes"]) == ("a.b@example.org", "RES-001", 65.0)
    assert row["started_at"].isoformat() == "2026-09-08T10:15:00"
    assert {r["reason"] for r in result.reject_summary()} >= {"not valid JSON"}


def test_export_date_from_name(tmp_path):
    assert str(export_date(write(tmp_path, "x", "usage_2027-01-31.csv"))) == "2027-01-31"
    assert isinstance(pl.DataFrame, type)
