"""What staging needs from a contract, as one table: `impact contracts check` refuses a contract
that does not meet it, and the stagers (transforms.staging) read the same table, so a contract the
check accepts is one staging can carry out.

Per dataset: the canonical columns staging knows, with the logical types and actions it can carry
out on each and whether the contract must declare it; which columns link a row to a student (one
of them must be declared); which file formats fit; and which columns are display text that is
always scrubbed. Any other declared field is passed through as the contract says, within the
rules that hold for every field (`field_problems`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass

from contracts.labels import compiled, label_shape_problem
from contracts.model import FILE_FORMATS, DatasetTerms, FieldTerms

LINK = ("pseudonymize", "drop")  # a linkage key is consumed by pseudonymization, never staged
HIDE = ("drop", "pseudonymize")  # a direct identifier: never staged
KEEP = ("keep", "drop")
DATES = ("date", "timestamp")
NUMBERS = ("number", "integer")
WEEK = ("generalize:iso_week", "drop")
# What each generalization rule reads, and the column it writes (privacy.minimize.GENERALIZED_NAMES).
RULE_INPUT_TYPES = {
    "birth_year": DATES,
    "age_band": DATES,
    "iso_week": DATES,
    "postcode_district": ("string",),
}
GENERALIZED_COLUMNS = {
    "birth_year": "birth_year",
    "age_band": "age_band",
    "postcode_district": "postcode_district",
    "iso_week": "week",
}
# Columns the pipeline adds to staging: a contract field may not be staged under these names.
PIPELINE_COLUMNS = frozenset(
    {
        "school_id",
        "student_pid",
        "teacher_pid",
        "key_version",
        "opted_out_purposes",
        "pre_score",
        "post_score",
    }
)
# The columns the xAPI reader produces (transforms.readers._xapi_row), all an xAPI contract can
# map, with the one type each has: the statement's ISO 8601 timestamp and its duration in minutes.
XAPI_TYPES = {
    "student_email": "string",
    "resource_id": "string",
    "started_at": "timestamp",
    "minutes": "number",
}
XAPI_COLUMNS = tuple(XAPI_TYPES)
# Spellings of an xAPI timestamp a contract may declare (none: any ISO 8601 form is parsed).
XAPI_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%.fZ")
# Linkage columns of students: consumed by pseudonymization, never staged under their own name.
STUDENT_LINKS = ("student_id", "student_email")


@dataclass(frozen=True)
class Column:
    """A canonical column staging reads: its logical types, the actions it can carry out on it."""

    name: str
    types: tuple[str, ...]
    actions: tuple[str, ...]
    required: bool = False
    consumed: bool = False  # read by staging (linkage, consent), never staged under its own name


@dataclass(frozen=True)
class DatasetNeeds:
    columns: tuple[Column, ...]
    links: tuple[str, ...] = ()  # one of these must be declared: how rows reach a student
    formats: tuple[str, ...] = tuple(f for f in FILE_FORMATS if f != "xapi")
    display_text: tuple[str, ...] = ()  # shown to readers: scrubbed like free text whatever the action
    needs_roster: bool = True  # staged only beside a readable roster (linked, or checked against it)
    stages_fields: bool = True  # False: the stager folds the fields into its own columns

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _linked(*columns: Column) -> tuple[Column, ...]:
    return (
        Column("student_id", ("string",), LINK, consumed=True),
        Column("student_email", ("string",), LINK, consumed=True),
        *columns,
    )


NEEDS: dict[str, DatasetNeeds] = {
    "roster": DatasetNeeds(
        (
            Column("student_id", ("string",), LINK, required=True, consumed=True),
            Column("state_id", ("string",), LINK, consumed=True),
            Column("given_name", ("string",), HIDE, consumed=True),
            Column("family_name", ("string",), HIDE, consumed=True),
            Column("email", ("string",), HIDE, consumed=True),
            Column("birth_date", DATES, ("drop", "generalize:birth_year", "generalize:age_band")),
            Column("postcode", ("string",), ("drop", "generalize:postcode_district")),
            Column("grade", ("integer", "string"), KEEP),
            Column("sex", ("string",), KEEP),
            Column("frl", ("boolean",), KEEP),
            Column("ell", ("boolean",), KEEP),
            Column("disability", ("boolean",), KEEP),
            Column("opt_out", ("boolean", "string"), ("keep", "drop", "pseudonymize"), consumed=True),
        ),
        needs_roster=False,
    ),
    "usage": DatasetNeeds(
        _linked(
            Column("resource_id", ("string",), ("keep",), required=True),
            Column("started_at", DATES, ("generalize:iso_week",), required=True),
            Column("minutes", NUMBERS, ("keep",), required=True),
        ),
        links=STUDENT_LINKS,
        formats=FILE_FORMATS,
    ),
    "resources": DatasetNeeds(
        (
            Column("resource_id", ("string",), ("keep",), required=True),
            Column("subject", ("string",), ("keep",), required=True),
            Column("contributing_school", ("string",), ("keep",), required=True),
            Column("title", ("string",), ("keep", "scrub", "drop")),
        ),
        display_text=("title",),
    ),
    "assessments": DatasetNeeds(
        _linked(
            Column("term", ("string",), ("keep",), required=True),
            Column("score", NUMBERS, ("keep",), required=True),
            Column("assessed_on", DATES, ("keep", "drop", "generalize:iso_week")),
        ),
        links=STUDENT_LINKS,
        stages_fields=False,  # one row per student: pre_score and post_score
    ),
    "attendance": DatasetNeeds(
        _linked(Column("days_enrolled", NUMBERS, KEEP), Column("days_present", NUMBERS, KEEP)),
        links=STUDENT_LINKS,
    ),
    "comments": DatasetNeeds(
        _linked(
            Column("teacher_name", ("string",), HIDE, consumed=True),
            Column("written_on", DATES, WEEK),
            Column("text", ("string",), ("scrub", "drop")),
        ),
        links=STUDENT_LINKS,
    ),
    "opt_outs": DatasetNeeds(
        _linked(Column("date", DATES, ("keep", "drop")), Column("scope", ("string",), ("keep", "drop"))),
        links=STUDENT_LINKS,
        stages_fields=False,  # applied to the other datasets, never staged itself
    ),
    "teacher_survey": DatasetNeeds(
        (
            Column("teacher_id", ("string",), LINK, required=True, consumed=True),
            Column("responded_on", DATES, WEEK),
            Column("minutes_saved_per_week", NUMBERS, ("keep",), required=True),
        ),
        needs_roster=False,
    ),
}


def link_column(dataset: str, terms: DatasetTerms) -> str | None:
    """The column that links `dataset`'s rows to the roster: the e-mail when declared, else the id."""
    links = NEEDS[dataset].links
    declared = [c for c in links if terms.field(c) is not None]
    return "student_email" if "student_email" in declared else (declared[0] if declared else None)


def staged_name(dataset: str, f: FieldTerms) -> str | None:
    """The staging column a field becomes, or None when nothing of it is staged under its own name."""
    needs = NEEDS[dataset]
    column = needs.column(f.name)
    if not needs.stages_fields or f.action in ("drop", "pseudonymize") or (column and column.consumed):
        return None
    rule = f.generalize_rule
    return GENERALIZED_COLUMNS[rule] if rule else f.name


def label_fields(dataset: str, terms: DatasetTerms) -> list[FieldTerms]:
    """Fields staged as text that are not free text: their values can become published dimension
    values, so every value is checked as a label (contracts.labels, privacy.freetext.labels)."""
    display = set(NEEDS[dataset].display_text)
    return [
        f
        for f in terms.fields
        if staged_name(dataset, f) is not None
        and f.name not in display
        and f.action != "scrub"
        and (f.logical_type == "string" or f.generalize_rule == "postcode_district")
    ]


def scrubbed_fields(dataset: str, terms: DatasetTerms) -> list[FieldTerms]:
    """Fields staged as scrubbed free text: declared `scrub`, or display text the contract keeps."""
    if not NEEDS[dataset].stages_fields:
        return []
    display = set(NEEDS[dataset].display_text)
    return [f for f in terms.fields if f.action == "scrub" or (f.name in display and f.action == "keep")]


# ---- the check -----------------------------------------------------------------------------------

Problem = tuple[str, str, str]  # (path inside the dataset, message, fix)


def _field_path(terms: DatasetTerms, f: FieldTerms) -> str:
    return f"properties[{terms.fields.index(f)}] ({f.name})"


def _canonical_problems(needs: DatasetNeeds, terms: DatasetTerms, f: FieldTerms) -> Iterator[Problem]:
    where = _field_path(terms, f)
    column = needs.column(f.name)
    if column is None:
        return
    if f.logical_type not in column.types:
        yield (
            f"{where}.logicalType",
            f"staging reads '{f.name}' as {' or '.join(column.types)}, not {f.logical_type}",
            f"declare logicalType {column.types[0]} (sourceFormat says how the file spells it)",
        )
    if f.action not in column.actions:
        yield (
            f"{where}.customProperties.action",
            f"staging cannot carry out '{f.action}' on '{f.name}'",
            f"use one of {', '.join(column.actions)}",
        )


def _rule_problems(terms: DatasetTerms, f: FieldTerms) -> Iterator[Problem]:
    rule = f.generalize_rule
    if rule and f.logical_type not in RULE_INPUT_TYPES[rule]:
        yield (
            f"{_field_path(terms, f)}.customProperties.action",
            f"generalize:{rule} needs a {' or '.join(RULE_INPUT_TYPES[rule])} field, not {f.logical_type}",
            "change the logicalType, or drop the field",
        )


def _label_problems(dataset: str, terms: DatasetTerms, f: FieldTerms) -> Iterator[Problem]:
    if f not in label_fields(dataset, terms):
        return
    where = f"{_field_path(terms, f)}.logicalTypeOptions"
    if f.pattern is not None:
        try:
            compiled(f.pattern)
        except re.error as exc:
            yield (f"{where}.pattern", f"not a regular expression ({exc})", "fix the pattern")
            return
    for value in f.allowed_values or ():
        problem = label_shape_problem(value, f.pattern)
        if problem:
            yield (
                f"{where}.enum",
                f"an allowed value is {problem}: it would become a published label",
                "rename the category (e.g. 'all_grades' rather than 'all')",
            )


def field_problems(dataset: str, terms: DatasetTerms) -> list[Problem]:
    """Every reason staging could not carry out `terms` (empty when it can)."""
    needs = NEEDS[dataset]
    problems: list[Problem] = []
    names = [f.name for f in terms.fields]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(("properties", f"field '{name}' is declared twice", "declare each field once"))
    for column in needs.columns:
        if column.required and terms.field(column.name) is None:
            problems.append(
                ("properties", f"staging needs the field '{column.name}'", f"declare '{column.name}'")
            )
    if needs.links and link_column(dataset, terms) is None:
        problems.append(
            (
                "properties",
                f"no field links a row to a student ({' or '.join(needs.links)})",
                "declare student_id (or student_email) with action pseudonymize",
            )
        )
    staged: dict[str, str] = {}
    for f in terms.fields:
        problems += _canonical_problems(needs, terms, f)
        problems += _rule_problems(terms, f)
        problems += _label_problems(dataset, terms, f)
        column = staged_name(dataset, f)
        if column is None:
            continue
        if column in PIPELINE_COLUMNS or column in staged:
            clash = staged.get(column, "the pipeline's own column")
            problems.append(
                (
                    f"{_field_path(terms, f)}.name",
                    f"'{f.name}' would be staged as '{column}', which {clash} is already",
                    "rename the field, or drop one of them",
                )
            )
        staged.setdefault(column, f"'{f.name}'")
    return problems


def _xapi_format(f: FieldTerms) -> bool:
    if not f.source_format:
        return True
    return f.source == "started_at" and all(p in XAPI_TIMESTAMP_FORMATS for p in f.source_format.split("|"))


def format_problems(dataset: str, terms: DatasetTerms) -> list[Problem]:
    """The file format, delimiter, encoding and row limit: what the reader must be able to use."""
    needs = NEEDS[dataset]
    problems: list[Problem] = []
    if terms.file_format not in needs.formats:
        problems.append(
            (
                "customProperties.fileFormat",
                f"'{terms.file_format}' cannot carry a {dataset} export",
                f"use one of {', '.join(needs.formats)}",
            )
        )
    if terms.file_format == "xapi":
        for f in terms.fields:
            where = _field_path(terms, f)
            if f.source not in XAPI_COLUMNS:
                problems.append(
                    (
                        f"{where}.customProperties.sourceColumn",
                        f"an xAPI statement has no '{f.source}'",
                        f"map one of {', '.join(XAPI_COLUMNS)}",
                    )
                )
            elif f.logical_type != XAPI_TYPES[f.source] or not _xapi_format(f):
                problems.append(
                    (
                        f"{where}.logicalType",
                        f"an xAPI statement's {f.source} is a {XAPI_TYPES[f.source]}"
                        + (" in ISO 8601" if f.source == "started_at" else ""),
                        f"declare logicalType {XAPI_TYPES[f.source]}, without a sourceFormat "
                        f"(or {' or '.join(XAPI_TIMESTAMP_FORMATS)})",
                    )
                )
    if terms.file_format == "csv" and (len(terms.delimiter) != 1 or terms.delimiter in '"\r\n'):
        problems.append(
            (
                "customProperties.delimiter",
                "a delimiter is one character, not a quote or line break",
                "use , or ;",
            )
        )
    try:
        codecs.lookup(terms.encoding)
    except LookupError:
        problems.append(("customProperties.encoding", f"unknown encoding '{terms.encoding}'", "use utf-8"))
    return problems


def staging_problems(dataset: str, terms: DatasetTerms, contract: dict[str, DatasetTerms]) -> list[Problem]:
    """Everything in the contract's terms for `dataset` that staging cannot carry out; `contract`
    is every dataset of the contract (a dataset linked to students is linked through the roster)."""
    problems = format_problems(dataset, terms) + field_problems(dataset, terms)
    roster = contract.get("roster")
    if NEEDS[dataset].needs_roster and roster is None:
        problems.append(
            ("name", f"a {dataset} export is staged against the roster", "add the roster dataset")
        )
    elif (
        roster is not None
        and link_column(dataset, terms) == "student_email"
        and roster.field("email") is None
    ):
        problems.append(
            (
                "properties",
                "rows are linked by student_email, but the roster declares no email to link them to",
                "declare email in the roster (action drop), or link by student_id",
            )
        )
    return problems
