"""Retention: what the contracts no longer allow us to hold, and deleting it for real.

`plan_retention` only reads: it lists every file, staging row set and state file that is due, each
with the rule and the reason. `apply_retention` deletes exactly that plan: files unlinked, staging
partitions rewritten without the expired rows (atomically, through the staging store), a `deleted`
audit entry per file or partition and one `retention_run` entry per run. The rules are explained
in docs/retention.md. Plain Python, no Dagster; privacy/ does not import transforms/, so the
export-date rule of file names is repeated here (a test keeps it equal to transforms.readers).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from contracts.loader import ContractSet
from contracts.model import DATASETS, Agreement
from privacy.atomic import atomic_write_text, fsync_directory, is_temporary_name
from privacy.audit_log import AuditLog, UnsafeAuditObject, validate_object
from privacy.encryption import EncryptionError, datakey_path, shred_school_key
from privacy.files import export_date, file_sha256, modified_on, recorded_export_date
from privacy.staging_store import forget_derived, read_staging_frame, write_staging_frame
from privacy.zones import Home

# Statuses that withdraw an agreement: everything of the school goes, whatever its end date.
WITHDRAWN_STATUSES = ("retired", "deprecated")
# A school without any valid contract (none yet, or its file refused): its raw files wait this long
# for a contract to be fixed or signed, counted from when the file arrived.
NO_CONTRACT_GRACE_DAYS = 14
# Quarantine keeps a file no longer than the shortest landing retention of any contract; this is
# the limit when no contract names a landing retention at all.
DEFAULT_QUARANTINE_DAYS = 30
# Hidden temporaries a crashed writer left in staging/ or quarantine/ go once this old (a younger
# one may belong to a writer that is still running).
STALE_TEMPORARY_SECONDS = 3600
# Staging datasets that come from a contract dataset of another name.
STAGING_SOURCE = {"students": "roster"}
# Staging datasets whose rows carry their own date: the ISO week of the session or comment. The
# others (students, assessments, attendance, resources) are dated by the export they came from.
WEEK_DATASETS = ("usage", "comments", "teacher_survey")
WEEK_COLUMN = "week"
RETENTION_MARKER_NAME = "_retention.json"

_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_NOT_STAGED = ("superseded", "failed", "duplicate")  # intake statuses of files not staged
_ZONE_ORDER = {"landing": 0, "quarantine": 1, "staging": 2, "state": 3, "keys": 4}


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueItem:
    """One thing that must go: a file, some rows of a staging partition, or a state file."""

    action: str  # "delete_file" | "delete_rows" | "shred_key"
    zone: str  # landing | quarantine | staging | state | keys
    school_id: str
    dataset: str  # "" when the file sits outside a known dataset folder
    path: str  # relative to the home folder, POSIX separators
    rule: str  # e.g. "landing_days=30", "contract_ended", "no_contract_grace=14d"
    reason: str  # words for a person; names contracts and dates, never a value
    rows: int | None = None  # staging rows that go (None: a raw file, rows not counted)
    rows_total: int | None = None  # rows in the partition before
    weeks: tuple[str, ...] = ()  # delete_rows: the expired ISO weeks
    undated_due: bool = False  # delete_rows: rows without a readable week go too
    companions: tuple[str, ...] = ()  # files that go with this one (a quarantined file's .reason.json)
    school_known: bool = True  # False: a landing folder no contract names (its name is the sender's)


@dataclass
class RetentionPlan:
    as_of: date
    items: list[DueItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ended_schools: dict[str, str] = field(default_factory=dict)  # school -> why everything goes

    @property
    def is_empty(self) -> bool:
        return not self.items

    @property
    def rows_due(self) -> int:
        return sum(i.rows or 0 for i in self.items if i.zone == "staging")

    def summary(self) -> str:
        files = sum(1 for i in self.items if i.action == "delete_file")
        rewrites = sum(1 for i in self.items if i.action == "delete_rows")
        return (
            f"as of {self.as_of}: {files} file(s) to delete, {rewrites} staging partition(s) to rewrite, "
            f"{self.rows_due} staging row(s) due, {len(self.ended_schools)} school(s) ended"
        )


@dataclass(frozen=True)
class SchoolStanding:
    """What the contracts say about one school on `as_of`."""

    school_id: str
    kind: str  # "open" | "ended" | "no_contract"
    reason: str = ""
    rule: str = ""
    agreements: tuple[Agreement, ...] = ()

    def days(self, dataset: str, driver: str) -> int | None:
        """The strictest `landing`/`staging` days any open agreement sets for `dataset`."""
        values = [
            getattr(a.datasets[dataset], f"{driver}_days") for a in self.agreements if dataset in a.datasets
        ]
        values = [v for v in values if v is not None]
        return min(values) if values else None

    def covers(self, dataset: str) -> bool:
        return any(dataset in a.datasets for a in self.agreements)


def school_standing(contracts: ContractSet, school_id: str, as_of: date) -> SchoolStanding:
    """Open (some agreement not withdrawn and not past its end), ended/withdrawn, or no contract."""
    agreements = contracts.for_school(school_id)
    if not agreements:
        return SchoolStanding(school_id, "no_contract", f"no valid contract for school {school_id}")
    open_ = tuple(a for a in agreements if a.status not in WITHDRAWN_STATUSES and as_of <= a.end)
    if open_:
        return SchoolStanding(school_id, "open", agreements=open_)
    last = max(agreements, key=lambda a: (a.end, a.version))
    if all(a.status in WITHDRAWN_STATUSES for a in agreements):
        return SchoolStanding(
            school_id,
            "ended",
            f"contract {_named(last)} was withdrawn (status '{last.status}')",
            "contract_withdrawn",
        )
    ended = max((a for a in agreements if a.status not in WITHDRAWN_STATUSES), key=lambda a: a.end)
    return SchoolStanding(
        school_id, "ended", f"contract {_named(ended)} ended on {ended.end}", "contract_ended"
    )


def _named(agreement: Agreement) -> str:
    # Not `label` (`id@version`): the audit log refuses anything shaped like an email address.
    return f"{agreement.contract_id} v{agreement.version}"


file_date = export_date  # retention dates files exactly as intake does


def iso_week_end(week: str) -> date | None:
    """The Sunday that ends ISO week `YYYY-Www`, or None when `week` is not one."""
    match = _ISO_WEEK.match(week or "")
    if not match:
        return None
    try:
        return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 7)
    except ValueError:
        return None


def expired(day: date, days: int, as_of: date) -> bool:
    """Held for `days` full days after `day`; due from the day after that."""
    return day + timedelta(days=days) < as_of


def quarantine_days(contracts: ContractSet) -> int:
    """The shortest landing retention any contract names (quarantined data was never accepted)."""
    days = [
        terms.landing_days
        for a in contracts.agreements
        for terms in a.datasets.values()
        if terms.landing_days is not None
    ]
    return min(days) if days else DEFAULT_QUARANTINE_DAYS


def plan_retention(
    home: Home,
    contracts: ContractSet,
    as_of: date,
    *,
    stale_temporary_seconds: float = STALE_TEMPORARY_SECONDS,
    read_frame: Callable[[Path, str], pl.DataFrame] = read_staging_frame,
) -> RetentionPlan:
    """Everything due on `as_of`, with reasons. Reads only: nothing on disk changes."""
    plan = RetentionPlan(as_of)
    schools = sorted(set(contracts.schools) | _schools_on_disk(home))
    standings = {s: school_standing(contracts, s, as_of) for s in schools}
    quarantine_limit = quarantine_days(contracts)
    for school_id, standing in standings.items():
        if standing.kind == "ended":
            plan.ended_schools[school_id] = standing.reason
        elif standing.kind == "no_contract" and _staging_partitions(home, school_id):
            plan.warnings.append(
                f"school {school_id} has staging data but no valid contract: kept until a contract "
                "withdraws or ends it (check contracts/; a refused contract file is listed by "
                "`impact contracts check`)"
            )
        plan.items += _landing_due(home, standing, as_of, quarantine_limit)
        plan.items += _quarantine_due(home, standing, as_of, quarantine_limit)
        plan.items += _staging_due(home, standing, as_of, read_frame, plan.warnings)
        if standing.kind == "ended":
            plan.items += _state_due(home, standing) + _derived_due(home, standing)
            plan.items += _data_key_due(home, standing)
    plan.items += _stale_temporaries(home, stale_temporary_seconds)
    unique = {i.path: i for i in reversed(plan.items)}  # an ended school's temporaries are listed twice
    plan.items = sorted(unique.values(), key=lambda i: (i.school_id, _ZONE_ORDER[i.zone], i.path))
    return plan


def _schools_on_disk(home: Home) -> set[str]:
    found: set[str] = set()
    for zone in (home.landing, home.quarantine):
        if zone.is_dir():
            found |= {p.name for p in zone.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if home.staging.is_dir():
        for partition in home.staging.glob("*/school=*"):
            found.add(partition.name.removeprefix("school="))
    if home.state.is_dir():
        for state in home.state.glob("*.json"):
            if not state.name.startswith(("_", ".")):
                found.add(state.name.split(".", 1)[0])
    return found


def _relative(home: Home, path: Path) -> str:
    return path.relative_to(home.root).as_posix()


def _arrived_on(path: Path) -> date:
    """For the no-contract grace: the later of the export date and when the file arrived here."""
    return max(file_date(path), modified_on(path))


def _landing_due(home: Home, standing: SchoolStanding, as_of: date, quarantine_limit: int) -> list[DueItem]:
    root = home.landing / standing.school_id
    if not root.is_dir():
        return []
    items = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        relative = path.relative_to(root)
        dataset = relative.parts[0] if len(relative.parts) == 2 and relative.parts[0] in DATASETS else ""
        if standing.kind == "ended":
            # Everything, hidden uploads in progress included: the agreement no longer allows any.
            items.append(_file_item(home, "landing", standing, dataset, path, standing.rule, standing.reason))
            continue
        if path.name.startswith("."):
            continue  # a sender's upload still in progress
        rule, reason = _raw_file_rule(standing, dataset, path, as_of, quarantine_limit, "landing")
        if rule:
            items.append(_file_item(home, "landing", standing, dataset, path, rule, reason))
    return items


def _raw_file_rule(
    standing: SchoolStanding, dataset: str, path: Path, as_of: date, quarantine_limit: int, zone: str
) -> tuple[str, str]:
    """(rule, reason) when a raw file of an open or contract-less school is due, else ("", "")."""
    if standing.kind == "no_contract":
        arrived = _arrived_on(path)
        if expired(arrived, NO_CONTRACT_GRACE_DAYS, as_of):
            return (
                f"no_contract_grace={NO_CONTRACT_GRACE_DAYS}d",
                f"{standing.reason}; arrived {arrived}, grace of {NO_CONTRACT_GRACE_DAYS} days passed",
            )
        return "", ""
    exported = file_date(path)
    if zone == "landing" and dataset and standing.covers(dataset):
        days = standing.days(dataset, "landing")
        if days is not None and expired(exported, days, as_of):
            return f"landing_days={days}", f"raw {dataset} export dated {exported} is past {days} days"
        return "", ""
    # Quarantined files, and landing files no contract dataset covers, were never accepted.
    if expired(exported, quarantine_limit, as_of):
        return (
            f"quarantine_days={quarantine_limit}",
            f"unaccepted file dated {exported} is past {quarantine_limit} days (shortest landing retention)",
        )
    return "", ""


def _file_item(
    home: Home,
    zone: str,
    standing: SchoolStanding,
    dataset: str,
    path: Path,
    rule: str,
    reason: str,
    companions: Iterable[Path] = (),
) -> DueItem:
    return DueItem(
        "delete_file",
        zone,
        standing.school_id,
        dataset,
        _relative(home, path),
        rule,
        reason,
        companions=tuple(_relative(home, c) for c in companions),
        school_known=standing.kind != "no_contract",
    )


REASON_SUFFIX = ".reason.json"


def _quarantine_due(
    home: Home, standing: SchoolStanding, as_of: date, quarantine_limit: int
) -> list[DueItem]:
    folder = home.quarantine / standing.school_id
    if not folder.is_dir():
        return []
    items = []
    # A quarantined entry is a file and its `.reason.json`; either may be missing (a refused
    # symbolic link leaves only the reason).
    entries: dict[str, list[Path]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        if is_temporary_name(path) and standing.kind != "ended":
            continue  # handled as a stale temporary
        base = path.name.removesuffix(REASON_SUFFIX)
        entries.setdefault(_relative(home, path.with_name(base)), []).append(path)
    for _, paths in sorted(entries.items()):
        main, companions = paths[0], paths[1:]
        if main.name.endswith(REASON_SUFFIX) and companions:
            main, companions = companions[0], [main]
        dataset = _quarantined_dataset(paths)
        if standing.kind == "ended":
            rule, reason = standing.rule, standing.reason
        else:
            probe = main.with_name(main.name.removesuffix(REASON_SUFFIX))
            rule, reason = _raw_file_rule(
                standing, dataset, probe if probe.exists() else main, as_of, quarantine_limit, "quarantine"
            )
        if rule:
            items.append(_file_item(home, "quarantine", standing, dataset, main, rule, reason, companions))
    return items


def _quarantined_dataset(paths: list[Path]) -> str:
    for path in paths:
        if path.name.endswith(REASON_SUFFIX):
            try:
                dataset = json.loads(path.read_text()).get("dataset", "")
            except (OSError, ValueError):
                return ""
            return dataset if dataset in DATASETS else ""
    return ""


def _staging_partitions(home: Home, school_id: str) -> list[Path]:
    if not home.staging.is_dir():
        return []
    return sorted(
        p
        for p in home.staging.glob(f"*/school={school_id}/*")
        if p.is_file() and not is_temporary_name(p) and not p.parent.parent.name.startswith("_")
    )


def read_school_state(home: Home, school_id: str) -> dict | None:
    """`staging/_state/<school>.json` as transforms.intake writes it, or None."""
    path = home.state / f"{school_id}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _source_export_date(state: dict | None, source_dataset: str) -> date | None:
    """The export date of the file a staging dataset was built from, from the school's state."""
    if not state:
        return None
    dates = [
        recorded_export_date(f)
        for f in state.get("files", [])
        if f.get("dataset") == source_dataset and f.get("status") not in _NOT_STAGED
    ]
    return max((d for d in dates if d), default=None)


def _staging_due(
    home: Home,
    standing: SchoolStanding,
    as_of: date,
    read_frame: Callable[[Path, str], pl.DataFrame],
    warnings: list[str],
) -> list[DueItem]:
    partitions = _staging_partitions(home, standing.school_id)
    if standing.kind == "no_contract" or not partitions:
        return []
    state = read_school_state(home, standing.school_id)
    staged_rows = (state or {}).get("staged_rows", {})
    items = []
    for path in partitions:
        dataset = path.parent.parent.name
        if standing.kind == "ended":
            items.append(
                DueItem(
                    "delete_file", "staging", standing.school_id, dataset, _relative(home, path),
                    standing.rule, standing.reason, rows=staged_rows.get(dataset),
                    rows_total=staged_rows.get(dataset),
                )
            )  # fmt: skip
            continue
        item = _partition_due(home, standing, path, dataset, state, as_of, read_frame, warnings)
        if item:
            items.append(item)
    return items


def _partition_due(
    home: Home,
    standing: SchoolStanding,
    path: Path,
    dataset: str,
    state: dict | None,
    as_of: date,
    read_frame: Callable[[Path, str], pl.DataFrame],
    warnings: list[str],
) -> DueItem | None:
    source = STAGING_SOURCE.get(dataset, dataset)
    days = standing.days(source, "staging")
    if days is None:
        return None
    exported = _source_export_date(state, source)
    if exported is None:
        exported = modified_on(path)
        warnings.append(
            f"{_relative(home, path)}: the export it came from is unknown; its date is taken as the "
            f"day it was staged ({exported})"
        )
    source_due = expired(exported, days, as_of)
    rule = f"staging_days={days}"
    if dataset not in WEEK_DATASETS:
        if not source_due:
            return None  # decided without decrypting the partition
        rows = ((state or {}).get("staged_rows") or {}).get(dataset)
        reason = f"staged {dataset} from an export dated {exported}, past {days} days"
        return DueItem(
            "delete_file", "staging", standing.school_id, dataset, _relative(home, path), rule, reason,
            rows=rows, rows_total=rows,
        )  # fmt: skip
    frame = read_frame(path, standing.school_id)
    if WEEK_COLUMN not in frame.columns:
        warnings.append(f"{_relative(home, path)}: no '{WEEK_COLUMN}' column; dated by its export")
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(WEEK_COLUMN))
    weeks = frame.get_column(WEEK_COLUMN).drop_nulls().unique().to_list()
    expired_weeks = tuple(sorted(w for w in weeks if (end := iso_week_end(w)) and expired(end, days, as_of)))
    due = _rows_due(frame, expired_weeks, source_due)
    if due == 0:
        return None
    reason = f"{dataset} rows of weeks ending more than {days} days before {as_of}"
    if source_due and due > 0:
        reason += f" (rows without a week: export dated {exported})"
    action = "delete_file" if due == frame.height else "delete_rows"
    return DueItem(
        action, "staging", standing.school_id, dataset, _relative(home, path), rule, reason,
        rows=due, rows_total=frame.height, weeks=expired_weeks, undated_due=source_due,
    )  # fmt: skip


def _due_mask(frame: pl.DataFrame, weeks: Iterable[str], undated_due: bool) -> pl.Series:
    """True for rows whose week expired (and, when `undated_due`, rows without a readable week)."""
    column = frame.get_column(WEEK_COLUMN)
    readable = {w for w in column.drop_nulls().unique().to_list() if iso_week_end(w)}
    mask = column.is_in(list(weeks)).fill_null(False)
    if undated_due:
        mask = mask | ~column.is_in(list(readable)).fill_null(False)
    return mask


def _rows_due(frame: pl.DataFrame, weeks: tuple[str, ...], undated_due: bool) -> int:
    return int(_due_mask(frame, weeks, undated_due).sum())


def _state_due(home: Home, standing: SchoolStanding) -> list[DueItem]:
    """`_state/<school>.json` and `_state/<school>.<anything>.json` (not `<school>0.json`)."""
    if not home.state.is_dir():
        return []
    school_id = standing.school_id
    paths = sorted(
        p for p in home.state.iterdir() if p.name == f"{school_id}.json" or (
            p.name.startswith(f"{school_id}.") and p.name.endswith(".json")
        )
    )  # fmt: skip
    return [_file_item(home, "state", standing, "", p, standing.rule, standing.reason) for p in paths]


def _derived_due(home: Home, standing: SchoolStanding) -> list[DueItem]:
    """`staging/_derived/school=<id>/`: what the release cached from the school's staging
    (transforms.usage_summary); it goes with the staging it came from."""
    folder = home.derived_of(standing.school_id)
    paths = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    return [_file_item(home, "staging", standing, "", p, standing.rule, standing.reason) for p in paths]


def _data_key_due(home: Home, standing: SchoolStanding) -> list[DueItem]:
    """An ended school's wrapped data key: shredded, so every copy of its staging (backups included)
    becomes unreadable."""
    try:
        path = datakey_path(home.root, standing.school_id)
    except EncryptionError:
        return []  # a name no data key can have
    if not path.exists():
        return []
    return [
        DueItem(
            "shred_key", "keys", standing.school_id, "", _relative(home, path), standing.rule, standing.reason
        )
    ]


LANDING_TEMPORARY_SECONDS = 86_400


def _stale_temporaries(home: Home, min_age_seconds: float) -> list[DueItem]:
    """Hidden `.*.tmp` files a crashed writer left in staging/ or quarantine/ (restricted data), and
    in landing/ a day old (an interrupted inbox download; a sender's upload in flight is younger)."""
    now = time.time()
    items = []
    zones = (
        ("staging", home.staging, min_age_seconds),
        ("quarantine", home.quarantine, min_age_seconds),
        ("landing", home.landing, max(min_age_seconds, LANDING_TEMPORARY_SECONDS)),
    )
    for zone, root, min_age in zones:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob(".*.tmp")):
            if not path.is_file() or path.lstat().st_mtime > now - min_age:
                continue
            school_id = next((p.removeprefix("school=") for p in path.parts if p.startswith("school=")), "")
            if zone in ("quarantine", "landing"):
                school_id = path.relative_to(root).parts[0]
            items.append(
                DueItem(
                    "delete_file", zone, school_id, "", _relative(home, path), "stale_temporary",
                    "a temporary file left by an interrupted write",
                )
            )  # fmt: skip
    return items


# --- what comes next (for the compliance report) -------------------------------------------


def next_deletion_dates(
    home: Home,
    contracts: ContractSet,
    as_of: date,
    read_frame: Callable[[Path, str], pl.DataFrame] = read_staging_frame,
) -> dict[str, date]:
    """For each school with something held: the first day on which something of it is due
    (`as_of` itself when something is already due). Reads only."""
    quarantine_limit = quarantine_days(contracts)
    upcoming: dict[str, date] = {}
    for school_id in sorted(set(contracts.schools) | _schools_on_disk(home)):
        standing = school_standing(contracts, school_id, as_of)
        days = list(_due_days(home, standing, as_of, quarantine_limit, read_frame))
        if days:
            upcoming[school_id] = max(as_of, min(days))
    return upcoming


def _due_days(
    home: Home,
    standing: SchoolStanding,
    as_of: date,
    quarantine_limit: int,
    read_frame: Callable[[Path, str], pl.DataFrame],
) -> Iterable[date]:
    school_id, after = standing.school_id, timedelta(days=1)
    raw = [
        p
        for zone in (home.landing, home.quarantine)
        for p in _files_in(zone / school_id)
        if not p.name.startswith(".") and not p.name.endswith(REASON_SUFFIX)
    ]
    partitions = _staging_partitions(home, school_id)
    if not raw and not partitions:
        return
    if standing.kind == "ended":
        yield as_of
        return
    if standing.kind == "no_contract":
        yield from (_arrived_on(p) + timedelta(days=NO_CONTRACT_GRACE_DAYS) + after for p in raw)
        return
    yield from (a.end + after for a in standing.agreements)
    for path in raw:
        relative = path.relative_to(home.landing / school_id) if path.is_relative_to(home.landing) else None
        dataset = relative.parts[0] if relative and len(relative.parts) == 2 else ""
        days = (
            standing.days(dataset, "landing") if relative and standing.covers(dataset) else quarantine_limit
        )
        if days is not None:
            yield file_date(path) + timedelta(days=days) + after
    state = read_school_state(home, school_id)
    for path in partitions:
        dataset = path.parent.parent.name
        source = STAGING_SOURCE.get(dataset, dataset)
        days = standing.days(source, "staging")
        if days is None:
            continue
        exported = _source_export_date(state, source) or modified_on(path)
        dated = exported
        if dataset in WEEK_DATASETS:
            frame = read_frame(path, school_id)
            ends = [
                e
                for w in frame.get_column(WEEK_COLUMN).drop_nulls().unique().to_list()
                if (e := iso_week_end(w))
            ]
            dated = min(ends) if ends else exported
        yield dated + timedelta(days=days) + after


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()) if folder.is_dir() else []


# --- applying it ---------------------------------------------------------------------------


@dataclass
class RetentionResult:
    as_of: date
    files_deleted: int = 0
    partitions_rewritten: int = 0
    rows_deleted: int = 0
    schools_ended: list[str] = field(default_factory=list)
    keys_shredded: int = 0
    already_gone: int = 0
    fingerprints_refreshed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.files_deleted or self.partitions_rewritten or self.keys_shredded)


def apply_retention(
    plan: RetentionPlan,
    home: Home,
    audit: AuditLog,
    *,
    fingerprint_of: Callable[[str], str] | None = None,
    read_frame: Callable[[Path, str], pl.DataFrame] = read_staging_frame,
    write_frame: Callable[[Path, pl.DataFrame, str], None] = write_staging_frame,
) -> RetentionResult:
    """Delete what `plan` lists; record each deletion and the run in the audit log.

    Crash safety: each file is unlinked or atomically replaced, so it is old or new, never half
    written; each `deleted` entry is appended (fsync'ed) just before its deletion, so no deletion
    goes unrecorded (a re-run after a crash may record one twice). Re-planning and applying again
    finishes the job. `fingerprint_of(school)` (intake's fingerprint of the school's landing, needs
    the pseudonymization key) lets a school whose staging was current stay current after its raw
    files go, so the next `impact run` does not re-stage it from a thinner landing folder.
    """
    result = RetentionResult(plan.as_of, schools_ended=sorted(plan.ended_schools))
    if plan.items:
        if any(i.zone in ("staging", "state", "keys") and i.rule != "stale_temporary" for i in plan.items):
            _mark_retention_applied(home, plan)  # before the change: a crash still invalidates the release
        refresh = _schools_to_refresh(home, plan, fingerprint_of, result)
        for item in plan.items:
            _apply_item(home, audit, item, result, read_frame, write_frame)
        for school_id in refresh:
            _refresh_fingerprint(home, school_id, fingerprint_of, result)
        _prune_empty_folders(home, plan)
    audit.append(
        "retention_run",
        as_of_date=plan.as_of.isoformat(),
        n_files_deleted=result.files_deleted,
        n_partitions_rewritten=result.partitions_rewritten,
        n_rows_deleted=result.rows_deleted,
        n_schools_ended=len(result.schools_ended),
        n_keys_shredded=result.keys_shredded,
        school_ids=result.schools_ended,
    )
    return result


def _apply_item(
    home: Home,
    audit: AuditLog,
    item: DueItem,
    result: RetentionResult,
    read_frame: Callable[[Path, str], pl.DataFrame],
    write_frame: Callable[[Path, pl.DataFrame, str], None],
) -> None:
    path = home.root / item.path
    if item.action == "shred_key":
        # It writes its own `data_key_shredded` entry (overwrite, fsync, unlink).
        if shred_school_key(home, item.school_id, audit, reason=item.reason[:200]):
            result.keys_shredded += 1
        else:
            result.already_gone += 1
        return
    if item.action == "delete_rows":
        _delete_rows(home, audit, item, path, result, read_frame, write_frame)
        return
    companions = [home.root / c for c in item.companions if (home.root / c).exists()]
    if not path.exists() and not path.is_symlink() and not companions:
        result.already_gone += 1
        return
    digest = _file_sha256(path) if item.zone in ("landing", "quarantine") else None
    audit.append("deleted", **_deleted_fields(item, digest, rows=item.rows))
    if item.zone == "staging" and item.rule != "stale_temporary":
        _forget_staged_dataset(home, item.school_id, item.dataset, rows_left=None)  # before: see _delete_rows
        result.rows_deleted += item.rows or 0
    for target in [path, *companions]:
        target.unlink(missing_ok=True)
        result.files_deleted += 1
    fsync_directory(path.parent)


def _delete_rows(
    home: Home,
    audit: AuditLog,
    item: DueItem,
    path: Path,
    result: RetentionResult,
    read_frame: Callable[[Path, str], pl.DataFrame],
    write_frame: Callable[[Path, pl.DataFrame, str], None],
) -> None:
    if not path.exists():
        result.already_gone += 1
        return
    frame = read_frame(path, item.school_id)
    kept = frame.filter(~_due_mask(frame, item.weeks, item.undated_due))
    removed = frame.height - kept.height
    if removed == 0:
        result.already_gone += 1  # a re-run after a crash: this partition is already rewritten
        return
    audit.append(
        "deleted", **_deleted_fields(item, None, rows=removed, rows_in=frame.height, rows_out=kept.height)
    )
    # The state's count goes first too: after a crash the re-run finds the rows still due and
    # rewrites the partition, but would never revisit a partition already rewritten.
    _forget_staged_dataset(home, item.school_id, item.dataset, rows_left=kept.height or None)
    if kept.height == 0:
        path.unlink()
        fsync_directory(path.parent)
        result.files_deleted += 1
    else:
        write_frame(path, kept, item.school_id)
        result.partitions_rewritten += 1
    result.rows_deleted += removed


RAW_ZONES = ("landing", "quarantine")


def _withheld_school(school_id: str) -> str:
    return "school-withheld-" + hashlib.sha256(school_id.encode()).hexdigest()[:12]


def _deleted_fields(item: DueItem, digest: str | None, **counts: int | None) -> dict[str, Any]:
    """The audit entry of one deletion. A raw file's name, and the folder of a school no contract
    names, are the sender's words (`Jane_Doe_2011-03-04.csv`): logged only as digests, whatever
    they look like. Our own paths (staging, state, keys) are logged as they are."""
    fields: dict[str, Any] = {
        "school_id": item.school_id,
        "dataset": item.dataset or None,
        "file": Path(item.path).name,
        "path": item.path,
        "reason": item.reason[:200],
        "retention_rule": item.rule,
        "sha256": digest,
        **{k: v for k, v in counts.items() if v is not None},
    }
    if item.zone in RAW_ZONES:
        school = item.school_id if item.school_known else _withheld_school(item.school_id)
        name = "name-withheld-" + hashlib.sha256(item.path.encode()).hexdigest()[:16]
        folder = f"{item.dataset}/" if item.dataset else ""
        fields |= {"school_id": school, "file": name, "path": f"{item.zone}/{school}/{folder}{name}"}
        fields["reason"] = fields["reason"].replace(item.school_id, school)
    fields = {k: v for k, v in fields.items() if v is not None}
    try:
        return validate_object(fields)
    except UnsafeAuditObject:
        # A school folder of digits alone (an NCES code) may still look like a student id.
        fields["school_id"] = school = _withheld_school(item.school_id)
        fields["path"] = f"{item.zone}/{school}/" + fields["path"].split("/", 2)[-1]
        fields["reason"] = fields["reason"].replace(item.school_id, school)
        try:
            return validate_object(fields)
        except UnsafeAuditObject:
            fields["reason"] = item.rule
            return validate_object(fields)


def _file_sha256(path: Path) -> str | None:
    if path.is_symlink() or not path.is_file():
        return None
    return file_sha256(path)


def _write_state(home: Home, school_id: str, state: dict) -> None:
    atomic_write_text(
        home.state / f"{school_id}.json", json.dumps(state, indent=2, sort_keys=True, default=str), mode=0o600
    )


def _forget_staged_dataset(home: Home, school_id: str, dataset: str, rows_left: int | None) -> None:
    """Keep the state's `staged_rows` (what the compliance report shows as held) true after a
    deletion, and drop what the release derived from the school's staging (it held those rows)."""
    forget_derived(home, school_id)
    state = read_school_state(home, school_id)
    if state is None or dataset not in state.get("staged_rows", {}):
        return
    if rows_left:
        state["staged_rows"][dataset] = rows_left
    else:
        del state["staged_rows"][dataset]
    _write_state(home, school_id, state)


def _mark_retention_applied(home: Home, plan: RetentionPlan) -> None:
    """Change `_state/_retention.json`, which the release's inputs include: the next release is
    recomputed from what remains and its manifest says retention was applied."""
    path = home.state / RETENTION_MARKER_NAME
    previous = json.loads(path.read_text()) if path.exists() else {}
    changes = sorted(f"{i.path}:{i.rows}:{','.join(i.weeks)}" for i in plan.items if i.zone != "landing")
    marker = hashlib.sha256(
        "\n".join([previous.get("marker", ""), plan.as_of.isoformat(), *changes]).encode()
    )
    home.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(
        path,
        json.dumps(
            {
                "as_of": plan.as_of.isoformat(),
                "marker": marker.hexdigest(),
                "schools": sorted({i.school_id for i in plan.items if i.zone in ("staging", "state")}),
            },
            indent=2,
            sort_keys=True,
        ),
        mode=0o600,
    )


def retention_marker(home: Home) -> str | None:
    """`"<as_of> <marker>"` of the last retention that changed staging, for the release's inputs."""
    path = home.state / RETENTION_MARKER_NAME
    if not path.exists():
        return None
    marker = json.loads(path.read_text())
    return f"applied as of {marker['as_of']} ({marker['marker'][:16]})"


PENDING_REFRESH = "retention_refresh_pending"


def _schools_to_refresh(
    home: Home, plan: RetentionPlan, fingerprint_of: Callable[[str], str] | None, result: RetentionResult
) -> list[str]:
    """Schools losing raw files whose staging is current: flag them before deleting (a re-run after
    a crash still knows the fingerprint was current) and refresh after."""
    schools = sorted({i.school_id for i in plan.items if i.zone == "landing"} - set(plan.ended_schools))
    refresh = []
    for school_id in schools:
        state = read_school_state(home, school_id)
        if state is None:
            continue
        if fingerprint_of is None:
            result.notes.append(
                f"{school_id}: raw files deleted without the pseudonymization key; the next `impact run` "
                "re-stages the school from what remains in landing/"
            )
            continue
        if state.get(PENDING_REFRESH) or state.get("fingerprint") == fingerprint_of(school_id):
            state[PENDING_REFRESH] = True
            _write_state(home, school_id, state)
            refresh.append(school_id)
    # A crash after flagging but before the deletions leaves the flag: honour it on the re-run.
    for path in sorted(home.state.glob("*.json")) if home.state.is_dir() else []:
        school_id = path.stem
        if school_id in refresh or school_id.startswith("_") or "." in school_id:
            continue
        if fingerprint_of and (read_school_state(home, school_id) or {}).get(PENDING_REFRESH):
            refresh.append(school_id)
    return refresh


def _refresh_fingerprint(
    home: Home, school_id: str, fingerprint_of: Callable[[str], str] | None, result: RetentionResult
) -> None:
    state = read_school_state(home, school_id)
    if state is None or fingerprint_of is None:
        return
    state["fingerprint"] = fingerprint_of(school_id)
    state.pop(PENDING_REFRESH, None)
    _write_state(home, school_id, state)
    result.fingerprints_refreshed.append(school_id)


def _prune_empty_folders(home: Home, plan: RetentionPlan) -> None:
    """Remove folders retention emptied: staging partitions, and an ended school's folders."""
    folders = {(home.root / i.path).parent for i in plan.items if i.zone == "staging"}
    for school_id in plan.ended_schools:
        for zone in (home.landing, home.quarantine):
            root = zone / school_id
            if root.is_dir():
                folders |= {p for p in root.rglob("*") if p.is_dir()} | {root}
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            continue
        fsync_directory(folder.parent)
