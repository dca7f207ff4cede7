"""The agreement as the pipeline uses it, read from an ODCS v3.1 data contract.

ODCS keeps domain-specific terms in `customProperties` lists of `{property, value}`; this module
lifts the privacy terms out of those lists into typed objects, so the rest of the pipeline never
digs through raw YAML. Parsing the ODCS envelope itself is left to the official Pydantic model
(`open_data_contract_standard`), so a contract that is valid ODCS stays valid here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

PrivacyClass = Literal[
    "direct_identifier", "quasi_identifier", "sensitive", "linkage_key", "free_text", "attribute"
]
PRIVACY_CLASSES: tuple[str, ...] = PrivacyClass.__args__  # type: ignore[attr-defined]

SIMPLE_ACTIONS = ("drop", "pseudonymize", "scrub", "keep")
GENERALIZE_RULES = ("birth_year", "age_band", "postcode_district", "iso_week")
LOGICAL_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp")
FILE_FORMATS = ("csv", "jsonl", "xapi", "parquet")
DATASETS = (
    "roster", "usage", "resources", "assessments", "attendance", "comments", "opt_outs", "teacher_survey"
)  # fmt: skip
# The published measures a contract can allow its school's data to feed.
PURPOSES = ("reach", "usage", "learning_gains", "cross_school_use")
# Rows one export may hold unless its dataset's `maxRows` says otherwise (checked before staging,
# from Parquet metadata before reading): a small file must not expand into gigabytes.
DEFAULT_MAX_ROWS = 2_000_000
# Only an active agreement lets data in; the other ODCS statuses mean "not now".
ACTIVE_STATUS = "active"


def is_valid_action(action: str) -> bool:
    if action in SIMPLE_ACTIONS:
        return True
    rule = action.removeprefix("generalize:")
    return action.startswith("generalize:") and rule in GENERALIZE_RULES


@dataclass(frozen=True)
class FieldTerms:
    """One canonical column: where it comes from in the school's file and what may happen to it."""

    name: str
    logical_type: str
    privacy_class: str
    action: str
    source: str
    source_format: str | None = None
    required: bool = False
    unique: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed_values: tuple[str, ...] | None = None
    pattern: str | None = None  # logicalTypeOptions.pattern: what a label of this field may look like

    @property
    def generalize_rule(self) -> str | None:
        return self.action.removeprefix("generalize:") if self.action.startswith("generalize:") else None


@dataclass(frozen=True)
class DatasetTerms:
    """One dataset a school may send, its file format and its retention."""

    name: str
    file_format: str
    fields: tuple[FieldTerms, ...]
    delimiter: str = ","
    encoding: str = "utf-8"
    landing_days: int | None = None
    staging_days: int | None = None
    max_rows: int = DEFAULT_MAX_ROWS  # customProperties.maxRows: a larger export is refused before staging

    def field(self, name: str) -> FieldTerms | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


@dataclass(frozen=True)
class Agreement:
    """A parsed, validated data-sharing agreement for one school."""

    contract_id: str
    version: str
    status: str
    school_id: str
    consortium_id: str
    parties: tuple[str, ...]
    start: date
    end: date
    signed_version: str
    purposes: tuple[str, ...]
    min_cell_size: int
    datasets: dict[str, DatasetTerms]
    source_file: Path
    name: str = ""
    purpose_text: str = ""
    digest: str = ""
    extra: dict = field(default_factory=dict)

    def is_active_on(self, day: date) -> bool:
        return self.status == ACTIVE_STATUS and self.start <= day <= self.end

    def coverage_problem(self, dataset: str, day: date) -> str | None:
        """Why this agreement does not let `dataset` exported on `day` in, or None when it does."""
        if self.status != ACTIVE_STATUS:
            return f"contract {self.contract_id} v{self.version} has status '{self.status}', not 'active'"
        if day < self.start:
            return f"export dated {day} is before contract {self.contract_id} starts ({self.start})"
        if day > self.end:
            return f"export dated {day} is after contract {self.contract_id} ended ({self.end})"
        if dataset not in self.datasets:
            return f"contract {self.contract_id} does not cover dataset '{dataset}'"
        return None

    def allows(self, purpose: str) -> bool:
        return purpose in self.purposes

    @property
    def label(self) -> str:
        return f"{self.contract_id}@{self.version}"
