"""The `impact` command line (typer + rich)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pipelines.commands import audit as audit_commands
from pipelines.commands import datakeys, key_rotation
from pipelines.commands import retention as retention_command
from privacy.zones import Home

app = typer.Typer(
    help="Privacy-preserving cross-school impact analytics.", no_args_is_help=True, add_completion=False
)
contracts_app = typer.Typer(help="Data-sharing contracts.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
app.add_typer(audit_app, name="audit")
app.add_typer(key_rotation.app, name="keys", help="The pseudonymization key: rotate it.")
app.add_typer(datakeys.app, name="datakeys", help="Per-school data keys of encryption at rest.")
app.command("retention")(retention_command.retention)
audit_app.command("verify")(audit_commands.verify)
audit_app.command("keygen")(audit_commands.keygen)
audit_app.command("sign")(audit_commands.sign)
console = Console()
err = Console(stderr=True)

HomeOption = typer.Option(None, "--home", help="The home folder (default: $IMPACT_HOME or ./var).")
DEMO_KEY_NAME = "demo-pseudonym.key"


def resolve_home(home: Path | None) -> Home:
    if home is None:
        return Home.from_env()
    return Home(home.resolve())


def use_demo_key(home: Home) -> None:
    """Only the demo creates a key, outside the data zones, and says so."""
    from pipelines.resources import DEMO_MODE_ENV
    from privacy.keys import ENV_KEY, ENV_KEY_FILE, create_demo_key

    os.environ[DEMO_MODE_ENV] = "1"
    from privacy.encryption import ENV_MASTER_KEY, ENV_MASTER_KEY_FILE, create_demo_master_key

    if not (os.environ.get(ENV_MASTER_KEY) or os.environ.get(ENV_MASTER_KEY_FILE)):
        master = home.root / "keys" / "demo-master.key"
        existed = master.exists()
        os.environ[ENV_MASTER_KEY_FILE] = str(create_demo_master_key(master))
        console.print(
            f"[yellow]{'Using' if existed else 'Created'} a DEMO master key (encryption at rest) at {master}"
            " — for the synthetic demo only; real runs refuse it.[/]"
        )
    if os.environ.get(ENV_KEY) or os.environ.get(ENV_KEY_FILE):
        return
    path = home.root / "keys" / DEMO_KEY_NAME
    existed = path.exists()
    create_demo_key(path)
    os.environ[ENV_KEY_FILE] = str(path)
    verb = "Using" if existed else "Created"
    console.print(
        f"[yellow]{verb} a DEMO pseudonymization key at {path} — for the synthetic demo only; real runs refuse it.[/]"
    )


@app.command()
def generate(
    home: Path = HomeOption,
    schools: int = typer.Option(8, min=1, help="Number of schools."),
    students_per_school: int = typer.Option(400, min=10),
    weeks: int = typer.Option(36, min=1, max=52),
    seed: int = typer.Option(7),
    true_effect: float = typer.Option(0.25, help="Standardized effect of high use versus none."),
) -> None:
    """Write a synthetic consortium: contracts and messy exports with fake PII."""
    from demo.generate import generate_consortium

    target = resolve_home(home)
    target.create()
    summary = generate_consortium(
        target.root,
        schools=schools,
        students_per_school=students_per_school,
        weeks=weeks,
        seed=seed,
        true_effect=true_effect,
    )
    console.print(
        f"Generated {len(summary.school_ids)} schools under {target.root} (contracts/ and landing/)."
    )


def _print_run(summary, home: Home) -> None:
    table = Table(title="impact run")
    table.add_column("school")
    table.add_column("outcome")
    from transforms.intake import read_state

    for s in summary.schools_run:
        state = read_state(home, s) or {}
        quarantined = len(state.get("quarantined", []))
        rejected = sum(r.get("rows", 0) for f in state.get("files", []) for r in f.get("rejects", []))
        notes = [
            f"{quarantined} file(s) quarantined" if quarantined else "",
            f"{rejected} row(s) rejected" if rejected else "",
        ]
        detail = ", ".join(n for n in notes if n)
        table.add_row(s, "staged" + (f" [yellow]({detail}; see the compliance report)[/]" if detail else ""))
    for s in summary.schools_unchanged:
        table.add_row(s, "unchanged (no new exports)")
    for s, why in summary.schools_failed.items():
        table.add_row(s, f"[red]failed: {why}[/]")
    console.print(table)
    for problem in summary.contract_problems:
        err.print(f"[red]contract refused:[/] {problem}")
    console.print("Release " + ("published" if summary.released else "unchanged") + f": {home.published}")
    _print_storage(summary)


def _print_storage(summary) -> None:
    from storage.object_store import public_key

    if summary.inbox_moved:
        console.print(f"Moved {len(summary.inbox_moved)} export(s) from the inbox into landing/")
    for key, why in summary.inbox_left.items():
        err.print(f"[yellow]left in the inbox:[/] {public_key(key)}: {why}")
    if summary.published_to:
        console.print(f"Release mirrored to {summary.published_to}")
    for problem in summary.storage_problems:
        err.print(f"[red]object storage:[/] {problem}")


def _run(home: Home, force: bool, fix_permissions: bool = False, parallel: int = 2) -> None:
    from pipelines.runner import CannotRun, run_pipeline

    try:
        summary = run_pipeline(home, force=force, fix_permissions=fix_permissions, parallel=parallel)
    except CannotRun as exc:
        err.print(f"[red]impact run cannot run:[/] {exc}")
        raise typer.Exit(2) from None
    _print_run(summary, home)
    if summary.storage_problems:
        raise typer.Exit(1)


@app.command()
def run(
    home: Path = HomeOption,
    force: bool = typer.Option(False, help="Re-stage every school even if unchanged."),
    fix_permissions: bool = typer.Option(
        False, help="Make restricted zones owner-only (dirs 0700, files 0600) instead of refusing to run."
    ),
    parallel: int = typer.Option(
        2, min=1, help="Schools staged at once, each in its own process (1: serial)."
    ),
) -> None:
    """Run the pipeline: intake, staging, release, reports. Exit 0 when it completed."""
    _run(resolve_home(home), force, fix_permissions, parallel)


@app.command()
def demo(home: Path = HomeOption) -> None:
    """Generate the synthetic consortium (when the home is empty), run it, and say where the outputs are."""
    target = resolve_home(home)
    target.create()
    use_demo_key(target)
    if not any(target.contracts.glob("*.yaml")):
        generate(home=target.root, schools=8, students_per_school=400, weeks=36, seed=7, true_effect=0.25)
        target.fix_permissions()  # files it just wrote: a umask of 002 must not stop the demo
    _run(target, force=False)
    for name in ("impact_report.html", "funder_dashboard.html", "compliance_report.html"):
        console.print(f"  {target.published / name}")


@contracts_app.command("check")
def contracts_check(home: Path = HomeOption) -> None:
    """Validate every contract; explain each error with file, path and fix."""
    from contracts.loader import load_contracts

    target = resolve_home(home)
    result = load_contracts(target.contracts)
    for a in result.agreements:
        console.print(
            f"[green]ok[/] {a.source_file.name}: {a.label} for {a.school_id} ({a.status}, {a.start}..{a.end})"
        )
    for p in result.problems:
        err.print(f"[red]error[/] {p.file}: {p.path}: {p.message}\n      fix: {p.fix}")
    if result.problems or not result.agreements:
        raise typer.Exit(1)
