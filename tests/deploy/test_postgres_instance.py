"""The pipeline on a Dagster instance backed by a real PostgreSQL server, multiprocess executor.

The instance's storage block is deploy/dagster.yaml's own (env-var credentials), pointed at a
throwaway loopback server; each school partition is its own run tagged with its school, then
the consortium release. Every step runs in a child process that reaches the same PostgreSQL.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import dagster_jobs
import psycopg2
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from pipelines.schools.partitions import schools_partitions

DEPLOY_INSTANCE = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
JOBS_FILE = str(Path(dagster_jobs.__file__).resolve())
# Step processes fork from one forkserver that imported the pipeline once, instead of each
# child importing Dagster, Polars and the scrubber again (seconds per step on a busy CI machine).
FORKSERVER = {
    "execution": {"config": {"start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}}}
}


def write_instance(dagster_home: Path) -> None:
    """deploy/dagster.yaml's storage (and log settings); no TLS on loopback, no K8s launcher here."""
    production = yaml.safe_load(DEPLOY_INSTANCE.read_text())
    storage = production["storage"]
    storage["postgres"]["postgres_db"]["params"] = {"sslmode": "disable"}
    config = {k: production[k] for k in ("telemetry", "compute_logs")} | {"storage": storage}
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture
def postgres_instance(postgres, tmp_path, monkeypatch):
    env = {
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_DB": "postgres",
        "DAGSTER_PG_USER": postgres.user,
        "DAGSTER_PG_PASSWORD": "unused-with-loopback-trust",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dagster_home = tmp_path / "dagster"
    write_instance(dagster_home)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        yield instance


def run_counts(server) -> tuple[int, int]:
    """Runs and materialization events as PostgreSQL itself holds them."""
    with psycopg2.connect(host=server.host, port=server.port, user=server.user, dbname="postgres") as db:
        cursor = db.cursor()
        cursor.execute("select count(*) from runs where status = 'SUCCESS'")
        runs = cursor.fetchone()[0]
        cursor.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'")
        return runs, cursor.fetchone()[0]


def test_pipeline_runs_on_postgres_with_multiprocess_executor(
    postgres, postgres_instance, tiny_home, test_key_env, monkeypatch
):
    monkeypatch.setenv("IMPACT_HOME", str(tiny_home.root))
    instance = postgres_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    schools = sorted(p.name for p in tiny_home.landing.iterdir())
    instance.add_dynamic_partitions(schools_partitions.name, schools)

    started = time.monotonic()
    school_job = ReconstructableJob.for_file(JOBS_FILE, "stage_school_job")
    for school in schools:
        with dg.execute_job(
            school_job,
            instance=instance,
            run_config=FORKSERVER,
            tags={"school": school, "dagster/partition": school},
        ) as result:
            assert result.success, school
            step_pids = {e.pid for e in result.all_events if e.is_step_start}
    release_job = ReconstructableJob.for_file(JOBS_FILE, "release_job")
    with dg.execute_job(release_job, instance=instance, run_config=FORKSERVER) as result:
        assert result.success
    seconds = time.monotonic() - started

    runs = instance.get_runs()
    assert len(runs) == len(schools) + 1
    assert {r.tags.get("school") for r in runs} == {*schools, None}
    assert step_pids and os.getpid() not in step_pids  # steps ran in child processes
    materialized = instance.get_materialized_partitions(dg.AssetKey("staged_school"))
    assert materialized == set(schools)
    assert run_counts(postgres) == (len(schools) + 1, len(schools) + 2)
    manifest = json.loads((tiny_home.published / "manifest.json").read_text())
    assert manifest["disclosure_control"]["audit_ok"] is True
    assert seconds < 300  # a hang guard, not a performance target
