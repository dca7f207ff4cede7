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
