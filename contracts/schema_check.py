"""Validate a contract document against the shipped JSON Schema, as problems a person can act on.

jsonschema reports raw JSON paths (`customProperties/6/value/1`); a data officer reads the contract
by names, so paths are rendered the way the loader names things: `customProperties.allowedPurposes`,
`schema[0].properties[2] (grade).logicalType`. Each error gets a fix: the schema's `x-fix` hint, the
allowed values of an enum, or what to add.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_FILE = "impact-contract.schema.json"
SCHEMA_PATH_HINT = "contracts/schema/impact-contract.schema.json"


@cache
def contract_schema() -> dict:
    return json.loads(resources.files("contracts.schema").joinpath(SCHEMA_FILE).read_text("utf-8"))


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(contract_schema())


def json_ready(value: Any) -> Any:
    """YAML turns an unquoted 2026-08-01 into a date; the schema (like JSON) speaks ISO strings."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def readable_path(document: Any, path: Sequence[Any]) -> str:
    """`['schema', 0, 'properties', 2, 'customProperties', 1, 'value']` →
    `schema[0].properties[2] (grade).customProperties.action`."""
    text, node, parent_key = "", document, None
    skip_value = False
    for step in path:
        if skip_value and step == "value":
            skip_value = False
            node = node.get("value") if isinstance(node, dict) else None
            continue
        if isinstance(step, int):
            item = node[step] if isinstance(node, list) and step < len(node) else None
            named = isinstance(item, dict) and isinstance(item.get("property"), str)
            if parent_key == "customProperties" and named:
                text += f".{item['property']}"
                skip_value = True
            elif parent_key == "properties" and isinstance(item, dict) and item.get("name"):
                text += f"[{step}] ({item['name']})"
            else:
                text += f"[{step}]"
            node = item
        else:
            text += f".{step}" if text else str(step)
            node = node.get(step) if isinstance(node, dict) else None
        parent_key = step if isinstance(step, str) else parent_key
    return text or "(document)"


def _joined(base: str, name: str) -> str:
    return name if base == "(document)" else f"{base}.{name}"


def _allowed(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _article(json_type: str) -> str:
    return f"an {json_type}" if json_type[0] in "aeiou" else f"a {json_type}"


def _ref_name(subschema: dict) -> str:
    ref = subschema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else "?"


def _explained(error: ValidationError, document: Any) -> list[tuple[str, str, str]]:
    """(path, message, fix) for one jsonschema error; `additionalProperties` gives one per key."""
    path = readable_path(document, list(error.absolute_path))
    hint = error.schema.get("x-fix") if isinstance(error.schema, dict) else None
    kind, value = error.validator, error.validator_value
    if kind == "required":
        missing = [k for k in value if not (isinstance(error.instance, dict) and k in error.instance)]
        return [(_joined(path, k), "missing", f"add {k}") for k in missing]
    if kind == "contains":
        name = _ref_name(value)
        return [(_joined(path, name), "missing", f"add {{property: {name}, value: ...}}")]
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        fix = "remove it or move it into customProperties"
        return [(_joined(path, k), f"unknown field '{k}'", fix) for k in extra]
    if kind == "enum":
        return [(path, f"{error.instance!r} is not allowed", f"use one of {_allowed(value)}")]
    if kind == "const":
        return [(path, f"{error.instance!r} is not allowed", hint or f"write {value}")]
    if kind == "pattern" and hint and "YYYY-MM-DD" in hint:
        return [(path, f"'{error.instance}' is not a date", hint)]
    if kind == "type":
        expected = " or ".join(_article(t) for t in ([value] if isinstance(value, str) else value))
        return [(path, f"{error.instance!r} is not {expected}", hint or f"write {expected}")]
    return [(path, error.message, hint or f"see {SCHEMA_PATH_HINT}")]


@cache
def _fast_validator():
    """jsonschema-rs on the same schema: a verdict in ~0.1 ms a contract instead of ~20 ms (100
    contracts were 2-3 s of every process's start). Only a document it refuses goes through
    jsonschema, whose errors carry the paths and `x-fix` hints; tests check the two agree."""
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(contract_schema())


def fast_verdict(ready: Any) -> bool | None:
    """True/False from jsonschema-rs; None when it cannot judge the document (jsonschema will)."""
    try:
        return _fast_validator().is_valid(ready)
    except Exception:  # a value JSON has no type for: let the reference validator explain it
        return None


def schema_errors(document: Any) -> list[tuple[str, str, str]]:
    """Every schema violation of `document` as (path, message, fix), sorted by path, no duplicates."""
    ready = json_ready(document)
    if fast_verdict(ready) is True:
        return []
    found: dict[tuple[str, str], str] = {}
    for error in _validator().iter_errors(ready):
        for path, message, fix in _explained(error, ready):
            found.setdefault((path, message), fix)
    return [(path, message, fix) for (path, message), fix in sorted(found.items())]


def schema_problems(document: Any, file: str, school_id: str | None = None) -> list:
    """The same, as the loader's ContractProblem (file, path, message, fix)."""
    from contracts.loader import ContractProblem  # the loader imports this module lazily too

    return [ContractProblem(file, p, m, f, school_id) for p, m, f in schema_errors(document)]
