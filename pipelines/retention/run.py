"""One retention run, as the daily schedule and `impact retention` do it (no Dagster here).

Loads the contracts, plans what is due on `as_of`, and (unless a dry run) applies the plan with the
audit log and, when the pseudonymization key is available, intake's fingerprint so a school whose
raw files go is not re-staged from a thinner landing folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from contracts.loader import ContractSet, load_contracts
from privacy.audit_log import AuditLog
from privacy.keys import PseudonymKey, load_pseudonym_key
from privacy.retention import RetentionPlan, RetentionResult, apply_retention, plan_retention
from privacy.zones import Home
from transforms.intake import school_fingerprint

DEMO_MODE_ENV = "IMPACT_DEMO_MODE"  # as pipelines.resources (imported lazily there: it pulls in Dagster)


class RetentionCannotRun(RuntimeError):
    """Retention cannot even plan (no home folder, a torn audit log, unreadable staging)."""


@dataclass
class RetentionOutcome:
    plan: RetentionPlan
    result: RetentionResult | None  # None for a dry run
    contract_problems: list[str] = field(default_factory=list)


def optional_key(load: Callable[[], PseudonymKey] | None = None) -> PseudonymKey | None:
    """The pseudonymization key if the environment provides one; retention runs without it."""
    import os

    try:
        return (load or (lambda: load_pseudonym_key(demo_mode=os.environ.get(DEMO_MODE_ENV) == "1")))()
    except Exception:  # KeyError_ and friends: their text never holds the key
        return None


def fingerprint_function(
    home: Home, contracts: ContractSet, key: PseudonymKey | None, max_bytes: int | None = None
):
    """Intake's fingerprint of a school, computed exactly as `impact run` does (same size limit)."""
    if key is None:
        return None
    return lambda school_id: school_fingerprint(home, contracts, school_id, key, max_bytes)


def run_retention(
    home: Home,
    as_of: date | None = None,
    *,
    dry_run: bool = False,
    actor: str = "impact-retention",
    key: PseudonymKey | None = None,
    max_bytes: int | None = None,
) -> RetentionOutcome:
    if not home.root.is_dir():
        raise RetentionCannotRun(f"home folder {home.root} does not exist")
    contracts = load_contracts(home.contracts)
    problems = [str(p) for p in contracts.problems]
    as_of = as_of or date.today()
    try:
        plan = plan_retention(home, contracts, as_of)
    except Exception as exc:  # e.g. EncryptionError: staging cannot be read without the master key
        raise RetentionCannotRun(f"cannot plan retention: {exc}") from None
    if dry_run:
        return RetentionOutcome(plan, None, problems)
    audit = AuditLog.for_home(home.root, actor=actor)
    if audit.has_torn_tail:
        raise RetentionCannotRun(
            f"{home.audit_log} ends with a torn line; repair it first (see docs/audit_log.md)"
        )
    result = apply_retention(
        plan, home, audit, fingerprint_of=fingerprint_function(home, contracts, key, max_bytes)
    )
    return RetentionOutcome(plan, result, problems)
