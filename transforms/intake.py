"""A school's landing folder → accepted exports, quarantined files, and staging Parquet.

The one function a per-school Dagster asset calls. Plain Python: a test calls it directly.
Nothing here logs a value: reports hold file names, digests, counts and reasons only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from contracts.loader import ContractSet
from contracts.model import DATASETS
from privacy.atomic import atomic_write_text, is_temporary_name
from privacy.audit_log import AuditLog
from privacy.keys import PseudonymKey
from privacy.staging_store import write_staging_frame
from privacy.zones import Home
from transforms.readers import export_date
from transforms.staging import STAGING_DATASETS, FileReport, file_digest, stage_school

STAGING_FORMAT_VERSION = "2"  # bump when staging's shape changes: every school re-stages


@dataclass(frozen=True)
class Landed:
    school_id: str
    dataset: str
    path: Path
    exported_on: date


@dataclass
class IntakeResult:
    school_id: str
    fingerprint: str
    skipped: bool = False
    files: list[dict] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    staged_rows: dict[str, int] = field(default_factory=dict)
    pii_findings: dict[str, int] = field(default_factory=dict)
    recoded: dict[str, list[str]] = field(default_factory=dict)
    k_anonymity: dict = field(default_factory=dict)
    opt_outs: list[dict] = field(default_factory=list)  # counts per (scope, date requested); no ids
    contract: str = ""


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def discover_exports(home: Home, school_id: str) -> tuple[list[Landed], list[tuple[Path, str]]]:
    """Files under landing/<school>/<dataset>/, and the ones refused before reading (with why)."""
    root = home.landing / school_id
    landed, refused = [], []
    if not root.is_dir():
        return landed, refused
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        if is_temporary_name(path) or path.name.startswith("."):
            continue  # a sender's upload still in progress
        relative = path.relative_to(root)
        if path.is_symlink() and not _inside(path, home.landing):
            refused.append((path, "symbolic link pointing outside the landing folder"))
        elif len(relative.parts) != 2 or relative.parts[0] not in DATASETS:
            refused.append((path, f"not under landing/{school_id}/<dataset>/ with a known dataset name"))
        else:
            landed.append(Landed(school_id, relative.parts[0], path, export_date(path)))
    return landed, refused


def quarantine(home: Home, path: Path, school_id: str, reason: str, audit: AuditLog | None) -> dict:
    """Move a file into quarantine/<school>/ with a `.reason.json` beside it; nothing of it is loaded."""
    folder = home.quarantine / school_id
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = file_digest(path) if path.is_file() and not path.is_symlink() else ""
    target = folder / path.name
    if path.is_symlink():
        path.unlink()  # never follow it: record the refusal only
    else:
        shutil.move(str(path), target)
        target.chmod(0o600)
    record = {
        "file": path.name,
        "school_id": school_id,
        "dataset": path.parent.name,
        "sha256": digest,
        "reason": reason,
    }
    atomic_write_text(
        folder / f"{path.name}.reason.json", json.dumps(record, indent=2, sort_keys=True), mode=0o600
    )
    if audit:
        audit.append(
            "quarantined",
            school_id=school_id,
            dataset=path.parent.name,
            file=path.name,
            sha256=digest,
            reason=reason[:200],
        )
    return record


def school_fingerprint(home: Home, contracts: ContractSet, school_id: str, key: PseudonymKey) -> str:
    parts = [STAGING_FORMAT_VERSION, key.version, key.fingerprint]
    parts += sorted(f"{a.label}:{a.digest}" for a in contracts.for_school(school_id))
    landed, refused = discover_exports(home, school_id)
    parts += sorted(
        f"{x.dataset}/{x.path.name}:{file_digest(x.path)}" for x in landed if not x.path.is_symlink()
    )
    parts += sorted(f"refused:{p.name}" for p, _ in refused)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def state_path(home: Home, school_id: str) -> Path:
    return home.state / f"{school_id}.json"


def read_state(home: Home, school_id: str) -> dict | None:
    path = state_path(home, school_id)
    return json.loads(path.read_text()) if path.exists() else None


def write_staging(home: Home, school_id: str, frames: dict) -> dict[str, int]:
    """Write each staging frame atomically (owner-only); remove datasets the school no longer has."""
    rows = {}
    for dataset in STAGING_DATASETS:
        target = home.staging_file(dataset, school_id)
        frame = frames.get(dataset)
        if frame is None:
            if target.exists():
                target.unlink()
            continue
        write_staging_frame(target, frame, school_id)
        rows[dataset] = frame.height
    return rows


def intake_school(
    home: Home,
    contracts: ContractSet,
    school_id: str,
    key: PseudonymKey,
    scrub_texts,
    audit: AuditLog | None = None,
    max_bytes: int | None = None,
    force: bool = False,
) -> IntakeResult:
    """Quarantine what no contract covers, stage the latest covered export of each dataset."""
    fingerprint = school_fingerprint(home, contracts, school_id, key)
    previous = read_state(home, school_id)
    if not force and previous and previous.get("fingerprint") == fingerprint:
        return IntakeResult(
            school_id,
            fingerprint,
            skipped=True,
            **{
                k: previous[k]
                for k in (
                    "files", "quarantined", "staged_rows", "pii_findings", "recoded", "k_anonymity", "contract"
                )
            },
        )

    result = IntakeResult(school_id, fingerprint)
    landed, refused = discover_exports(home, school_id)
    for path, reason in refused:
        result.quarantined.append(quarantine(home, path, school_id, reason, audit))

    accepted: dict[str, Landed] = {}
    agreement = None
    for item in landed:
        covering, reason = contracts.covering(school_id, item.dataset, item.exported_on)
        if covering is None:
            result.quarantined.append(quarantine(home, item.path, school_id, reason, audit))
            continue
        agreement = covering
        current = accepted.get(item.dataset)
        if current is None or (item.exported_on, item.path.name) > (current.exported_on, current.path.name):
            if current is not None:
                result.files.append(
                    FileReport(
                        school_id,
                        item.dataset,
                        current.path.name,
                        file_digest(current.path),
                        status="superseded",
                        message=f"replaced by {item.path.name}",
                    ).as_dict()
                )
            accepted[item.dataset] = item
        else:
            result.files.append(
                FileReport(
                    school_id,
                    item.dataset,
                    item.path.name,
                    file_digest(item.path),
                    status="superseded",
                    message=f"older than {current.path.name}",
                ).as_dict()
            )

    if agreement is None:
        write_staging(home, school_id, {})
        _save_state(home, result, school_fingerprint(home, contracts, school_id, key))
        return result
    result.contract = agreement.label
    staged = stage_school(
        school_id,
        agreement,
        {ds: x.path for ds, x in accepted.items()},
        key,
        scrub_texts,
        max_bytes=max_bytes,
    )
    for report in staged.files:
        if audit:
            audit.append(
                "received",
                school_id=school_id,
                dataset=report.dataset,
                file=report.file,
                sha256=report.sha256,
                rows=report.rows_in,
            )
        if report.status == "failed":
            result.quarantined.append(
                quarantine(home, accepted[report.dataset].path, school_id, report.message, audit)
            )
        result.files.append(report.as_dict())
    result.staged_rows = write_staging(home, school_id, staged.frames)
    result.pii_findings = dict(staged.pii_findings)
    result.recoded = staged.recoded
    result.k_anonymity = staged.k_anonymity
    result.opt_outs = staged.opt_outs
    if audit:
        for applied in staged.opt_outs:  # counts only: who opted out stays in the restricted zone
            audit.append(
                "opt_out_applied",
                school_id=school_id,
                purpose=applied["scope"],
                since=applied["requested_on"],
                count=applied["students"],
            )
        for dataset, rows in sorted(result.staged_rows.items()):
            audit.append("staged", school_id=school_id, dataset=dataset, rows=rows, key_version=key.version)
    # Fingerprint what is left in landing after quarantine moved files out, so a re-run skips.
    _save_state(home, result, school_fingerprint(home, contracts, school_id, key))
    return result


def _save_state(home: Home, result: IntakeResult, fingerprint: str) -> None:
    result.fingerprint = fingerprint
    home.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = {k: v for k, v in result.__dict__.items() if k != "skipped"}
    atomic_write_text(
        state_path(home, result.school_id),
        json.dumps(state, indent=2, sort_keys=True, default=str),
        mode=0o600,
    )


def discover_schools(home: Home) -> dict[str, str]:
    """School folders in landing/ with at least one file, each with a digest of its listing
    (names, sizes, modification times): a change means new or replaced exports."""
    schools = {}
    if not home.landing.is_dir():
        return schools
    for folder in sorted(p for p in home.landing.iterdir() if p.is_dir() and not p.name.startswith(".")):
        entries = sorted(
            f"{p.relative_to(folder)}:{p.lstat().st_size}:{p.lstat().st_mtime_ns}"
            for p in folder.rglob("*")
            if p.is_file() or p.is_symlink()
        )
        if entries:
            schools[folder.name] = hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]
    return schools
