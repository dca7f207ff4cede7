from datetime import date
from pathlib import Path

import yaml

from contracts.loader import load_contracts, parse_contract

EXAMPLE = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "sch01.yaml"


def write(folder: Path, name: str, document: dict) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def set_custom(document: dict, prop: str, value) -> dict:
    for item in document["customProperties"]:
        if item["property"] == prop:
            item["value"] = value
    return document


def test_example_contract_parses_into_terms():
    agreement, problems = parse_contract(EXAMPLE)
    assert problems == []
    assert agreement.school_id == "sch01"
    roster = agreement.datasets["roster"]
    sid = roster.field("student_id")
    assert (sid.source, sid.action, sid.privacy_class, sid.unique) == (
        "StudentNumber",
        "pseudonymize",
        "linkage_key",
        True,
    )
    assert roster.field("birth_date").generalize_rule == "birth_year"
    assert roster.field("birth_date").source_format == "%d/%m/%Y"
    assert roster.field("grade").maximum == 12
    assert (roster.landing_days, roster.staging_days) == (30, 365)


def test_unknown_class_and_action_name_file_path_and_fix(tmp_path):
    doc = example()
    props = doc["schema"][0]["properties"][0]["customProperties"]
    props[0]["value"] = "secret_stuff"
    props[1]["value"] = "encrypt"
    write(tmp_path, "bad.yaml", doc)
    result = load_contracts(tmp_path)
    assert result.agreements == []
    messages = {p.path: p for p in result.problems}
    klass = messages["schema[0].properties[0] (student_id).customProperties.privacyClass"]
    assert "secret_stuff" in klass.message and "linkage_key" in klass.fix and klass.file == "bad.yaml"
    assert "encrypt" in messages["schema[0].properties[0] (student_id).customProperties.action"].message
    assert result.rejected_schools == ["sch01"]


def test_overlapping_contracts_are_refused_naming_both(tmp_path):
    write(tmp_path, "a.yaml", example())
    second = example()
    second["id"] = "dsa-sch01-renewal"
    write(tmp_path, "b.yaml", set_custom(second, "agreementStart", "2027-01-01"))
    result = load_contracts(tmp_path)
    assert result.agreements == []
    (problem,) = result.problems
    assert problem.file == "a.yaml" and "b.yaml" in problem.message and "roster" in problem.message


def test_min_cell_size_below_floor_and_bad_dates_are_refused(tmp_path):
    doc = set_custom(example(), "minCellSize", 3)
    set_custom(doc, "agreementEnd", "31/07/2027")
    write(tmp_path, "c.yaml", doc)
    problems = {p.path: p.message for p in load_contracts(tmp_path).problems}
    assert "below the consortium floor" in problems["customProperties.minCellSize"]
    assert "not a date" in problems["customProperties.agreementEnd"]


def test_unknown_top_level_field_is_an_odcs_error(tmp_path):
    doc = example()
    doc["retentionDays"] = 30
    write(tmp_path, "d.yaml", doc)
    (problem,) = load_contracts(tmp_path).problems
    assert problem.path == "retentionDays" and "customProperties" in problem.fix


def test_coverage_by_status_date_and_dataset(tmp_path):
    write(tmp_path, "a.yaml", example())
    contracts = load_contracts(tmp_path)
    assert contracts.covering("sch01", "roster", date(2026, 9, 1))[0] is not None
    assert "after" in contracts.covering("sch01", "roster", date(2027, 8, 1))[1]
    assert "before" in contracts.covering("sch01", "roster", date(2026, 7, 1))[1]
    assert "does not cover dataset 'comments'" in contracts.covering("sch01", "comments", date(2026, 9, 1))[1]
    assert "no valid contract" in contracts.covering("sch09", "roster", date(2026, 9, 1))[1]
    retired = set_custom(example(), "agreementStart", "2026-08-01")
    retired["status"] = "retired"
    write(tmp_path, "a.yaml", retired)
    assert "status 'retired'" in load_contracts(tmp_path).covering("sch01", "roster", date(2026, 9, 1))[1]


def test_nothing_is_taken_in_after_the_agreement_ends(tmp_path):
    write(tmp_path, "a.yaml", example())
    contracts = load_contracts(tmp_path)
    inside = date(2027, 6, 1)
    assert contracts.covering("sch01", "roster", inside, processed_on=date(2027, 7, 31))[0] is not None
    agreement, reason = contracts.covering("sch01", "roster", inside, processed_on=date(2027, 8, 1))
    assert agreement is None and "ended on 2027-07-31" in reason


def test_a_school_id_of_digits_alone_is_refused_with_a_fix(tmp_path):
    """NCES and state school codes are digits; the audit log refuses 6+ digits as a possible
    student id, so such a contract would fail every run of its school instead of here."""
    write(tmp_path, "nces.yaml", set_custom(example(), "schoolId", "360007702877"))
    problems = {p.path: p for p in load_contracts(tmp_path).problems}
    refused = problems["customProperties.schoolId"]
    assert "six or more digits" in refused.message and "nces-360007702877" in refused.fix
    write(tmp_path, "nces.yaml", set_custom(example(), "schoolId", "nces-360007702877"))
    assert [a.school_id for a in load_contracts(tmp_path).agreements] == ["nces-360007702877"]
    write(tmp_path, "nces.yaml", set_custom(example(), "schoolId", "0042"))  # short codes are fine
    assert [a.school_id for a in load_contracts(tmp_path).agreements] == ["0042"]
