"""What a data officer audits, per contract, as JSON in published/ (names, digests, counts; no values)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from contracts.loader import ContractSet
from privacy.atomic import atomic_write_text
from privacy.zones import Home
from transforms.intake import read_state
from transforms.release import TABLE_PURPOSES, Release


def _audit_entries(home: Home, action: str) -> list[dict]:
    if not home.audit_log.exists():
        return []
    entries = []
    for line in home.audit_log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("action") == action:
            entries.append({"seq": entry["seq"], "time": entry["time"], **entry.get("object", {})})
    return entries


def contract_section(home: Home, agreement, release: Release, today: date) -> dict:
    state = read_state(home, agreement.school_id) or {}
    tables = sorted(t for t, schools in release.schools_by_table.items() if agreement.school_id in schools)
    return {
        "school_id": agreement.school_id,
        "contract_id": agreement.contract_id,
        "version": agreement.version,
        "status": agreement.status,
        "start": agreement.start.isoformat(),
        "end": agreement.end.isoformat(),
        "days_to_expiry": (agreement.end - today).days,
        "purposes": list(agreement.purposes),
        "min_cell_size": agreement.min_cell_size,
        "retention": {
            ds: {"landing_days": t.landing_days, "staging_days": t.staging_days}
            for ds, t in sorted(agreement.datasets.items())
        },
        "files": state.get("files", []),
        "quarantined": state.get("quarantined", []),
        "staged_rows": state.get("staged_rows", {}),
        "pii_findings": state.get("pii_findings", {}),
        "recoded_categories": state.get("recoded", {}),
        "tables_using_data": [
            {"table": t, "purpose": TABLE_PURPOSES.get(t, "learning_gains")} for t in tables
        ],
        "deletions": [
            d for d in _audit_entries(home, "deleted") if d.get("school_id") == agreement.school_id
        ],
    }


def compliance_summary(
    home: Home, contracts: ContractSet, release: Release, protection: dict, today: date | None = None
) -> dict:
    today = today or date.today()
    sections = [
        contract_section(home, a, release, today)
        for a in sorted(contracts.agreements, key=lambda a: a.school_id)
    ]
    quarantined_elsewhere = []
    known = set(contracts.schools)
    if home.quarantine.is_dir():
        for folder in sorted(p for p in home.quarantine.iterdir() if p.is_dir() and p.name not in known):
            for reason_file in sorted(folder.glob("*.reason.json")):
                quarantined_elsewhere.append(json.loads(reason_file.read_text()))
    return {
        "as_of": today.isoformat(),
        "summary": {
            "contracts_active": sum(
                1 for s in sections if s["status"] == "active" and s["days_to_expiry"] >= 0
            ),
            "contracts_expiring_90_days": sum(1 for s in sections if 0 <= s["days_to_expiry"] <= 90),
            "contracts_expired": sum(1 for s in sections if s["days_to_expiry"] < 0),
            "contracts_rejected": len({p.file for p in contracts.problems}),
            "schools_with_failures": sorted(
                {
                    s["school_id"]
                    for s in sections
                    if s["quarantined"] or any(f.get("status") == "failed" for f in s["files"])
                }
            ),
        },
        "contract_problems": [p.__dict__ for p in contracts.problems],
        "contracts": sections,
        "quarantined_without_contract": quarantined_elsewhere,
        "disclosure_control": protection,
    }


def write_compliance(home: Home, summary: dict) -> Path:
    path = home.published / "compliance_report.json"
    atomic_write_text(path, json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", mode=0o644)
    return path
