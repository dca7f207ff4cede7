"""A wrong master key under Dagster (the daemon's path, without `impact run`'s preflight): the school
fails with the likely cause named, and leaves no verdict, state or audit entry that would keep it
out of the next run with the right key. A staging file that is damaged is re-staged, not kept out."""

import os
import shutil

import dagster as dg
import pytest

from contracts.loader import load_contracts
from pipelines.resources import ImpactHome
from pipelines.runner import _materialize_school, run_pipeline
from transforms.release_run import staged_schools
from transforms.validation import read_expectations, unreadable_staging

WRONG_MASTER = "pipeline-wrong-master-" + "x" * 40


def restricted_bytes(home) -> dict[str, bytes]:
    return {
        str(p.relative_to(home.root)): p.read_bytes()
        for zone in ("staging", "audit", "keys", "landing", "quarantine")
        for p in sorted((home.root / zone).rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_a_wrong_master_key_fails_the_school_and_records_nothing_against_it(
    tiny_home, test_key_env, monkeypatch
):
    first = run_pipeline(tiny_home)
    assert first.released and not first.schools_failed
    # a new export for sch02, so its intake has real work to do under the wrong key
    usage = sorted((tiny_home.landing / "sch02" / "usage").iterdir())[-1]
    delivered = usage.with_name("usage_2027-06-20" + "".join(usage.suffixes))
    shutil.copyfile(usage, delivered)
    before = restricted_bytes(tiny_home)

    right = os.environ["IMPACT_MASTER_KEY"]
    monkeypatch.setenv("IMPACT_MASTER_KEY", WRONG_MASTER)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("schools", ["sch01", "sch02"])
    resource = ImpactHome(home=str(tiny_home.root))
    for school in ("sch01", "sch02"):  # sch01 unchanged: only its check reads staging
        failure = _materialize_school(instance, resource, school)
        assert failure and "WrongMasterKey" in failure and "probably the wrong key" in failure, failure
    assert restricted_bytes(tiny_home) == before  # nothing moved, logged, staged or judged
    assert delivered.exists()

    monkeypatch.setenv("IMPACT_MASTER_KEY", right)
    assert staged_schools(tiny_home, load_contracts(tiny_home.contracts)) == ["sch01", "sch02", "sch03"]
    second = run_pipeline(tiny_home)  # the right key again, no --force
    assert second.schools_run == ["sch02"] and not second.schools_failed and second.released


@pytest.mark.slow
def test_a_damaged_staging_file_is_restaged_by_the_next_run_without_force(tiny_home, test_key_env):
    first = run_pipeline(tiny_home)
    assert first.released
    published = {p.name: p.read_bytes() for p in sorted(tiny_home.tables.iterdir())}
    staged = tiny_home.staging_file("students", "sch01")
    damaged = bytearray(staged.read_bytes())
    damaged[-5] ^= 0xFF
    staged.write_bytes(bytes(damaged))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("schools", ["sch01"])
    failure = _materialize_school(instance, ImpactHome(home=str(tiny_home.root)), "sch01")
    assert failure is not None  # the blocking check caught it...
    assert unreadable_staging(tiny_home, "sch01") == ["students"]  # ...and says why
    assert read_expectations(tiny_home, "sch01")["passed"] is False

    second = run_pipeline(tiny_home)
    assert second.schools_run == ["sch01"] and not second.schools_failed
    assert unreadable_staging(tiny_home, "sch01") == [] and read_expectations(tiny_home, "sch01")["passed"]
    assert {p.name: p.read_bytes() for p in sorted(tiny_home.tables.iterdir())} == published
