"""`impact retention --home DIR [--as-of DATE] [--dry-run]`: delete what the contracts no longer allow."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from privacy.retention import RetentionPlan
from privacy.zones import Home

app = typer.Typer(add_completion=False)


def _as_of(value: str | None) -> date:
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"'{value}' is not a date; write it as YYYY-MM-DD", param_hint="--as-of"
        ) from None


def plan_table(plan: RetentionPlan, title: str) -> Table:
    table = Table(title=title)
    for column in ("path (under home)", "school", "dataset", "rows", "rule", "reason"):
        table.add_column(column, overflow="fold", no_wrap=column.startswith(("path", "rule")))
    for item in plan.items:
        rows = (
            ""
            if item.rows is None
            else f"{item.rows}" + (f" of {item.rows_total}" if item.rows_total else "")
        )
        table.add_row(item.path, item.school_id, item.dataset, rows, item.rule, item.reason)
    return table


@app.command()
def retention(
    home: Path | None = typer.Option(
        None, "--home", help="The home folder (default: $IMPACT_HOME or ./var)."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Apply the rules as of this day (YYYY-MM-DD; default today)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; change nothing."),
) -> None:
    """Delete what the contracts no longer allow: raw files, staging rows, ended schools. Exit 0 when done."""
    from pipelines.retention.run import RetentionCannotRun, optional_key, run_retention

    console, err = Console(), Console(stderr=True)  # made per call: the terminal's width then
    target = Home(home.resolve()) if home else Home.from_env()
    day = _as_of(as_of)
    try:
        outcome = run_retention(target, day, dry_run=dry_run, actor="impact-retention", key=optional_key())
    except RetentionCannotRun as exc:
        err.print(f"[red]impact retention cannot run:[/] {exc}")
        raise typer.Exit(2) from None
    plan, result = outcome.plan, outcome.result
    for problem in outcome.contract_problems:
        err.print(f"[yellow]contract refused (its school counts as having no contract):[/] {problem}")
    for warning in plan.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    for school_id, why in sorted(plan.ended_schools.items()):
        console.print(f"[bold]{school_id}[/]: everything goes — {why}")
    if plan.is_empty:
        console.print(f"Nothing is due as of {day}." + ("" if dry_run else " Nothing was changed."))
        return
    verb = "would go" if dry_run else "deleted"
    console.print(plan_table(plan, f"Retention as of {day}: what {verb}"))
    if result is None:
        console.print(f"Dry run: {plan.summary()}. Nothing was changed.")
        return
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}")
    console.print(
        f"Deleted {result.files_deleted} file(s), rewrote {result.partitions_rewritten} staging partition(s), "
        f"removed {result.rows_deleted} staging row(s); recorded in {target.audit_log}."
    )
