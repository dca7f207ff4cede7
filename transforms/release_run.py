"""One consortium release end to end: inputs → tables → disclosure control → published/ + compliance.

Skips all work when nothing it was computed from has changed (the same inputs give the same bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import polars as pl

from contracts.loader import ContractSet
from privacy.audit_log import AuditLog
from privacy.retention import retention_marker
from privacy.suppression import DisclosureRules, audit, protect, strictest_rules
from privacy.zones import Home
from transforms.compliance import compliance_summary, write_compliance
from transforms.disclosure_specs import (
    DERIVED_FROM,
    hide_differentials_of_hidden_arms,
    prepared,
    protection_summary,
)
from transforms.impact import impact_tables
from transforms.intake import read_state
from transforms.publication import release_fingerprint
from transforms.release import build_tables, publish
from transforms.validation import failed_expectations

RELEASE_FORMAT_VERSION = "1"


class ReleaseRefused(RuntimeError):
    """Disclosure control could not protect the release; nothing was published."""


@dataclass
class ReleaseOutcome:
    release_id: str
    unchanged: bool
    table_rows: dict[str, int] = field(default_factory=dict)
    cells_suppressed: int = 0
    audit_ok: bool = True


def published_audit(home: Home, contracts: ContractSet, rules: DisclosureRules | None = None):
    """The attacker's audit re-run on what is actually in published/ (the files, not memory)."""
    manifest = json.loads((home.published / "manifest.json").read_text())
    tables = {
        name: pl.read_parquet(home.published / entry["parquet"]) for name, entry in manifest["tables"].items()
    }
    tables, specs = prepared(tables)
    rules = strictest_rules(rules or DisclosureRules(), [a.min_cell_size for a in contracts.agreements])
    return audit(tables, specs, rules)


def staged_schools(home: Home, contracts: ContractSet) -> list[str]:
    """Schools with a valid contract whose last intake staged a roster that met its expectations
    (a school whose current staging failed its contract's suites is left out; the others go on)."""
    schools = []
    for school_id in contracts.schools:
        state = read_state(home, school_id)
        if (
            state
            and state.get("staged_rows", {}).get("students")
            and not failed_expectations(home, school_id)
        ):
            schools.append(school_id)
    return schools


def release_inputs(home: Home, contracts: ContractSet, schools: list[str]) -> dict[str, str]:
    inputs = {"format": RELEASE_FORMAT_VERSION}
    for a in contracts.agreements:
        inputs[f"contract:{a.label}"] = a.digest
    for school_id in schools:
        inputs[f"school:{school_id}"] = read_state(home, school_id)["fingerprint"]
    # Retention that deleted staging rows or a school changes the release, and the manifest says so.
    marker = retention_marker(home)
    if marker:
        inputs["retention"] = marker
    return inputs


def run_release(
    home: Home, contracts: ContractSet, actor: str = "impact", rules: DisclosureRules | None = None
) -> ReleaseOutcome:
    schools = staged_schools(home, contracts)
    if not schools:  # keep the previous release rather than publish an empty one
        raise ReleaseRefused("no school has staged data; see the per-school failures and quarantine/")
    inputs = release_inputs(home, contracts, schools)
    release_id = release_fingerprint(inputs)
    manifest_path = home.published / "manifest.json"
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text())
        if previous.get("release") == release_id:
            return ReleaseOutcome(
                release_id, unchanged=True, table_rows={k: v["rows"] for k, v in previous["tables"].items()}
            )

    rules = strictest_rules(rules or DisclosureRules(), [a.min_cell_size for a in contracts.agreements])
    release = build_tables(home, contracts, schools, impact_tables=impact_tables)
    tables, specs = prepared(release.tables)
    protection = protect(tables, specs, rules)
    if not protection.audit.passed:  # never publish a pattern the attacker's audit can break
        raise ReleaseRefused(protection.audit.summary())
    release.tables = hide_differentials_of_hidden_arms(protection.tables)
    for name, source in DERIVED_FROM.items():
        if name in release.tables:
            release.schools_by_table[name] = release.schools_by_table.get(source, [])
    summary = protection_summary(protection, rules)
    publish(home, contracts, release, summary, inputs)
    write_compliance(home, compliance_summary(home, contracts, release, summary))
    outcome = ReleaseOutcome(
        release_id,
        unchanged=False,
        table_rows={k: v.height for k, v in release.tables.items()},
        cells_suppressed=summary.get("cells_suppressed", 0),
        audit_ok=summary.get("audit_ok", True),
    )
    AuditLog.for_home(home.root, actor=actor).append(
        "published",
        tables=sorted(release.tables),
        digest=release_id,
        cells=outcome.cells_suppressed,
        ok=outcome.audit_ok,
    )
    return outcome
