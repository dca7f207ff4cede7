"""`impact keys rotate --home DIR`: re-pseudonymize staging under a new key version.

The new key comes from IMPACT_PSEUDONYM_KEY (or IMPACT_PSEUDONYM_KEY_FILE) with
IMPACT_PSEUDONYM_KEY_VERSION bumped; the old key is not needed, because staging is re-derived from
the raw exports in landing/ (see privacy/rotation.py and docs/pseudonymization.md). A school whose
raw exports are gone (retention) or have changed since it was staged makes the rotation refuse,
before anything is touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from contracts.loader import ContractSet, load_contracts
from privacy.audit_log import AuditLog, UnsafeAuditObject, validate_object
from privacy.keys import KeyError_, PseudonymKey, load_pseudonym_key
from privacy.rotation import RotationRefused, RotationReport, rotate_staging
from privacy.zones import DERIVED_FOLDER, Home
from transforms.intake import discover_exports, intake_school, public_file_name, read_state
from transforms.scrubbing import roster_text_scrubber
from transforms.staging import STAGING_DATASETS, file_digest
from transforms.validation import agreement_for_staging, validate_school, write_expectations

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console()
err = Console(stderr=True)
# `_derived` (cached reductions, old pseudonyms) is retired with the old staging and not replaced:
# the next release derives it again from the new staging.
STAGING_ENTRIES = (*STAGING_DATASETS, "_state", DERIVED_FOLDER)
DEMO_MODE_ENV = "IMPACT_DEMO_MODE"  # same switch as pipelines.resources (not imported: no Dagster here)


@app.callback()
def keys() -> None:
    """The pseudonymization key."""


def staged_school_ids(home: Home, contracts: ContractSet) -> list[str]:
    """Schools with an intake state (`_state/<school>.json`) or any staging file."""
    with_state = {s for s in contracts.schools if read_state(home, s)}
    with_files = {
        p.parent.name.removeprefix("school=")
        for ds in STAGING_DATASETS
        for p in home.staging.glob(f"{ds}/school=*/part.parquet")
    }
    return sorted(with_state | with_files)


def landing_problems(home: Home, school_id: str) -> list[str]:
    """Why landing can no longer reproduce this school's staging: exports deleted or new ones pending."""
    state = read_state(home, school_id) or {}
    recorded = {
        (f["dataset"], f["file"], f["sha256"]) for f in state.get("files", []) if f.get("status") != "failed"
    }
    landed, _ = discover_exports(home, school_id)
    # state records hold names as intake published them (a PII-looking name becomes a digest)
    present = {
        (x.dataset, public_file_name(x.path.name), file_digest(x.path))
        for x in landed
        if not x.path.is_symlink()
    }
    problems = [
        f"{school_id}: raw export {ds}/{name} is no longer in landing (deleted by retention?)"
        for ds, name, _ in sorted(recorded - present)
    ]
    problems += [
        f"{school_id}: export {ds}/{name} arrived after the last staging (run `impact run` first)"
        for ds, name, _ in sorted(present - recorded)
    ]
    return problems


def rotate_keys(home: Home, key: PseudonymKey, contracts: ContractSet) -> RotationReport | None:
    """Re-stage every staged school under `key` and record `key_rotated`; None when nothing is staged."""
    schools = staged_school_ids(home, contracts)
    if not schools:
        return None
    problems = [p for s in schools for p in landing_problems(home, s)]
    if problems:
        raise RotationRefused(
            "staging cannot be re-derived from landing for every school, so nothing was rotated: "
            + "; ".join(problems[:10])
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        )

    def restage(draft_home: Home, school_id: str) -> None:
        # audit=None: the draft may be discarded; the rotation is recorded once, below
        intake_school(draft_home, contracts, school_id, key, roster_text_scrubber, audit=None, force=True)
        # the expectation verdict is tied to the staging fingerprint: check the new staging too
        agreement = agreement_for_staging(draft_home, contracts, school_id)
        if agreement is not None:
            write_expectations(draft_home, validate_school(draft_home, agreement, school_id))

    # Checked before the old staging is swapped out, so a rotation never completes unlogged.
    report = rotate_staging(home, key, schools, restage, STAGING_ENTRIES, before_swap=_loggable)
    AuditLog.for_home(home.root, actor="impact-keys-rotate").append("key_rotated", **_rotation_entry(report))
    return report


def _loggable(report: RotationReport) -> None:
    try:
        validate_object(_rotation_entry(report))
    except UnsafeAuditObject as exc:
        raise RotationRefused(
            f"the audit log would refuse this rotation's entry ({exc}): nothing was rotated"
        ) from None


def _rotation_entry(report: RotationReport) -> dict:
    old = ",".join(report.old_key_versions)
    try:
        validate_object({"old_key_version": old})
    except UnsafeAuditObject:  # a version of digits alone, staged before such versions were refused
        old = ",".join(f"version {v}" for v in report.old_key_versions)
    return {
        "old_key_version": old,
        "new_key_version": report.new_key_version,
        "school_ids": report.schools,
        "rows": report.rows,
    }


@app.command()
def rotate(
    home: Path | None = typer.Option(
        None, "--home", help="The home folder (default: $IMPACT_HOME or ./var)."
    ),
) -> None:
    """Re-pseudonymize staging under the key version in IMPACT_PSEUDONYM_KEY_VERSION (a new key)."""
    target = Home(home.resolve()) if home else Home.from_env()
    if not target.staging.is_dir():
        err.print(f"[red]impact keys rotate cannot run:[/] {target.root} has no staging/ zone")
        raise typer.Exit(2)
    try:
        key = load_pseudonym_key(demo_mode=os.environ.get(DEMO_MODE_ENV) == "1")
        report = rotate_keys(target, key, load_contracts(target.contracts))
    except (KeyError_, RotationRefused) as exc:  # their text names schools and files, never a key
        err.print(f"[red]impact keys rotate refused:[/] {exc}")
        raise typer.Exit(2) from None
    if report is None:
        console.print("Nothing is staged: the next `impact run` stages under the new key.")
        return
    console.print(
        f"Rotated staging of {len(report.schools)} school(s), {report.rows} rows: key version "
        f"{', '.join(report.old_key_versions) or 'none'} -> {report.new_key_version}. "
        "Published files are unchanged; `impact run` re-releases from the new staging."
    )
