"""A school's landing folder → accepted exports, quarantined files, and staging Parquet.

The one function a per-school Dagster asset calls. Plain Python: a test calls it directly.
Nothing here logs a value: reports hold file names, digests, counts and reasons only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from contracts.expectations import STAGING_SOURCES
from contracts.loader import ContractSet
from contracts.model import DATASETS
from privacy import optouts
from privacy.atomic import atomic_write_text, is_temporary_name
from privacy.audit_log import MAX_VALUE_CHARS, AuditLog, UnsafeAuditObject, validate_object
from privacy.files import recorded_export_date
from privacy.keys import PseudonymKey
from privacy.staging_store import forget_derived, read_staging_frame, write_staging_frame
from privacy.zones import Home
from transforms.crashpoints import crash_point
from transforms.readers import DEFAULT_MAX_BYTES, describe_rejects, export_date
from transforms.staging import STAGING_DATASETS, FileReport, SchoolStaging, file_digest, stage_school

STAGING_FORMAT_VERSION = "4"  # bump when staging's shape or intake's checks change: every school re-stages


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


UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters (newline, tab...) and backslash


def _listing(root: Path) -> Iterator[Path]:
    """Every entry under `root`, without following any symbolic link (a linked folder is listed,
    never entered), in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        folder = Path(dirpath)
        dirnames.sort()
        for name in sorted(filenames):
            yield folder / name
        for name in dirnames:
            if (folder / name).is_symlink():
                yield folder / name


def _refusal(path: Path, root: Path, school_id: str, max_bytes: int) -> str | None:
    """Why a landed entry is refused before anything reads it, or None when it may be read."""
    relative = path.relative_to(root)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return "symbolic link: links are never followed (send the file itself)"
    if UNSAFE_NAME.search(path.name):
        return "file name contains control characters or a backslash"
    if len(relative.parts) != 2 or relative.parts[0] not in DATASETS:
        return f"not under landing/{school_id}/<dataset>/ with a known dataset name"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > max_bytes:
        return f"file is {info.st_size} bytes, over the {max_bytes}-byte limit"
    return None


def discover_exports(
    home: Home, school_id: str, max_bytes: int | None = None
) -> tuple[list[Landed], list[tuple[Path, str]]]:
    """Files under landing/<school>/<dataset>/, and the ones refused before reading (with why).

    Nothing outside landing/<school>/ is ever opened: links are refused, not followed, and a file
    over the size limit is refused from its size alone (a sparse multi-GB file costs nothing)."""
    root = home.landing / school_id
    limit = max_bytes or DEFAULT_MAX_BYTES
    if root.is_symlink():
        return [], [(root, "the school's landing folder is a symbolic link: links are never followed")]
    if not root.is_dir():
        return [], []
    landed, refused = [], []
    for path in _listing(root):
        if is_temporary_name(path) or path.name.startswith("."):
            continue  # a sender's upload still in progress
        reason = _refusal(path, root, school_id, limit)
        if reason:
            refused.append((path, reason))
        else:
            landed.append(Landed(school_id, path.parent.name, path, export_date(path)))
    return landed, refused


def _safe_name(name: str) -> str:
    return UNSAFE_NAME.sub("_", name) or "_"


def _audit_text(value: str, fallback: str) -> str:
    """`value` when the audit log accepts it (no e-mail or ID look-alike, short), else `fallback`."""
    try:
        validate_object({"note": value[:MAX_VALUE_CHARS]})
        return value[:MAX_VALUE_CHARS]
    except UnsafeAuditObject:
        return fallback


DIGEST_NAME = re.compile(r"^(file|folder|school)-[0-9a-f]{12}$")


def name_digest(name: str, kind: str = "file") -> str:
    """`file-1a2b3c4d5e6f`: how a name a sender chose is shown anywhere outside landing/quarantine
    (a name already in that form is kept, so a public record can be made public again)."""
    if DIGEST_NAME.match(name):
        return name
    return f"{kind}-" + hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:12]


def public_file_name(name: str) -> str:
    """A sender's file (or folder) name as the audit log, state files and reports hold it: a digest.
    Whether a name is personal cannot be told from its shape (`Jane_Doe_2011-03-04.csv`), so none
    is shown; the dataset and the export date travel beside it as their own fields."""
    return name_digest(name, "file")


def public_dataset(name: str) -> str:
    """A dataset folder's name: itself when it is a known dataset, else a digest."""
    return name if name in DATASETS else name_digest(name, "folder")


def public_school(school_id: str, known: Collection[str]) -> str:
    """A school folder's name: itself when a contract names the school, else a digest."""
    return school_id if school_id in known else name_digest(school_id, "school")


def public_text(text: str, names: Iterable[tuple[str, str]]) -> str:
    """`text` with each (name, shown) pair's name, and its control-character-free spelling,
    replaced: reasons and messages are ours, but quote the names they are about."""
    pairs = {}
    for name, shown in names:
        if name and name != shown:
            pairs[name] = shown
            pairs[_safe_name(name)] = shown
    for name in sorted(pairs, key=len, reverse=True):
        text = text.replace(name, pairs[name])
    return text


def public_record(record: dict, known_schools: Collection[str] | None = None) -> dict:
    """A file's record as it may leave landing/ and quarantine/ (state files, the compliance report):
    the file's name as a digest, and in its messages too; the dataset and school folder as
    themselves only when known; undeclared columns as a count, never by name."""
    name = record.get("file") or ""
    dataset = record.get("dataset") or ""
    school = record.get("school_id") or ""
    shown_school = school if known_schools is None else public_school(school, known_schools)
    names = [
        (name, public_file_name(name) if name else name),
        (record.get("quarantined_as") or "", public_file_name(name)),
        (dataset, public_dataset(dataset)),
        (school, shown_school),
    ]
    out = {}
    for key, value in record.items():
        if key == "quarantined_as":
            continue
        if key == "dropped_columns":
            out["undeclared_columns_dropped"] = value if isinstance(value, int) else len(value or [])
        elif key == "file":
            out[key] = public_file_name(value) if value else value
        elif key == "dataset":
            out[key] = public_dataset(value) if value else value
        elif key == "school_id":
            out[key] = shown_school
        else:
            out[key] = public_text(value, names) if isinstance(value, str) else value
    return out


def state_record(record: dict) -> dict:
    """public_record, keeping the export date the name carried (retention and reports need it)."""
    exported = recorded_export_date(record)
    if exported is not None:
        record = {**record, "exported_on": exported.isoformat()}
    return public_record(record)


def _quarantine_target(folder: Path, path: Path, digest: str) -> Path:
    """Where a refused file goes: its own name unless another file (other bytes) holds it already."""
    name = _safe_name(path.name)
    target, n = folder / name, 1
    while target.exists() and not (digest and target.is_file() and file_digest(target) == digest):
        n += 1
        target = folder / f"{n}-{name}"
    return target


def quarantine(
    home: Home,
    path: Path,
    school_id: str,
    reason: str,
    audit: AuditLog | None,
    known_schools: Collection[str] | None = None,
) -> dict:
    """Move a file into quarantine/<school>/ with a `.reason.json` beside it; nothing of it is loaded.

    The reason file (restricted, beside the file) names the file; the audit log gets digests of
    every name the sender chose (file, dataset folder, school folder unless a contract names it).
    The reason is written (atomically) before the move, and the move is a rename: a crash in
    between leaves the file in landing, and the re-run quarantines it again to the same name."""
    folder = home.quarantine / school_id
    reason = reason if reason.startswith(path.name) else f"{_safe_name(path.name)}: {reason}"
    info = path.lstat()
    readable = stat.S_ISREG(info.st_mode) and info.st_size <= DEFAULT_MAX_BYTES
    digest = file_digest(path) if readable else ""
    target = _quarantine_target(folder, path, digest)
    dataset = path.parent.name if path.parent.parent.name == school_id else ""
    record = {
        "file": path.name,
        "quarantined_as": target.name,
        "school_id": school_id,
        "dataset": dataset,
        "sha256": digest,
        "bytes": info.st_size,
        "reason": reason,
    }
    shown = public_record(record, known_schools if known_schools is not None else (school_id,))
    entry = validate_object(  # refused here, before the file moves, if the log would refuse it
        {
            "school_id": shown["school_id"],
            "dataset": shown["dataset"],
            "file": shown["file"],
            "sha256": digest,
            "reason": _audit_text(
                shown["reason"], "refused (the reason names a value; see the .reason.json file)"
            ),
        }
    )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(
        folder / f"{target.name}.reason.json", json.dumps(record, indent=2, sort_keys=True), mode=0o600
    )
    crash_point("intake.quarantine")
    if stat.S_ISLNK(info.st_mode) or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        path.unlink()  # a link or a FIFO: never followed or opened, only removed and recorded
    else:
        os.replace(path, target)  # same file system: an atomic rename
        if target.is_file():
            target.chmod(0o600)
    if audit:
        audit.append("quarantined", **entry)
    return record


def school_fingerprint(
    home: Home, contracts: ContractSet, school_id: str, key: PseudonymKey, max_bytes: int | None = None
) -> str:
    """What a school's staging is built from: contracts, key, and the landed exports by content.

    Exports count by (dataset, export date, digest), not by name, so the same bytes delivered
    again under another name change nothing and are not processed twice."""
    parts = [STAGING_FORMAT_VERSION, key.version, key.fingerprint]
    parts += sorted(f"{a.label}:{a.digest}" for a in contracts.for_school(school_id))
    landed, refused = discover_exports(home, school_id, max_bytes)
    parts += sorted({f"{x.dataset}:{x.exported_on}:{file_digest(x.path)}" for x in landed})
    parts += sorted("refused:" + json.dumps(str(p.relative_to(home.landing))) for p, _ in refused)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def state_path(home: Home, school_id: str) -> Path:
    return home.state / f"{school_id}.json"


def read_state(home: Home, school_id: str) -> dict | None:
    path = state_path(home, school_id)
    return json.loads(path.read_text()) if path.exists() else None


def write_staging(
    home: Home, school_id: str, frames: dict, keep: Collection[str] = (), staging: SchoolStaging | None = None
) -> dict[str, int]:
    """Write each staging frame atomically (owner-only); remove datasets the school no longer has,
    except those in `keep`: a dataset whose new delivery failed keeps its previous staging (with
    today's full opt-outs applied to it, and only while it is under the same pseudonym key)."""
    forget_derived(home, school_id)  # derived from the staging being replaced
    rows = {}
    for dataset in STAGING_DATASETS:
        target = home.staging_file(dataset, school_id)
        frame = frames.get(dataset)
        if frame is None:
            if target.exists() and dataset in keep:
                kept = _kept_staging(target, school_id, staging)
                if kept is not None:
                    rows[dataset] = kept
                    continue
            if target.exists():
                target.unlink()
            continue
        crash_point("intake.staging_write")
        write_staging_frame(target, frame, school_id)
        rows[dataset] = frame.height
    return rows


def _kept_staging(target: Path, school_id: str, staging: SchoolStaging | None) -> int | None:
    """Rows of a previous staging file kept as it is (None: it cannot be kept and goes)."""
    frame = read_staging_frame(target, school_id)
    if staging is None:
        return frame.height
    if "key_version" in frame.columns and set(frame["key_version"].unique()) - {staging.key_version}:
        return None  # pseudonyms under another key would not join today's
    remaining = optouts.without_students(frame, staging.leaving_all)
    if remaining.height != frame.height:
        write_staging_frame(target, remaining, school_id)
    return remaining.height


def _failed_deliveries(result: IntakeResult) -> set[str]:
    """Staging datasets whose newest delivery this run was quarantined or could not be staged."""
    datasets = {q.get("dataset") for q in result.quarantined}
    datasets |= {f["dataset"] for f in result.files if f.get("status") in ("failed", "not_linked")}
    return {staging for staging, source in STAGING_SOURCES.items() if source in datasets}


def _audit_received(audit: AuditLog | None, school_id: str, report: dict) -> None:
    """Every delivered file gets a `received` entry: staged, superseded, duplicate or failed."""
    if audit:
        audit.append(
            "received",
            school_id=school_id,
            dataset=report["dataset"],
            file=public_file_name(report["file"]),
            sha256=report["sha256"],
            rows=report.get("rows_in", 0),
            status=report["status"],
        )


def _without_duplicates(covered: list[Landed], result: IntakeResult, audit: AuditLog | None) -> list[Landed]:
    """Keep one copy of each content per dataset (the latest-named); the others are recorded
    as duplicates and never read. Which content wins is unchanged by this."""
    by_digest: dict[tuple[str, str], list[Landed]] = {}
    for item in covered:
        by_digest.setdefault((item.dataset, file_digest(item.path)), []).append(item)
    kept = []
    for (dataset, digest), copies in sorted(by_digest.items()):
        copies.sort(key=lambda x: (x.exported_on, x.path.name))
        kept.append(copies[-1])
        for copy in copies[:-1]:
            report = FileReport(
                result.school_id, dataset, copy.path.name, digest, status="duplicate",
                message=f"same content (sha256) as {public_file_name(copies[-1].path.name)} "
                f"(exported {copies[-1].exported_on}): processed once",
            ).as_dict()  # fmt: skip
            result.files.append(report)
            _audit_received(audit, result.school_id, report)
    return sorted(kept, key=lambda x: str(x.path))


def _latest_per_dataset(candidates: list[Landed]) -> tuple[dict[str, Landed], list[Landed]]:
    """The newest export of each dataset (by export date, then name) and the ones it replaces."""
    latest: dict[str, Landed] = {}
    for item in candidates:
        current = latest.get(item.dataset)
        if current is None or (item.exported_on, item.path.name) > (current.exported_on, current.path.name):
            latest[item.dataset] = item
    older = [x for x in candidates if latest[x.dataset] is not x]
    return latest, older


def _unusable(report: FileReport) -> str | None:
    """Why a read file must be quarantined: it failed, or not one of its rows could be staged."""
    if report.status == "failed":
        return report.message
    if report.rows_in and not report.rows_staged and report.status != "not_linked":
        return f"{report.file}: no row could be staged: {describe_rejects(report.rejects)}"
    return None


def _stage_usable(
    home: Home,
    contracts: ContractSet,
    candidates: list[Landed],
    key: PseudonymKey,
    scrub_texts,
    result: IntakeResult,
    audit: AuditLog | None,
    max_bytes: int | None,
    label_checker=None,
) -> tuple[SchoolStaging, dict[str, Landed], list[Landed]]:
    """Stage the newest export of each dataset; when one is unusable, quarantine it and fall back
    to the previous export of that dataset still in landing (a broken delivery loses nothing)."""
    while True:
        latest, older = _latest_per_dataset(candidates)
        agreement, _ = contracts.covering(result.school_id, *_anchor(latest))
        result.contract = agreement.label
        staged = stage_school(
            result.school_id,
            agreement,
            {ds: x.path for ds, x in latest.items()},
            key,
            scrub_texts,
            max_bytes=max_bytes,
            consortium=frozenset(contracts.schools),
            label_checker=label_checker,
        )
        unusable = {r.dataset: why for r in staged.files if (why := _unusable(r))}
        if not unusable:
            return staged, latest, older
        for report in staged.files:
            if report.dataset in unusable:
                report.status, report.message = "failed", unusable[report.dataset]
                _audit_received(audit, result.school_id, report.as_dict())
                result.files.append(report.as_dict())
                path = latest[report.dataset].path
                result.quarantined.append(quarantine(home, path, result.school_id, report.message, audit))
        candidates = [x for x in candidates if x.dataset not in unusable or x is not latest[x.dataset]]


def _anchor(latest: dict[str, Landed]) -> tuple[str, date]:
    """The export whose covering agreement staging follows: the roster's, else the newest one's."""
    item = latest.get("roster") or max(latest.values(), key=lambda x: (x.exported_on, x.path.name))
    return item.dataset, item.exported_on


def _rejects_message(report: FileReport) -> str:
    rejected = sum(r["rows"] for r in report.rejects)
    return f"{report.file}: {rejected} of {report.rows_in} rows rejected: {describe_rejects(report.rejects)}"


def intake_school(
    home: Home,
    contracts: ContractSet,
    school_id: str,
    key: PseudonymKey,
    scrub_texts,
    audit: AuditLog | None = None,
    max_bytes: int | None = None,
    force: bool = False,
    label_checker=None,
) -> IntakeResult:
    """Quarantine what no contract covers, stage the latest usable covered export of each dataset.

    A dataset whose newest delivery is quarantined keeps its previous staging (write_staging).
    `label_checker`: see transforms.staging.stage_school (tests pass one without Presidio)."""
    fingerprint = school_fingerprint(home, contracts, school_id, key, max_bytes)
    previous = read_state(home, school_id)
    if not force and previous and previous.get("fingerprint") == fingerprint:
        kept = {k: previous[k] for k in IntakeResult.__dataclass_fields__ if k in previous and k != "skipped"}
        return IntakeResult(**(kept | {"school_id": school_id, "fingerprint": fingerprint, "skipped": True}))

    result = IntakeResult(school_id, fingerprint)
    known = {*contracts.schools, *contracts.rejected_schools}
    landed, refused = discover_exports(home, school_id, max_bytes)
    for path, reason in refused:
        result.quarantined.append(quarantine(home, path, school_id, reason, audit, known))

    covered = []
    for item in landed:
        covering, reason = contracts.covering(school_id, item.dataset, item.exported_on, date.today())
        if covering is None:
            result.quarantined.append(quarantine(home, item.path, school_id, reason, audit, known))
        else:
            covered.append(item)
    candidates = _without_duplicates(covered, result, audit)
    if not candidates:
        result.staged_rows = write_staging(home, school_id, {}, keep=_failed_deliveries(result))
        if school_id in known:  # a folder no contract names gets no state file named after it
            _save_state(home, result, school_fingerprint(home, contracts, school_id, key, max_bytes))
        return result

    staged, latest, older = _stage_usable(
        home, contracts, candidates, key, scrub_texts, result, audit, max_bytes, label_checker
    )
    for item in older:
        newer = latest[item.dataset]
        report = FileReport(
            school_id, item.dataset, item.path.name, file_digest(item.path), status="superseded",
            message=f"replaced by the newer export {public_file_name(newer.path.name)} "
            f"(exported {newer.exported_on})",
        ).as_dict()  # fmt: skip
        result.files.append(report)
        _audit_received(audit, school_id, report)
    for report in staged.files:
        if report.status == "rejected_rows" and not report.message:
            report.message = _rejects_message(report)
        result.files.append(report.as_dict())
        _audit_received(audit, school_id, report.as_dict())
    staged.key_version = key.version
    result.staged_rows = write_staging(
        home, school_id, staged.frames, keep=_failed_deliveries(result), staging=staged
    )
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
            if dataset in staged.frames:
                audit.append(
                    "staged", school_id=school_id, dataset=dataset, rows=rows, key_version=key.version
                )
    # Fingerprint what is left in landing after quarantine moved files out, so a re-run skips.
    crash_point("intake.state")
    _save_state(home, result, school_fingerprint(home, contracts, school_id, key, max_bytes))
    return result


def _save_state(home: Home, result: IntakeResult, fingerprint: str) -> None:
    result.fingerprint = fingerprint
    home.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = {k: v for k, v in result.__dict__.items() if k != "skipped"}
    # staging/ is outside the raw zones: the names a sender chose stay in landing and quarantine.
    state["files"] = [state_record(f) for f in state["files"]]
    state["quarantined"] = [state_record(q) for q in state["quarantined"]]
    atomic_write_text(
        state_path(home, result.school_id),
        json.dumps(state, indent=2, sort_keys=True, default=str),
        mode=0o600,
    )


def discover_schools(home: Home) -> dict[str, str]:
    """School folders in landing/ with at least one entry, each with a digest of its listing
    (names, sizes, modification times): a change means new or replaced exports. A school folder
    that is a symbolic link is listed (so its intake refuses it) but never entered."""
    schools = {}
    if not home.landing.is_dir():
        return schools
    for folder in sorted(home.landing.iterdir()):
        if folder.name.startswith(".") or not (folder.is_symlink() or folder.is_dir()):
            continue
        entries = [folder] if folder.is_symlink() else list(_listing(folder))
        listing = sorted(
            json.dumps([str(p.relative_to(home.landing)), p.lstat().st_size, p.lstat().st_mtime_ns])
            for p in entries
        )
        if listing:
            schools[folder.name] = hashlib.sha256("\n".join(listing).encode()).hexdigest()[:16]
    return schools
