"""The daily retention schedule and asset, `impact retention`, and `impact audit keygen/sign`
with `impact audit verify --public-key` catching a truncated tail."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "privacy"))  # the retention test helper

import retention_support
from retention_support import copy_home, digests, edit_contract, files_under, set_key_env

from contracts.loader import load_contracts
from pipelines.cli import app as impact_app
from pipelines.commands.audit import app as audit_app
from pipelines.commands.retention import app as retention_app
from pipelines.resources import ImpactHome
from pipelines.retention.assets import daily_retention, retention_defs, retention_enforced
from privacy.audit_log import AuditLog, read_entries
from privacy.zones import Home
from transforms.release_run import run_release

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # rich lays tables out to the terminal's width


def words(output: str) -> str:
    return " ".join(output.split())


AFTER_LANDING = "2027-07-20"  # the demo's exports of 2027-06-15 are past their 30 landing days


@pytest.fixture(scope="session")
def staged_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return retention_support.staged_template(tmp_path_factory)


@pytest.fixture
def home(staged_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    set_key_env(monkeypatch)
    return copy_home(staged_template, tmp_path / "home")


def actions(home: Home) -> list[str]:
    return [e["action"] for e in read_entries(home.audit_log)]


# --- Dagster ------------------------------------------------------------------------------


def test_the_schedule_runs_daily_as_of_its_own_day() -> None:
    defs = dg.Definitions.merge(retention_defs, dg.Definitions(resources={"impact": ImpactHome(home="/x")}))
    schedule = defs.resolve_schedule_def("daily_retention")
    assert schedule.cron_schedule == "30 2 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_job_def("retention_job") is not None
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2027, 7, 20, 2, 30, tzinfo=UTC))
    request = daily_retention(context)
    assert request.run_key == "retention-2027-07-20"
    assert request.run_config["ops"]["retention_enforced"]["config"]["as_of"] == "2027-07-20"


def test_the_asset_deletes_and_reports_counts_only(home: Home) -> None:
    result = dg.materialize(
        [retention_enforced],
        resources={"impact": ImpactHome(home=str(home.root))},
        run_config={"ops": {"retention_enforced": {"config": {"as_of": AFTER_LANDING}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    metadata = result.asset_materializations_for_node("retention_enforced")[0].metadata
    # 3 schools x 6 datasets, plus sch02's teacher survey
    assert metadata["files_deleted"].value == 19 and metadata["rows_deleted"].value == 0
    assert files_under(home.landing) == []
    (entry,) = [e for e in read_entries(home.audit_log) if e["action"] == "retention_run"]
    assert entry["actor"].startswith("run-") and entry["object"]["as_of_date"] == AFTER_LANDING


# --- impact retention ---------------------------------------------------------------------


def test_dry_run_lists_what_would_go_and_changes_nothing(home: Home) -> None:
    edit_contract(home, "sch01", days={("usage", "staging"): 30})
    edit_contract(home, "sch03", status="retired")
    before = digests(home)
    outcome = runner.invoke(
        retention_app, ["--home", str(home.root), "--as-of", "2026-11-01", "--dry-run"], env=WIDE
    )
    assert outcome.exit_code == 0, outcome.output
    assert "staging/usage/school=sch01/part.parquet" in outcome.output
    assert "staging_days=30" in outcome.output and "contract_withdrawn" in outcome.output
    assert "sch03: everything goes" in outcome.output and "Nothing was changed" in outcome.output
    assert digests(home) == before
    assert not home.audit_log.exists()


def test_a_run_deletes_then_a_second_run_has_nothing_due(home: Home) -> None:
    first = runner.invoke(retention_app, ["--home", str(home.root), "--as-of", AFTER_LANDING])
    assert first.exit_code == 0, first.output
    assert "Deleted 19 file(s)" in first.output
    after_first = digests(home)
    second = runner.invoke(retention_app, ["--home", str(home.root), "--as-of", AFTER_LANDING])
    assert second.exit_code == 0 and "Nothing is due as of 2027-07-20" in second.output
    assert digests(home) == after_first
    assert actions(home).count("retention_run") == 2


def test_a_bad_date_or_home_is_a_clear_error(tmp_path: Path) -> None:
    bad_date = runner.invoke(retention_app, ["--home", str(tmp_path), "--as-of", "20/07/2027"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    missing = runner.invoke(retention_app, ["--home", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in words(missing.output)


def test_the_release_is_recomputed_after_retention_and_says_so(home: Home) -> None:
    contracts = load_contracts(home.contracts)
    first = run_release(home, contracts)
    edit_contract(home, "sch01", days={("usage", "staging"): 30})
    contracts = load_contracts(home.contracts)
    assert run_release(home, contracts).release_id != first.release_id  # the contract itself changed
    unchanged = run_release(home, contracts)
    assert unchanged.unchanged
    outcome = runner.invoke(retention_app, ["--home", str(home.root), "--as-of", "2026-10-20"])
    assert outcome.exit_code == 0, outcome.output
    again = run_release(home, contracts)
    assert not again.unchanged and again.release_id != unchanged.release_id
    manifest = json.loads((home.published / "manifest.json").read_text())
    assert manifest["inputs"]["retention"].startswith("applied as of 2026-10-20")


# --- impact audit keygen / sign / verify --------------------------------------------------


def _log_with_entries(home: Home, count: int) -> None:
    log = AuditLog.for_home(home.root, actor="test")
    for i in range(count):
        log.append("validated", school_id="sch01", dataset="usage", rows=i)


def test_sign_then_verify_with_the_public_key_catches_a_truncated_tail(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.create()
    _log_with_entries(home, 6)
    officer = tmp_path / "officer"
    officer.mkdir()
    private, public = officer / "audit.pem", officer / "audit.pub"
    made = runner.invoke(audit_app, ["keygen", "--private-key", str(private), "--public-key", str(public)])
    assert made.exit_code == 0, made.output
    assert (private.stat().st_mode & 0o777) == 0o600
    signed = runner.invoke(audit_app, ["sign", "--home", str(home.root), "--private-key", str(private)])
    assert signed.exit_code == 0 and "seq 5" in signed.output
    ok = runner.invoke(impact_app, ["audit", "verify", "--home", str(home.root), "--public-key", str(public)])
    assert ok.exit_code == 0 and "OK: 6 entries verify, signed head at seq 5" in ok.output
    lines = home.audit_log.read_bytes().splitlines(keepends=True)
    home.audit_log.write_bytes(b"".join(lines[:4]))  # cut the last two entries
    cut = runner.invoke(
        impact_app, ["audit", "verify", "--home", str(home.root), "--public-key", str(public)]
    )
    assert cut.exit_code == 1
    assert "FAILED (truncated tail)" in cut.output and "2 entries cut from the tail" in cut.output


def test_keygen_never_replaces_a_key_and_sign_refuses_a_broken_log(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.create()
    _log_with_entries(home, 3)
    private, public = tmp_path / "audit.pem", tmp_path / "audit.pub"
    assert (
        runner.invoke(
            audit_app, ["keygen", "--private-key", str(private), "--public-key", str(public)]
        ).exit_code
        == 0
    )
    original = private.read_bytes()
    again = runner.invoke(audit_app, ["keygen", "--private-key", str(private), "--public-key", str(public)])
    assert again.exit_code == 1 and "refusing" in again.output and private.read_bytes() == original
    lines = home.audit_log.read_text().splitlines(keepends=True)
    home.audit_log.write_text(lines[0] + lines[2])  # a deleted line
    refused = runner.invoke(audit_app, ["sign", "--home", str(home.root), "--private-key", str(private)])
    assert refused.exit_code == 1 and "does not verify" in refused.output
    assert not (home.audit / "head.sig.json").exists()
    no_key = runner.invoke(
        audit_app, ["sign", "--home", str(home.root), "--private-key", str(tmp_path / "x")]
    )
    assert no_key.exit_code == 2 and "no private key" in no_key.output


def test_as_of_defaults_to_today(home: Home) -> None:
    outcome = runner.invoke(retention_app, ["--home", str(home.root), "--dry-run"], env=WIDE)
    assert outcome.exit_code == 0
    assert f"as of {date.today()}" in outcome.output
