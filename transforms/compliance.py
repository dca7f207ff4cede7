"""What a data officer audits, per contract, as JSON in published/ (names, digests, counts; no values).

Per contract: status and dates, files received (name, sha256, rows, received at), expectation
results, columns dropped as undeclared, PII findings by type, published tables using the school's
data and their purpose, retention with the oldest data held and the next deletion due, deletions
done. A consortium summary on top. Everything here comes from bookkeeping that already holds only
names, digests and counts (intake state, expectation reports, the audit log); the one data read is
the `week` column of staging, to date the oldest rows held.
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from contracts.loader import ContractSet
from contracts.model import Agreement
from privacy import optouts
from privacy.atomic import atomic_write_text
from privacy.files import recorded_export_date
from privacy.retention import WEEK_DATASETS, file_date, iso_week_end
from privacy.staging_store import read_staging_frame
from privacy.zones import Home
from transforms.catalogue import attributed_catalogue, staged_catalogues
from transforms.intake import public_record, read_state, state_record
from transforms.release import TABLE_PURPOSES, Release
from transforms.usage_summary import school_usage
from transforms.validation import is_current, read_expectations

EXPIRING_WITHIN_DAYS = 90
# Which staging dataset each contract dataset becomes (the rest keep their name).
STAGED_AS = {"roster": "students"}
_NOT_STAGED = ("superseded", "failed")


def _audit_entries(home: Home, action: str) -> list[dict]:
    if not home.audit_log.exists():
        return []
    info = home.audit_log.stat()
    cached = _entries_by_action(str(home.audit_log), info.st_size, info.st_mtime_ns).get(action, [])
    return copy.deepcopy(cached)  # the cache outlives a caller's edits


@lru_cache(maxsize=2)
def _entries_by_action(path: str, size: int, mtime_ns: int) -> dict[str, list[dict]]:
    """The log parsed once per version of the file (a report asks it four questions per contract:
    at 100 contracts that was 400 parses of a log that grows with every run)."""
    by_action: dict[str, list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("object", {}), dict):
            continue  # not an entry (`impact audit verify` names such lines)
        row = {"seq": entry.get("seq"), "time": entry.get("time"), **entry.get("object", {})}
        by_action.setdefault(entry.get("action"), []).append(row)
    return by_action


# ---- status and dates ------------------------------------------------------------------------


def contract_standing(agreement: Agreement, today: date) -> str:
    """active | expiring | expired | not_started | <status> (withdrawn, retired, draft...)."""
    if agreement.status != "active":
        return agreement.status
    if today < agreement.start:
        return "not_started"
    if today > agreement.end:
        return "expired"
    return "expiring" if (agreement.end - today).days <= EXPIRING_WITHIN_DAYS else "active"


# ---- files received --------------------------------------------------------------------------


def _received_times(home: Home, school_id: str) -> dict[str, str]:
    """sha256 → when the file was first received (the audit log's `received` entry)."""
    times: dict[str, str] = {}
    for entry in _audit_entries(home, "received"):
        if entry.get("school_id") == school_id and entry.get("sha256"):
            times.setdefault(entry["sha256"], entry["time"])
    return times


def files_received(home: Home, school_id: str, state: dict) -> list[dict]:
    """The school's files as its state records them: names as digests (transforms.intake)."""
    received = _received_times(home, school_id)
    return [
        state_record({**f, "received_at": received.get(f.get("sha256", ""))}) for f in state.get("files", [])
    ]


def undeclared_columns(files: list[dict]) -> dict[str, int]:
    """Per dataset, how many columns were dropped because the contract does not declare them.
    A count, never the names: a header is the school's text and may name a student."""
    dropped: dict[str, int] = {}
    for f in files:
        count = public_record(f).get("undeclared_columns_dropped") or 0
        if count and f.get("status") not in _NOT_STAGED:
            dropped[f["dataset"]] = max(dropped.get(f["dataset"], 0), count)
    return dict(sorted(dropped.items()))


def undeclared_columns_text(counts: dict[str, int]) -> dict[str, list[str]]:
    """The same counts as sentences, in the shape the compliance page renders (dataset: lines)."""
    return {
        ds: [f"{n} undeclared column{'s' if n != 1 else ''} dropped (names are not reported)"]
        for ds, n in counts.items()
    }


# ---- expectations ----------------------------------------------------------------------------


def expectation_results(home: Home, school_id: str) -> dict:
    """The school's last expectation report, condensed: passed | failed | stale | not_run."""
    report = read_expectations(home, school_id)
    if report is None:
        return {"status": "not_run", "suites": [], "failures": []}
    status = ("passed" if report["passed"] else "failed") if is_current(home, report) else "stale"
    suites, failures = [], []
    for dataset, suite in sorted(report.get("suites", {}).items()):
        suites.append({k: suite.get(k) for k in ("dataset", "rows", "success", "evaluated", "failed_count")})
        for r in suite.get("results", []):
            if not r["success"]:
                failures.append({"dataset": dataset, **r})
    return {
        "status": status,
        "contract": report.get("contract"),
        "expectations_evaluated": report.get("expectations_evaluated", 0),
        "expectations_failed": report.get("expectations_failed", 0),
        "datasets_failed": report.get("datasets_failed", []),
        "suites": suites,
        "failures": failures,
    }


# ---- retention -------------------------------------------------------------------------------


def deletion_due(held_since: date, days: int) -> date:
    """The first day data held since `held_since` may no longer be held (as privacy.retention.expired)."""
    return held_since + timedelta(days=days + 1)


def _oldest_landing(home: Home, school_id: str, dataset: str) -> date | None:
    folder = home.landing / school_id / dataset
    if not folder.is_dir():
        return None
    dates = [file_date(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return min(dates) if dates else None


def _staged_export_date(state: dict, dataset: str) -> date | None:
    dates = [
        recorded_export_date(f)
        for f in state.get("files", [])
        if f.get("dataset") == dataset and f.get("status") not in _NOT_STAGED
    ]
    return max((d for d in dates if d), default=None)


def _oldest_week_end(home: Home, school_id: str, staged: str) -> date | None:
    path = home.staging_file(staged, school_id)
    if staged not in WEEK_DATASETS or not path.exists():
        return None
    try:
        # usage: the release's per-student reductions hold its weeks (no re-read of every session)
        summary = school_usage(home, school_id) if staged == "usage" else None
        frame = summary.by_week if summary is not None else read_staging_frame(path, school_id)
        weeks = frame.get_column("week").drop_nulls().unique().to_list()
    except Exception:  # unreadable staging is reported by the expectations; date it by its export
        return None
    ends = [end for w in weeks if (end := iso_week_end(w))]
    return min(ends) if ends else None


def _oldest_staged(home: Home, school_id: str, dataset: str, state: dict) -> date | None:
    staged = STAGED_AS.get(dataset, dataset)
    if not home.staging_file(staged, school_id).exists():
        return None
    return _oldest_week_end(home, school_id, staged) or _staged_export_date(state, dataset)


def retention_schedule(home: Home, agreement: Agreement, state: dict, today: date) -> dict:
    """Per dataset: the contract's days, the oldest data held in landing and staging, and when each
    is due for deletion; plus the next deletion due for the whole contract."""
    rows, dues = {}, []
    for dataset, terms in sorted(agreement.datasets.items()):
        entry: dict = {"landing_days": terms.landing_days, "staging_days": terms.staging_days}
        for zone, oldest, days in (
            ("landing", _oldest_landing(home, agreement.school_id, dataset), terms.landing_days),
            ("staging", _oldest_staged(home, agreement.school_id, dataset, state), terms.staging_days),
        ):
            due = deletion_due(oldest, days) if oldest and days is not None else None
            entry[f"oldest_{zone}"] = oldest.isoformat() if oldest else None
            entry[f"{zone}_deletion_due"] = due.isoformat() if due else None
            if due:
                dues.append(due)
        rows[dataset] = entry
    next_due = min(dues) if dues else None
    return {
        "datasets": rows,
        "next_deletion_due": next_due.isoformat() if next_due else None,
        "overdue": bool(next_due and next_due <= today),
    }


# ---- the report ------------------------------------------------------------------------------


def _released_schools(release: Release) -> set[str]:
    return {s for schools in release.schools_by_table.values() for s in schools}


def contract_section(home: Home, agreement, release: Release, today: date) -> dict:
    state = read_state(home, agreement.school_id) or {}
    tables = sorted(t for t, schools in release.schools_by_table.items() if agreement.school_id in schools)
    files = files_received(home, agreement.school_id, state)
    expectations = expectation_results(home, agreement.school_id)
    in_release = agreement.school_id in _released_schools(release)
    return {
        "school_id": agreement.school_id,
        "contract_id": agreement.contract_id,
        "version": agreement.version,
        "status": agreement.status,
        "standing": contract_standing(agreement, today),
        "start": agreement.start.isoformat(),
        "end": agreement.end.isoformat(),
        "days_to_expiry": (agreement.end - today).days,
        "purposes": list(agreement.purposes),
        "min_cell_size": agreement.min_cell_size,
        "retention": retention_schedule(home, agreement, state, today),
        "files": files,
        "quarantined": [state_record(q) for q in state.get("quarantined", [])],
        "staged_rows": state.get("staged_rows", {}),
        "undeclared_columns_dropped": undeclared_columns(files),
        "columns_dropped_undeclared": undeclared_columns_text(undeclared_columns(files)),
        "expectations": expectations,
        "in_release": in_release,
        "left_out_because": (
            "its staging failed the contract's expectations" if expectations["status"] == "failed" else None
        ),
        "pii_findings": state.get("pii_findings", {}),
        "recoded_categories": state.get("recoded", {}),
        "k_anonymity": state.get("k_anonymity", {}),
        "tables_using_data": [
            {"table": t, "purpose": TABLE_PURPOSES.get(t, "learning_gains")} for t in tables
        ],
        "deletions": [
            d for d in _audit_entries(home, "deleted") if d.get("school_id") == agreement.school_id
        ],
        "opt_outs": optouts.compliance_rows(
            state.get("opt_outs", []),
            [d for d in _audit_entries(home, "opt_out_applied") if d.get("school_id") == agreement.school_id],
            _audit_entries(home, "published"),
            agreement.min_cell_size,
        ),
    }


def _has_failure(section: dict) -> bool:
    return bool(
        section["quarantined"]
        or any(f.get("status") == "failed" for f in section["files"])
        or section["expectations"]["status"] == "failed"
    )


def consortium_summary(sections: list[dict], contracts: ContractSet) -> dict:
    standings = [s["standing"] for s in sections]
    dues = [s["retention"]["next_deletion_due"] for s in sections if s["retention"]["next_deletion_due"]]
    return {
        "contracts_active": sum(1 for s in standings if s in ("active", "expiring")),
        "contracts_expiring_90_days": standings.count("expiring"),
        "contracts_expired": standings.count("expired"),
        "contracts_not_started": standings.count("not_started"),
        "contracts_withdrawn": sum(
            1 for s in standings if s not in ("active", "expiring", "expired", "not_started")
        ),
        "contracts_rejected": len({p.file for p in contracts.problems}),
        "schools_with_failures": sorted({s["school_id"] for s in sections if _has_failure(s)}),
        "schools_failing_expectations": sorted(
            s["school_id"] for s in sections if s["expectations"]["status"] == "failed"
        ),
        "schools_left_out_of_release": sorted(s["school_id"] for s in sections if s["left_out_because"]),
        "next_deletion_due": min(dues) if dues else None,
        "schools_with_overdue_deletions": sorted(
            s["school_id"] for s in sections if s["retention"]["overdue"]
        ),
    }


def compliance_summary(
    home: Home, contracts: ContractSet, release: Release, protection: dict, today: date | None = None
) -> dict:
    today = today or date.today()
    sections = [
        contract_section(home, a, release, today)
        for a in sorted(contracts.agreements, key=lambda a: (a.school_id, a.start, a.version))
    ]
    quarantined_elsewhere = []
    known = {*contracts.schools, *contracts.rejected_schools}
    if home.quarantine.is_dir():
        for folder in sorted(p for p in home.quarantine.iterdir() if p.is_dir() and p.name not in known):
            for reason_file in sorted(folder.glob("*.reason.json")):
                record = {"school_id": folder.name, **json.loads(reason_file.read_text())}
                quarantined_elsewhere.append(public_record(state_record(record), known))
    _, conflicts = attributed_catalogue(staged_catalogues(home, contracts.schools))
    for section in sections:
        section["resources_contested"] = [
            c for c in conflicts if section["school_id"] in c["schools"]
        ]  # ids are checked labels (transforms.row_checks): safe to name
    return {
        "as_of": today.isoformat(),
        "summary": consortium_summary(sections, contracts),
        "resource_conflicts": conflicts,
        "contract_problems": [p.__dict__ for p in contracts.problems],
        "contracts": sections,
        "quarantined_without_contract": quarantined_elsewhere,
        "disclosure_control": protection,
    }


def write_compliance(home: Home, summary: dict) -> Path:
    path = home.published / "compliance_report.json"
    atomic_write_text(path, json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", mode=0o644)
    return path
