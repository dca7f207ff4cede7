"""`impact contracts check` refuses what staging cannot carry out (contracts.requirements), and a
contract file is refused before it is built when it uses YAML anchors or nests absurdly."""

import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import yaml

from contracts.loader import load_contracts, parse_contract
from contracts.requirements import NEEDS
from contracts.yaml_safety import MAX_DEPTH
from demo.contract_yaml import build_contract
from demo.profiles import school_profile

ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def demo_contract() -> dict:
    return build_contract(school_profile("sch01"), date(2026, 8, 1), date(2027, 7, 31))


def dataset(document: dict, name: str) -> dict:
    return next(s for s in document["schema"] if s["name"] == name)


def field(document: dict, ds: str, name: str) -> dict:
    return next(p for p in dataset(document, ds)["properties"] if p["name"] == name)


def set_term(entry: dict, prop: str, value) -> None:
    terms = entry["customProperties"]
    for term in terms:
        if term["property"] == prop:
            term["value"] = value
            return
    terms.append({"property": prop, "value": value})


def problems_of(tmp_path: Path, document: dict) -> list:
    path = tmp_path / "dsa-sch01.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    agreement, problems = parse_contract(path)
    assert agreement is None, "the contract should have been refused"
    return problems


def drop_field(document: dict, ds: str, name: str) -> None:
    entry = dataset(document, ds)
    entry["properties"] = [p for p in entry["properties"] if p["name"] != name]


def test_the_demo_contract_meets_every_requirement(tmp_path):
    path = tmp_path / "dsa-sch01.yaml"
    path.write_text(yaml.safe_dump(demo_contract(), sort_keys=False))
    agreement, problems = parse_contract(path)
    assert problems == [] and agreement is not None


@pytest.mark.parametrize(
    ("ds", "name"), [("assessments", "term"), ("resources", "subject"), ("usage", "minutes")]
)
def test_a_column_staging_needs_must_be_declared(tmp_path, ds, name):
    document = demo_contract()
    drop_field(document, ds, name)
    (problem,) = [p for p in problems_of(tmp_path, document) if name in p.message]
    assert f"staging needs the field '{name}'" in problem.message and problem.fix == f"declare '{name}'"
    assert problem.path.startswith("schema[") and problem.path.endswith(".properties")


def test_types_actions_and_generalizations_staging_cannot_carry_out_are_refused(tmp_path):
    document = demo_contract()
    field(document, "usage", "minutes")["logicalType"] = "string"
    set_term(field(document, "roster", "postcode"), "action", "generalize:birth_year")
    set_term(field(document, "comments", "written_on"), "action", "keep")
    messages = [p.message for p in problems_of(tmp_path, document)]
    assert any("staging reads 'minutes' as number or integer, not string" in m for m in messages)
    assert any("generalize:birth_year needs a date or timestamp field, not string" in m for m in messages)
    assert any("staging cannot carry out 'keep' on 'written_on'" in m for m in messages)


def test_two_fields_staged_under_one_name_are_refused(tmp_path):
    document = demo_contract()
    usage = dataset(document, "usage")
    usage["properties"].append(
        {
            "name": "ended_at",
            "logicalType": "timestamp",
            "customProperties": [
                {"property": "privacyClass", "value": "attribute"},
                {"property": "action", "value": "generalize:iso_week"},
                {"property": "sourceFormat", "value": "%Y-%m-%d %H:%M:%S"},
            ],
        }
    )
    (problem,) = [p for p in problems_of(tmp_path, document) if "ended_at" in p.message]
    assert "would be staged as 'week'" in problem.message and "'started_at'" in problem.message


def test_a_reserved_word_or_formula_may_not_be_a_declared_category(tmp_path):
    document = demo_contract()
    field(document, "roster", "sex")["logicalTypeOptions"] = {"enum": ["F", "M", "All"]}
    field(document, "resources", "subject")["logicalTypeOptions"] = {"enum": ["maths", "=1+1"]}
    messages = [p.message for p in problems_of(tmp_path, document)]
    assert any("reserved word of the release" in m for m in messages)
    assert any("spreadsheet formula" in m for m in messages)


def test_xapi_only_for_usage_and_email_links_need_a_roster_email(tmp_path):
    document = demo_contract()
    set_term(dataset(document, "attendance"), "fileFormat", "xapi")
    drop_field(document, "roster", "email")
    link = field(document, "usage", dataset(document, "usage")["properties"][0]["name"])
    link["name"] = "student_email"
    messages = [p.message for p in problems_of(tmp_path, document)]
    assert any("'xapi' cannot carry a attendance export" in m for m in messages)
    assert any("linked by student_email, but the roster declares no email" in m for m in messages)


def test_every_dataset_has_a_row_in_the_requirements_table():
    from contracts.model import DATASETS

    assert set(NEEDS) == set(DATASETS)


def test_max_rows_is_read_and_checked(tmp_path):
    document = demo_contract()
    set_term(dataset(document, "usage"), "maxRows", 1000)
    path = tmp_path / "dsa-sch01.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    agreement, _ = parse_contract(path)
    assert agreement.datasets["usage"].max_rows == 1000
    assert agreement.datasets["roster"].max_rows == 2_000_000
    set_term(dataset(document, "usage"), "maxRows", 0)
    assert any("maxRows" in p.path for p in problems_of(tmp_path, document))


# --- YAML before it is built -----------------------------------------------------------------------


def test_anchors_and_aliases_are_refused_before_building(tmp_path):
    (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
    started = time.monotonic()
    result = load_contracts(tmp_path)
    assert time.monotonic() - started < 2
    (problem,) = result.problems
    assert problem.file == "bomb.yaml" and "anchors or aliases" in problem.message
    document = yaml.safe_dump(demo_contract(), sort_keys=False)
    (tmp_path / "bomb.yaml").write_text(document.replace("roles:", "x: &x 1\nroles:", 1))
    assert "anchors or aliases" in load_contracts(tmp_path).problems[0].message


def test_deep_nesting_and_huge_files_are_refused(tmp_path):
    (tmp_path / "deep.yaml").write_text("a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n")
    (tmp_path / "huge.yaml").write_text("a: '" + "x" * (2 << 20) + "'\n")
    messages = {p.file: p.message for p in load_contracts(tmp_path).problems}
    assert "nests deeper than" in messages["deep.yaml"]
    assert "over the 1048576-byte limit" in messages["huge.yaml"]


def test_contracts_check_with_an_alias_bomb_finishes_and_names_it(tiny_home):
    (tiny_home.contracts / "zz-bomb.yaml").write_text(ALIAS_BOMB)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "contracts", "check", "--home", str(tiny_home.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "zz-bomb.yaml" in done.stderr and "anchors or aliases" in done.stderr
