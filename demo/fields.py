"""The canonical fields of each dataset with their privacy terms, as the demo contracts declare them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from demo.profiles import SchoolProfile

Kind = Literal["str", "date", "timestamp", "bool", "int", "float"]

_LOGICAL_TYPES: dict[Kind, str] = {
    "str": "string",
    "date": "date",
    "timestamp": "timestamp",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    privacy_class: str
    action: str
    required: bool = True
    unique: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def logical_type(self) -> str:
        return _LOGICAL_TYPES[self.kind]


def _linkage(name: str, *, unique: bool = False, required: bool = True) -> FieldSpec:
    return FieldSpec(name, "str", "linkage_key", "pseudonymize", required=required, unique=unique)


def _attribute(name: str, kind: Kind = "str", action: str = "keep", **options: Any) -> FieldSpec:
    return FieldSpec(name, kind, "attribute", action, options=options)


def _flag(name: str) -> FieldSpec:
    return FieldSpec(name, "bool", "sensitive", "keep")


_ROSTER: tuple[FieldSpec, ...] = (
    _linkage("student_id", unique=True),
    _linkage("state_id", required=False),
    FieldSpec("given_name", "str", "direct_identifier", "drop"),
    FieldSpec("family_name", "str", "direct_identifier", "drop"),
    FieldSpec("email", "str", "direct_identifier", "drop"),
    FieldSpec("birth_date", "date", "quasi_identifier", "generalize:birth_year"),
    FieldSpec("postcode", "str", "quasi_identifier", "generalize:postcode_district", required=False),
    FieldSpec("grade", "int", "quasi_identifier", "keep", options={"minimum": 0, "maximum": 12}),
    FieldSpec("sex", "str", "quasi_identifier", "keep", options={"enum": ["F", "M", "X"]}),
    _flag("frl"),
    _flag("ell"),
    _flag("disability"),
)

_USAGE_TAIL: tuple[FieldSpec, ...] = (
    _attribute("resource_id"),
    _attribute("started_at", "timestamp", "generalize:iso_week"),
    _attribute("minutes", "float", minimum=0, maximum=600),
)

_RESOURCES: tuple[FieldSpec, ...] = (
    FieldSpec("resource_id", "str", "attribute", "keep", unique=True),
    _attribute("title"),
    _attribute("subject"),
    _attribute("contributing_school"),
)

_ASSESSMENTS: tuple[FieldSpec, ...] = (
    _linkage("student_id"),
    _attribute("term", enum=["pre", "post"]),
    _attribute("score", "float", minimum=0, maximum=100),
    _attribute("assessed_on", "date", "generalize:iso_week"),
)

_ATTENDANCE: tuple[FieldSpec, ...] = (
    _linkage("student_id"),
    _attribute("days_enrolled", "int", minimum=0, maximum=200),
    _attribute("days_present", "int", minimum=0, maximum=200),
)

_COMMENTS: tuple[FieldSpec, ...] = (
    _linkage("student_id"),
    FieldSpec("teacher_name", "str", "direct_identifier", "drop"),
    _attribute("written_on", "date", "generalize:iso_week"),
    FieldSpec("text", "str", "free_text", "scrub"),
)


_TEACHER_SURVEY: tuple[FieldSpec, ...] = (
    FieldSpec("teacher_id", "str", "linkage_key", "pseudonymize"),
    _attribute("responded_on", "date", "generalize:iso_week"),
    _attribute("minutes_saved_per_week", "float", minimum=0, maximum=600),
)


def dataset_fields(dataset: str, profile: SchoolProfile) -> tuple[FieldSpec, ...]:
    """The canonical fields of ``dataset`` as this school sends them (in file column order)."""
    if dataset == "usage":
        return (_linkage(profile.usage_key), *_USAGE_TAIL)
    return {
        "roster": _ROSTER,
        "resources": _RESOURCES,
        "assessments": _ASSESSMENTS,
        "attendance": _ATTENDANCE,
        "comments": _COMMENTS,
        "teacher_survey": _TEACHER_SURVEY,
    }[dataset]


def needs_source_format(spec: FieldSpec, profile: SchoolProfile, dataset: str) -> bool:
    """Text files spell dates, timestamps and booleans their own way; Parquet stores them typed."""
    return spec.kind in ("date", "timestamp", "bool") and profile.file_format(dataset) != "parquet"


def source_format(spec: FieldSpec, profile: SchoolProfile) -> str:
    if spec.kind == "date":
        return profile.date_format
    if spec.kind == "timestamp":
        return profile.timestamp_format
    if spec.kind == "bool":
        return profile.bool_format
    raise ValueError(f"{spec.name} has no source format")
