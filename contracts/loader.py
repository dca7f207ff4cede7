"""Load a folder of contracts, refuse the invalid ones whole, and answer coverage questions.

An invalid contract never half-applies: every problem found in a file is reported (file, path in
the document, what is wrong, how to fix it) and the school it names is left out of the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import ValidationError

from contracts.model import (
    DATASETS,
    DEFAULT_MAX_ROWS,
    FILE_FORMATS,
    GENERALIZE_RULES,
    LOGICAL_TYPES,
    PRIVACY_CLASSES,
    PURPOSES,
    SIMPLE_ACTIONS,
    Agreement,
    DatasetTerms,
    FieldTerms,
    is_valid_action,
)
from contracts.requirements import staging_problems
from contracts.schema_check import schema_errors
from contracts.yaml_safety import UnsafeYaml, check_yaml

# libyaml's C loader when present: the same safe subset, ~8x faster on a folder of contracts.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Consortium-wide floor: no contract may ask for smaller published cells than this.
CONSORTIUM_MIN_CELL_FLOOR = 5


@dataclass(frozen=True)
class ContractProblem:
    file: str
    path: str
    message: str
    fix: str
    school_id: str | None = None

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message} — fix: {self.fix}"


@dataclass
class ContractSet:
    agreements: list[Agreement] = field(default_factory=list)
    problems: list[ContractProblem] = field(default_factory=list)

    @property
    def schools(self) -> list[str]:
        return sorted({a.school_id for a in self.agreements})

    @property
    def rejected_schools(self) -> list[str]:
        valid = set(self.schools)
        return sorted({p.school_id for p in self.problems if p.school_id and p.school_id not in valid})

    def for_school(self, school_id: str) -> list[Agreement]:
        return [a for a in self.agreements if a.school_id == school_id]

    def covering(
        self, school_id: str, dataset: str, day: date, processed_on: date | None = None
    ) -> tuple[Agreement | None, str]:
        """The agreement that lets `dataset` of `school_id` dated `day` in, or None and the reason.

        With `processed_on`, an agreement that has ended by then lets nothing in, whatever the
        export's own date: data may not be taken in after an agreement ends."""
        candidates = self.for_school(school_id)
        if not candidates:
            return None, f"no valid contract for school '{school_id}'"
        reasons = []
        for agreement in candidates:
            problem = agreement.coverage_problem(dataset, day)
            if problem is None and processed_on is not None and processed_on > agreement.end:
                problem = f"contract {agreement.contract_id} ended on {agreement.end}; nothing is taken in after it ends"
            if problem is None:
                return agreement, "covered"
            reasons.append(problem)
        return None, "; ".join(reasons)

    def strictest_min_cell_size(self, floor: int = 10) -> int:
        return max([floor, *(a.min_cell_size for a in self.agreements)])


def _custom(props: Iterable[Any] | None) -> dict[str, Any]:
    return {p.property: p.value for p in (props or []) if p.property}


def _parse_date(value: Any, file: str, path: str, problems: list[ContractProblem]) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.append(
            ContractProblem(file, path, f"'{value}' is not a date", "write the date as YYYY-MM-DD")
        )
        return None


def _field_terms(prop: Any, where: str, file: str, problems: list[ContractProblem]) -> FieldTerms | None:
    custom = _custom(prop.customProperties)
    privacy_class = custom.get("privacyClass")
    action = custom.get("action")
    before = len(problems)
    if privacy_class not in PRIVACY_CLASSES:
        problems.append(
            ContractProblem(
                file,
                f"{where}.customProperties.privacyClass",
                f"unknown field class {privacy_class!r}",
                f"use one of {', '.join(PRIVACY_CLASSES)}",
            )
        )
    if not isinstance(action, str) or not is_valid_action(action):
        problems.append(
            ContractProblem(
                file,
                f"{where}.customProperties.action",
                f"unknown action {action!r}",
                f"use one of {', '.join(SIMPLE_ACTIONS)} or generalize:<{'|'.join(GENERALIZE_RULES)}>",
            )
        )
    if prop.logicalType not in LOGICAL_TYPES:
        problems.append(
            ContractProblem(
                file,
                f"{where}.logicalType",
                f"unknown logicalType {prop.logicalType!r}",
                f"use one of {', '.join(LOGICAL_TYPES)}",
            )
        )
    if privacy_class == "direct_identifier" and action == "keep":
        problems.append(
            ContractProblem(
                file,
                f"{where}.customProperties.action",
                "a direct identifier may not be kept",
                "use drop or pseudonymize",
            )
        )
    if privacy_class == "free_text" and action not in ("scrub", "drop"):
        problems.append(
            ContractProblem(
                file,
                f"{where}.customProperties.action",
                "free text must be scrubbed or dropped",
                "use scrub or drop",
            )
        )
    if len(problems) > before:
        return None
    options = prop.logicalTypeOptions or {}
    enum = options.get("enum")
    return FieldTerms(
        name=prop.name,
        logical_type=prop.logicalType,
        privacy_class=privacy_class,
        action=action,
        source=str(custom.get("sourceColumn") or prop.name),
        source_format=custom.get("sourceFormat"),
        required=bool(prop.required),
        unique=bool(prop.unique),
        minimum=options.get("minimum"),
        maximum=options.get("maximum"),
        allowed_values=tuple(str(v) for v in enum) if enum else None,
        pattern=str(options["pattern"]) if options.get("pattern") is not None else None,
    )


def _retention(contract: OpenDataContractStandard) -> dict[tuple[str, str], int]:
    days: dict[tuple[str, str], int] = {}
    for sla in contract.slaProperties or []:
        if sla.property == "retention" and sla.element and sla.driver in ("landing", "staging"):
            scale = {"d": 1, "day": 1, "days": 1, "y": 365, "year": 365, "years": 365}.get(sla.unit or "d", 1)
            days[(sla.element, sla.driver)] = int(sla.value) * scale
    return days


def _dataset_terms(contract, file: str, problems: list[ContractProblem]) -> dict[str, DatasetTerms]:
    retention = _retention(contract)
    datasets: dict[str, DatasetTerms] = {}
    before = len(problems)
    for i, schema in enumerate(contract.schema_ or []):
        where = f"schema[{i}]"
        if schema.name not in DATASETS:
            problems.append(
                ContractProblem(
                    file,
                    f"{where}.name",
                    f"unknown dataset {schema.name!r}",
                    f"use one of {', '.join(DATASETS)}",
                )
            )
            continue
        custom = _custom(schema.customProperties)
        file_format = custom.get("fileFormat", "csv")
        if file_format not in FILE_FORMATS:
            problems.append(
                ContractProblem(
                    file,
                    f"{where}.customProperties.fileFormat",
                    f"unknown file format {file_format!r}",
                    f"use one of {', '.join(FILE_FORMATS)}",
                )
            )
        fields = [
            _field_terms(p, f"{where}.properties[{j}] ({p.name})", file, problems)
            for j, p in enumerate(schema.properties or [])
        ]
        max_rows = custom.get("maxRows", DEFAULT_MAX_ROWS)
        if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
            problems.append(
                ContractProblem(
                    file,
                    f"{where}.customProperties.maxRows",
                    f"maxRows {max_rows!r} is not a whole number of rows",
                    f"write a whole number >= 1 (default {DEFAULT_MAX_ROWS})",
                )
            )
            max_rows = DEFAULT_MAX_ROWS
        if schema.name in datasets:
            problems.append(
                ContractProblem(
                    file, f"{where}.name", f"dataset {schema.name!r} is declared twice", "merge them"
                )
            )
        datasets[schema.name] = DatasetTerms(
            name=schema.name,
            file_format=file_format,
            fields=tuple(f for f in fields if f is not None),
            delimiter=str(custom.get("delimiter", ",")),
            encoding=str(custom.get("encoding", "utf-8")),
            landing_days=retention.get((schema.name, "landing")),
            staging_days=retention.get((schema.name, "staging")),
            max_rows=max_rows,
        )
    # Only when every field parsed: a field refused above would be reported twice, as missing.
    if len(problems) == before:
        for i, schema in enumerate(contract.schema_ or []):
            if schema.name in datasets:
                for path, message, fix in staging_problems(schema.name, datasets[schema.name], datasets):
                    problems.append(ContractProblem(file, f"schema[{i}].{path}", message, fix))
    return datasets


def _pydantic_problems(file: str, error: ValidationError) -> list[ContractProblem]:
    problems = []
    for e in error.errors():
        path = ".".join(str(p) for p in e["loc"]).replace("schema_", "schema")
        fix = (
            "remove it or move it into customProperties"
            if e["type"] == "extra_forbidden"
            else "see the JSON Schema in contracts/schema/impact-contract.schema.json"
        )
        problems.append(ContractProblem(file, path or "(document)", e["msg"], fix))
    return problems


def _covers(path: str, other: str) -> bool:
    """`path` names `other` or a part of it (`customProperties.allowedPurposes` covers `...[1]`)."""
    return other == path or (other.startswith(path) and other[len(path)] in ".[ ")


def _with_schema_problems(
    problems: list[ContractProblem], shape: list[tuple[str, str, str]], file: str
) -> list[ContractProblem]:
    """Add the JSON Schema's findings the loader's own (more specific) checks did not already name."""
    named = [p.path for p in problems]
    extra = [
        ContractProblem(file, path, message, fix)
        for path, message, fix in shape
        if not any(_covers(n, path) or _covers(path, n) for n in named)
    ]
    return problems + extra


def parse_contract(path: Path, min_cell_floor: int = CONSORTIUM_MIN_CELL_FLOOR):
    """Parse one contract file into an Agreement, or return the problems that refuse it."""
    file = path.name
    try:
        raw = check_yaml(path, SAFE_LOADER)  # before anything expands it: anchors, depth, size
        document = yaml.load(raw, Loader=SAFE_LOADER)
    except UnsafeYaml as exc:
        return None, [ContractProblem(file, "(document)", str(exc), exc.fix)]
    except yaml.YAMLError as exc:
        return None, [ContractProblem(file, "(document)", f"not valid YAML: {exc}", "fix the YAML syntax")]
    if not isinstance(document, dict):
        return None, [ContractProblem(file, "(document)", "not a mapping", "start from contracts/examples")]
    school_hint = next(
        (
            p.get("value")
            for p in document.get("customProperties") or []
            if isinstance(p, dict) and p.get("property") == "schoolId"
        ),
        None,
    )
    shape = schema_errors(document)  # the shipped JSON Schema: what an editor would flag
    try:
        contract = OpenDataContractStandard.model_validate(document)
    except ValidationError as exc:
        problems = _with_schema_problems(_pydantic_problems(file, exc), shape, file)
        return None, [ContractProblem(p.file, p.path, p.message, p.fix, school_hint) for p in problems]

    problems: list[ContractProblem] = []
    custom = _custom(contract.customProperties)
    for key in ("schoolId", "agreementStart", "agreementEnd", "allowedPurposes", "minCellSize"):
        if key not in custom:
            problems.append(
                ContractProblem(
                    file, f"customProperties.{key}", "missing", f"add {{property: {key}, value: ...}}"
                )
            )
    start = _parse_date(custom.get("agreementStart"), file, "customProperties.agreementStart", problems)
    end = _parse_date(custom.get("agreementEnd"), file, "customProperties.agreementEnd", problems)
    if start and end and end < start:
        problems.append(
            ContractProblem(file, "customProperties.agreementEnd", "ends before it starts", "check the dates")
        )
    if str(custom.get("schoolId", "")).isdigit() and len(str(custom["schoolId"])) >= 6:
        # privacy.audit_log refuses 6+ digits alone as a possible student id, and every intake
        # step logs the school: such a school would fail every run (NCES and state codes do this).
        problems.append(
            ContractProblem(
                file,
                "customProperties.schoolId",
                f"'{custom['schoolId']}' is six or more digits alone, which the audit log refuses as a "
                "possible student id",
                f"add a prefix, e.g. 'nces-{custom['schoolId']}', and name the school's landing folder so",
            )
        )
    purposes = tuple(custom.get("allowedPurposes") or ())
    unknown = sorted(set(purposes) - set(PURPOSES))
    if unknown:
        problems.append(
            ContractProblem(
                file,
                "customProperties.allowedPurposes",
                f"unknown purposes {unknown}",
                f"use any of {', '.join(PURPOSES)}",
            )
        )
    min_cell = custom.get("minCellSize", 0)
    if not isinstance(min_cell, int) or min_cell < min_cell_floor:
        problems.append(
            ContractProblem(
                file,
                "customProperties.minCellSize",
                f"minCellSize {min_cell!r} is below the consortium floor of {min_cell_floor}",
                f"set an integer >= {min_cell_floor}",
            )
        )
    datasets = _dataset_terms(contract, file, problems)
    school_id = str(custom.get("schoolId") or school_hint or "")
    problems = _with_schema_problems(problems, shape, file)
    if problems:
        return None, [ContractProblem(p.file, p.path, p.message, p.fix, school_id or None) for p in problems]
    agreement = Agreement(
        contract_id=contract.id,
        version=contract.version,
        status=contract.status,
        school_id=school_id,
        consortium_id=str(custom.get("consortiumId", "")),
        parties=tuple(custom.get("parties") or ()),
        start=start,
        end=end,
        signed_version=str(custom.get("signedVersion", contract.version)),
        purposes=purposes,
        min_cell_size=min_cell,
        datasets=datasets,
        source_file=path,
        name=contract.name or "",
        purpose_text=(contract.description.purpose if contract.description else "") or "",
        digest=hashlib.sha256(raw).hexdigest(),
    )
    return agreement, []


def _overlaps(a: Agreement, b: Agreement) -> list[str]:
    # A retired or draft agreement beside an active one is a renewal, not a conflict.
    if a.status != "active" or b.status != "active":
        return []
    if a.school_id != b.school_id or a.end < b.start or b.end < a.start:
        return []
    return sorted(set(a.datasets) & set(b.datasets))


_CACHE: dict[tuple, ContractSet] = {}


def _folder_signature(folder: Path, min_cell_floor: int) -> tuple:
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    return (
        str(folder.resolve()),
        min_cell_floor,
        *((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files),
    )


def load_contracts(folder: Path, min_cell_floor: int = CONSORTIUM_MIN_CELL_FLOOR) -> ContractSet:
    """Every `*.yaml`/`*.yml` in `folder`; overlapping agreements for one school are refused, naming both.

    Parsed once per process while the folder's files (names, sizes, modification times) stay the
    same: every asset and check asks, and re-parsing 1,000 contracts per school is quadratic."""
    signature = _folder_signature(folder, min_cell_floor)
    if signature not in _CACHE:
        _CACHE.clear()
        _CACHE[signature] = _load_contracts(folder, min_cell_floor)
    cached = _CACHE[signature]
    return ContractSet(agreements=list(cached.agreements), problems=list(cached.problems))


def _load_contracts(folder: Path, min_cell_floor: int) -> ContractSet:
    result = ContractSet()
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    parsed: list[Agreement] = []
    for path in files:
        agreement, problems = parse_contract(path, min_cell_floor)
        result.problems.extend(problems)
        if agreement:
            parsed.append(agreement)
    refused: set[str] = set()
    for i, a in enumerate(parsed):
        for b in parsed[i + 1 :]:
            shared = _overlaps(a, b)
            if shared:
                refused.update({a.source_file.name, b.source_file.name})
                result.problems.append(
                    ContractProblem(
                        a.source_file.name,
                        "customProperties.agreementStart/agreementEnd",
                        f"overlaps {b.source_file.name} ({b.label}) for school {a.school_id} on {shared}",
                        "end one agreement before the other starts, or merge them",
                        a.school_id,
                    )
                )
    result.agreements = [a for a in parsed if a.source_file.name not in refused]
    return result
