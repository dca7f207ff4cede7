"""Intake checks every value a school controls that can reach an output, row by row with a reason
(labels, catalogue ownership, titles), names what a sender chose only by digest, and keeps a
school's previous staging when its new delivery cannot be used."""

import json
from collections import Counter

import polars as pl

from contracts.loader import load_contracts
from privacy.audit_log import AuditLog
from privacy.keys import load_pseudonym_key
from privacy.staging_store import read_staging_frame
from transforms.catalogue import attributed_catalogue
from transforms.compliance import compliance_summary
from transforms.intake import intake_school, public_file_name, read_state
from transforms.release import build_tables
from transforms.scrubbing import roster_text_scrubber


def no_scrub(texts: pl.Series, *_roster_and_names):
    return texts, Counter()


def intake(home, school, scrub=no_scrub):
    audit = AuditLog.for_home(home.root, actor="test")
    return intake_school(
        home, load_contracts(home.contracts), school, load_pseudonym_key(), scrub, audit=audit
    )


def only_file(home, school, dataset):
    (path,) = (home.landing / school / dataset).iterdir()
    return path


def roster_people(home, school="sch01") -> pl.DataFrame:
    return pl.read_csv(only_file(home, school, "roster"), infer_schema=False)


def restricted_text(home) -> str:
    """What leaves the raw zones as text: state files, the audit log."""
    return home.audit_log.read_text() + "".join(p.read_text() for p in home.state.glob("*.json"))


def test_usage_rows_whose_resource_id_is_a_person_or_a_reserved_word_are_rejected(tiny_home, test_key_env):
    people = roster_people(tiny_home)
    first, second = people.row(0, named=True), people.row(1, named=True)
    planted = [
        first["email"],  # an e-mail address
        f"{first['FirstName']}.{first['Surname']}",  # a roster name
        f"{second['Surname']}{second['FirstName']}",  # a roster name run together
        "all",
        "ALL",
        "Unknown",
        '=HYPERLINK("http://x","y")',
        "+44 7700 900123",
    ]
    usage = only_file(tiny_home, "sch01", "usage")
    frame = pl.read_csv(usage, infer_schema=False)
    bad = pl.Series("ResourceID", planted + frame["ResourceID"].to_list()[len(planted) :])
    frame.with_columns(bad).write_csv(usage)

    result = intake(tiny_home, "sch01")
    report = next(f for f in result.files if f["dataset"] == "usage")
    assert report["status"] == "rejected_rows"
    reasons = {r["reason"]: r["rows"] for r in report["rejects"] if r["field"] == "resource_id"}
    assert reasons == {
        "looks like an e-mail address": 1,
        "matches a name on the school's roster": 1,
        "spells a name on the school's roster": 1,
        "a reserved word of the release (it marks totals or unknowns)": 3,
        "looks like a web address": 1,  # the formula holds a URL: named for what it leaks
        "looks like a phone number": 1,
    }
    staged = read_staging_frame(tiny_home.staging_file("usage", "sch01"), "sch01")
    assert not set(planted) & set(staged["resource_id"])
    text = restricted_text(tiny_home)
    assert not [p for p in planted if p in text]


def test_a_catalogue_row_for_another_or_no_school_is_rejected_and_titles_are_scrubbed(
    tiny_home, test_key_env
):
    person = roster_people(tiny_home).row(0, named=True)
    catalogue = only_file(tiny_home, "sch01", "resources")
    own = pl.read_csv(catalogue, infer_schema=False)
    hijack = pl.DataFrame(
        {
            "resource_id": ["RES-901", "RES-902", "RES-903"],
            "title": ["Borrowed", "Invented", f"Notes on {person['FirstName']} {person['Surname']}"],
            "subject": ["maths"] * 3,
            "contributing_school": ["sch02", "Jane Doe School", "sch01"],
        }
    )
    pl.concat([own, hijack]).write_csv(catalogue)

    result = intake(tiny_home, "sch01", scrub=roster_text_scrubber)
    report = next(f for f in result.files if f["dataset"] == "resources")
    rejects = {r["reason"]: r["rows"] for r in report["rejects"]}
    assert rejects["another school's resource: a school's catalogue lists only its own resources"] == 1
    assert rejects["not a school of the consortium"] == 1
    staged = read_staging_frame(tiny_home.staging_file("resources", "sch01"), "sch01")
    assert set(staged["contributing_school"]) == {"sch01"}
    assert "RES-901" not in staged["resource_id"].to_list()
    title = staged.filter(pl.col("resource_id") == "RES-903")["title"].item()
    assert title == "Notes on <PERSON>"  # titles are shown to funders: scrubbed like free text


def test_attribution_goes_to_the_catalogue_that_contributes_never_to_sort_order():
    """Before: the first school id in sort order won, so `aaa` could take `zzz`'s resource."""
    zzz = pl.DataFrame(
        {"resource_id": ["R1", "R2"], "subject": ["m", "m"], "contributing_school": ["zzz"] * 2}
    )
    aaa_names_zzz = pl.DataFrame({"resource_id": ["R1"], "subject": ["x"], "contributing_school": ["zzz"]})
    catalogue, conflicts = attributed_catalogue({"zzz": zzz, "aaa": aaa_names_zzz})
    assert catalogue.filter(pl.col("resource_id") == "R1")["subject"].item() == "m" and conflicts == []
    aaa_claims = pl.DataFrame(
        {"resource_id": ["R1", "R3"], "subject": ["x", "y"], "contributing_school": ["aaa"] * 2}
    )
    catalogue, conflicts = attributed_catalogue({"zzz": zzz, "aaa": aaa_claims})
    assert catalogue["resource_id"].to_list() == ["R2", "R3"]  # contested: neither takes R1
    assert conflicts == [{"resource_id": "R1", "schools": ["aaa", "zzz"]}]
    swapped, swapped_conflicts = attributed_catalogue({"aaa": aaa_claims, "zzz": zzz})
    assert swapped.equals(catalogue) and swapped_conflicts == conflicts


def test_names_a_sender_chose_appear_only_as_digests(tiny_home, test_key_env):
    """A file named after a student and her birth date passed before: it did not look like an
    e-mail address or an id. Undeclared headers named after students were listed by name."""
    usage = only_file(tiny_home, "sch01", "usage")
    named = usage.with_name("Jane_Doe_2011-03-04.csv")  # dated before the agreement: quarantined
    named.write_bytes(usage.read_bytes())
    attendance = only_file(tiny_home, "sch01", "attendance")
    frame = pl.read_csv(attendance, infer_schema=False)
    frame.with_columns(pl.lit("x").alias("Maria Lopez"), pl.lit("y").alias("notes")).write_csv(attendance)
    odd = tiny_home.landing / "sch01" / "Maria Lopez 2012-01-02"
    odd.mkdir()
    (odd / "roster.csv").write_text("a\n1\n")

    result = intake(tiny_home, "sch01")
    assert {q["file"] for q in result.quarantined} == {named.name, "roster.csv"}
    state = read_state(tiny_home, "sch01")
    report = next(f for f in state["files"] if f["dataset"] == "attendance")
    assert report["undeclared_columns_dropped"] == 2 and "dropped_columns" not in report
    assert report["file"] == public_file_name(attendance.name) and report["exported_on"] == "2027-06-15"
    quarantined = next(q for q in state["quarantined"] if q["file"] == public_file_name(named.name))
    assert quarantined["dataset"] == "usage" and quarantined["exported_on"] == "2011-03-04"
    contracts = load_contracts(tiny_home.contracts)
    release = build_tables(tiny_home, contracts, ["sch01"])
    report_json = json.dumps(compliance_summary(tiny_home, contracts, release, {}))
    for secret in ("Jane_Doe", "Maria Lopez", "Maria_Lopez", attendance.name, usage.name):
        assert secret not in restricted_text(tiny_home), secret
        assert secret not in report_json, secret
    assert "2 undeclared columns dropped" in report_json


def test_a_hostile_new_export_is_quarantined_and_the_previous_staging_is_kept_and_used(
    tiny_home, test_key_env
):
    """sch03 sends xAPI usage. After a good run, retention removes the raw file; then a new export
    with a line nested 100,000 deep arrives. Before: RecursionError, and the school failed on every
    run until someone deleted the file by hand (and a quarantined delivery removed its staging)."""
    intake(tiny_home, "sch03")
    path = tiny_home.staging_file("usage", "sch03")
    before = read_staging_frame(path, "sch03")
    only_file(tiny_home, "sch03", "usage").unlink()  # as retention does after landing days
    hostile = tiny_home.landing / "sch03" / "usage" / "usage_2027-06-20.jsonl"
    hostile.write_text('{"actor": ' + "[" * 100_000 + "]" * 100_000 + "}\n")

    result = intake(tiny_home, "sch03")
    (refused,) = [q for q in result.quarantined if q["dataset"] == "usage"]
    assert "nests deeper than 64 levels" in refused["reason"] and not hostile.exists()
    assert read_staging_frame(path, "sch03").equals(before)
    assert result.staged_rows["usage"] == before.height
    contracts = load_contracts(tiny_home.contracts)
    for school in ("sch01", "sch02"):
        intake(tiny_home, school)
    usage = build_tables(tiny_home, contracts, ["sch01", "sch02", "sch03"]).tables["usage_by_resource"]
    assert "sch03" in usage["school_id"].to_list()
    assert intake(tiny_home, "sch03").skipped  # and the next run has nothing left to retry


def test_a_broken_new_roster_keeps_every_previous_staging(tiny_home, test_key_env):
    intake(tiny_home, "sch01")
    before = {p: p.read_bytes() for p in tiny_home.staging.glob("*/school=sch01/*.parquet")}
    roster = only_file(tiny_home, "sch01", "roster")
    roster.unlink()
    roster.with_name("roster_2027-06-20.csv").write_bytes(b"\x00\x01binary")
    result = intake(tiny_home, "sch01")
    assert [q["dataset"] for q in result.quarantined] == ["roster"]
    assert {p: p.read_bytes() for p in tiny_home.staging.glob("*/school=sch01/*.parquet")} == before
