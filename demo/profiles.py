"""How each demo school exports its data: file formats, column names, date and boolean styles.

Real schools differ, so the demo's do too. A school's profile depends only on its position in the
consortium (``sch01`` is always the same kind of school), never on the seed: the canary planter and
the tests can rebuild it from the school id alone. Eight archetypes repeat for larger consortia.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

DATASETS: tuple[str, ...] = ("roster", "usage", "resources", "assessments", "attendance", "comments")
# Optional datasets only some schools send (and declare): the teacher survey of time saved.
TEACHER_SURVEY = "teacher_survey"
ALL_PURPOSES: tuple[str, ...] = ("reach", "usage", "learning_gains", "cross_school_use")

FileFormat = Literal["csv", "jsonl", "xapi", "parquet"]
UsageKey = Literal["student_id", "student_email"]

FILE_EXTENSIONS: MappingProxyType[str, str] = MappingProxyType(
    {"csv": "csv", "jsonl": "jsonl", "xapi": "jsonl", "parquet": "parquet"}
)
# Boolean spellings a school may use, declared in the contract as sourceFormat "<true>/<false>".
BOOL_FORMATS: tuple[str, ...] = ("Y/N", "1/0", "true/false")


@dataclass(frozen=True)
class SchoolProfile:
    """The export habits of one school (everything the contract's schema part describes)."""

    school_id: str
    name: str
    email_domain: str
    id_prefix: str  # local student ids are id_prefix + id_digits digits
    id_digits: int
    date_format: str
    timestamp_format: str
    bool_format: str  # "Y/N" | "1/0" | "true/false"
    delimiter: str
    formats: MappingProxyType[str, FileFormat]  # dataset -> file format
    renames: MappingProxyType[str, MappingProxyType[str, str]]  # dataset -> canonical -> source column
    usage_key: UsageKey
    extra_roster_column: str | None  # an undeclared column the pipeline must drop
    contract_datasets: tuple[str, ...]  # datasets the contract covers (exports may exceed it)
    allowed_purposes: tuple[str, ...] = field(default=ALL_PURPOSES)
    sends_teacher_survey: bool = False

    @property
    def export_datasets(self) -> tuple[str, ...]:
        """What the school sends (its contract may cover less: see ``contract_datasets``)."""
        return (*DATASETS, TEACHER_SURVEY) if self.sends_teacher_survey else DATASETS

    def file_format(self, dataset: str) -> FileFormat:
        return self.formats.get(dataset, "csv")

    def source_column(self, dataset: str, canonical: str) -> str:
        return self.renames.get(dataset, MappingProxyType({})).get(canonical, canonical)

    def bool_words(self) -> tuple[str, str]:
        true_word, false_word = self.bool_format.split("/")
        return true_word, false_word

    def delimiter_for(self, dataset: str) -> str:
        # The consortium catalog is one shared comma-separated file, whatever the school's habit.
        return "," if dataset == "resources" else self.delimiter


@dataclass(frozen=True)
class _Archetype:
    name: str
    id_prefix: str
    id_digits: int
    date_format: str
    timestamp_format: str
    bool_format: str
    delimiter: str
    formats: dict[str, FileFormat]
    renames: dict[str, dict[str, str]]
    usage_key: UsageKey = "student_id"
    extra_roster_column: str | None = None
    omits_attendance: bool = False
    denies_learning_gains: bool = False
    sends_teacher_survey: bool = False


def _ids(column: str, *datasets: str) -> dict[str, dict[str, str]]:
    return {dataset: {"student_id": column} for dataset in datasets}


def _merge(*parts: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for part in parts:
        for dataset, columns in part.items():
            merged.setdefault(dataset, {}).update(columns)
    return merged


_STUDENT_DATASETS = ("roster", "usage", "assessments", "attendance", "comments")

_ARCHETYPES: tuple[_Archetype, ...] = (
    _Archetype(  # the example contract's school: StudentNumber, DOB in %d/%m/%Y, Y/N flags
        name="Northfield Academy",
        id_prefix="",
        id_digits=6,
        date_format="%d/%m/%Y",
        timestamp_format="%d/%m/%Y %H:%M",
        bool_format="Y/N",
        delimiter=",",
        formats={},
        renames=_merge(
            _ids("StudentNumber", *_STUDENT_DATASETS),
            {
                "roster": {"birth_date": "DOB", "given_name": "FirstName", "family_name": "Surname"},
                "usage": {"resource_id": "ResourceID", "started_at": "StartTime", "minutes": "Minutes"},
            },
        ),
    ),
    _Archetype(  # a continental export: semicolons, ISO dates, 1/0 flags
        name="Riverside Primary School",
        id_prefix="P",
        id_digits=5,
        date_format="%Y-%m-%d",
        timestamp_format="%Y-%m-%d %H:%M:%S",
        bool_format="1/0",
        delimiter=";",
        formats={},
        renames=_merge(
            _ids("pupil_id", *_STUDENT_DATASETS),
            {
                "roster": {"birth_date": "date_of_birth", "postcode": "post_code", "grade": "year_group"},
                TEACHER_SURVEY: {"teacher_id": "staff_code", "minutes_saved_per_week": "minutes_saved"},
            },
        ),
        sends_teacher_survey=True,
    ),
    _Archetype(  # a MIS that sends Parquet rosters and an LRS that sends xAPI statements
        name="St Aldhelm's Church of England School",
        id_prefix="L",
        id_digits=7,
        date_format="%m/%d/%Y",
        timestamp_format="%Y-%m-%dT%H:%M:%SZ",
        bool_format="true/false",
        delimiter=",",
        formats={"roster": "parquet", "usage": "xapi"},
        renames=_merge(
            _ids("LocalID", "roster", "assessments", "attendance", "comments"),
            {"assessments": {"assessed_on": "test_date", "score": "scaled_score"}},
        ),
        usage_key="student_email",
    ),
    _Archetype(  # US-style dates and an extra column nobody agreed to share
        name="Hillcrest Community School",
        id_prefix="",
        id_digits=6,
        date_format="%m/%d/%Y",
        timestamp_format="%m/%d/%Y %H:%M",
        bool_format="true/false",
        delimiter=",",
        formats={},
        renames={"roster": {"sex": "gender"}},
        extra_roster_column="parent_name",
    ),
    _Archetype(  # signed a narrower agreement: no learning-gains analysis
        name="Oakwood High School",
        id_prefix="",
        id_digits=6,
        date_format="%Y-%m-%d",
        timestamp_format="%Y-%m-%d %H:%M:%S",
        bool_format="Y/N",
        delimiter=",",
        formats={},
        renames=_ids("StudentNumber", *_STUDENT_DATASETS),
        denies_learning_gains=True,
    ),
    _Archetype(  # a platform export as plain JSON lines with its own field names
        name="Meadowbank Academy",
        id_prefix="MB",
        id_digits=5,
        date_format="%d/%m/%Y",
        timestamp_format="%Y-%m-%d %H:%M:%S",
        bool_format="1/0",
        delimiter=",",
        formats={"usage": "jsonl"},
        renames=_merge(
            _ids("pupil_ref", "usage"),
            _ids("LocalID", "roster", "assessments", "attendance", "comments"),
            {"usage": {"resource_id": "resource", "started_at": "start_time", "minutes": "duration_min"}},
        ),
    ),
    _Archetype(  # identifies usage by e-mail in a CSV; its contract forgot attendance
        name="Castle Hill School",
        id_prefix="",
        id_digits=6,
        date_format="%d/%m/%Y",
        timestamp_format="%d/%m/%Y %H:%M",
        bool_format="Y/N",
        delimiter=",",
        formats={},
        renames=_merge(
            _ids("StudentNumber", "roster", "assessments", "attendance", "comments"),
            {"usage": {"student_email": "Email"}, "roster": {"email": "Email"}},
        ),
        usage_key="student_email",
        omits_attendance=True,
    ),
    _Archetype(  # tidy ISO exports, LocalID
        name="Brookfield Junior School",
        id_prefix="BJ",
        id_digits=6,
        date_format="%Y-%m-%d",
        timestamp_format="%Y-%m-%d %H:%M:%S",
        bool_format="true/false",
        delimiter=",",
        formats={},
        renames=_ids("LocalID", *_STUDENT_DATASETS),
        sends_teacher_survey=True,
    ),
)


def school_id_for(index: int) -> str:
    """0-based position in the consortium -> ``sch01``, ``sch02``, ..."""
    return f"sch{index + 1:02d}"


def school_index(school_id: str) -> int:
    match = re.fullmatch(r"sch(\d+)", school_id)
    if not match:
        raise ValueError(f"not a demo school id: {school_id!r}")
    return int(match.group(1)) - 1


def _freeze(renames: dict[str, dict[str, str]]) -> MappingProxyType[str, MappingProxyType[str, str]]:
    return MappingProxyType({dataset: MappingProxyType(dict(cols)) for dataset, cols in renames.items()})


def _slug(name: str) -> str:
    return re.sub(r"[^a-z]+", "", name.lower().split()[0] + name.lower().split()[-1])


def school_profile(school_id: str) -> SchoolProfile:
    """The profile of ``schNN``; archetypes cycle every eight schools."""
    index = school_index(school_id)
    archetype = _ARCHETYPES[index % len(_ARCHETYPES)]
    cycle = index // len(_ARCHETYPES)
    name = archetype.name if cycle == 0 else f"{archetype.name} (campus {cycle + 1})"
    sent = (*DATASETS, TEACHER_SURVEY) if archetype.sends_teacher_survey else DATASETS
    datasets = tuple(d for d in sent if not (archetype.omits_attendance and d == "attendance"))
    purposes = tuple(
        p for p in ALL_PURPOSES if not (archetype.denies_learning_gains and p == "learning_gains")
    )
    return SchoolProfile(
        school_id=school_id,
        name=name,
        email_domain=f"{_slug(archetype.name)}{cycle or ''}.example.org",
        id_prefix=archetype.id_prefix,
        id_digits=archetype.id_digits,
        date_format=archetype.date_format,
        timestamp_format=archetype.timestamp_format,
        bool_format=archetype.bool_format,
        delimiter=archetype.delimiter,
        formats=MappingProxyType(dict(archetype.formats)),
        renames=_freeze(archetype.renames),
        usage_key=archetype.usage_key,
        extra_roster_column=archetype.extra_roster_column,
        contract_datasets=datasets,
        allowed_purposes=purposes,
        sends_teacher_survey=archetype.sends_teacher_survey,
    )
