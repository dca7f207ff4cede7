"""The optional teacher survey: staged under teacher pseudonyms, summed per school, protected."""

from __future__ import annotations

import polars as pl
import pytest

from contracts.expectations import run_suite, staging_suite
from contracts.loader import load_contracts
from privacy.keys import PseudonymKey
from privacy.pseudonymize import ANALYSIS_PURPOSE, TEACHER_PURPOSE, add_pseudonyms
from privacy.staging_store import read_staging_frame
from privacy.suppression import DisclosureRules, protect
from transforms.disclosure_specs import prepared
from transforms.intake import intake_school
from transforms.metrics import teacher_time_saved
from transforms.scrubbing import roster_text_scrubber

KEY = PseudonymKey(b"t" * 32)


def _survey(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"school_id": pl.String, "teacher_pid": pl.String, "minutes_saved_per_week": pl.Float64},
        orient="row",
    ).with_columns(pl.lit("2027-W23").alias("week"), pl.lit("v1").alias("key_version"))  # fmt: skip


def _cell(table: pl.DataFrame, school: str, measure: str) -> dict:
    return table.filter((pl.col("school_id") == school) & (pl.col("measure") == measure)).row(0, named=True)


def test_staging_holds_teacher_pseudonyms_and_no_raw_teacher_id(tiny_home, test_key_env) -> None:
    # sch02 of the demo consortium sends the survey (staff codes in a `staff_code` column)
    raw_file = next((tiny_home.landing / "sch02" / "teacher_survey").glob("*.csv"))
    raw = pl.read_csv(raw_file, separator=";", infer_schema=False)
    contracts = load_contracts(tiny_home.contracts)
    intake_school(tiny_home, contracts, "sch02", KEY, roster_text_scrubber)

    staged = read_staging_frame(tiny_home.staging_file("teacher_survey", "sch02"), "sch02")
    assert staged.columns == ["school_id", "teacher_pid", "key_version", "week", "minutes_saved_per_week"]
    assert staged.height == raw.height and staged["teacher_pid"].n_unique() == raw["staff_code"].n_unique()
    text = staged.write_csv()
    assert not any(code in text for code in raw["staff_code"].to_list())
    assert not any(day in text for day in raw["responded_on"].to_list())  # only ISO weeks survive
    # the teacher purpose key: the same text never gives a student's pseudonym
    links = pl.DataFrame({"link": [f"teacher:sch02:{c}" for c in raw["staff_code"]]})
    as_teacher = add_pseudonyms(links, pl.col("link"), KEY, purpose=TEACHER_PURPOSE)["student_pid"]
    as_student = add_pseudonyms(links, pl.col("link"), KEY, purpose=ANALYSIS_PURPOSE)["student_pid"]
    assert set(staged["teacher_pid"]) == set(as_teacher)
    assert not set(as_teacher) & set(as_student)
    students = read_staging_frame(tiny_home.staging_file("students", "sch02"), "sch02")
    assert not set(staged["teacher_pid"]) & set(students["student_pid"])

    suite = staging_suite(contracts.for_school("sch02")[0], "teacher_survey")
    assert suite is not None
    assert run_suite(staged, suite).success


def test_teacher_time_saved_by_hand() -> None:
    survey = _survey(
        [
            ("a", "t1", 30.0),
            ("a", "t1", 50.0),  # answered twice: counts once, with its own mean (40)
            ("a", "t2", 100.0),
            ("b", "t1", 60.0),  # another school's "t1" is another teacher
        ]
    )
    table = teacher_time_saved(survey)
    assert table.columns == ["school_id", "measure", "value", "n", "status", "note"]
    assert _cell(table, "a", "teachers")["value"] == 2
    assert _cell(table, "a", "minutes_saved_per_week_mean")["value"] == pytest.approx((40 + 100) / 2)
    assert _cell(table, "a", "minutes_saved_per_week_mean")["n"] == 2
    assert _cell(table, "ALL", "teachers")["value"] == 3
    assert _cell(table, "ALL", "minutes_saved_per_week_mean")["value"] == pytest.approx((40 + 100 + 60) / 3)


def test_a_school_with_five_teachers_is_suppressed_and_the_total_cannot_reveal_it() -> None:
    sizes = {"a": 5, "b": 20, "c": 30}
    survey = _survey([(s, f"{s}{i}", float(10 + i)) for s, count in sizes.items() for i in range(count)])
    tables, specs = prepared({"teacher_time_saved": teacher_time_saved(survey)})
    result = protect(tables, specs, DisclosureRules(min_cell_size=10))
    out = result.tables["teacher_time_saved"]

    for measure in ("teachers", "minutes_saved_per_week_mean"):
        cell = _cell(out, "a", measure)
        assert cell["status"] in ("suppressed", "suppressed_secondary") and cell["value"] is None
    # ALL minus the published schools would give a's count: something else must be hidden too
    published = out.filter((pl.col("measure") == "teachers") & (pl.col("status") == "published"))
    assert set(published["school_id"]) != {"b", "c", "ALL"}
    hidden = out.filter((pl.col("measure") == "teachers") & (pl.col("value").is_null()))
    assert hidden.height >= 2
    assert result.audit.passed, result.audit.failures
