"""One published release per test session, built as `impact run` builds it (Dagster assets over a
small generated consortium), shared by the dashboard and browser tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.generate import generate_consortium
from pipelines.runner import run_pipeline
from privacy.zones import Home

# Keys built in code for tests only (never real keys); the master key differs on purpose.
TEST_KEYS = {
    "IMPACT_PSEUDONYM_KEY": "dashboard-test-key-" + "d" * 40,
    "IMPACT_MASTER_KEY": "dashboard-test-master-" + "e" * 40,
}
# Small, but with suppressed cells (per-school subgroups), ≥ 3 schools (a prediction interval) and
# weeks in two terms (the term filter has something to switch).
CONSORTIUM = {"schools": 4, "students_per_school": 90, "weeks": 18, "seed": 5}

_built: dict[str, Home] = {}


def build_release(root: Path) -> Home:
    generate_consortium(root, **CONSORTIUM)
    home = Home(root)
    home.create()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        for name in (
            "IMPACT_PSEUDONYM_KEY_FILE",
            "IMPACT_MASTER_KEY_FILE",
            "IMPACT_DEMO_MODE",
            "IMPACT_REPORT_PDF",
        ):
            patch.delenv(name, raising=False)
        summary = run_pipeline(home)
    assert summary.released, summary
    return home


def released_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """Built once per process (the dashboard and browser conftests share this module)."""
    if "home" not in _built:
        _built["home"] = build_release(tmp_path_factory.mktemp("dashboard-release"))
    return _built["home"]


# --- the same release with hostile text in every school-controlled value ------------------------

# What a school could send as an id, a resource or a category if intake let it through: the pages
# must show each as text, never as markup, a link or a script.
HOSTILE_TEXTS = (
    '<a href="https://evil.example">x</a>',
    "<b>bold</b>",
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>',
)


def hostile_names(values: list[str]) -> dict[str, str]:
    """A distinct hostile spelling for each of `values` (suffixed so two never collide)."""
    return {v: f"{HOSTILE_TEXTS[i % len(HOSTILE_TEXTS)]}{i}" for i, v in enumerate(sorted(values))}


def _renamed(value, names: dict[str, str]):
    """`value` with every school-controlled string replaced (whole values, and inside the
    manifest's suppression reasons such as `school_id=sch01`)."""
    if isinstance(value, str):
        if value in names:
            return names[value]
        for old in sorted(names, key=len, reverse=True):
            value = value.replace(f"={old},", f"={names[old]},").replace(f"={old} ", f"={names[old]} ")
        return value
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return value


def hostile_copy(published: Path, target: Path) -> dict[str, str]:
    """Copy a published release to `target` with every school id, resource id and subgroup value
    replaced by hostile HTML; render the pages there. Returns the replacements."""
    import json
    import shutil

    import polars as pl

    from dashboards.render import render_all

    shutil.copytree(published, target)
    manifest = json.loads((target / "manifest.json").read_text())
    tables = {name: pl.read_parquet(target / e["parquet"]) for name, e in manifest["tables"].items()}
    schools = {
        v
        for t in tables.values()
        for c in ("school_id", "user_school", "contributing_school")
        if c in t.columns
        for v in t[c].unique().to_list()
    } - {"ALL", None}
    resources = set(tables["usage_by_resource"]["resource_id"].unique().to_list()) - {"all"}
    grades = set(tables["reach"].filter(pl.col("subgroup") == "grade")["subgroup_value"].to_list()) - {"all"}
    names = hostile_names(sorted(schools)) | {
        r: f"{HOSTILE_TEXTS[i % len(HOSTILE_TEXTS)]}R{i}" for i, r in enumerate(sorted(resources))
    }
    for name, table in tables.items():
        columns = [
            c for c in ("school_id", "user_school", "contributing_school", "resource_id") if c in table
        ]
        renamed = table.with_columns(pl.col(c).replace(names) for c in columns)
        if "subgroup_value" in table.columns:
            hostile_grades = {g: f"<b>bold</b>G{g}" for g in grades}
            renamed = renamed.with_columns(
                pl.when(pl.col("subgroup") == "grade")
                .then(pl.col("subgroup_value").replace(hostile_grades))
                .otherwise(pl.col("subgroup_value"))
                .alias("subgroup_value")
            )
        renamed.write_parquet(target / manifest["tables"][name]["parquet"])
    (target / "manifest.json").write_text(json.dumps(_renamed(manifest, names)))
    compliance = target / "compliance_report.json"
    if compliance.exists():
        compliance.write_text(json.dumps(_renamed(json.loads(compliance.read_text()), names)))
    render_all(target, pdf=False)
    return names


def hostile_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's release with hostile dimension values, rendered once per process."""
    if "hostile" not in _built:
        published = released_home(tmp_path_factory).published
        target = tmp_path_factory.mktemp("hostile-release") / "published"
        hostile_copy(published, target)
        _built["hostile"] = Home(target.parent)
    return _built["hostile"].published
