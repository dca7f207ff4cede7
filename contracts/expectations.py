"""Great Expectations suites derived from a contract, one per STAGING dataset, and a runner.

A suite is first a plain `SuiteSpec` (cheap, testable, JSON-able); Great Expectations is imported
only inside `run_suites`, because its import costs seconds. What a suite checks, from the contract:

* the staging columns are exactly the ones the contract lets through (a raw identifier that slipped
  past minimization fails here), each of the declared logical type;
* `required` → not null, `unique` → unique (the roster's student id → `student_pid` in students),
  `logicalTypeOptions.enum` → allowed values, `minimum`/`maximum` → ranges;
* pseudonyms are 64-hex HMACs, weeks are `YYYY-Www`, `school_id` is the contract's school;
* row-count sanity: a school's staged students are at least one.

Results keep counts only (expectation, column, success, unexpected_count): never a value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from contracts.model import Agreement, DatasetTerms, FieldTerms

# Which contract dataset each staging dataset is built from (transforms.staging).
STAGING_SOURCES = {
    "students": "roster",
    "usage": "usage",
    "assessments": "assessments",
    "attendance": "attendance",
    "comments": "comments",
    "resources": "resources",
    "teacher_survey": "teacher_survey",
}
# The pseudonym column of each staging dataset keyed by a person (teachers are not students).
PID_COLUMNS = {"teacher_survey": "teacher_pid"}
# Column each generalization rule produces; mirrors privacy.minimize.GENERALIZED_NAMES (contracts
# may not import privacy; a test keeps the two equal).
GENERALIZED_COLUMNS = {
    "birth_year": "birth_year",
    "age_band": "age_band",
    "postcode_district": "postcode_district",
    "iso_week": "week",
}
# Quasi-identifiers of students that disclosure control may recode to "other" (rare categories) or
# set to null (k-anonymity's local suppression), so neither is a contract breach.
RECODED_VALUE = "other"
SUPPRESSIBLE_IN_STUDENTS = {"sex", "grade", "birth_year", "age_band", "postcode_district"}
# Columns the pipeline itself adds to a staging dataset (not in any contract): allowed, not required.
PIPELINE_COLUMNS = {"students": ("opted_out_purposes",)}  # privacy.optouts: purposes a student left
# Consumed by pseudonymization: present in exports, never in staging.
LINKAGE_FIELDS = {"student_id", "state_id", "student_email", "teacher_id"}
# Pandas dtypes GX compares against, for frames converted by `_pandas_frame` (nullable dtypes, so a
# null does not turn an integer column into floats).
_INTS = ["Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype"]
GX_TYPES = {
    "string": ["StringDtype"],
    "integer": _INTS,
    "number": ["Float32Dtype", "Float64Dtype", *_INTS],
    "boolean": ["BooleanDtype"],
    "date": ["date"],
    "timestamp": ["datetime64[ms]", "datetime64[us]", "datetime64[ns]"],
}
PID_PATTERN = r"^[0-9a-f]{64}$"
WEEK_PATTERN = r"^[0-9]{4}-W[0-9]{2}$"


@dataclass(frozen=True)
class Expectation:
    """One GX expectation by class name (`ExpectColumnValuesToNotBeNull`) and its arguments."""

    kind: str
    column: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "column": self.column, "kwargs": dict(self.kwargs)}


@dataclass(frozen=True)
class SuiteSpec:
    """The expectations one school's staging dataset must meet under its contract."""

    name: str
    dataset: str
    school_id: str
    contract: str
    expectations: tuple[Expectation, ...]
    optional_columns: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        fields = ("name", "dataset", "school_id", "contract", "optional_columns")
        return {
            **{k: getattr(self, k) for k in fields},
            "expectations": [e.as_dict() for e in self.expectations],
        }


@dataclass
class ValidationSummary:
    """A suite's outcome, JSON-able; each result holds counts, never the offending values."""

    suite: str
    dataset: str
    success: bool
    rows: int
    results: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results if not r["success"]]

    def as_dict(self) -> dict:
        return {**asdict(self), "evaluated": len(self.results), "failed_count": len(self.failed)}


# ---- deriving suites -------------------------------------------------------------------------


def _column_rules(
    column: str, f: FieldTerms, logical_type: str, nullable: bool, extra_values: tuple[str, ...] = ()
) -> list[Expectation]:
    rules = [Expectation("ExpectColumnValuesToBeInTypeList", column, {"type_list": GX_TYPES[logical_type]})]
    if f.required and not nullable:
        rules.append(Expectation("ExpectColumnValuesToNotBeNull", column))
    if f.allowed_values:
        values = sorted({*f.allowed_values, *extra_values})
        rules.append(Expectation("ExpectColumnValuesToBeInSet", column, {"value_set": values}))
    if f.minimum is not None or f.maximum is not None:
        bounds = {"min_value": f.minimum, "max_value": f.maximum}
        rules.append(Expectation("ExpectColumnValuesToBeBetween", column, bounds))
    return rules


def _generalized_rules(column: str, f: FieldTerms, nullable: bool) -> list[Expectation]:
    """A generalized column's type is the rule's, not the source field's (birth_date → birth_year)."""
    if column == "week":
        rules = [
            Expectation("ExpectColumnValuesToBeInTypeList", column, {"type_list": GX_TYPES["string"]}),
            Expectation("ExpectColumnValuesToMatchRegex", column, {"regex": WEEK_PATTERN}),
        ]
    elif column == "birth_year":  # a year, or a "2012-2013" band once k-anonymity widened it
        year_or_band = [*GX_TYPES["integer"], *GX_TYPES["string"]]
        rules = [Expectation("ExpectColumnValuesToBeInTypeList", column, {"type_list": year_or_band})]
    else:
        rules = [Expectation("ExpectColumnValuesToBeInTypeList", column, {"type_list": GX_TYPES["string"]})]
    if f.required and not nullable:
        rules.append(Expectation("ExpectColumnValuesToNotBeNull", column))
    return rules


def _staged_fields(staging: str, terms: DatasetTerms) -> list[tuple[str, FieldTerms]]:
    """(staging column, contract field) for every field whose action lets something through."""
    out = []
    for f in terms.fields:
        if f.name in LINKAGE_FIELDS or f.action in ("drop", "pseudonymize"):
            continue
        if staging == "assessments" and f.name != "score":
            continue  # term and date are folded into pre_score / post_score
        column = GENERALIZED_COLUMNS[f.generalize_rule] if f.generalize_rule else f.name
        out.append((column, f))
    return out


def _student_key_rules(school_id: str, unique: bool, pid: str = "student_pid") -> list[Expectation]:
    rules = [
        Expectation("ExpectColumnValuesToNotBeNull", "school_id"),
        Expectation("ExpectColumnValuesToBeInSet", "school_id", {"value_set": [school_id]}),
        Expectation("ExpectColumnValuesToNotBeNull", pid),
        Expectation("ExpectColumnValuesToMatchRegex", pid, {"regex": PID_PATTERN}),
        Expectation("ExpectColumnValuesToNotBeNull", "key_version"),
    ]
    if unique:
        rules.append(Expectation("ExpectColumnValuesToBeUnique", pid))
    return rules


def _assessment_rules(f: FieldTerms) -> tuple[list[str], list[Expectation]]:
    """Scores become one row per student: pre_score and post_score (either may be missing)."""
    rules: list[Expectation] = []
    for column in ("pre_score", "post_score"):
        rules += _column_rules(column, f, "number", nullable=True)
    return ["pre_score", "post_score"], rules


def staging_suite(agreement: Agreement, staging: str) -> SuiteSpec | None:
    """The suite for one staging dataset of `agreement`'s school, or None if the contract lacks it."""
    terms = agreement.datasets.get(STAGING_SOURCES[staging])
    if terms is None:
        return None
    columns: list[str] = []
    rules: list[Expectation] = []
    if staging != "resources":
        pid = PID_COLUMNS.get(staging, "student_pid")
        columns += ["school_id", pid, "key_version"]
        # One row per student in students (the roster's unique id) and in the wide assessments.
        roster_unique = any(f.unique for f in terms.fields if f.name in LINKAGE_FIELDS)
        rules += _student_key_rules(agreement.school_id, staging == "assessments" or roster_unique, pid)
    for column, f in _staged_fields(staging, terms):
        if staging == "assessments":
            names, extra = _assessment_rules(f)
            columns += names
            rules += extra
            continue
        nullable = staging == "students" and column in SUPPRESSIBLE_IN_STUDENTS
        columns.append(column)
        if f.generalize_rule:
            rules += _generalized_rules(column, f, nullable)
        else:
            recoded = (RECODED_VALUE,) if nullable else ()
            rules += _column_rules(column, f, f.logical_type, nullable, recoded)
        if f.unique and f.name not in LINKAGE_FIELDS:
            rules.append(Expectation("ExpectColumnValuesToBeUnique", column))
    # Exactly these columns (plus the pipeline's own): anything else reached staging unminimized.
    exact = {"column_set": columns, "exact_match": True}
    rules.insert(0, Expectation("ExpectTableColumnsToMatchSet", None, exact))
    if staging == "students":
        rules.insert(1, Expectation("ExpectTableRowCountToBeBetween", None, {"min_value": 1}))
    return SuiteSpec(
        name=f"{agreement.school_id}.{staging}",
        dataset=staging,
        school_id=agreement.school_id,
        contract=agreement.label,
        expectations=tuple(rules),
        optional_columns=PIPELINE_COLUMNS.get(staging, ()),
    )


def staging_suites(agreement: Agreement) -> dict[str, SuiteSpec]:
    """Every staging dataset the contract covers, with its suite."""
    suites = {ds: staging_suite(agreement, ds) for ds in STAGING_SOURCES}
    return {ds: s for ds, s in suites.items() if s is not None}


# ---- running suites --------------------------------------------------------------------------


@cache
def _gx_batch_definition():
    """One ephemeral, quiet GX context per process, with a whole-dataframe batch definition."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("staging").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole")


def _gx_suite(spec: SuiteSpec, present: set[str]):
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=spec.name)
    optional = [c for c in spec.optional_columns if c in present]
    for e in spec.expectations:
        kwargs = {**({"column": e.column} if e.column else {}), **e.kwargs}
        if e.kind == "ExpectTableColumnsToMatchSet":
            kwargs["column_set"] = [*kwargs["column_set"], *optional]
        suite.add_expectation(getattr(gx.expectations, e.kind)(**kwargs))
    return suite


def _raised(info) -> bool:
    """GX reports a failed evaluation either flat or per metric: {metric: {raised_exception: ...}}."""
    if not isinstance(info, dict):
        return False
    if info.get("raised_exception"):
        return True
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _result_dict(result, columns: set[str]) -> dict:
    """Counts only. GX's `partial_unexpected_list` holds raw values; it is never copied."""
    config = result.expectation_config
    column = config.kwargs.get("column")
    detail = result.result or {}
    out = {
        "expectation": config.type,
        "column": column,
        "success": bool(result.success),
        "unexpected_count": detail.get("unexpected_count"),
    }
    if config.type == "expect_table_row_count_to_be_between":
        out["observed_rows"] = detail.get("observed_value")
    if config.type == "expect_column_values_to_be_in_type_list":
        out["observed_type"] = detail.get("observed_value")  # a type name such as "float"
    if config.type == "expect_table_columns_to_match_set":
        mismatched = (detail.get("details") or {}).get("mismatched") or {}
        out["unexpected_columns"] = sorted(mismatched.get("unexpected", []))  # names, not values
        out["missing_columns"] = sorted(mismatched.get("missing", []))
    if _raised(result.exception_info):
        out["success"] = False
        out["error"] = "column missing" if column and column not in columns else "could not be evaluated"
    return out


def _pandas_dtype(arrow_type):
    """Pandas nullable dtypes for Arrow types: ints stay ints when a value is missing."""
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return pd.api.types.pandas_dtype(str(arrow_type).replace("int", "Int").replace("uInt", "UInt"))
    if pa.types.is_floating(arrow_type):
        return pd.Float32Dtype() if arrow_type == pa.float32() else pd.Float64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    ):
        return pd.StringDtype("pyarrow")
    return None  # dates, timestamps and lists keep pyarrow's default conversion


def _pandas_frame(frame):
    return frame.to_arrow().to_pandas(types_mapper=_pandas_dtype)


def run_suite(frame, suite_spec: SuiteSpec) -> ValidationSummary:
    """Validate a Polars frame against a suite (GX has no Polars support: it gets pandas)."""
    batch = _gx_batch_definition().get_batch(batch_parameters={"dataframe": _pandas_frame(frame)})
    outcome = batch.validate(_gx_suite(suite_spec, set(frame.columns)), result_format="BASIC")
    results = sorted(
        (_result_dict(r, set(frame.columns)) for r in outcome.results),
        key=lambda r: (r["column"] or "", r["expectation"]),
    )
    return ValidationSummary(
        suite=suite_spec.name,
        dataset=suite_spec.dataset,
        success=all(r["success"] for r in results),
        rows=frame.height,
        results=results,
    )
