"""Writes each demo school's data-sharing agreement in the shape of ``contracts/examples/sch01.yaml``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml

from demo.fields import FieldSpec, dataset_fields, needs_source_format, source_format
from demo.profiles import SchoolProfile

CONSORTIUM_ID = "demo-consortium"
CONSORTIUM_NAME = "Demo Resource-Sharing Consortium"
MIN_CELL_SIZE = 10
LANDING_RETENTION_DAYS = 30
STAGING_RETENTION_DAYS = 365
_SENSITIVE_CLASSES = {"linkage_key", "direct_identifier", "quasi_identifier", "sensitive", "free_text"}


def _prop(name: str, value: Any) -> dict[str, Any]:
    return {"property": name, "value": value}


def _field(spec: FieldSpec, profile: SchoolProfile, dataset: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": spec.name, "logicalType": spec.logical_type, "required": spec.required}
    if spec.unique:
        entry["unique"] = True
    if spec.options:
        entry["logicalTypeOptions"] = dict(spec.options)
    if spec.privacy_class in _SENSITIVE_CLASSES:
        entry["classification"] = "restricted"
    custom = [_prop("privacyClass", spec.privacy_class), _prop("action", spec.action)]
    column = profile.source_column(dataset, spec.name)
    if column != spec.name:
        custom.append(_prop("sourceColumn", column))
    if needs_source_format(spec, profile, dataset):
        custom.append(_prop("sourceFormat", source_format(spec, profile)))
    entry["customProperties"] = custom
    return entry


def _schema_object(dataset: str, profile: SchoolProfile) -> dict[str, Any]:
    file_format = profile.file_format(dataset)
    custom = [_prop("fileFormat", file_format)]
    if file_format == "csv":
        custom.append(_prop("delimiter", profile.delimiter_for(dataset)))
    custom.append(_prop("encoding", "utf-8"))
    return {
        "name": dataset,
        "physicalType": "table",
        "customProperties": custom,
        "properties": [_field(spec, profile, dataset) for spec in dataset_fields(dataset, profile)],
    }


def _retention(datasets: tuple[str, ...]) -> list[dict[str, Any]]:
    terms = []
    for dataset in datasets:
        for days, driver in ((LANDING_RETENTION_DAYS, "landing"), (STAGING_RETENTION_DAYS, "staging")):
            terms.append(
                {"property": "retention", "element": dataset, "value": days, "unit": "d", "driver": driver}
            )
    return terms


def build_contract(profile: SchoolProfile, agreement_start: date, agreement_end: date) -> dict[str, Any]:
    """The agreement as a plain dict (ODCS v3.1 fields, privacy terms in customProperties)."""
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": f"dsa-{profile.school_id}",
        "version": "1.0.0",
        "status": "active",
        "name": f"Data-sharing agreement — {profile.name} ({profile.school_id})",
        "description": {
            "purpose": "Evaluate the impact of the consortium's shared learning resources on learning gains.",
            "limitations": (
                "Aggregates only leave the restricted zone; cells with fewer than min_cell_size "
                "students are suppressed."
            ),
            "usage": "Analysis by the consortium's evaluation team under the signed agreement.",
        },
        "customProperties": [
            _prop("schoolId", profile.school_id),
            _prop("consortiumId", CONSORTIUM_ID),
            _prop("parties", [profile.name, CONSORTIUM_NAME]),
            _prop("agreementStart", agreement_start.isoformat()),
            _prop("agreementEnd", agreement_end.isoformat()),
            _prop("signedVersion", "1.0.0"),
            _prop("allowedPurposes", list(profile.allowed_purposes)),
            _prop("minCellSize", MIN_CELL_SIZE),
        ],
        "slaProperties": _retention(profile.contract_datasets),
        "roles": [
            {
                "role": "evaluator",
                "access": "read",
                "description": "consortium evaluation team (aggregates only)",
            }
        ],
        "schema": [_schema_object(dataset, profile) for dataset in profile.contract_datasets],
    }


def write_contract(path: Path, contract: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(contract, sort_keys=False, allow_unicode=True, width=110)
    path.write_text(text, encoding="utf-8")
    return path
