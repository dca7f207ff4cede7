"""Consent opt-outs: planted in a roster flag and in an `opt_outs` file, for all scopes and for one
purpose, they leave staging and that purpose's tables — and nothing else changes."""

from collections import Counter
from datetime import date

import polars as pl
import pytest
import yaml

from contracts.loader import load_contracts
from privacy import optouts
from privacy.audit_log import AuditLog
from privacy.keys import load_pseudonym_key
from privacy.staging_store import read_staging_frame
from transforms import metrics
from transforms.compliance import contract_section
from transforms.intake import intake_school
from transforms.readers import read_export
from transforms.release import build_tables
from transforms.staging import STAGING_DATASETS, roster_linkage

SCHOOLS = ("sch01", "sch02", "sch03")
STUDENT_DATASETS = ("students", "usage", "assessments", "attendance", "comments")


def no_scrub(texts: pl.Series, roster: pl.DataFrame, *_teachers):
    return texts, Counter()


# --- the pure rules ----------------------------------------------------------------------------


def test_flags_and_scopes_are_read_generously_toward_privacy():
    roster = pl.DataFrame(
        {
            "student_pid": list("abcdefg"),
            "opt_out": ["Y", "", None, "learning_gains", "reach; usage", "banana", "no"],
        }
    )
    opted = optouts.from_roster(roster, date(2026, 9, 1))
    rows = set(opted.frame.select("student_pid", "scope").iter_rows())
    assert rows == {("a", "all"), ("d", "learning_gains"), ("e", "reach"), ("e", "usage"), ("f", "all")}
    assert opted.unrecognized_scopes == 1  # "banana" is read as all, and counted


def test_the_earliest_request_wins_and_summaries_hold_no_identifiers():
    early = optouts.OptOuts(
        pl.DataFrame({"student_pid": ["a"], "scope": ["all"], "requested_on": [date(2026, 9, 1)]})
    )
    late = optouts.OptOuts(
        pl.DataFrame(
            {"student_pid": ["a", "b"], "scope": ["all", "usage"], "requested_on": [date(2026, 10, 1)] * 2}
        )
    )
    summary = optouts.combined(late, early).summary()
    assert summary == [
        {"scope": "all", "requested_on": "2026-09-01", "students": 1},
        {"scope": "usage", "requested_on": "2026-10-01", "students": 1},
    ]


def test_compliance_counts_are_suppressed_and_dated():
    summary = [
        {"scope": "all", "requested_on": "2026-09-01", "students": 3},
        {"scope": "all", "requested_on": "2026-10-01", "students": 9},
    ]
    applied = [
        {"time": "2026-10-02T00:00:00Z", "purpose": "all", "since": "2026-10-01"},
        {"time": "2026-09-02T00:00:00Z", "purpose": "all", "since": "2026-09-01"},
        {"time": "2026-10-09T00:00:00Z", "purpose": "all", "since": "2026-09-01"},  # re-applied later
    ]
    published = [
        {"time": "2026-09-01T12:00:00Z", "digest": "r1" * 20},
        {"time": "2026-09-20T00:00:00Z", "digest": "r2"},
    ]
    rows = optouts.compliance_rows(summary, applied, published, min_cell_size=10)
    assert rows["all"]["students"] == 12
    first, second = rows["all"]["requests"]
    assert first["students"] == "fewer than 10" and first["took_effect"] == "2026-09-02T00:00:00Z"
    assert [r["release"] for r in first["releases_predating"]] == ["r1" * 8]
    assert [r["release"] for r in second["releases_predating"]] == ["r1" * 8, "r2"]
    assert optouts.reported_count(0, 10) == 0


# --- end to end through intake, staging and the release tables ---------------------------------


def declare_opt_outs(contract_path) -> None:
    """The school's contract declares the roster flag and an opt_outs dataset (CSV)."""
    doc = yaml.safe_load(contract_path.read_text())

    def prop(name, logical, privacy_class, action, required=False):
        custom = [
            {"property": "privacyClass", "value": privacy_class},
            {"property": "action", "value": action},
        ]
        return {"name": name, "logicalType": logical, "required": required, "customProperties": custom}

    roster = next(s for s in doc["schema"] if s["name"] == "roster")
    roster["properties"].append(prop("opt_out", "string", "attribute", "drop"))
    doc["schema"].append(
        {
            "name": "opt_outs",
            "physicalType": "table",
            "customProperties": [{"property": "fileFormat", "value": "csv"}],
            "properties": [
                prop("student_id", "string", "linkage_key", "pseudonymize", required=True),
                prop("date", "date", "attribute", "keep"),
                prop("scope", "string", "attribute", "keep"),
            ],
        }
    )
    contract_path.write_text(yaml.safe_dump(doc, sort_keys=False))


def staging(home, dataset, school):
    path = home.staging_file(dataset, school)
    return read_staging_frame(path, school) if path.exists() else None


def intake_all(home, key):
    contracts = load_contracts(home.contracts)
    audit = AuditLog.for_home(home.root, actor="test")
    for school in SCHOOLS:
        intake_school(home, contracts, school, key, no_scrub, audit=audit)
    return contracts


def candidates(home, contracts) -> list[str]:
    """sch01 students with usage and a pre-test, so every table could show them."""
    agreement = contracts.for_school("sch01")[0]

    def ids(dataset, keep=lambda f: f):
        path = next((home.landing / "sch01" / dataset).iterdir())
        return set(keep(read_export(path, agreement.datasets[dataset]).frame)["student_id"].to_list())

    with_pre = ids("assessments", lambda f: f.filter(pl.col("term").str.to_lowercase() == "pre"))
    return sorted(ids("roster") & ids("usage") & with_pre)[:4]


def pids_of(home, contracts, key, student_ids) -> dict[str, str]:
    terms = contracts.for_school("sch01")[0].datasets["roster"]
    roster = read_export(next((home.landing / "sch01" / "roster").iterdir()), terms).frame
    linked = roster_linkage(roster, "sch01", terms, key)
    return dict(
        linked.filter(pl.col("student_id").is_in(student_ids)).select("student_id", "student_pid").iter_rows()
    )


@pytest.fixture
def opted_home(tiny_home, test_key_env):
    """Stage the consortium, then sch01 reports four opt-outs at its next delivery and re-stages."""
    key = load_pseudonym_key()
    contracts = intake_all(tiny_home, key)
    before = {(ds, s): staging(tiny_home, ds, s) for ds in STAGING_DATASETS for s in SCHOOLS}
    a, b, c, d = candidates(tiny_home, contracts)
    pid = pids_of(tiny_home, contracts, key, [a, b, c, d])

    declare_opt_outs(tiny_home.contracts / "dsa-sch01.yaml")
    roster_path = next((tiny_home.landing / "sch01" / "roster").iterdir())
    source_id = next(
        f.source for f in contracts.for_school("sch01")[0].datasets["roster"].fields if f.name == "student_id"
    )
    roster = pl.read_csv(roster_path, infer_schema=False)
    flags = {a: "yes", b: "learning_gains"}  # A leaves everything, B leaves learning_gains only
    roster.with_columns(pl.col(source_id).replace_strict(flags, default="").alias("opt_out")).write_csv(
        roster_path
    )
    folder = tiny_home.landing / "sch01" / "opt_outs"
    folder.mkdir()
    pl.DataFrame(
        {"student_id": [c, d], "date": ["2026-10-01", "2026-10-05"], "scope": ["all", "usage"]}
    ).write_csv(folder / "opt_outs_2027-06-15.csv")
    contracts = intake_all(tiny_home, key)
    return tiny_home, contracts, before, {"A": pid[a], "B": pid[b], "C": pid[c], "D": pid[d]}


def test_opt_outs_leave_staging_for_their_scope_and_nothing_else_changes(opted_home):
    home, _, before, pid = opted_home
    gone = [pid["A"], pid["C"]]
    for school in ("sch02", "sch03"):  # other schools: byte-for-byte the same frames
        for ds in STAGING_DATASETS:
            old, new = before[(ds, school)], staging(home, ds, school)
            assert (old is None and new is None) or new.drop(optouts.OPTED_OUT_PURPOSES, strict=False).equals(
                old.drop(optouts.OPTED_OUT_PURPOSES, strict=False)
            ), (ds, school)
    for ds in ("usage", "assessments", "attendance", "comments"):
        old, new = before[(ds, "sch01")], staging(home, ds, "sch01")
        assert new.equals(old.filter(~pl.col("student_pid").is_in(gone))), ds  # only A and C left
    students = staging(home, "students", "sch01")
    assert set(before[("students", "sch01")]["student_pid"]) - set(students["student_pid"]) == set(gone)
    marks = dict(
        students.filter(pl.col(optouts.OPTED_OUT_PURPOSES) != "")
        .select("student_pid", optouts.OPTED_OUT_PURPOSES)
        .iter_rows()
    )
    assert marks == {pid["B"]: "learning_gains", pid["D"]: "usage"}
    assert "opt_out" not in students.columns


def test_purpose_opt_outs_leave_only_that_purposes_tables(opted_home):
    home, contracts, _, pid = opted_home
    release = build_tables(home, contracts, list(SCHOOLS)).tables
    staged = {
        ds: pl.concat([staging(home, ds, s) for s in SCHOOLS], how="diagonal_relaxed")
        for ds in ("students", "usage", "assessments")
    }

    def analysis(without: list[str]):
        students = (
            staged["students"].filter(~pl.col("student_pid").is_in(without)).drop(optouts.OPTED_OUT_PURPOSES)
        )
        return metrics.analysis_frame(students, staged["usage"], staged["assessments"])

    # learning_gains tables leave B out (and B mattered: with B they would differ)
    assert release["sample_flow"].equals(metrics.sample_flow(analysis([pid["B"]])))
    assert not release["sample_flow"].equals(metrics.sample_flow(analysis([])))
    # reach is not a purpose B or D opted out of: both are counted
    assert release["reach"].equals(metrics.reach_table(analysis([])))
    # usage tables leave D's usage out; cross-school use (not opted out of) keeps it
    usage = staged["usage"]
    assert release["usage_by_week"].equals(
        metrics.usage_by_week(usage.filter(pl.col("student_pid") != pid["D"]))
    )
    assert not release["usage_by_week"].equals(metrics.usage_by_week(usage))
    resources = (
        pl.concat([staging(home, "resources", s) for s in SCHOOLS])
        .unique("resource_id", keep="first")
        .sort("resource_id")
    )
    assert release["cross_school_use"].equals(metrics.cross_school_use(usage, resources))


def test_compliance_and_audit_count_opt_outs_without_identifiers(opted_home):
    home, contracts, _, pid = opted_home
    agreement = contracts.for_school("sch01")[0]
    release = build_tables(home, contracts, list(SCHOOLS))
    section = contract_section(home, agreement, release, date(2027, 6, 30))
    opt = section["opt_outs"]
    assert set(opt) == {"all", "learning_gains", "usage"}
    assert opt["all"]["students"] == "fewer than 10"  # 2 students: suppressed like every small count
    assert {r["requested_on"] for r in opt["all"]["requests"]} == {"2026-10-01", "2027-06-15"}
    assert all(r["took_effect"] for scope in opt.values() for r in scope["requests"])
    assert (
        contract_section(home, contracts.for_school("sch02")[0], release, date(2027, 6, 30))["opt_outs"] == {}
    )

    log = home.audit_log.read_text()
    assert log.count('"action":"opt_out_applied"') == 4
    for value in pid.values():
        assert value not in log
