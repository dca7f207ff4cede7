"""The shipped JSON Schema: every demo contract passes, broken ones fail with readable paths and fixes."""

import copy
import json
from datetime import date
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import model
from contracts.loader import load_contracts
from contracts.schema_check import contract_schema, fast_verdict, json_ready, readable_path, schema_errors
from demo.generate import generate_consortium

EXAMPLE = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "sch01.yaml"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def custom(document: dict, prop: str) -> dict:
    return next(item for item in document["customProperties"] if item["property"] == prop)


def errors_by_path(document: dict) -> dict[str, tuple[str, str]]:
    return {path: (message, fix) for path, message, fix in schema_errors(document)}


@pytest.fixture(scope="module")
def demo_contracts(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("schema-demo")
    generate_consortium(root, schools=8, students_per_school=20, weeks=2, seed=3)
    return sorted((root / "contracts").glob("*.yaml"))


def test_schema_is_valid_draft_2020_12_and_ships_as_package_data():
    schema = contract_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")


def test_schema_enums_match_the_model():
    defs = contract_schema()["$defs"]
    assert tuple(defs["privacyClass"]["enum"]) == model.PRIVACY_CLASSES
    assert tuple(defs["purpose"]["enum"]) == model.PURPOSES
    assert tuple(defs["fileFormat"]["enum"]) == model.FILE_FORMATS
    assert tuple(defs["datasetName"]["enum"]) == model.DATASETS
    assert tuple(defs["logicalType"]["enum"]) == model.LOGICAL_TYPES
    actions = set(defs["action"]["enum"])
    assert actions == {*model.SIMPLE_ACTIONS, *(f"generalize:{r}" for r in model.GENERALIZE_RULES)}


def test_every_demo_contract_and_the_example_validate(demo_contracts):
    assert len(demo_contracts) == 8
    for path in [*demo_contracts, EXAMPLE]:
        assert schema_errors(yaml.safe_load(path.read_text())) == [], path.name
    # The demo's allowed-value lists travel in logicalTypeOptions.enum.
    text = "".join(p.read_text() for p in demo_contracts)
    assert "logicalTypeOptions:" in text and "enum:" in text


def test_unquoted_yaml_dates_are_accepted():
    document = example()
    custom(document, "agreementStart")["value"] = date(2026, 8, 1)
    assert schema_errors(document) == []


def test_broken_contract_errors_name_path_and_fix():
    document = example()
    document["status"] = "signed"
    custom(document, "allowedPurposes")["value"] = ["reach", "marketing"]
    custom(document, "minCellSize")["value"] = "ten"
    custom(document, "agreementEnd")["value"] = "31/07/2027"
    roster = document["schema"][0]
    roster["customProperties"][0]["value"] = "xlsx"
    roster["properties"][0]["customProperties"][1]["value"] = "encrypt"
    del roster["properties"][1]["customProperties"][0]  # birth_date loses its privacyClass
    roster["properties"][2]["logicalType"] = "int"
    document["slaProperties"][0]["driver"] = "archive"
    document["slaProperties"][1]["value"] = "1 year"
    document["retention"] = 3

    found = errors_by_path(document)
    assert found["status"][0] == "'signed' is not allowed" and "active" in found["status"][1]
    assert "'marketing'" in found["customProperties.allowedPurposes[1]"][0]
    assert found["customProperties.minCellSize"][0] == "'ten' is not an integer"
    assert found["customProperties.agreementEnd"] == (
        "'31/07/2027' is not a date",
        "write the date as YYYY-MM-DD",
    )
    assert "parquet" in found["schema[0].customProperties.fileFormat"][1]
    assert "generalize:birth_year" in found["schema[0].properties[0] (student_id).customProperties.action"][1]
    assert found["schema[0].properties[1] (birth_date).customProperties.privacyClass"][0] == "missing"
    assert "integer" in found["schema[0].properties[2] (grade).logicalType"][1]
    assert "landing" in found["slaProperties[0].driver"][1]
    assert "whole number" in found["slaProperties[1].value"][1]
    assert found["retention"][0] == "unknown field 'retention'"


def test_missing_required_terms_are_named():
    document = example()
    document["customProperties"] = [p for p in document["customProperties"] if p["property"] != "schoolId"]
    del document["id"]
    found = errors_by_path(document)
    assert found["id"] == ("missing", "add id")
    assert found["customProperties.schoolId"][0] == "missing"


def test_readable_path_uses_property_and_field_names():
    document = example()
    assert (
        readable_path(document, ["schema", 0, "properties", 2, "customProperties", 1, "value"])
        == "schema[0].properties[2] (grade).customProperties.action"
    )
    assert readable_path(document, []) == "(document)"


def test_contracts_check_reports_schema_errors_once_beside_the_loaders(tmp_path):
    document = example()
    document["status"] = "signed"  # only the schema knows the ODCS status list
    document["schema"][0]["properties"][0]["customProperties"][0]["value"] = "secret_stuff"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = load_contracts(tmp_path)
    assert result.agreements == []
    paths = [p.path for p in result.problems]
    assert "status" in paths
    klass = [p for p in paths if p.endswith("privacyClass")]
    assert klass == ["schema[0].properties[0] (student_id).customProperties.privacyClass"]  # once, not twice
    assert all(p.file == "bad.yaml" and p.fix for p in result.problems)
    assert result.rejected_schools == ["sch01"]


def test_schema_file_is_plain_json_an_editor_can_use():
    text = (Path(__file__).resolve().parents[2] / "contracts/schema/impact-contract.schema.json").read_text()
    assert json.loads(text) == copy.deepcopy(contract_schema())


# --- the fast verdict (jsonschema-rs) agrees with jsonschema, which explains refusals ----------

REPLACEMENTS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=6), st.just([]), st.just({}),
    st.sampled_from(["2027-13-40", "v3.1.0", "DataContract", "drop", "keep", "usage", "1.0.0"]),
)  # fmt: skip


def _nodes(document, path=()):
    """Every (path, value) inside a contract document, for mutations to pick from."""
    yield path, document
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _nodes(value, (*path, index))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_verdict_agrees_with_jsonschema_on_mutated_contracts(data):
    document = json.loads(json.dumps(json_ready(example())))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p, _ in _nodes(document) if p]
        path = data.draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(REPLACEMENTS)
    reference = jsonschema.Draft202012Validator(contract_schema()).is_valid(document)
    assert fast_verdict(document) is reference
    assert (schema_errors(document) == []) is reference


def test_fast_verdict_accepts_every_demo_contract(demo_contracts):
    for path in demo_contracts:
        assert fast_verdict(json_ready(yaml.safe_load(path.read_text()))) is True, path.name
