"""The blocking, partitioned expectations check: a school whose staging breaks its contract is
stopped and left out of the release; the other school goes on."""

import json

import dagster as dg
import polars as pl
import pytest

import transforms.intake
from dashboards import compliance_page
from dashboards.render import environment
from pipelines.consortium.assets import published_release
from pipelines.resources import ImpactHome
from pipelines.schools.assets import staged_school
from pipelines.schools.checks import staging_meets_contract
from pipelines.schools.partitions import schools_partitions
from transforms.validation import expectations_path, read_expectations

SLIPPED_VALUE = "leaked.canary@example.org"  # synthetic: what a broken minimization might let through


def keep_two_schools(home) -> None:
    for path in sorted((home.landing / "sch03").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (home.landing / "sch03").rmdir()
    (home.contracts / "dsa-sch03.yaml").unlink()


def corrupt_staging_of(school_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage as usual, then break `school_id`'s students: a raw column and a duplicated pseudonym."""
    real = transforms.intake.stage_school

    def broken(school, *args, **kwargs):
        staged = real(school, *args, **kwargs)
        if school == school_id:
            students = staged.frames["students"]
            staged.frames["students"] = pl.concat([students, students.head(1)]).with_columns(
                pl.lit(SLIPPED_VALUE).alias("email")
            )
        return staged

    monkeypatch.setattr(transforms.intake, "stage_school", broken)


@pytest.mark.slow
def test_failing_suite_stops_only_that_school(tiny_home, test_key_env, monkeypatch):
    keep_two_schools(tiny_home)
    corrupt_staging_of("sch02", monkeypatch)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(schools_partitions.name, ["sch01", "sch02"])
    resources = {"impact": ImpactHome(home=str(tiny_home.root))}

    outcomes = {}
    for school in ("sch01", "sch02"):
        result = dg.materialize(
            [staged_school, staging_meets_contract],
            partition_key=school,
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
        (evaluation,) = result.get_asset_check_evaluations()
        outcomes[school] = (result.success, evaluation)

    ok, passed = outcomes["sch01"]
    assert ok and passed.passed
    assert passed.metadata["expectations_failed"].value == 0
    failed_run, failed = outcomes["sch02"]
    assert not failed_run and not failed.passed  # blocking: the run fails, downstream would not run
    assert failed.metadata["datasets_failed"].value == ["students"]
    assert failed.metadata["expectations_failed"].value >= 2
    assert SLIPPED_VALUE not in json.dumps({k: str(v.value) for k, v in failed.metadata.items()})

    report = read_expectations(tiny_home, "sch02")
    assert report["passed"] is False and expectations_path(tiny_home, "sch02").stat().st_mode & 0o077 == 0
    failures = {
        (r["expectation"], r["column"]) for r in report["suites"]["students"]["results"] if not r["success"]
    }
    assert {
        ("expect_column_values_to_be_unique", "student_pid"),
        ("expect_table_columns_to_match_set", None),
    } <= failures
    assert SLIPPED_VALUE not in expectations_path(tiny_home, "sch02").read_text()

    release = dg.materialize(
        [staged_school, published_release],
        selection=[published_release],
        instance=instance,
        resources=resources,
    )
    assert release.success
    manifest = json.loads((tiny_home.published / "manifest.json").read_text())
    assert {c["school_id"] for c in manifest["tables"]["reach"]["contracts"]} == {"sch01"}
    compliance = json.loads((tiny_home.published / "compliance_report.json").read_text())
    assert compliance["summary"]["schools_failing_expectations"] == ["sch02"]
    assert compliance["summary"]["schools_left_out_of_release"] == ["sch02"]
    assert "sch02" in compliance["summary"]["schools_with_failures"]
    sections = {s["school_id"]: s for s in compliance["contracts"]}
    assert sections["sch01"]["in_release"] and sections["sch01"]["expectations"]["status"] == "passed"
    assert not sections["sch02"]["in_release"] and sections["sch02"]["expectations"]["status"] == "failed"
    page = compliance_page.render(environment(), manifest, compliance)
    assert "Left out of the release" in page and "failed their contract" in page.lower()
    published = "".join(p.read_text() for p in tiny_home.published.rglob("*.json")) + page
    assert SLIPPED_VALUE not in published


def test_check_is_partitioned_and_blocking():
    (spec,) = staging_meets_contract.check_specs
    assert spec.blocking and spec.asset_key == dg.AssetKey("staged_school")
    assert staging_meets_contract.partitions_def == schools_partitions


def test_check_loads_with_the_project_definitions():
    from pipelines.definitions import defs

    merged = dg.Definitions.merge(defs, dg.Definitions(asset_checks=[staging_meets_contract]))
    graph = merged.resolve_asset_graph()
    assert dg.AssetCheckKey(dg.AssetKey("staged_school"), "staging_meets_contract") in graph.asset_check_keys
