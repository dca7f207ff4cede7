"""Property: every contract `impact contracts check` accepts is one staging can carry out.

Contracts are drawn from a strategy that mirrors contracts/schema/impact-contract.schema.json
(any dataset, format, delimiter, field, logical type, privacy class, action, option), biased
towards the canonical columns so that many drawn contracts are accepted. For each accepted one,
an export of every dataset that matches the contract (types, source columns, source formats,
enums, ranges, file format) is generated, and staging it must raise nothing and fail no file.
Before issue 17 the check accepted contracts that crashed staging (assessments without `term`,
resources without `subject`, a string `minutes`, two fields staged as `week`, ...).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contracts.loader import parse_contract
from contracts.model import DATASETS, FILE_FORMATS, GENERALIZE_RULES, LOGICAL_TYPES, PRIVACY_CLASSES
from contracts.requirements import NEEDS, XAPI_COLUMNS
from privacy.keys import PseudonymKey
from transforms.staging import stage_school

KEY = PseudonymKey(b"contract-property-key-" + b"c" * 24, "1")
ACTIONS = ("drop", "pseudonymize", "scrub", "keep", *(f"generalize:{r}" for r in GENERALIZE_RULES))
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y|%Y-%m-%d")
TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M")
BOOL_FORMATS = (None, "Y/N", "yes/no")
LABELS = ("c01", "c02", "x-7", "q.9", "lab:3")
LABEL_PATTERNS = (None, r"^[a-z][a-z0-9.:-]*$")
EXTRA_NAMES = ("extra_a", "extra_b", "house", "note")
ROWS = 6
# Fields whose values the generator spells itself (ids, names, e-mails, the school, pre/post).
SPECIAL_VALUES = {"student_id", "teacher_id", "student_email", "email", "given_name", "family_name"}
SPECIAL_VALUES |= {"contributing_school", "resource_id", "term", "opt_out", "scope"}
START = date(2026, 9, 7)


def no_scrub(texts: pl.Series, *_roster_and_names):
    return texts, Counter()


def no_label_check(roster, teachers):
    """Staging's label checks are tested elsewhere; the values drawn here are plain codes."""
    return lambda values, pattern=None, declared=(): {}


@st.composite
def field_entry(draw, dataset: str, name: str, sloppiness: int = 0):
    column = NEEDS[dataset].column(name)
    fitting = column is not None and draw(st.integers(0, 99)) >= sloppiness  # mostly what staging needs
    logical = draw(st.sampled_from(column.types)) if fitting else draw(st.sampled_from(LOGICAL_TYPES))
    action = draw(st.sampled_from(column.actions)) if fitting else draw(st.sampled_from(ACTIONS))
    privacy = draw(st.sampled_from(PRIVACY_CLASSES))
    if (privacy == "direct_identifier" and action == "keep") or (privacy == "free_text") != (
        action == "scrub"
    ):
        privacy = "free_text" if action == "scrub" else "attribute"
    entry: dict = {"name": name, "logicalType": logical, "required": draw(st.booleans())}
    custom = [{"property": "privacyClass", "value": privacy}, {"property": "action", "value": action}]
    if draw(st.booleans()):
        custom.append({"property": "sourceColumn", "value": f"Src{name.title().replace('_', '')}"})
    fmt = None
    if logical == "date":
        fmt = draw(st.sampled_from((None, *DATE_FORMATS)))
    elif logical == "timestamp":
        fmt = draw(st.sampled_from((None, *TIMESTAMP_FORMATS)))
    elif logical == "boolean":
        fmt = draw(st.sampled_from(BOOL_FORMATS))
    if fmt:
        custom.append({"property": "sourceFormat", "value": fmt})
    entry["customProperties"] = custom
    options: dict = {}
    if logical in ("integer", "number") and draw(st.booleans()):
        options = {"minimum": 0, "maximum": draw(st.sampled_from((12, 100, 600)))}
    if logical == "string" and name not in SPECIAL_VALUES and draw(st.integers(0, 3)) == 0:
        options = {"enum": draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True))}
    if logical == "string" and (pattern := draw(st.sampled_from(LABEL_PATTERNS))):
        options["pattern"] = pattern
    if name == "term" and logical == "string":
        options["enum"] = ["pre", "post"]
    if options:
        entry["logicalTypeOptions"] = options
    return entry


@st.composite
def dataset_entry(draw, dataset: str, sloppiness: int):
    needs = NEEDS[dataset]
    names = [c.name for c in needs.columns if c.required or draw(st.integers(0, 9)) < 7]
    names += draw(st.lists(st.sampled_from(EXTRA_NAMES), max_size=2, unique=True))
    formats = needs.formats if draw(st.integers(0, 9)) < 9 else FILE_FORMATS
    file_format = draw(st.sampled_from(formats))
    if file_format == "xapi":
        names = [n for n in names if n in XAPI_COLUMNS]
    custom = [{"property": "fileFormat", "value": file_format}]
    if file_format == "csv":
        custom.append({"property": "delimiter", "value": draw(st.sampled_from([",", ";", "\t", "|"]))})
    custom.append({"property": "encoding", "value": draw(st.sampled_from(["utf-8", "latin-1"]))})
    if draw(st.booleans()):
        custom.append({"property": "maxRows", "value": draw(st.sampled_from([ROWS, 1000]))})
    fields = [draw(field_entry(dataset, n, sloppiness)) for n in names]
    if file_format == "xapi":  # an xAPI statement names its columns itself
        for entry in fields:
            entry["customProperties"] = [
                c for c in entry["customProperties"] if c["property"] != "sourceColumn"
            ]
    return {
        "name": dataset,
        "customProperties": custom,
        "properties": fields or [draw(field_entry(dataset, "x"))],
    }


@st.composite
def contracts(draw):
    datasets = ["roster"] if draw(st.integers(0, 9)) < 9 else []
    datasets += draw(
        st.lists(st.sampled_from([d for d in DATASETS if d != "roster"]), max_size=4, unique=True)
    )
    assume(datasets)
    sloppiness = draw(st.sampled_from([0, 0, 2, 10, 40]))  # % of canonical fields drawn at random
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "dsa-prop",
        "version": "1.0.0",
        "status": "active",
        "customProperties": [
            {"property": "schoolId", "value": "sch01"},
            {"property": "agreementStart", "value": "2026-08-01"},
            {"property": "agreementEnd", "value": "2027-07-31"},
            {
                "property": "allowedPurposes",
                "value": ["reach", "usage", "learning_gains", "cross_school_use"],
            },
            {"property": "minCellSize", "value": 5},
        ],
        "schema": [draw(dataset_entry(d, sloppiness)) for d in datasets],
    }


# --- a matching export ---------------------------------------------------------------------------


def _value(f, i: int):
    """Row i's value of a field, as the contract says the file spells it (None: left empty)."""
    name, kind, fmt = f.name, f.logical_type, f.source_format
    if not f.required and i == ROWS - 1:
        return None
    if name in ("student_id", "teacher_id"):
        return f"S{i:03d}"
    if name in ("student_email", "email"):
        return f"student{i}@school.example"
    if name == "given_name":
        return ("Zorvak", "Melquon", "Tisbre", "Daxlum", "Fenrho", "Kipsul")[i]
    if name == "family_name":
        return ("Quonmel", "Brezor", "Vaktis", "Lumdax", "Rhofen", "Sulkip")[i]
    if name == "contributing_school":
        return "sch01"
    if name == "resource_id":
        return f"r{i % 3}"
    if name == "term":
        return ("pre", "post")[i % 2]
    if name == "opt_out" and kind != "boolean":
        return "no"
    if name == "scope":
        return "reach"  # an opt-out of one purpose: the student stays staged
    if kind == "string":
        values = f.allowed_values or LABELS
        return values[i % len(values)]
    if kind == "integer":
        return str(int(f.minimum or 0) + i)
    if kind == "number":
        return str((f.minimum or 0) + i + 0.5)
    if kind == "boolean":
        true, false = fmt.split("/") if fmt and "/" in fmt else ("true", "false")
        return true if i % 2 and name != "opt_out" else false
    day = START + timedelta(days=7 * i)
    if kind == "date":
        return day.strftime((fmt or "%Y-%m-%d").split("|")[0])
    moment = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
    return moment.strftime(fmt.split("|")[0]) if fmt else moment.isoformat()


def write_export(path: Path, terms) -> Path:
    rows = [{f.source: _value(f, i) for f in terms.fields} for i in range(ROWS)]
    if terms.file_format == "xapi":
        lines = []
        for row in rows:
            event = {
                "actor": {"mbox": f"mailto:{row.get('student_email') or 'x@y.example'}"},
                "object": {"id": f"urn:resource:{row.get('resource_id') or 'r0'}"},
                "timestamp": "2026-09-08T09:00:00Z",  # xAPI: always ISO 8601
                "result": {"duration": "PT12M"},
            }
            lines.append(json.dumps(event))
        path.write_text("\n".join(lines) + "\n")
    elif terms.file_format == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding=terms.encoding)
    elif terms.file_format == "parquet":
        pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String), orient="row").write_parquet(path)
    else:
        frame = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String), orient="row")
        path.write_bytes(frame.write_csv(separator=terms.delimiter).encode(terms.encoding))
    return path


SUFFIX = {"csv": "csv", "jsonl": "jsonl", "xapi": "jsonl", "parquet": "parquet"}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=contracts())
def test_every_accepted_contract_stages_a_matching_export(document):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "contract.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        agreement, problems = parse_contract(path)
        assume(agreement is not None)
        assert problems == []
        exports = {
            ds: write_export(folder / f"{ds}_2026-10-01.{SUFFIX[t.file_format]}", t)
            for ds, t in agreement.datasets.items()
        }
        staged = stage_school(
            "sch01",
            agreement,
            exports,
            KEY,
            no_scrub,
            label_checker=no_label_check,
            consortium=frozenset({"sch01"}),
        )
        failed = {r.dataset: r.message for r in staged.files if r.status == "failed"}
        assert failed == {}
        opt_outs = agreement.datasets.get("opt_outs")
        everyone_left = opt_outs is not None and opt_outs.field("scope") is None  # a list of full opt-outs
        if "roster" in agreement.datasets and not everyone_left:
            assert staged.frames["students"].height > 0
