"""Every corpus case gives its expected outcome, with a message naming file, row and field.

Intake runs as the Dagster asset runs it (plain function, real audit log); free-text scrubbing
is replaced by an identity function because it is not what these cases exercise.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from export_corpus import CASES, OUTSIDE, SCHOOL, Case, build_case

from contracts.loader import load_contracts
from privacy.audit_log import AuditLog, read_entries, verify
from privacy.keys import load_pseudonym_key
from privacy.staging_store import read_staging_frame
from privacy.zones import Home
from transforms.intake import IntakeResult, intake_school, public_file_name


def no_scrub(texts: pl.Series, roster: pl.DataFrame, *_teachers) -> tuple[pl.Series, Counter]:
    return texts, Counter()


def run_case(case: Case, base: Path, tmp_path: Path) -> tuple[Home, IntakeResult]:
    home = Home(build_case(case, base, tmp_path / case.name))
    home.create()
    result = intake_school(
        home,
        load_contracts(home.contracts),
        SCHOOL,
        load_pseudonym_key(),
        no_scrub,
        audit=AuditLog.for_home(home.root, actor="corpus-test"),
        max_bytes=case.expected.max_bytes,
    )
    return home, result


def outcome_of(result: IntakeResult, file: str) -> tuple[str, str, dict]:
    """(outcome, message, report) of the file the case is about."""
    quarantined = [q for q in result.quarantined if q["file"] == file]
    if quarantined:
        return "quarantined", quarantined[-1]["reason"], quarantined[-1]
    reports = [f for f in result.files if f["file"] == file]
    assert reports, f"{file!r} is neither staged nor quarantined: {[f['file'] for f in result.files]}"
    report = reports[-1]
    return report["status"], report["message"], report


def expected_first_row(first_row: int | None, report: dict) -> int | None:
    """Negative rows count from the end (the last row is -1)."""
    return report["rows_in"] + 1 + first_row if first_row is not None and first_row < 0 else first_row


def test_the_corpus_has_at_least_thirty_named_cases():
    names = [c.name for c in CASES]
    assert len(names) >= 30 and len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_outcome_and_message(case: Case, corpus_base: Path, tmp_path: Path, test_key_env):
    home, result = run_case(case, corpus_base, tmp_path)
    outcome, message, report = outcome_of(result, case.expected.file)
    assert outcome == case.expected.outcome, message
    for fragment in case.expected.fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if case.expected.reject:
        field, reason, first_row = case.expected.reject
        matching = [r for r in report["rejects"] if r["field"] == field and reason in r["reason"]]
        assert matching, report["rejects"]
        assert matching[0]["first_row"] == expected_first_row(first_row, report)
    if outcome == "quarantined":
        reason_file = home.quarantine / SCHOOL / f"{report['quarantined_as']}.reason.json"
        assert json.loads(reason_file.read_text())["reason"] == message
    for check in case.checks:
        CHECKS[check](home, result, report)
    assert verify(home.audit_log).ok
    assert_nothing_escaped(home)


def assert_nothing_escaped(home: Home) -> None:
    """The outside folder is as built, and quarantine never holds a link or a nested path."""
    outside = home.root.parent / OUTSIDE
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert "secret" in (outside / "secret.csv").read_text()
    if home.quarantine.exists():
        for path in home.quarantine.rglob("*"):
            assert not path.is_symlink()
            assert home.quarantine in (path.parent, path.parent.parent)


def _all_rows(home: Home, result: IntakeResult, report: dict) -> None:
    assert report["rows_in"] == report["rows_staged"] or report["dataset"] == "roster", report
    assert not report["rejects"], report["rejects"]


def _dropped_parent_name(home: Home, result: IntakeResult, report: dict) -> None:
    assert report["dropped_columns"] == ["parent_name"]
    staged = read_staging_frame(home.staging_file("attendance", SCHOOL), SCHOOL)
    assert "parent_name" not in staged.columns
    assert "Lovelace" not in staged.write_csv()


def _audit_both(home: Home, result: IntakeResult, report: dict) -> None:
    received = {
        (e["object"]["file"], e["object"]["status"])
        for e in read_entries(home.audit_log)
        if e["action"] == "received" and e["object"].get("dataset") == "attendance"
    }
    # The audit log names files by digest only (issue 17: a name may hold a person's name).
    assert (public_file_name("attendance_2027-05-01.csv"), "superseded") in received
    assert (public_file_name("attendance_2027-06-15.csv"), "accepted") in received


def _fallback_roster(home: Home, result: IntakeResult, report: dict) -> None:
    older = next(f for f in result.files if f["file"] == "roster_2027-05-01.csv")
    assert older["status"] == "accepted"
    assert result.staged_rows["students"] > 0


def _audit_no_email(home: Home, result: IntakeResult, report: dict) -> None:
    assert "jane.doe" not in home.audit_log.read_text()


def _outside_untouched(home: Home, result: IntakeResult, report: dict) -> None:
    assert result.staged_rows.get("students", 0) > 0  # the rest of the school still staged


CHECKS = {
    "all_rows": _all_rows,
    "dropped_parent_name": _dropped_parent_name,
    "audit_both": _audit_both,
    "fallback_roster": _fallback_roster,
    "audit_no_email": _audit_no_email,
    "outside_untouched": _outside_untouched,
}
