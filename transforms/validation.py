"""Run a school's contract-derived expectation suites over its staging, and keep the outcome.

The outcome (`staging/_state/<school>.expectations.json`, restricted) is what the blocking Dagster
check reports, what the release reads to leave a failing school out, and what the compliance
report shows. It holds expectation names, columns and counts, never a value. It is tied to the
fingerprint of the staging it checked, so a later intake makes an old verdict stale, not binding.
"""

from __future__ import annotations

import json
from pathlib import Path

from contracts.expectations import ValidationSummary, run_suite, staging_suites
from contracts.loader import ContractSet
from contracts.model import Agreement
from privacy.atomic import atomic_write_text
from privacy.encryption import WrongMasterKey
from privacy.staging_store import read_staging_frame
from privacy.zones import Home
from transforms.intake import read_state

REPORT_VERSION = "1"
UNREADABLE = "staging_file_readable"  # the verdict on a staging file that could not be read at all


def expectations_path(home: Home, school_id: str) -> Path:
    return home.state / f"{school_id}.expectations.json"


def agreement_for_staging(home: Home, contracts: ContractSet, school_id: str) -> Agreement | None:
    """The agreement the school's staging was built under (its intake state names it)."""
    agreements = contracts.for_school(school_id)
    built_under = (read_state(home, school_id) or {}).get("contract")
    return next((a for a in agreements if a.label == built_under), agreements[0] if agreements else None)


def _unreadable(suite: str, dataset: str, exc: Exception) -> ValidationSummary:
    # The exception's class only: a decoder's message could quote bytes of the file.
    result = {
        "expectation": UNREADABLE,
        "column": None,
        "success": False,
        "unexpected_count": None,
        "error": f"staging file unreadable ({type(exc).__name__})",
    }
    return ValidationSummary(suite=suite, dataset=dataset, success=False, rows=0, results=[result])


def validate_school(home: Home, agreement: Agreement, school_id: str) -> dict:
    """Every staged dataset of `school_id` against its suite; the JSON-able report (counts only)."""
    state = read_state(home, school_id) or {}
    staged = state.get("staged_rows", {})
    summaries: dict[str, dict] = {}
    for dataset, spec in staging_suites(agreement).items():
        path = home.staging_file(dataset, school_id)
        if dataset not in staged and not path.exists():
            continue  # not sent, or not staged (the intake report says why)
        try:
            frame = read_staging_frame(path, school_id)
        except WrongMasterKey:
            raise  # the operator's key, not the school's data: no verdict may hold the school out
        except Exception as exc:  # corrupt, truncated or missing: a failed check, not a crash
            summaries[dataset] = _unreadable(spec.name, dataset, exc).as_dict()
            continue
        summaries[dataset] = run_suite(frame, spec).as_dict()
    failed = sorted(ds for ds, s in summaries.items() if not s["success"])
    return {
        "version": REPORT_VERSION,
        "school_id": school_id,
        "contract": agreement.label,
        "fingerprint": state.get("fingerprint", ""),
        "passed": not failed,
        "datasets_checked": sorted(summaries),
        "datasets_failed": failed,
        "expectations_evaluated": sum(s["evaluated"] for s in summaries.values()),
        "expectations_failed": sum(s["failed_count"] for s in summaries.values()),
        "suites": summaries,
    }


def write_expectations(home: Home, report: dict) -> Path:
    path = expectations_path(home, report["school_id"])
    home.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(path, json.dumps(report, indent=2, sort_keys=True) + "\n", mode=0o600)
    return path


def read_expectations(home: Home, school_id: str) -> dict | None:
    path = expectations_path(home, school_id)
    return json.loads(path.read_text()) if path.exists() else None


def is_current(home: Home, report: dict | None) -> bool:
    """The report checked the staging the school has now (same intake fingerprint)."""
    if not report:
        return False
    state = read_state(home, report["school_id"]) or {}
    return bool(report.get("fingerprint")) and report["fingerprint"] == state.get("fingerprint")


def unreadable_staging(home: Home, school_id: str) -> list[str]:
    """Datasets whose staging the school's current verdict could not read (damaged or truncated
    files): re-staging from landing repairs them, a re-check alone never does."""
    report = read_expectations(home, school_id)
    if not is_current(home, report):
        return []
    return sorted(
        dataset
        for dataset, suite in report.get("suites", {}).items()
        if any(r.get("expectation") == UNREADABLE for r in suite.get("results", []))
    )


def failed_expectations(home: Home, school_id: str) -> bool:
    """True when the school's current staging failed its suites (so it must stay out of releases)."""
    report = read_expectations(home, school_id)
    return is_current(home, report) and not report["passed"]
