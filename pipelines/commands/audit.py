"""`impact audit verify`, `keygen` and `sign`: checking the log, and the data officer's signed head.

Registered under `impact audit` (pipelines/cli.py). The private key belongs outside the home
folder, on the officer's machine; the public key is what `verify --public-key` checks against.
Without a key, `verify` still holds the log to the head each published manifest recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from privacy.zones import Home

app = typer.Typer(
    help="The tamper-evident audit log: signing keys and the signed head.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


@app.command("verify")
def verify(
    home: Path | None = typer.Option(
        None, "--home", help="The home folder (default: $IMPACT_HOME or ./var)."
    ),
    public_key: Path | None = typer.Option(None, help="Ed25519 public key (PEM) of the signed head."),
    manifest: list[Path] = typer.Option(
        [],
        "--manifest",
        help="A copy of an earlier published manifest.json kept elsewhere (repeatable); "
        "published/manifest.json is always checked when present.",
    ),
) -> None:
    """Check the whole hash chain, the signed head and the head each manifest recorded; say where
    it breaks. Exit 1 when it does not verify, 2 when a manifest cannot be read."""
    from privacy.audit_anchors import ManifestUnreadable, manifest_anchors
    from privacy.audit_log import verify as verify_log

    target = Home(home.resolve()) if home else Home.from_env()
    try:
        anchors, notes = manifest_anchors(target.root, manifest)
    except ManifestUnreadable as exc:
        err.print(f"[red]cannot verify:[/] {exc}")
        raise typer.Exit(2) from None
    report = verify_log(target.audit_log, public_key, anchors)
    (console if report.ok else err).print(report.summary())
    for note in (*notes, *report.notes) if report.ok else ():
        console.print(f"  note: {note}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("keygen")
def keygen(
    private_key: Path = typer.Option(
        ..., "--private-key", help="Where to write the Ed25519 private key (PEM, 0600)."
    ),
    public_key: Path = typer.Option(..., "--public-key", help="Where to write the public key (PEM)."),
) -> None:
    """Create the Ed25519 key pair that signs the audit log's head; refuses to overwrite a key."""
    from privacy.audit_log import generate_signing_keypair

    for path in (private_key, public_key):
        if path.exists():
            err.print(f"[red]{path} exists;[/] refusing to replace a signing key (move it away first)")
            raise typer.Exit(1)
    fingerprint = generate_signing_keypair(private_key, public_key)
    console.print(f"Wrote {private_key} (private, keep it off the pipeline's machine) and {public_key}.")
    console.print(f"Public key fingerprint: {fingerprint}")


@app.command("sign")
def sign(
    home: Path | None = typer.Option(
        None, "--home", help="The home folder (default: $IMPACT_HOME or ./var)."
    ),
    private_key: Path = typer.Option(
        ..., "--private-key", help="The Ed25519 private key (PEM) from `audit keygen`."
    ),
) -> None:
    """Sign the last entry of a log that verifies into audit/head.sig.json."""
    from privacy.audit_log import AuditLogError, head_path, load_private_key, sign_head

    target = Home(home.resolve()) if home else Home.from_env()
    if not private_key.is_file():
        err.print(f"[red]no private key at {private_key}[/] (create one with `impact audit keygen`)")
        raise typer.Exit(2)
    if _inside(private_key, target.root):
        err.print(
            f"[yellow]warning:[/] the private key is inside the home folder ({private_key}); "
            "whoever can edit the log can then re-sign it. Keep it on the data officer's machine."
        )
    try:
        key = load_private_key(private_key)
        written = sign_head(target.audit_log, key)
    except (AuditLogError, ValueError) as exc:
        err.print(f"[red]not signed:[/] {exc}")
        raise typer.Exit(1) from None
    head = json.loads(head_path(target.audit_log).read_text())
    console.print(f"Signed the head at seq {head['seq']} into {written}.")
