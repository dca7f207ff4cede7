"""Labels (values that become published dimension values) are refused when they name a person on
the roster, hold an e-mail, phone, URL or id, or have a shape the release reserves."""

import polars as pl
import pytest

from privacy.freetext.labels import RUN_TOGETHER, LabelChecker

ROSTER = pl.DataFrame(
    {
        "student_id": ["482913", "P77"],
        "given_name": ["Jolene", "Art"],
        "family_name": ["Whitfield", "Okafor"],
        "email": ["jolene.whitfield@school.example", "aokafor@school.example"],
    }
)


@pytest.fixture(scope="module")
def checker() -> LabelChecker:
    return LabelChecker.from_roster(ROSTER, teacher_names=["Ms. Ana Ruiz"])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Jolene Whitfield", "matches a name on the school's roster"),
        ("whitfield-notes", "matches a name on the school's roster"),
        ("WhitfieldJolene", RUN_TOGETHER),
        ("jolene_whitfield_2011", "matches a name on the school's roster"),
        ("RuizAna", RUN_TOGETHER),
        ("jolene.whitfield@school.example", "looks like an e-mail address"),
        ("someone@else.example", "looks like an e-mail address"),
        ("+44 7700 900123", "looks like a phone number"),
        ("482913", "looks like a student id"),
        ("ST12345678", "looks like a student id"),
        ("www.example.com", "looks like a web address"),
        ("Unknown", "a reserved word of the release (it marks totals or unknowns)"),
        ("@SUM(A1)", "starts like a spreadsheet formula"),
        ("Modern Languages", "not a code-like id"),
    ],
)
def test_refused_with_a_reason_that_never_repeats_the_value(checker, value, reason):
    refused = checker.refused([value, "RES-001"])
    assert refused == {value: reason}
    assert value not in reason


def test_common_words_on_the_roster_are_only_names_when_capitalized(checker):
    """`Art` is a student here: the subject `art` passes, `Art` does not."""
    assert checker.refused(["art", "Art"]) == {"Art": "matches a name on the school's roster"}


def test_values_the_contract_lists_skip_the_person_checks_but_not_the_shape(checker):
    assert checker.refused(["Art", "all"], declared=["Art", "all"]) == {
        "all": "a reserved word of the release (it marks totals or unknowns)"
    }


def test_a_contract_pattern_widens_the_shape_only(checker):
    assert checker.refused(["Modern Languages"], pattern=r"^[A-Za-z ]+$") == {}
    assert checker.refused(["Jolene Whitfield"], pattern=r"^[A-Za-z ]+$") != {}
