"""`impact datakeys`: the per-school data keys that encrypt staging at rest.

impact datakeys status --home DIR                   which schools have a key (ids, never keys)
impact datakeys shred SCHOOL --home DIR --yes       crypto-shred: every staging copy unreadable
impact datakeys rewrap --home DIR --new-key-file F  master-key rotation (staging untouched)
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from privacy.audit_log import AuditLog
from privacy.encryption import (
    ENV_MASTER_KEY,
    ENV_MASTER_KEY_FILE,
    DataKeyStore,
    EncryptionError,
    MasterKey,
    load_master_key,
    shred_school_key,
)
from privacy.staging_store import forget_derived
from privacy.zones import Home
from transforms.intake import state_path
from transforms.staging import STAGING_DATASETS

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console()
err = Console(stderr=True)
HomeOption = typer.Option(None, "--home", help="The home folder (default: $IMPACT_HOME or ./var).")


@app.callback()
def datakeys() -> None:
    """Per-school data keys (encryption at rest and crypto-shredding)."""


def _home(home: Path | None) -> Home:
    return Home(home.resolve()) if home else Home.from_env()


def _store(home: Home) -> DataKeyStore:
    try:
        return DataKeyStore.from_env(home.root)
    except EncryptionError as exc:
        err.print(f"[red]cannot open the data keys:[/] {exc}")
        raise typer.Exit(2) from None


@app.command()
def status(home: Path | None = HomeOption) -> None:
    """List each school's data key id, creation time and the master key fingerprint that wraps it."""
    target = _home(home)
    store = _store(target)
    table = Table(title="data keys")
    for column in ("school", "key id", "created", "wrapped by master", "unwraps"):
        table.add_column(column)
    for school in store.schools():
        info = store.info(school)
        try:
            store.data_key(school)
            unwraps = "[green]yes[/]"
        except EncryptionError:
            unwraps = "[red]no (other master key)[/]"
        table.add_row(school, info.key_id, info.created_at, info.master_fingerprint, unwraps)
    console.print(table)


@app.command()
def shred(
    school_id: str = typer.Argument(..., help="The school whose data key is destroyed."),
    home: Path | None = HomeOption,
    reason: str = typer.Option("requested", help="Recorded in the audit log (no identifiers)."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: this cannot be undone."),
) -> None:
    """Destroy a school's data key: its staging files and every copy of them become unreadable."""
    if not yes:
        err.print("[red]refused:[/] shredding cannot be undone; add --yes to confirm")
        raise typer.Exit(1)
    target = _home(home)
    audit = AuditLog.for_home(target.root, actor="impact-datakeys-shred")
    if shred_school_key(target, school_id, audit, reason=reason):
        removed = remove_unreadable_staging(target, school_id)
        console.print(
            f"Shredded the data key of {school_id}; its staging copies can no longer be read "
            f"({removed} now-unreadable staging files removed; the next run re-stages it under a new key "
            "if its contract and landing still allow)."
        )
    else:
        console.print(f"{school_id} has no data key (already shredded or never staged).")


def remove_unreadable_staging(home: Home, school_id: str) -> int:
    """Staging files and state of a shredded school: unreadable now, and the state would make the
    next run skip the school and the release fail on them."""
    paths = [home.staging_file(ds, school_id) for ds in STAGING_DATASETS] + [state_path(home, school_id)]
    present = [p for p in paths if p.exists()]
    for path in present:
        path.unlink()
    return len(present) + forget_derived(home, school_id)


@app.command()
def rewrap(
    home: Path | None = HomeOption,
    new_key_file: Path = typer.Option(..., help="File holding the new master key (>= 32 bytes)."),
) -> None:
    """Wrap every data key with a new master key; then point IMPACT_MASTER_KEY_FILE at it."""
    target = _home(home)
    store = _store(target)
    try:
        # The current environment minus the old key: the new one is still checked against the pseudonym key.
        env = {k: v for k, v in os.environ.items() if k != ENV_MASTER_KEY}
        new_master: MasterKey = load_master_key({**env, ENV_MASTER_KEY_FILE: str(new_key_file)})
        for school in store.schools():
            store.rewrap(school, new_master)
    except EncryptionError as exc:
        err.print(f"[red]rewrap stopped:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(f"Rewrapped {len(store.schools())} data keys with master key {new_master.fingerprint}.")
