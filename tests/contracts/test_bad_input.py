"""Bad exports under a valid contract: the file (or the rows) that break it are refused with a reason
naming file and field, and nothing else of the school is lost.

(Contract-level bad input — unknown class or action, overlaps, date formats, min_cell_size below the
floor — is in test_loader.py and test_schema_check.py; a school folder without a contract in
tests/e2e/test_cli.py.)
"""

import json
from collections import Counter

import polars as pl

from contracts.loader import load_contracts
from privacy.keys import PseudonymKey
from transforms.intake import intake_school, read_state

KEY = PseudonymKey(b"bad-input-test-key-" + b"x" * 24)


def no_scrub(texts: pl.Series, *roster_and_names):
    return texts, Counter()


def rewrite_csv(path, change) -> None:
    frame = pl.read_csv(path, infer_schema=False)
    change(frame).write_csv(path)


def test_missing_required_column_quarantines_that_file_only(tiny_home, test_key_env):
    attendance = next((tiny_home.landing / "sch01" / "attendance").glob("*.csv"))
    rewrite_csv(attendance, lambda f: f.drop("days_present"))
    result = intake_school(tiny_home, load_contracts(tiny_home.contracts), "sch01", KEY, no_scrub)

    (refused,) = result.quarantined
    assert refused["file"] == attendance.name and refused["dataset"] == "attendance"
    assert "required column 'days_present' is missing" in refused["reason"]
    reason_file = tiny_home.quarantine / "sch01" / f"{attendance.name}.reason.json"
    assert json.loads(reason_file.read_text())["reason"] == refused["reason"]
    assert not attendance.exists() and (tiny_home.quarantine / "sch01" / attendance.name).exists()
    # Everything else of the school is staged as usual.
    assert set(result.staged_rows) == {"students", "usage", "assessments", "comments", "resources"}
    assert not tiny_home.staging_file("attendance", "sch01").exists()


def test_wrong_type_rejects_rows_by_field_and_reason_without_values(tiny_home, test_key_env):
    attendance = next((tiny_home.landing / "sch01" / "attendance").glob("*.csv"))
    rewrite_csv(
        attendance,
        lambda f: f.with_columns(
            pl.when(pl.int_range(pl.len()) < 3)
            .then(pl.lit("forty-two"))
            .otherwise(pl.col("days_enrolled"))
            .alias("days_enrolled")
        ),
    )
    rows_in = pl.read_csv(attendance).height
    result = intake_school(tiny_home, load_contracts(tiny_home.contracts), "sch01", KEY, no_scrub)

    report = next(f for f in result.files if f["dataset"] == "attendance")
    assert report["status"] == "rejected_rows"
    rejected = {r["field"]: r for r in report["rejects"]}
    assert rejected["days_enrolled"]["rows"] == 3 and "integer" in rejected["days_enrolled"]["reason"]
    assert result.staged_rows["attendance"] == rows_in - 3
    assert "forty-two" not in json.dumps(read_state(tiny_home, "sch01"))


def test_folders_no_contract_names_are_quarantined_and_logged_as_digests(tiny_home, test_key_env):
    """A school folder no contract names (here digits alone, an NCES code the log would refuse)
    is quarantined and logged under a digest of its name, with no state file named after it. A
    dataset folder named like an e-mail address is quarantined, logged under a digest too.
    (Before issue 17 the NCES folder's file stayed in landing and its intake raised.)"""
    from privacy.audit_log import AuditLog, verify
    from transforms.intake import name_digest, public_file_name

    usage = next((tiny_home.landing / "sch01" / "usage").glob("*.csv"))
    numeric = tiny_home.landing / "360007702877" / "usage" / usage.name
    numeric.parent.mkdir(parents=True)
    numeric.write_bytes(usage.read_bytes())
    odd = tiny_home.landing / "sch01" / "jane.doe@example.org" / "notes.csv"
    odd.parent.mkdir()
    odd.write_text("a,b\n1,2\n")
    audit = AuditLog.for_home(tiny_home.root, actor="test")
    contracts = load_contracts(tiny_home.contracts)

    stray = intake_school(tiny_home, contracts, "360007702877", KEY, no_scrub, audit=audit)
    assert [q["file"] for q in stray.quarantined] == [usage.name]
    assert not numeric.exists() and (tiny_home.quarantine / "360007702877" / usage.name).exists()
    assert not list(tiny_home.state.glob("360007702877*"))

    result = intake_school(tiny_home, contracts, "sch01", KEY, no_scrub, audit=audit)
    assert [q["file"] for q in result.quarantined] == ["notes.csv"]
    assert not odd.exists() and (tiny_home.quarantine / "sch01" / "notes.csv").exists()
    log = tiny_home.audit_log.read_text()
    assert "jane.doe" not in log and "360007702877" not in log and "notes.csv" not in log
    entries = [json.loads(x)["object"] for x in log.splitlines() if '"quarantined"' in x]
    stray_entry = next(e for e in entries if e["school_id"] != "sch01")
    assert stray_entry["school_id"] == name_digest("360007702877", "school")
    (entry,) = [e for e in entries if e["file"] == public_file_name("notes.csv")]
    assert entry["dataset"].startswith("folder-") and verify(tiny_home.audit_log).ok
