"""k-anonymity is measured as the smallest class and, when below the floor, enforced with the least loss."""

from collections import Counter

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.model import DatasetTerms, FieldTerms
from privacy.kanonymity import k_anonymize, quasi_identifier_columns, smallest_class

QIS = ["birth_year", "postcode_district", "grade", "sex"]


def students(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (birth_year, postcode_district, grade, sex) with a made-up pid each."""
    return pl.DataFrame(
        {
            "student_pid": [f"pid{i:04d}" for i in range(len(rows))],
            "birth_year": pl.Series([r[0] for r in rows], dtype=pl.Int32),
            "postcode_district": [r[1] for r in rows],
            "grade": pl.Series([r[2] for r in rows], dtype=pl.Int64),
            "sex": [r[3] for r in rows],
            "frl": [i % 2 == 0 for i in range(len(rows))],
        }
    )


def independent_k(frame: pl.DataFrame, qis: list[str]) -> int:
    """Counted in plain Python, so the test does not trust the function under test."""
    return min(Counter(tuple(row[c] for c in qis) for row in frame.iter_rows(named=True)).values())


def test_smallest_class_counts_null_as_a_value_of_its_own():
    frame = students([(2012, "AB1", 7, "F")] * 3 + [(2012, None, 7, "F")] * 2)
    assert smallest_class(frame, QIS) == 2
    assert smallest_class(frame, ["grade"]) == 5
    assert smallest_class(frame.head(0), QIS) == 0


def test_a_school_already_k_anonymous_is_unchanged_apart_from_birth_year_as_text():
    frame = students([(2012, "AB1", 7, "F")] * 5 + [(2013, "AB2", 8, "M")] * 5)
    out, report = k_anonymize(frame, QIS, k=5)
    assert (report.before, report.after) == (5, 5)
    assert report.generalized == {} and report.suppressed_cells == {}
    assert out["birth_year"].to_list() == ["2012"] * 5 + ["2013"] * 5
    assert out.drop("birth_year").equals(frame.drop("birth_year"))


def test_birth_years_split_across_a_band_are_generalized_not_suppressed():
    # every grade-7 class holds 3 students of 2012 and 3 of 2013: 2-year bands make classes of 6
    rows = [(2012, "AB1", 7, s) for s in "FM" for _ in range(3)] + [
        (2013, "AB1", 7, s) for s in "FM" for _ in range(3)
    ]
    out, report = k_anonymize(students(rows), QIS, k=5)
    assert report.before == 3 and report.after == 6
    assert report.generalized == {"birth_year": "2-year bands"}
    assert report.suppressed_cells == {}
    assert set(out["birth_year"]) == {"2012-2013"}
    assert independent_k(out, QIS) >= 5


def test_a_rare_postcode_costs_the_postcode_column_not_anyones_grade_or_sex():
    # a suppressed cell is a value of its own, so nulling only ZZ9 would leave a class of 1;
    # suppressing the postcode column (13 cells) is cheaper than any grade or sex suppression
    rows = [(2012, "AB1", 7, "F")] * 12 + [(2012, "ZZ9", 7, "F")]
    out, report = k_anonymize(students(rows), QIS, k=10)
    assert (report.before, report.after) == (1, 13)
    assert report.generalized == {"postcode_district": "suppressed"}
    assert report.suppressed_cells == {}
    assert out["grade"].null_count() == 0 and out["sex"].null_count() == 0
    assert independent_k(out, QIS) == 13


def test_grade_and_sex_are_suppressed_only_when_nothing_cheaper_works():
    # grade 8 has 3 students: no birth-year or postcode recoding can hide them
    rows = [(2012, "AB1", 7, "F")] * 10 + [(2012, "AB1", 7, "M")] * 10 + [(2011, "AB1", 8, "F")] * 3
    out, report = k_anonymize(students(rows), QIS, k=10)
    assert report.after >= 10
    assert independent_k(out, QIS) >= 10
    # hiding 3 students' grade needs at least 7 others alike: one whole grade-7 class (chosen by its
    # values, never by pseudonym) joins them; the other class keeps every value
    assert report.suppressed_cells["grade"] == 13
    assert out.filter(pl.col("sex") == "M").select(QIS).unique().rows() == [("2012", "AB1", 7, "M")]
    assert out.filter(pl.col("sex") == "M").height == 10


def test_a_school_smaller_than_k_ends_as_one_fully_suppressed_class():
    out, report = k_anonymize(students([(2012, "AB1", 7, "F"), (2013, "AB2", 8, "M")]), QIS, k=10)
    assert report.after == 2
    assert out.select(QIS).null_count().row(0) == (2, 2, 2, 2)


def test_the_report_holds_rules_and_counts_never_a_row_value():
    rows = [(2010 + i % 5, f"Q{i % 7}X", 6 + i % 3, "FM"[i % 2]) for i in range(60)]
    _, report = k_anonymize(students(rows), QIS, k=5)
    text = str(report.as_dict())
    assert "Q1X" not in text and "pid0" not in text
    assert set(report.as_dict()) == {
        "quasi_identifiers", "k_required", "before", "after", "generalized", "suppressed_cells", "rows",
    }  # fmt: skip


def test_the_result_does_not_depend_on_row_order_or_pseudonyms():
    rows = [(2010 + i % 4, f"D{i % 9}", 6 + i % 3, "FMF"[i % 3]) for i in range(90)]
    frame = students(rows)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3).with_columns(
        pl.col("student_pid").str.reverse()
    )
    first, _ = k_anonymize(frame, QIS, k=8)
    second, _ = k_anonymize(shuffled, QIS, k=8)
    key = ["frl", *QIS]

    def rows_of(f):
        return sorted(f.select(key).iter_rows(), key=str)

    assert rows_of(first) == rows_of(second)


def test_contract_quasi_identifiers_are_named_as_staged():
    terms = DatasetTerms(
        "roster",
        "csv",
        (
            FieldTerms("student_id", "string", "linkage_key", "pseudonymize", "id"),
            FieldTerms("birth_date", "date", "quasi_identifier", "generalize:birth_year", "dob"),
            FieldTerms("postcode", "string", "quasi_identifier", "generalize:postcode_district", "pc"),
            FieldTerms("grade", "integer", "quasi_identifier", "keep", "grade"),
            FieldTerms("sex", "string", "quasi_identifier", "drop", "sex"),
            FieldTerms("frl", "boolean", "sensitive", "keep", "frl"),
        ),
    )
    assert quasi_identifier_columns(terms) == ["birth_year", "postcode_district", "grade"]


row = st.tuples(
    st.integers(2008, 2014),
    st.sampled_from(["AB1", "AB2", "CD3", None]),
    st.integers(3, 8),
    st.sampled_from(["F", "M", "other"]),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(row, min_size=0, max_size=120), st.integers(2, 12))
def test_k_holds_after_enforcement_whenever_the_school_has_k_students(rows, k):
    frame = students(rows)
    out, report = k_anonymize(frame, QIS, k)
    assert out.height == frame.height and out["student_pid"].equals(frame["student_pid"])
    if frame.height >= k:
        assert report.after >= k and independent_k(out, QIS) == report.after
    # a value is only ever coarsened or removed, never replaced by another student's value
    for before, after in zip(frame.iter_rows(named=True), out.iter_rows(named=True), strict=True):
        assert after["grade"] in (before["grade"], None)
        assert after["sex"] in (before["sex"], None)
        assert after["postcode_district"] in (before["postcode_district"], None)
        if after["birth_year"] is not None:
            low, _, high = after["birth_year"].partition("-")
            assert int(low) <= before["birth_year"] <= int(high or low)
