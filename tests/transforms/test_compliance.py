"""The compliance report's per-contract facts: standing, retention schedule, expectation results."""

from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

from contracts.loader import load_contracts
from privacy.keys import PseudonymKey
from privacy.retention import expired, file_date, iso_week_end
from privacy.staging_store import read_staging_frame
from transforms.compliance import (
    contract_standing,
    deletion_due,
    expectation_results,
    retention_schedule,
    undeclared_columns,
    undeclared_columns_text,
)
from transforms.intake import intake_school, read_state
from transforms.validation import write_expectations

KEY = PseudonymKey(b"compliance-test-key-" + b"x" * 24)


def no_scrub(texts, *roster_and_names):
    return texts, Counter()


def staged_sch01(home):
    contracts = load_contracts(home.contracts)
    intake_school(home, contracts, "sch01", KEY, no_scrub)
    return contracts.for_school("sch01")[0]


def test_standing_by_status_and_dates(tiny_consortium_template):
    agreement = load_contracts(tiny_consortium_template / "contracts").for_school("sch01")[0]
    assert contract_standing(agreement, agreement.start - timedelta(days=1)) == "not_started"
    assert contract_standing(agreement, agreement.start) == "active"
    assert contract_standing(agreement, agreement.end - timedelta(days=90)) == "expiring"
    assert contract_standing(agreement, agreement.end + timedelta(days=1)) == "expired"
    assert contract_standing(replace(agreement, status="retired"), agreement.start) == "retired"


def test_deletion_due_is_the_first_day_retention_deletes():
    held = date(2026, 9, 1)
    due = deletion_due(held, 30)
    assert expired(held, 30, due) and not expired(held, 30, due - timedelta(days=1))


def test_retention_schedule_dates_oldest_data_and_next_deletion(tiny_home, test_key_env):
    agreement = staged_sch01(tiny_home)
    today = agreement.start
    schedule = retention_schedule(tiny_home, agreement, read_state(tiny_home, "sch01"), today)

    usage = schedule["datasets"]["usage"]
    landing_dates = [file_date(p) for p in (tiny_home.landing / "sch01" / "usage").iterdir()]
    assert usage["oldest_landing"] == min(landing_dates).isoformat()
    assert (
        usage["landing_deletion_due"] == deletion_due(min(landing_dates), usage["landing_days"]).isoformat()
    )
    weeks = read_staging_frame(tiny_home.staging_file("usage", "sch01"), "sch01")["week"].unique().to_list()
    oldest_week_end = min(iso_week_end(w) for w in weeks)
    assert usage["oldest_staging"] == oldest_week_end.isoformat()
    assert usage["staging_deletion_due"] == deletion_due(oldest_week_end, usage["staging_days"]).isoformat()
    # Undated staging (students) is dated by the roster export it came from.
    roster = schedule["datasets"]["roster"]
    assert (
        roster["oldest_staging"]
        == min(file_date(p) for p in (tiny_home.landing / "sch01" / "roster").iterdir()).isoformat()
    )
    every_due = [v for d in schedule["datasets"].values() for k, v in d.items() if k.endswith("_due") and v]
    assert schedule["next_deletion_due"] == min(every_due)
    assert schedule["overdue"] is False
    later = retention_schedule(tiny_home, agreement, read_state(tiny_home, "sch01"), date(2099, 1, 1))
    assert later["overdue"] is True


def test_expectation_results_passed_failed_stale_and_not_run(tiny_home, test_key_env):
    assert expectation_results(tiny_home, "sch01")["status"] == "not_run"
    staged_sch01(tiny_home)
    fingerprint = read_state(tiny_home, "sch01")["fingerprint"]
    failing_suite = {
        "dataset": "students", "rows": 80, "success": False, "evaluated": 30, "failed_count": 1,
        "results": [
            {"expectation": "expect_column_values_to_be_unique", "column": "student_pid", "success": False,
             "unexpected_count": 2},
            {"expectation": "expect_column_values_to_not_be_null", "column": "frl", "success": True,
             "unexpected_count": 0},
        ],
    }  # fmt: skip
    report = {
        "school_id": "sch01", "contract": "dsa-sch01@1.0.0", "fingerprint": fingerprint, "passed": False,
        "datasets_checked": ["students"], "datasets_failed": ["students"], "expectations_evaluated": 30,
        "expectations_failed": 1, "suites": {"students": failing_suite},
    }  # fmt: skip
    write_expectations(tiny_home, report)
    result = expectation_results(tiny_home, "sch01")
    assert result["status"] == "failed" and result["expectations_failed"] == 1
    assert result["failures"] == [{"dataset": "students", **failing_suite["results"][0]}]
    write_expectations(tiny_home, {**report, "passed": True})
    assert expectation_results(tiny_home, "sch01")["status"] == "passed"
    write_expectations(tiny_home, {**report, "fingerprint": "an-older-intake"})
    assert expectation_results(tiny_home, "sch01")["status"] == "stale"


def test_undeclared_columns_are_counted_by_dataset_never_named():
    """Issue 17: a header is the school's text (a column may be named after a student), so the
    compliance report counts dropped columns instead of listing their names (as it did before)."""
    files = [
        {"dataset": "roster", "dropped_columns": ["parent_name"]},
        {"dataset": "roster", "dropped_columns": ["notes", "parent_name"]},
        {"dataset": "usage", "dropped_columns": []},
        {"dataset": "comments", "undeclared_columns_dropped": 3, "status": "accepted"},
        {"dataset": "attendance", "dropped_columns": ["x"], "status": "superseded"},
    ]
    counts = undeclared_columns(files)
    assert counts == {"comments": 3, "roster": 2}
    assert undeclared_columns_text(counts)["roster"] == [
        "2 undeclared columns dropped (names are not reported)"
    ]


def test_audit_entries_are_read_once_per_version_of_the_log_and_skip_lines_that_are_not_entries(tmp_path):
    from privacy.audit_log import AuditLog
    from privacy.zones import Home
    from transforms.compliance import _audit_entries

    home = Home(tmp_path)
    home.audit_log.parent.mkdir(parents=True)
    AuditLog(home.audit_log, "test").append("deleted", school_id="sch01", dataset="usage", rows=3)
    first = _audit_entries(home, "deleted")
    assert [(e["school_id"], e["rows"]) for e in first] == [("sch01", 3)]
    first[0]["rows"] = 999  # a caller's edit never reaches the next caller
    assert _audit_entries(home, "deleted")[0]["rows"] == 3

    # a torn line, a list, an entry whose object is not a mapping: skipped, the rest still read
    with home.audit_log.open("a") as handle:
        handle.write('{"action": "deleted", "object": {"school_id": "sch\n[1, 2]\n')
        handle.write('{"action": "deleted", "object": "sch09"}\n')
    assert [e["school_id"] for e in _audit_entries(home, "deleted")] == ["sch01"]
    with home.audit_log.open("a") as handle:  # a new version of the file is read again
        handle.write('{"action": "deleted", "object": {"school_id": "sch02"}}\n')
    assert [e["school_id"] for e in _audit_entries(home, "deleted")] == ["sch01", "sch02"]
