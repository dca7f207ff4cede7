"""Retention: what is due by dataset and date, ended and withdrawn contracts, real deletion that
the audit log records and verifies, idempotence, and crash safety with a killed subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # importlib mode: the helper beside this file

import retention_support
from retention_support import (
    copy_home,
    digests,
    edit_contract,
    files_under,
    set_key_env,
    subprocess_env,
)

from contracts.loader import load_contracts
from privacy.audit_log import AuditLog, read_entries, verify
from privacy.keys import load_pseudonym_key
from privacy.retention import (
    DEFAULT_QUARANTINE_DAYS,
    RETENTION_MARKER_NAME,
    apply_retention,
    file_date,
    iso_week_end,
    next_deletion_dates,
    plan_retention,
    retention_marker,
    school_standing,
)
from privacy.staging_store import read_staging_frame
from privacy.zones import Home
from transforms.intake import intake_school, read_state, school_fingerprint
from transforms.readers import export_date
from transforms.release_run import release_inputs, staged_schools
from transforms.usage_summary import school_usage

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTHING_DUE = date(2026, 9, 20)  # before any deadline of the demo consortium
AFTER_LANDING = date(2027, 7, 20)  # exports of 2027-06-15 are past their 30 landing days


@pytest.fixture(scope="session")
def staged_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return retention_support.staged_template(tmp_path_factory)


@pytest.fixture
def home(staged_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    set_key_env(monkeypatch)
    return copy_home(staged_template, tmp_path / "home")


def audit_of(home: Home) -> AuditLog:
    return AuditLog.for_home(home.root, actor="impact-retention")


def fingerprints(home: Home):
    contracts, key = load_contracts(home.contracts), load_pseudonym_key()
    return lambda school_id: school_fingerprint(home, contracts, school_id, key)


def run(home: Home, as_of: date, **kwargs):
    plan = plan_retention(home, load_contracts(home.contracts), as_of)
    return plan, apply_retention(plan, home, audit_of(home), **kwargs)


def entries(home: Home, action: str) -> list[dict]:
    return [e for e in read_entries(home.audit_log) if e["action"] == action]


def frame(home: Home, dataset: str, school_id: str) -> pl.DataFrame:
    return read_staging_frame(home.staging_file(dataset, school_id), school_id)


# --- the rules ----------------------------------------------------------------------------


def test_retention_dates_files_as_intake_does() -> None:
    # one function, not two copies kept equal by a test: a change to the rule changes both
    assert file_date is export_date


def test_iso_week_end_is_the_sunday() -> None:
    assert iso_week_end("2026-W37") == date(2026, 9, 13)
    assert iso_week_end("2026-W53") == date(2027, 1, 3)
    assert iso_week_end("2025-W53") is None  # 2025 has 52 ISO weeks
    assert iso_week_end("W37") is None


def test_standing_open_ended_withdrawn_and_missing(home: Home) -> None:
    edit_contract(home, "sch02", status="retired")
    contracts = load_contracts(home.contracts)
    assert school_standing(contracts, "sch01", date(2027, 7, 31)).kind == "open"
    ended = school_standing(contracts, "sch01", date(2027, 8, 1))
    assert (ended.kind, ended.rule) == ("ended", "contract_ended")
    assert "ended on 2027-07-31" in ended.reason
    withdrawn = school_standing(contracts, "sch02", date(2026, 10, 1))
    assert (withdrawn.kind, withdrawn.rule) == ("ended", "contract_withdrawn")
    assert school_standing(contracts, "sch99", date(2026, 10, 1)).kind == "no_contract"


# --- nothing due ----------------------------------------------------------------------------


def test_nothing_due_changes_no_file_and_records_the_run(home: Home) -> None:
    before = digests(home)
    plan, result = run(home, NOTHING_DUE)
    assert plan.is_empty and not result.changed
    assert digests(home) == before
    (entry,) = entries(home, "retention_run")
    assert entry["object"]["n_files_deleted"] == 0 and entry["object"]["as_of_date"] == "2026-09-20"
    assert not entries(home, "deleted")


def test_planning_only_reads(home: Home) -> None:
    edit_contract(home, "sch01", status="retired")
    before = digests(home)
    plan = plan_retention(home, load_contracts(home.contracts), AFTER_LANDING)
    assert len(plan.items) > 10
    assert digests(home) == before and not home.audit_log.exists()


# --- landing --------------------------------------------------------------------------------


def test_landing_files_go_after_their_landing_days_and_staging_stays(home: Home) -> None:
    staged_before = {p: d for p, d in digests(home).items() if p.startswith("staging/") and "_state" not in p}
    day_before = plan_retention(home, load_contracts(home.contracts), date(2027, 7, 15))
    assert {Path(i.path).parent.name for i in day_before.items} == {"resources"}  # 30 full days are kept
    plan, result = run(home, AFTER_LANDING, fingerprint_of=fingerprints(home))
    assert all(i.zone == "landing" and i.rule == "landing_days=30" for i in plan.items)
    assert files_under(home.landing) == []
    assert result.files_deleted == len(plan.items) == 19  # 3 schools x 6 datasets + sch02's teacher survey
    staged_after = {p: d for p, d in digests(home).items() if p.startswith("staging/") and "_state" not in p}
    assert staged_after == staged_before
    deleted = entries(home, "deleted")
    assert len(deleted) == 19 and all(len(e["object"]["sha256"]) == 64 for e in deleted)
    # The fingerprint follows the thinner landing folder, so the next run does not re-stage.
    assert sorted(result.fingerprints_refreshed) == ["sch01", "sch02", "sch03"]
    from transforms.scrubbing import roster_text_scrubber

    again = intake_school(
        home, load_contracts(home.contracts), "sch01", load_pseudonym_key(), roster_text_scrubber
    )
    assert again.skipped
    assert not (home.state / RETENTION_MARKER_NAME).exists()  # staging untouched: the release need not change


def test_without_the_key_raw_files_still_go_and_a_note_says_what_follows(home: Home) -> None:
    _plan, result = run(home, AFTER_LANDING)
    assert files_under(home.landing) == [] and not result.fingerprints_refreshed
    assert any("re-stages the school" in note for note in result.notes)


# --- staging --------------------------------------------------------------------------------


def test_usage_and_comment_rows_go_by_the_end_of_their_week(home: Home) -> None:
    edit_contract(home, "sch01", days={("usage", "staging"): 30, ("comments", "staging"): 30})
    usage = frame(home, "usage", "sch01")
    # 2026-W37 ends Sunday 2026-09-13; +30 days = 2026-10-13 < 2026-10-20; W38 (ends 09-20) is kept.
    expected = usage.filter(pl.col("week") == "2026-W37").height
    assert 0 < expected < usage.height
    assert "2026-W37" in school_usage(home, "sch01").by_week["week"].to_list()  # a release's cache
    assert school_usage(home, "sch02") is not None
    plan, result = run(home, date(2026, 10, 20))
    # the cache held the deleted week's minutes: it goes with the rows (the other school's stays)
    assert not list(home.derived_of("sch01").glob("*"))
    assert list(home.derived_of("sch02").glob("*"))
    (usage_item,) = [i for i in plan.items if i.path == "staging/usage/school=sch01/part.parquet"]
    assert (usage_item.action, usage_item.weeks, usage_item.rows) == ("delete_rows", ("2026-W37",), expected)
    after = frame(home, "usage", "sch01")
    assert after.height == usage.height - expected
    assert after.filter(pl.col("week") == "2026-W37").is_empty()
    assert after.equals(usage.filter(pl.col("week") != "2026-W37"))
    # Other schools' usage (365 staging days) is untouched.
    assert frame(home, "usage", "sch02").filter(pl.col("week") == "2026-W37").height > 0
    (logged,) = [e for e in entries(home, "deleted") if e["object"].get("path") == usage_item.path]
    assert logged["object"]["rows"] == expected
    assert (logged["object"]["rows_in"], logged["object"]["rows_out"]) == (usage.height, after.height)
    assert logged["object"]["retention_rule"] == "staging_days=30"
    run_entry = entries(home, "retention_run")[-1]["object"]
    assert run_entry["n_rows_deleted"] == result.rows_deleted == sum(i.rows or 0 for i in plan.items)
    assert verify(home.audit_log).ok
    assert read_state(home, "sch01")["staged_rows"]["usage"] == after.height
    # The release sees a changed input and its manifest will say retention was applied.
    inputs = release_inputs(
        home, load_contracts(home.contracts), staged_schools(home, load_contracts(home.contracts))
    )
    assert inputs["retention"] == retention_marker(home)
    assert inputs["retention"].startswith("applied as of 2026-10-20")


def test_a_partition_whose_rows_all_expire_is_removed(home: Home) -> None:
    edit_contract(home, "sch01", days={("comments", "staging"): 1})
    plan, _result = run(home, date(2027, 1, 1))
    (item,) = [i for i in plan.items if i.dataset == "comments"]
    assert item.action == "delete_file" and item.rows == item.rows_total
    assert not home.staging_file("comments", "sch01").exists()
    assert not home.staging_file("comments", "sch01").parent.exists()
    assert "comments" not in read_state(home, "sch01")["staged_rows"]


def test_datasets_without_a_date_go_by_the_date_of_their_export(home: Home) -> None:
    edit_contract(home, "sch02", days={("assessments", "staging"): 10})
    kept = plan_retention(home, load_contracts(home.contracts), date(2027, 6, 25))
    assert not [i for i in kept.items if i.zone == "staging"]  # 2027-06-15 + 10 days: still held
    plan, _ = run(home, date(2027, 6, 26))
    (item,) = [i for i in plan.items if i.zone == "staging"]
    assert (item.dataset, item.school_id, item.action) == ("assessments", "sch02", "delete_file")
    assert "export dated 2027-06-15" in item.reason
    assert not home.staging_file("assessments", "sch02").exists()
    assert home.staging_file("assessments", "sch01").exists()


# --- whole schools --------------------------------------------------------------------------


def _held_by(home: Home, school_id: str) -> list[Path]:
    held = files_under(home.landing / school_id) + files_under(home.quarantine / school_id)
    held += [p for p in files_under(home.staging) if f"school={school_id}" in p.parts]
    return (
        held + sorted(home.state.glob(f"{school_id}.json")) + sorted(home.state.glob(f"{school_id}.*.json"))
    )


def test_an_ended_contract_removes_everything_of_the_school(home: Home) -> None:
    edit_contract(home, "sch01", end="2027-06-30")
    (home.quarantine / "sch01").mkdir(parents=True, exist_ok=True)
    (home.quarantine / "sch01" / "odd_2027-06-20.csv").write_text("x\n")
    (home.quarantine / "sch01" / "odd_2027-06-20.csv.reason.json").write_text('{"dataset": "usage"}')
    (home.state / "sch01.extra.json").write_text("{}")
    (home.state / "sch010.json").write_text("{}")  # another school's name that merely starts alike
    for school in ("sch01", "sch02"):  # what a release caches from staging goes with the staging
        assert school_usage(home, school) is not None
    other = {p: d for p, d in digests(home).items() if "sch02" in p or "sch03" in p}
    plan, result = run(home, date(2027, 7, 5))
    assert not list(home.derived_of("sch01").glob("*"))
    assert list(home.derived_of("sch02").glob("usage.*.parquet"))
    assert plan.ended_schools == {"sch01": "contract dsa-sch01 v1.0.0 ended on 2027-06-30"}
    assert _held_by(home, "sch01") == []
    assert not (home.landing / "sch01").exists() and not (home.quarantine / "sch01").exists()
    assert (home.state / "sch010.json").exists()
    assert "sch01" not in staged_schools(home, load_contracts(home.contracts))
    # Other schools lose only their own due files (the resources export of 2026-09-01).
    survivors = {p: d for p, d in digests(home).items() if "sch02" in p or "sch03" in p}
    assert set(other) - set(survivors) == {
        f"landing/{s}/resources/resources_2026-09-01.csv" for s in ("sch02", "sch03")
    }
    assert result.schools_ended == ["sch01"]
    # Its data key is shredded: any copy of its staging (a backup) can no longer be decrypted.
    assert not (home.root / "keys" / "datakeys" / "sch01.json").exists()
    assert (home.root / "keys" / "datakeys" / "sch02.json").exists()
    (shredded,) = entries(home, "data_key_shredded")
    assert shredded["object"]["school_id"] == "sch01"
    assert entries(home, "retention_run")[-1]["object"]["school_ids"] == ["sch01"]
    rows_logged = sum(
        e["object"].get("rows", 0) for e in entries(home, "deleted") if "staging/" in e["object"]["path"]
    )
    assert rows_logged == result.rows_deleted > 0
    assert verify(home.audit_log).ok


def test_a_withdrawn_contract_removes_everything_before_its_end(home: Home) -> None:
    edit_contract(home, "sch02", status="deprecated")
    plan, _ = run(home, NOTHING_DUE)
    assert "withdrawn" in plan.ended_schools["sch02"]
    assert _held_by(home, "sch02") == []
    assert _held_by(home, "sch01") and _held_by(home, "sch03")


# --- quarantine and schools without a contract ---------------------------------------------


def _set_mtime(path: Path, day: date) -> None:
    moment = datetime(day.year, day.month, day.day, 12).timestamp()
    os.utime(path, (moment, moment), follow_symlinks=False)


def test_quarantine_and_contractless_files_wait_their_limit(home: Home) -> None:
    folder = home.quarantine / "sch02"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "usage_2026-09-01.csv").write_text("x\n")
    (folder / "usage_2026-09-01.csv.reason.json").write_text('{"dataset": "usage"}')
    (folder / "link.csv.reason.json").write_text('{"dataset": "usage"}')  # a refused link: reason only
    _set_mtime(folder / "link.csv.reason.json", date(2026, 9, 5))
    stray = home.landing / "sch99" / "usage" / "usage_2026-09-01.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("x\n")
    _set_mtime(stray, date(2026, 9, 2))
    limit = plan_retention(home, load_contracts(home.contracts), date(2026, 10, 1))
    assert not [i for i in limit.items if i.zone == "quarantine"]  # 2026-09-01 + 30 days: held
    assert DEFAULT_QUARANTINE_DAYS == 30
    plan, _ = run(home, date(2026, 10, 6))
    quarantined = [i for i in plan.items if i.zone == "quarantine"]
    assert {i.rule for i in quarantined} == {"quarantine_days=30"} and len(quarantined) == 2
    assert files_under(folder) == []
    (stray_item,) = [i for i in plan.items if i.school_id == "sch99"]
    assert stray_item.rule == "no_contract_grace=14d" and not stray.exists()


def test_a_contractless_school_gets_a_grace_period(home: Home) -> None:
    stray = home.landing / "sch99" / "roster" / "roster_2026-09-01.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("x\n")
    _set_mtime(stray, date(2026, 9, 10))  # arrived after its export date: the grace counts from arrival
    plan = plan_retention(home, load_contracts(home.contracts), date(2026, 9, 24))
    assert not [i for i in plan.items if i.school_id == "sch99"]
    plan = plan_retention(home, load_contracts(home.contracts), date(2026, 9, 25))
    assert [i.path for i in plan.items if i.school_id == "sch99"] == [
        "landing/sch99/roster/roster_2026-09-01.csv"
    ]


def test_a_folder_name_the_log_refuses_does_not_stop_other_deletions(home: Home) -> None:
    """A contractless school folder of digits alone (an NCES code): its file goes after the grace,
    its school_id field logged as a digest, and the other schools' due deletions happen too."""
    stray = home.landing / "360007702877" / "usage" / "usage_2026-09-01.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("x\n")
    _set_mtime(stray, date(2026, 9, 2))
    canary = home.landing / "jane.doe@example.org" / "usage" / "usage_2026-09-01.csv"  # a sender's slip
    canary.parent.mkdir(parents=True)
    canary.write_text("x\n")
    _set_mtime(canary, date(2026, 9, 2))
    quarantined = home.quarantine / "sch02" / "usage_2026-09-01.csv"
    quarantined.parent.mkdir(parents=True, exist_ok=True)
    quarantined.write_text("x\n")
    plan, _ = run(home, date(2026, 10, 6))
    assert {i.school_id for i in plan.items} >= {"360007702877", "jane.doe@example.org", "sch02"}
    assert not stray.exists() and not canary.exists() and not quarantined.exists()
    assert "jane.doe" not in home.audit_log.read_text()
    deleted = [e["object"] for e in entries(home, "deleted")]
    withheld = [d for d in deleted if d["school_id"].startswith("school-withheld-")]
    assert len(withheld) == 2  # both folders' names are withheld in the school_id field
    # Issue 17: a folder no contract names is the sender's word (it may be a student's name), so
    # it is withheld in the reason and the path too (before, its digits stood in the sentence).
    assert "360007702877" not in home.audit_log.read_text()
    for entry in withheld:
        assert entry["school_id"] in entry["reason"]
        assert entry["path"].startswith(f"landing/{entry['school_id']}/usage/name-withheld-")
    assert verify(home.audit_log).ok


def test_a_stale_temporary_goes_and_a_fresh_one_stays(home: Home) -> None:
    partition = home.staging_file("usage", "sch01").parent
    stale, fresh = partition / ".part.parquet.abc.tmp", partition / ".part.parquet.def.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    _set_mtime(stale, date(2026, 1, 1))
    # landing: an interrupted inbox download goes after a day; a younger one may be an upload
    landing = home.landing / "sch01" / "usage"
    old_download, in_flight = landing / ".usage_2026-09-01.csv.x1.tmp", landing / ".usage.csv.x2.tmp"
    old_download.write_bytes(b"raw")
    in_flight.write_bytes(b"raw")
    _set_mtime(old_download, date(2026, 1, 1))
    run(home, NOTHING_DUE)
    assert not stale.exists() and fresh.exists()
    assert not old_download.exists() and in_flight.exists()
    (logged,) = [e for e in entries(home, "deleted") if e["object"]["path"].startswith("landing/")]
    assert (
        logged["object"]["retention_rule"] == "stale_temporary" and logged["object"]["school_id"] == "sch01"
    )


# --- the audit log --------------------------------------------------------------------------


def test_no_identifier_or_value_reaches_the_audit_log(home: Home) -> None:
    odd = home.landing / "sch01" / "usage" / "jane.doe@example.org_2026-09-01.csv"
    odd.write_text("x\n")
    named = home.landing / "sch01" / "usage" / "Maria_Lopez_2011-03-04.csv"  # no e-mail or id shape
    named.write_text("x\n")
    edit_contract(home, "sch01", end="2027-06-30")
    pids = frame(home, "students", "sch01").get_column("student_pid").to_list()
    run(home, date(2027, 7, 5))
    text = home.audit_log.read_text()
    assert "@" not in text and "jane" not in text and "Maria" not in text and not named.exists()
    assert not any(pid in text for pid in pids)
    assert any("name-withheld-" in e["object"]["file"] for e in entries(home, "deleted"))
    assert verify(home.audit_log).ok


def test_a_second_run_changes_nothing(home: Home) -> None:
    edit_contract(home, "sch01", days={("usage", "staging"): 30})
    edit_contract(home, "sch03", status="retired")
    _, first = run(home, date(2026, 11, 1))
    assert first.changed
    after_first = digests(home)
    plan, second = run(home, date(2026, 11, 1))
    assert plan.is_empty and not second.changed
    assert digests(home) == after_first
    last = entries(home, "retention_run")[-1]["object"]
    assert (last["n_files_deleted"], last["n_rows_deleted"]) == (0, 0)
    assert verify(home.audit_log).ok


# --- crash safety ---------------------------------------------------------------------------

CRASHING_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import date
    from pathlib import Path
    import privacy.atomic, privacy.retention as retention
    from contracts.loader import load_contracts
    from privacy.audit_log import AuditLog
    from privacy.zones import Home

    home, mode, n = Home(Path(sys.argv[1])), sys.argv[2], int(sys.argv[3])
    calls = {"n": 0}

    def count_then_die(original):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > n:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return wrapper

    if mode == "items":  # killed between deletions
        retention._apply_item = count_then_die(retention._apply_item)
    else:  # killed inside an atomic rewrite: the new file is written, not yet renamed
        privacy.atomic.os.replace = count_then_die(privacy.atomic.os.replace)
    plan = retention.plan_retention(home, load_contracts(home.contracts), date.fromisoformat(sys.argv[4]))
    retention.apply_retention(plan, home, AuditLog.for_home(home.root, actor="impact-retention"))
    """
)
CRASH_DAY = date(2026, 11, 1)


def _crash_setup(home: Home) -> None:
    for school_id in ("sch01", "sch02", "sch03"):
        edit_contract(home, school_id, days={("usage", "staging"): 30, ("comments", "staging"): 30})
    edit_contract(home, "sch03", status="retired")


def _snapshot(home: Home) -> dict[str, object]:
    """Every data file's digest; a staging partition's frame (decrypted) instead of its digest."""
    state: dict[str, object] = dict(digests(home))
    for path in files_under(home.staging):
        if path.name == "part.parquet":
            school_id = path.parent.name.removeprefix("school=")
            name = path.relative_to(home.root).as_posix()
            # Compared by content: encryption at rest makes every rewrite's bytes differ.
            state[name] = read_staging_frame(path, school_id)
    return state


def _same(a: object, b: object) -> bool:
    return a.equals(b) if isinstance(a, pl.DataFrame) else a == b


@pytest.mark.parametrize(
    ("mode", "after"),
    [
        ("items", 9),
        ("replace", 2),
        pytest.param("items", 1, marks=pytest.mark.slow),
        pytest.param("replace", 0, marks=pytest.mark.slow),
    ],
)
def test_a_killed_run_leaves_old_or_new_files_and_a_rerun_finishes(
    staged_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, after: int
) -> None:
    set_key_env(monkeypatch)
    reference, crashed = (
        copy_home(staged_template, tmp_path / "ref"),
        copy_home(staged_template, tmp_path / "crash"),
    )
    for target in (reference, crashed):
        _crash_setup(target)
    old = _snapshot(crashed)
    run(reference, CRASH_DAY)
    new = _snapshot(reference)
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_RUN)
    process = subprocess.run(
        [sys.executable, str(script), str(crashed.root), mode, str(after), CRASH_DAY.isoformat()],
        env=subprocess_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    middle = _snapshot(crashed)
    assert digests(crashed) != digests(reference)  # really interrupted before the end
    for name, value in middle.items():
        if Path(name).name.startswith("."):
            continue  # a hidden temporary: no reader sees it, the re-run removes it
        if name.startswith("staging/_state/"):
            # Bookkeeping moves one atomic version per deletion: complete JSON, maybe in between.
            json.loads((crashed.root / name).read_text())
            continue
        assert (name in old and _same(value, old[name])) or (name in new and _same(value, new[name])), name
    assert not crashed.audit_log.exists() or verify(crashed.audit_log).ok
    # The re-run (stale temporaries are cleaned at once here) completes the job.
    plan = plan_retention(crashed, load_contracts(crashed.contracts), CRASH_DAY, stale_temporary_seconds=0)
    apply_retention(plan, crashed, audit_of(crashed))
    final = _snapshot(crashed)
    ignored = {"staging/_state/" + RETENTION_MARKER_NAME}  # its marker chains over the interrupted run too
    assert set(final) - ignored == set(new) - ignored
    assert [k for k in sorted(set(new) - ignored) if not _same(final[k], new[k])] == []
    deleted_paths = {
        e["object"]["path"]
        for e in entries(crashed, "deleted")
        if e["object"]["retention_rule"] != "stale_temporary"
    }
    assert deleted_paths == {e["object"]["path"] for e in entries(reference, "deleted")}  # none unrecorded
    assert verify(crashed.audit_log).ok
    assert json.loads((crashed.state / RETENTION_MARKER_NAME).read_text())["as_of"] == CRASH_DAY.isoformat()


def test_next_deletion_dates_say_when_each_school_loses_something(home: Home) -> None:
    edit_contract(home, "sch01", days={("usage", "staging"): 30})
    edit_contract(home, "sch03", status="retired")
    upcoming = next_deletion_dates(home, load_contracts(home.contracts), NOTHING_DUE)
    # sch01: its 2026-W37 usage (ends 2026-09-13) is due on 2026-10-14; sch02: the resources export of
    # 2026-09-01 on 2026-10-02; sch03 is withdrawn: everything is due now.
    assert upcoming == {"sch01": date(2026, 10, 2), "sch02": date(2026, 10, 2), "sch03": NOTHING_DUE}
    edit_contract(home, "sch01", days={("resources", "landing"): 60})
    assert next_deletion_dates(home, load_contracts(home.contracts), NOTHING_DUE)["sch01"] == date(
        2026, 10, 14
    )
    # The date it names is the first day a plan finds something of the school due.
    for school_id, day in next_deletion_dates(home, load_contracts(home.contracts), NOTHING_DUE).items():
        contracts = load_contracts(home.contracts)
        before = plan_retention(home, contracts, day - timedelta(days=1))
        assert day == NOTHING_DUE or not [i for i in before.items if i.school_id == school_id]
        assert [i for i in plan_retention(home, contracts, day).items if i.school_id == school_id]
