"""deploy/: every production config is checked by the schema that will read it.

dagster.yaml: the instance's top-level schema (`dagster_instance_config`), then each configurable
class block (run coordinator, run launcher, compute logs) against that class's own `config_type()`,
with the environment-variable sources resolved. Helm values: the keys we set against the official
chart's schema models (helm/dagster/schema in dagster-io/dagster), and the embedded run coordinator
and run launcher settings translated as the chart's templates do, then validated by Dagster.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config, dagster_instance_config_schema

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CLASS_BLOCKS = ("run_coordinator", "run_launcher", "compute_logs", "scheduler", "event_log_storage")
INSTANCE_ENV = {
    "DAGSTER_PG_HOST": "db.example.org",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-real-password",
    "DAGSTER_K8S_NAMESPACE": "impact",
    "IMPACT_IMAGE": "registry.example.org/impact-analytics:0.1.0",
}


def class_config_errors(block: dict) -> list[str]:
    """Errors of one `{module, class, config}` block under its class's own schema (env resolved)."""
    cls = getattr(importlib.import_module(block["module"]), block["class"])
    result = process_config(cls.config_type(), block.get("config") or {})
    return [] if result.success else [e.message for e in result.errors]


@pytest.fixture
def instance_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in INSTANCE_ENV.items():
        monkeypatch.setenv(name, value)


def load_instance_yaml(folder: Path = DEPLOY) -> dict:
    config, custom_instance_class = dagster_instance_config(str(folder), "dagster.yaml")
    assert custom_instance_class is None
    return config


def test_production_instance_passes_dagsters_schema(instance_env):
    config = load_instance_yaml()
    processed = process_config(dagster_instance_config_schema(), config)
    assert processed.success, processed.errors
    for name in CLASS_BLOCKS:
        if name in config:
            assert class_config_errors(config[name]) == [], name


def test_production_instance_says_what_the_issue_asks(instance_env):
    config = load_instance_yaml()
    assert set(config["storage"]) == {"postgres"}  # runs, event log and schedules in PostgreSQL
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # never a literal credential
    coordinator = config["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    assert {"key": "school", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in coordinator[
        "config"
    ]["tag_concurrency_limits"]
    assert (config["run_launcher"]["module"], config["run_launcher"]["class"]) == (
        "dagster_k8s",
        "K8sRunLauncher",
    )


def test_the_class_check_has_teeth(instance_env):
    config = load_instance_yaml()
    launcher = dict(config["run_launcher"], config=dict(config["run_launcher"]["config"], job_imagee="typo"))
    assert class_config_errors(launcher)
    coordinator = config["run_coordinator"]
    broken = dict(coordinator, config=dict(coordinator["config"], max_concurrent_runs="twenty"))
    assert class_config_errors(broken)


def test_the_instance_check_has_teeth(tmp_path, instance_env):
    text = (DEPLOY / "dagster.yaml").read_text().replace("run_monitoring:", "run_monitorin:")
    (tmp_path / "dagster.yaml").write_text(text)
    with pytest.raises(Exception, match="run_monitorin"):
        load_instance_yaml(tmp_path)


# --- Helm values -------------------------------------------------------------------------------
# Keys of the official chart's values schema that deploy/helm/values.yaml may set (from
# helm/dagster/schema/schema/charts/dagster/values.py and subschema/*.py). "*" = free-form below.
CHART_KEYS: dict = {
    "global": {"postgresqlSecretName": None},
    "telemetry": {"enabled": None},
    "postgresql": {
        "enabled": None,
        "postgresqlHost": None,
        "postgresqlUsername": None,
        "postgresqlDatabase": None,
        "postgresqlParams": "*",
        "postgresqlScheme": None,
        "service": {"port": None},
    },
    "generatePostgresqlPasswordSecret": None,
    "dagsterWebserver": {"replicaCount": None, "service": {"type": None, "port": None}},
    "dagster-user-deployments": {
        "enabled": None,
        "deployments": [
            {
                "name": None,
                "image": {"repository": None, "tag": None, "pullPolicy": None},
                "dagsterApiGrpcArgs": "*",
                "port": None,
                "includeConfigInLaunchedRuns": {"enabled": None},
                "env": "*",
                "envSecrets": "*",
                "volumes": "*",
                "volumeMounts": "*",
                "resources": "*",
            }
        ],
    },
    "runLauncher": {
        "type": None,
        "config": {
            "k8sRunLauncher": {
                "imagePullPolicy": None,
                "loadInclusterConfig": None,
                "envSecrets": "*",
                "envVars": "*",
                "volumes": "*",
                "volumeMounts": "*",
                "resources": "*",
                "labels": "*",
                "failPodOnRunFailure": None,
            }
        },
    },
    "dagsterDaemon": {
        "enabled": None,
        "runCoordinator": {
            "enabled": None,
            "type": None,
            "config": {
                "queuedRunCoordinator": {
                    "maxConcurrentRuns": None,
                    "tagConcurrencyLimits": "*",
                    "dequeueUseThreads": None,
                    "dequeueNumWorkers": None,
                }
            },
        },
        "runMonitoring": "*",
        "runRetries": "*",
    },
    "computeLogManager": {"type": None},
}


def unknown_keys(values, allowed, path: str = "") -> list[str]:
    if allowed == "*" or allowed is None:
        return [] if allowed == "*" or not isinstance(values, dict | list) else [f"{path}: not a leaf"]
    if isinstance(allowed, list):
        return [k for i, item in enumerate(values) for k in unknown_keys(item, allowed[0], f"{path}[{i}]")]
    return [
        problem
        for key, value in values.items()
        for problem in (
            [f"{path}.{key}"] if key not in allowed else unknown_keys(value, allowed[key], f"{path}.{key}")
        )
    ]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def rendered_launcher(values: dict) -> dict:
    """What the chart's `_run-launcher.tpl` writes into dagster.yaml for K8sRunLauncher."""
    chart = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {snake(k): v for k, v in chart.items()}
    config["env_secrets"] = [s["name"] for s in chart["envSecrets"]]
    config["load_incluster_config"] = chart["loadInclusterConfig"]
    config.update(
        instance_config_map="impact-dagster-instance", service_account_name="impact", job_namespace="impact"
    )
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def rendered_coordinator(values: dict) -> dict:
    chart = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    return {
        "module": "dagster._core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {snake(k): v for k, v in chart.items()},
    }


@pytest.fixture(scope="module")
def helm_values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def test_helm_values_use_only_the_charts_keys(helm_values):
    assert unknown_keys(helm_values, CHART_KEYS) == []
    assert unknown_keys({"dagsterDaemon": {"runCordinator": {}}}, CHART_KEYS) == [
        ".dagsterDaemon.runCordinator"
    ]


def test_helm_values_render_configs_dagster_accepts(helm_values, instance_env):
    assert helm_values["runLauncher"]["type"] == "K8sRunLauncher"
    assert helm_values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert helm_values["postgresql"]["enabled"] is False  # the district's database, not the chart's
    assert class_config_errors(rendered_launcher(helm_values)) == []
    assert class_config_errors(rendered_coordinator(helm_values)) == []


def test_helm_values_and_dagster_yaml_agree(helm_values, instance_env):
    instance = load_instance_yaml()
    ours = instance["run_coordinator"]["config"]
    chart = rendered_coordinator(helm_values)["config"]
    assert chart["tag_concurrency_limits"] == ours["tag_concurrency_limits"]
    assert chart["max_concurrent_runs"] == ours["max_concurrent_runs"]
    launcher = instance["run_launcher"]["config"]
    assert rendered_launcher(helm_values)["config"]["resources"] == launcher["resources"]
    assert helm_values["runLauncher"]["config"]["k8sRunLauncher"]["volumeMounts"] == launcher["volume_mounts"]
