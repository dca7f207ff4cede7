"""One list of reserved labels: intake refuses them as a school's values, and they are exactly the
words the release uses for its totals and unknowns."""

import polars as pl
import pytest

from contracts.labels import DEFAULT_LABEL_PATTERN, RESERVED_LABELS, is_reserved, label_shape_problem
from transforms import metrics


def test_the_releases_total_and_unknown_markers_are_reserved():
    assert metrics.ALL_SCHOOLS.casefold() in RESERVED_LABELS
    assert metrics.ALL_VALUES.casefold() in RESERVED_LABELS
    frame = pl.DataFrame({"sex": [None, "F"]}, schema={"sex": pl.String})
    unknown = frame.select(metrics._subgroup_text(frame, "sex")).to_series()[0]
    assert is_reserved(unknown)


@pytest.mark.parametrize("value", ["all", "ALL", "All", " all ", "Unknown", "UNKNOWN"])
def test_reserved_words_are_refused_in_any_case(value):
    assert "reserved word" in label_shape_problem(value)


@pytest.mark.parametrize(
    "value", ['=HYPERLINK("http://x","y")', "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3", "\tx", "\rx"]
)
def test_formulas_are_refused_whatever_the_pattern(value):
    assert label_shape_problem(value, r"^.*$") is not None


@pytest.mark.parametrize("value", ["RES-001", "maths", "sch01", "oer:khan.42", "3.5", "2026"])
def test_code_like_ids_pass(value):
    assert label_shape_problem(value) is None


def test_a_negative_number_is_no_formula_but_no_code_either():
    assert label_shape_problem("-2") == "not a code-like id"
    assert label_shape_problem("-2", r"^-?\d+$") is None


def test_shapes_outside_the_pattern_are_refused_and_a_contract_may_widen_it():
    assert label_shape_problem("Modern Languages") == "not a code-like id"
    assert label_shape_problem("Modern Languages", r"^[A-Za-z ]{1,40}$") is None
    assert label_shape_problem("<a href=x>y</a>", r"^.*$") == "holds control characters, markup or quotes"
    assert label_shape_problem("x" * 300, r"^.*$").startswith("longer than")
    assert DEFAULT_LABEL_PATTERN.startswith("^[A-Za-z0-9]")
