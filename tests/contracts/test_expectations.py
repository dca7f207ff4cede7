"""Suites derived from a contract, and what Great Expectations makes of good and bad staging frames."""

import json
from pathlib import Path

import polars as pl
import pytest

from contracts.expectations import (
    GENERALIZED_COLUMNS,
    STAGING_SOURCES,
    run_suite,
    staging_suite,
    staging_suites,
)
from contracts.loader import parse_contract
from privacy.minimize import GENERALIZED_NAMES
from transforms.staging import STAGING_DATASETS

EXAMPLE = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "sch01.yaml"
PID = "ab" * 32


@pytest.fixture(scope="module")
def demo_agreement(tiny_consortium_template):
    agreement, problems = parse_contract(tiny_consortium_template / "contracts" / "dsa-sch01.yaml")
    assert problems == []
    return agreement


def kinds(suite) -> set[tuple[str, str | None]]:
    return {(e.kind, e.column) for e in suite.expectations}


def students_frame(n: int = 4) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "school_id": ["sch01"] * n,
            "student_pid": [f"{i:064x}" for i in range(n)],
            "key_version": ["1"] * n,
            "birth_year": ["2014"] * n,
            "postcode_district": ["AB1"] * n,
            "grade": pl.Series([3, 4, None, 5][:n], dtype=pl.Int64),
            "sex": ["F", "M", "other", None][:n],
            "frl": [True, False, True, False][:n],
            "ell": [False] * n,
            "disability": [False] * n,
        }
    )


def test_generalized_column_names_match_minimization():
    assert {r: f("x") for r, f in GENERALIZED_NAMES.items()} == GENERALIZED_COLUMNS
    assert set(STAGING_SOURCES) == set(STAGING_DATASETS)


def test_suite_per_staging_dataset_from_the_contract(demo_agreement):
    suites = staging_suites(demo_agreement)
    assert set(suites) == {"students", "usage", "assessments", "attendance", "comments", "resources"}
    students = suites["students"]
    assert {
        ("ExpectColumnValuesToBeUnique", "student_pid"),  # the roster's unique student_id
        ("ExpectColumnValuesToNotBeNull", "frl"),  # required
        ("ExpectColumnValuesToBeInSet", "sex"),  # logicalTypeOptions.enum
        ("ExpectColumnValuesToBeBetween", "grade"),  # minimum / maximum
        ("ExpectTableRowCountToBeBetween", None),  # at least one student
        ("ExpectTableColumnsToMatchSet", None),
    } <= kinds(students)
    columns = next(e for e in students.expectations if e.kind == "ExpectTableColumnsToMatchSet")
    assert set(columns.kwargs["column_set"]) >= {"student_pid", "birth_year", "grade", "sex"}
    assert not {"student_id", "given_name", "email", "birth_date"} & set(columns.kwargs["column_set"])
    sex = next(
        e for e in students.expectations if e.kind == "ExpectColumnValuesToBeInSet" and e.column == "sex"
    )
    assert sex.kwargs["value_set"] == ["F", "M", "X", "other"]  # rare categories are recoded to "other"
    assert ("ExpectColumnValuesToMatchRegex", "week") in kinds(suites["usage"])
    between = {
        e.column: e.kwargs for e in suites["usage"].expectations if e.kind == "ExpectColumnValuesToBeBetween"
    }
    assert between["minutes"] == {"min_value": 0, "max_value": 600}
    assert ("ExpectColumnValuesToBeUnique", "student_pid") in kinds(
        suites["assessments"]
    )  # one row per student
    assert ("ExpectColumnValuesToBeUnique", "student_pid") not in kinds(suites["usage"])
    assert ("ExpectColumnValuesToBeUnique", "resource_id") in kinds(suites["resources"])
    json.dumps([s.as_dict() for s in suites.values()])  # JSON-able


def test_missing_dataset_gives_no_suite():
    agreement, _ = parse_contract(EXAMPLE)  # the example declares a roster only
    assert staging_suite(agreement, "usage") is None
    assert set(staging_suites(agreement)) == {"students"}


def test_good_students_frame_passes(demo_agreement):
    summary = run_suite(students_frame(), staging_suite(demo_agreement, "students"))
    assert summary.success, summary.failed
    assert summary.rows == 4 and summary.as_dict()["failed_count"] == 0


def test_bad_students_frame_fails_with_counts_and_never_values(demo_agreement):
    good = students_frame()
    bad = pl.concat([good, good.head(1)]).with_columns(  # a duplicated pseudonym
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(40)).otherwise(pl.col("grade")).alias("grade"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("Q-SECRET")).otherwise(pl.col("sex")).alias("sex"),
        pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("frl")).alias("frl"),
        pl.lit("jane.canary@example.org").alias("email"),  # a raw identifier that slipped through
    )
    summary = run_suite(bad, staging_suite(demo_agreement, "students"))
    assert not summary.success
    failed = {(r["expectation"], r["column"]): r for r in summary.failed}
    assert failed[("expect_column_values_to_be_unique", "student_pid")]["unexpected_count"] == 2
    assert failed[("expect_column_values_to_be_between", "grade")]["unexpected_count"] == 1
    assert failed[("expect_column_values_to_be_in_set", "sex")]["unexpected_count"] == 1
    assert failed[("expect_column_values_to_not_be_null", "frl")]["unexpected_count"] == 1
    assert failed[("expect_table_columns_to_match_set", None)]["unexpected_columns"] == ["email"]
    text = json.dumps(summary.as_dict())
    for value in ("Q-SECRET", "jane.canary", "40", PID[:8], "0" * 60):
        assert value not in text


def test_wrong_type_and_missing_column_fail(demo_agreement):
    frame = students_frame().with_columns(pl.col("grade").cast(pl.String)).drop("frl")
    summary = run_suite(frame, staging_suite(demo_agreement, "students"))
    failed = {(r["expectation"], r["column"]): r for r in summary.failed}
    assert failed[("expect_column_values_to_be_in_type_list", "grade")]["observed_type"] == "str"
    assert failed[("expect_table_columns_to_match_set", None)]["missing_columns"] == ["frl"]
    assert failed[("expect_column_values_to_not_be_null", "frl")]["error"] == "column missing"


def test_empty_students_fail_row_count_and_pipeline_columns_are_allowed(demo_agreement):
    suite = staging_suite(demo_agreement, "students")
    empty = run_suite(students_frame().head(0), suite)
    assert ("expect_table_row_count_to_be_between", None) in {
        (r["expectation"], r["column"]) for r in empty.failed
    }
    with_opt_outs = students_frame().with_columns(
        pl.lit([], dtype=pl.List(pl.String)).alias("opted_out_purposes")
    )
    assert run_suite(with_opt_outs, suite).success


def test_week_pattern_and_pid_shape(demo_agreement):
    usage = pl.DataFrame(
        {
            "school_id": ["sch01", "sch01"],
            "student_pid": [PID, "not-a-pid"],
            "key_version": ["1", "1"],
            "resource_id": ["R1", "R2"],
            "week": ["2026-W05", "2026-02-01"],
            "minutes": [10.0, 5.0],
        }
    )
    failed = {
        (r["expectation"], r["column"])
        for r in run_suite(usage, staging_suite(demo_agreement, "usage")).failed
    }
    assert failed == {
        ("expect_column_values_to_match_regex", "week"),
        ("expect_column_values_to_match_regex", "student_pid"),
    }
