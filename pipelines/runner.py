"""`impact run`: register school partitions, stage changed schools, then release and render.

Each school is its own Dagster run (partition), so one school's broken export never stops
another's; the consortium run uses every school whose intake staged a roster.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from contracts.loader import ContractSet, load_contracts
from pipelines.consortium.assets import published_release, reports
from pipelines.consortium.checks import disclosure_audit
from pipelines.resources import ImpactHome
from pipelines.schools.assets import staged_school
from pipelines.schools.partitions import schools_partitions
from privacy.encryption import EncryptionError, load_master_key
from privacy.keys import PseudonymKey
from privacy.zones import Home
from transforms.intake import discover_schools, read_state, school_fingerprint
from transforms.publication import release_fingerprint
from transforms.release_run import release_inputs, staged_schools

INSTANCE_TEMPLATE = Path(__file__).resolve().parent.parent / "dagster.yaml"
# The CLI prints its own summary; Dagster's per-event console lines go to its event log instead.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


class CannotRun(RuntimeError):
    """The pipeline cannot start at all (no key, no contracts, unreadable home)."""


@dataclass
class RunSummary:
    schools_run: list[str] = field(default_factory=list)
    schools_unchanged: list[str] = field(default_factory=list)
    schools_failed: dict[str, str] = field(default_factory=dict)
    released: bool = False
    contract_problems: list[str] = field(default_factory=list)


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
        load_master_key()  # encryption at rest: refuse now rather than fail every school's staging
    except EncryptionError as exc:
        raise CannotRun(str(exc)) from None
    return contracts, key


def check_zone_permissions(home: Home, fix: bool) -> None:
    """Refuse to start when a restricted zone is open to group/others, unless asked to repair it."""
    home.tighten_received()  # senders' and Dagster's files: see privacy.zones.SELF_TIGHTENED_ZONES
    if fix:
        home.fix_permissions()
    problem = home.permission_problem()
    if problem:
        raise CannotRun(problem)


def changed_schools(home: Home, contracts: ContractSet, key: PseudonymKey) -> tuple[list[str], list[str]]:
    changed, unchanged = [], []
    for school_id in sorted(
        set(discover_schools(home)) | {s for s in contracts.schools if read_state(home, s)}
    ):
        state = read_state(home, school_id)
        if state and state.get("fingerprint") == school_fingerprint(home, contracts, school_id, key):
            unchanged.append(school_id)
        else:
            changed.append(school_id)
    return changed, unchanged


def run_pipeline(home: Home, force: bool = False, fix_permissions: bool = False) -> RunSummary:
    resource = ImpactHome(home=str(home.root))
    contracts, key = preflight(home, resource.pseudonym_key, fix_permissions)
    summary = RunSummary(contract_problems=[str(p) for p in contracts.problems])
    instance = dagster_instance(home)
    changed, unchanged = changed_schools(home, contracts, key)
    if force:
        changed, unchanged = sorted(changed + unchanged), []
    summary.schools_unchanged = unchanged
    known = set(instance.get_dynamic_partitions(schools_partitions.name))
    new = [s for s in changed + unchanged if s not in known]
    if new:
        instance.add_dynamic_partitions(schools_partitions.name, new)
    resources = {"impact": resource}
    for school_id in changed:
        result = dg.materialize(
            [staged_school],
            partition_key=school_id,
            instance=instance,
            resources=resources,
            raise_on_error=False,
            tags={"school": school_id},
            run_config=QUIET,
        )
        if result.success:
            summary.schools_run.append(school_id)
        else:
            summary.schools_failed[school_id] = failure_message(result, "step failed")

    manifest = home.published / "manifest.json"
    inputs = release_inputs(home, contracts, staged_schools(home, contracts))
    if (
        not force
        and manifest.exists()
        and f'"release": "{release_fingerprint(inputs)}"' in manifest.read_text()
    ):
        return summary
    result = dg.materialize(
        [staged_school, published_release, reports, disclosure_audit],
        selection=[published_release, reports],
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
    )
    if not result.success:
        raise CannotRun(f"the consortium release failed: {failure_message(result, 'release failed')}")
    summary.released = True
    return summary
