"""`impact run`: register school partitions, stage changed schools, then release and render.

Each school is its own Dagster run (partition), so one school's broken export never stops
another's; the consortium run uses every school whose intake staged a roster.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from contracts.loader import ContractSet, load_contracts
from pipelines.consortium.assets import published_release, reports
from pipelines.consortium.checks import disclosure_audit
from pipelines.resources import ImpactHome
from pipelines.schools.assets import staged_school
from pipelines.schools.checks import staging_meets_contract
from pipelines.schools.partitions import schools_partitions
from privacy.atomic import atomic_write_text, exclusive_lock, remove_stale_temporaries
from privacy.audit_log import AuditLog
from privacy.encryption import (
    ENV_MASTER_KEY,
    ENV_MASTER_KEY_FILE,
    DataKeyStore,
    EncryptionError,
    MasterKey,
    load_master_key,
)
from privacy.keys import PseudonymKey
from privacy.zones import Home
from storage import object_store
from transforms.crashpoints import crash_point
from transforms.intake import discover_schools, read_state, school_fingerprint, state_path
from transforms.publication import release_fingerprint
from transforms.release_run import release_inputs, staged_schools
from transforms.validation import unreadable_staging

INSTANCE_TEMPLATE = Path(__file__).resolve().parent.parent / "dagster.yaml"
# The CLI prints its own summary; Dagster's per-event console lines go to its event log instead.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
RUN_LOCK_NAME = "impact-run.lock"  # in dagster/: one `impact run` per home at a time
# Written last, after the release and the reports: a manifest without it is an unfinished release.
COMMITTED_RELEASE_NAME = "impact-committed-release.json"


class CannotRun(RuntimeError):
    """The pipeline cannot start at all (no key, no contracts, unreadable home)."""


@dataclass
class RunSummary:
    schools_run: list[str] = field(default_factory=list)
    schools_unchanged: list[str] = field(default_factory=list)
    schools_failed: dict[str, str] = field(default_factory=dict)
    released: bool = False
    contract_problems: list[str] = field(default_factory=list)
    inbox_moved: list[str] = field(default_factory=list)  # exports moved from IMPACT_INBOX_URL
    inbox_left: dict[str, str] = field(default_factory=dict)  # objects left there, and why
    published_to: str | None = None  # IMPACT_PUBLISH_URL, when this run mirrored the release there
    storage_problems: list[str] = field(default_factory=list)  # the bucket was unreachable


def failure_message(result, default: str) -> str:
    """The innermost cause of a failed step: the pipeline's own message, not Dagster's wrapper."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    error = failure.step_failure_data.error if failure else None
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return default
    text = error.message.strip().splitlines()[0] if error.message.strip() else default
    return f"{error.cls_name}: {text.split(': ', 1)[-1]}"[:400] if error.cls_name else text[:400]


def dagster_instance(home: Home) -> dg.DagsterInstance:
    home.dagster.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = home.dagster / "dagster.yaml"
    if not config.exists() and INSTANCE_TEMPLATE.exists():
        shutil.copyfile(INSTANCE_TEMPLATE, config)
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    return dg.DagsterInstance.from_config(str(home.dagster))


def preflight(home: Home, key_loader, fix_permissions: bool = False) -> tuple[ContractSet, PseudonymKey]:
    if not home.root.is_dir() or not os.access(home.root, os.R_OK | os.W_OK):
        raise CannotRun(f"home folder {home.root} does not exist or is not readable and writable")
    check_zone_permissions(home, fix_permissions)  # before create(), which would chmod silently
    home.create()
    contracts = load_contracts(home.contracts)
    if not contracts.agreements:
        problems = "; ".join(str(p) for p in contracts.problems[:5])
        raise CannotRun(f"no valid contract in {home.contracts}" + (f": {problems}" if problems else ""))
    try:
        key = key_loader()
    except Exception as exc:  # KeyError_ and friends: their text never holds the key
        raise CannotRun(str(exc)) from None
    try:
        master = load_master_key()  # encryption at rest: refuse now rather than fail every school's staging
    except EncryptionError as exc:
        raise CannotRun(str(exc)) from None
    check_master_key(home, master)
    return contracts, key


def check_master_key(home: Home, master: MasterKey) -> None:
    """Refuse, before anything is read or written, a master key that does not open every data key:
    a wrong key would fail every school, and a key it wrapped for a new school would lock that
    school out of the right one. Nothing is recorded, so the next run with the right key just works."""
    problems = DataKeyStore(home.root, master).unwrap_problems()
    if not problems:
        return
    shown = ", ".join(f"{school} ({why})" for school, why in sorted(problems.items())[:5])
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    raise CannotRun(
        f"the master key (fingerprint {master.fingerprint}) cannot unwrap the data keys of "
        f"{len(problems)} school(s): {shown}{more}. {ENV_MASTER_KEY} or {ENV_MASTER_KEY_FILE} is "
        "probably the wrong key: set the one whose fingerprint is named (`impact datakeys status` "
        "lists them), or finish a master-key rotation with `impact datakeys rewrap`. Nothing was "
        "read or changed"
    )


def check_zone_permissions(home: Home, fix: bool) -> None:
    """Refuse to start when a restricted zone is open to group/others, unless asked to repair it."""
    home.tighten_received()  # senders' and Dagster's files: see privacy.zones.SELF_TIGHTENED_ZONES
    if fix:
        home.fix_permissions()
    problem = home.permission_problem()
    if problem:
        raise CannotRun(problem)


def changed_schools(
    home: Home, contracts: ContractSet, key: PseudonymKey, max_bytes: int | None = None
) -> tuple[list[str], list[str]]:
    changed, unchanged = [], []
    for school_id in sorted(
        set(discover_schools(home)) | {s for s in contracts.schools if read_state(home, s)}
    ):
        state = read_state(home, school_id)
        fingerprint = school_fingerprint(home, contracts, school_id, key, max_bytes)
        if state and state.get("fingerprint") == fingerprint and not unreadable_staging(home, school_id):
            unchanged.append(school_id)
        else:
            changed.append(school_id)
    return changed, unchanged


def forget_unreadable_staging(home: Home, schools: list[str]) -> list[str]:
    """Schools whose staging their last check could not read (damaged or truncated files) are
    re-staged from landing: their intake state goes, so intake does the whole work again instead
    of keeping the school out of every release until someone runs `--force`."""
    forgotten = [s for s in schools if unreadable_staging(home, s)]
    for school_id in forgotten:
        state_path(home, school_id).unlink(missing_ok=True)
    return forgotten


@contextmanager
def run_lock(home: Home) -> Iterator[None]:
    """Hold an exclusive lock on the home for the run; a second `impact run` is refused, not queued.
    The kernel drops the lock when the process dies, so a killed run never blocks the next one."""
    with exclusive_lock(home.dagster / RUN_LOCK_NAME) as held:
        if not held:
            raise CannotRun(f"another `impact run` is using {home.root}; run again when it has finished")
        yield


def recover_from_crash(home: Home) -> list[Path]:
    """Undo what a killed run may have left: hidden temporaries of atomic writes (never visible
    under their final names, but litter) and a torn last audit line. Safe: we hold the run lock."""
    removed = []
    for zone in (home.staging, home.quarantine, home.published, home.root / "keys"):
        removed += remove_stale_temporaries(zone)
    if home.audit_log.exists():
        AuditLog.for_home(home.root, actor="impact-run").repair_torn_tail()
    return removed


def _materialize_school(instance: dg.DagsterInstance, resource: ImpactHome, school_id: str) -> str | None:
    """Stage one school as its own Dagster run; None on success, else the failure's message."""
    result = dg.materialize(
        [staged_school, staging_meets_contract],  # the blocking check runs in the school's own run
        partition_key=school_id,
        instance=instance,
        resources={"impact": resource},
        raise_on_error=False,
        tags={"school": school_id},
        run_config=QUIET,
    )
    return None if result.success else failure_message(result, "step failed")


def _stage_in_worker(home_root: str, school_id: str, max_export_bytes: int) -> str | None:
    """A worker process's share of a parallel run: the same Dagster instance (SQLite copes with
    concurrent runs), one school's own Parquet files, and the audit log's file lock."""
    home = Home(Path(home_root))
    resource = ImpactHome(home=home_root, max_export_bytes=max_export_bytes)
    return _materialize_school(dagster_instance(home), resource, school_id)


def stage_schools(
    home: Home, instance: dg.DagsterInstance, resource: ImpactHome, schools: list[str], parallel: int
) -> dict[str, str | None]:
    """Each school's outcome (None = staged). One school's failure, or its worker's death, never
    stops another's. `parallel` > 1 runs schools in that many fresh (spawned) processes."""
    outcomes: dict[str, str | None] = {}
    if parallel <= 1 or len(schools) <= 1:
        for school_id in schools:
            outcomes[school_id] = _materialize_school(instance, resource, school_id)
            crash_point("run.school_done")
        return outcomes
    # spawn, not fork: Polars' thread pool does not survive a fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(parallel, len(schools)), mp_context=context) as pool:
        futures = {
            pool.submit(_stage_in_worker, str(home.root), s, resource.max_export_bytes): s for s in schools
        }
        for future in as_completed(futures):
            try:
                outcomes[futures[future]] = future.result()
            except Exception as exc:  # a worker killed or out of memory: that school failed
                outcomes[futures[future]] = f"the worker staging this school died ({type(exc).__name__})"
            crash_point("run.school_done")
    return dict(sorted(outcomes.items()))


def release_committed(home: Home, release_id: str) -> bool:
    """True when the last run finished this very release: tables, manifest, compliance, reports."""
    marker = home.dagster / COMMITTED_RELEASE_NAME
    manifest = home.published / "manifest.json"
    if not (marker.exists() and manifest.exists()):
        return False
    try:
        committed = json.loads(marker.read_text()).get("release")
    except ValueError:
        return False
    return committed == release_id and f'"release": "{release_id}"' in manifest.read_text()


def commit_release(home: Home, release_id: str) -> None:
    atomic_write_text(home.dagster / COMMITTED_RELEASE_NAME, json.dumps({"release": release_id}), mode=0o600)


def run_pipeline(
    home: Home, force: bool = False, fix_permissions: bool = False, parallel: int = 1
) -> RunSummary:
    resource = ImpactHome(home=str(home.root))
    contracts, key = preflight(home, resource.pseudonym_key, fix_permissions)
    with run_lock(home):
        recover_from_crash(home)
        summary = RunSummary(contract_problems=[str(p) for p in contracts.problems])
        pull_from_inbox(home, summary, resource.max_export_bytes)
        release_id = _run_locked(home, resource, contracts, key, force, parallel, summary)
        mirror_release(home, summary, release_id)
        return summary


def pull_from_inbox(home: Home, summary: RunSummary, max_bytes: int) -> None:
    """Exports waiting in the object-storage inbox move into landing/ first. An unreachable bucket
    is reported, and the run goes on with what landing already holds."""
    try:
        report = object_store.pull_configured_inbox(home, "impact-run", max_bytes=max_bytes)
    except object_store.ObjectStoreError as exc:
        summary.storage_problems.append(f"inbox: {exc}")
        return
    if report is None:
        return
    # report.busy: the landing sensor is moving the inbox right now; its exports come next run
    summary.inbox_moved, summary.inbox_left = report.moved, report.left


def mirror_release(home: Home, summary: RunSummary, release_id: str) -> None:
    """The committed release to the publication bucket, unless this release is already there."""
    url = object_store.configured(object_store.PUBLISH_ENV)
    if (
        not url
        or not release_committed(home, release_id)
        or object_store.already_pushed(home, url, release_id)
    ):
        return
    try:
        object_store.push_published(home, url, release_id)
    except object_store.ObjectStoreError as exc:
        summary.storage_problems.append(f"publication: {exc} (the next run tries again)")
        return
    summary.published_to = url


def _run_locked(
    home: Home,
    resource: ImpactHome,
    contracts: ContractSet,
    key: PseudonymKey,
    force: bool,
    parallel: int,
    summary: RunSummary,
) -> str:
    """Stage what changed, then release; the release's id (committed or already so)."""
    instance = dagster_instance(home)
    changed, unchanged = changed_schools(home, contracts, key, resource.max_export_bytes)
    if force:
        changed, unchanged = sorted(changed + unchanged), []
    forget_unreadable_staging(home, changed)
    summary.schools_unchanged = unchanged
    known = set(instance.get_dynamic_partitions(schools_partitions.name))
    new = [s for s in changed + unchanged if s not in known]
    if new:
        instance.add_dynamic_partitions(schools_partitions.name, new)
    for school_id, failure in stage_schools(home, instance, resource, changed, parallel).items():
        if failure is None:
            summary.schools_run.append(school_id)
        else:
            summary.schools_failed[school_id] = failure

    release_id = release_fingerprint(release_inputs(home, contracts, staged_schools(home, contracts)))
    if not force and release_committed(home, release_id):
        return release_id
    manifest = home.published / "manifest.json"
    if manifest.exists() and f'"release": "{release_id}"' in manifest.read_text():
        # A run died after the manifest but before the reports: the release must be redone whole.
        manifest.unlink()
    crash_point("run.release")
    result = dg.materialize(
        [staged_school, published_release, reports, disclosure_audit],
        selection=[published_release, reports],
        instance=instance,
        resources={"impact": resource},
        raise_on_error=False,
        run_config=QUIET,
    )
    if not result.success:
        raise CannotRun(f"the consortium release failed: {failure_message(result, 'release failed')}")
    crash_point("run.committed")
    commit_release(home, release_id)
    summary.released = True
    return release_id
