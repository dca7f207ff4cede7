"""The Dagster assets, materialized in process for two schools, then the consortium release."""

import json

import dagster as dg
import polars as pl

from pipelines.consortium.assets import published_release, reports
from pipelines.consortium.checks import disclosure_audit
from pipelines.definitions import defs
from pipelines.resources import ImpactHome
from pipelines.schools.assets import staged_school
from pipelines.schools.partitions import schools_partitions
from privacy.staging_store import read_staging_frame


def test_definitions_load():
    assert {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()} == {
        "staged_school",
        "published_release",
        "reports",
        "retention_enforced",
    }


def test_two_schools_then_release(tiny_home, test_key_env):
    for extra in ("sch03",):  # keep two schools
        for path in sorted((tiny_home.landing / extra).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (tiny_home.landing / extra).rmdir()
        (tiny_home.contracts / f"dsa-{extra}.yaml").unlink()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(schools_partitions.name, ["sch01", "sch02"])
    resources = {"impact": ImpactHome(home=str(tiny_home.root))}
    for school in ("sch01", "sch02"):
        result = dg.materialize([staged_school], partition_key=school, instance=instance, resources=resources)
        assert result.success
        metadata = result.asset_materializations_for_node("staged_school")[0].metadata
        assert metadata["staged_rows"].value["students"] > 50
        assert tiny_home.staging_file("students", school).exists()
    result = dg.materialize(
        [staged_school, published_release, reports, disclosure_audit],
        selection=[published_release, reports],
        instance=instance,
        resources=resources,
    )
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["cells_checked"].value > 0
    manifest = json.loads((tiny_home.published / "manifest.json").read_text())
    reach = pl.read_parquet(tiny_home.tables / "reach.parquet")
    enrolled = reach.filter(
        (pl.col("school_id") == "ALL") & (pl.col("subgroup") == "all") & (pl.col("measure") == "students")
    )["value"].item()
    staged = sum(
        read_staging_frame(tiny_home.staging_file("students", s), s).height for s in ("sch01", "sch02")
    )
    assert enrolled == staged
    assert {c["school_id"] for c in manifest["tables"]["reach"]["contracts"]} == {"sch01", "sch02"}
    assert manifest["disclosure_control"]["audit_ok"] is True
    for page in ("impact_report.html", "funder_dashboard.html", "compliance_report.html"):
        assert (tiny_home.published / page).stat().st_size > 100_000  # Plotly embedded: opens offline
