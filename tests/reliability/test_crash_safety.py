"""SIGKILL `impact run` at 22 points across ingest, staging, release and publish: every re-run
completes and the published tables and manifest are byte-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from demo.generate import generate_consortium
from privacy.zones import Home

DRIVER = Path(__file__).with_name("crash_driver.py")
sys.path.insert(0, str(DRIVER.parent))

from crash_driver import CORRECTION, FIRST_DELIVERY, published_bytes, temporaries  # noqa: E402


def crash_base(root: Path) -> Path:
    """Two schools × 40 students, no free-text comments (Presidio is not what this tests), and in
    each school one export dated after its contract ended, so every run also quarantines."""
    generate_consortium(root, schools=2, students_per_school=40, weeks=4, seed=3)
    for school in ("sch01", "sch02"):
        shutil.rmtree(root / "landing" / school / "comments")
        usage = sorted((root / "landing" / school / "usage").glob("usage_*"))[0]
        shutil.copyfile(usage, usage.with_name("usage_2027-08-15" + usage.suffix))
    Home(root).create()  # restricted zones owner-only, as `impact run` requires
    return root


def run_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPACT_CRASH")}
    return env | extra


@pytest.mark.slow
def test_sigkill_at_22_points_then_rerun_is_byte_identical(tmp_path, test_key_env):
    base = crash_base(tmp_path / "base")
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, str(DRIVER), str(base), str(work)],
        capture_output=True, text=True, env=run_env(), timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["reference_exit"] == 0 and report["reference_second_exit"] == 0
    crashes = report["crashes"]
    assert len(crashes) == len(FIRST_DELIVERY) + len(CORRECTION) >= 20
    not_reached = [c["point"] for c in crashes if not c["killed"]]
    assert not not_reached, f"runs that were not killed where expected: {not_reached}"
    assert not [c for c in crashes if c["partial_files"]], "a half-written file was visible"
    assert report["first_final_exit"] == 0 and report["final_exit"] == 0
    assert report["first_identical"], "after the first delivery: published/ differs from the reference"
    assert report["identical"], f"published/ differs from an uninterrupted run: {report['differs']}"
    assert report["tables"] >= 10
    assert report["temporaries_left"] == []
    assert report["audit_ok"]
    assert report["landing_left"] == report["reference_landing_left"]  # quarantined exactly once
    assert_cli_process_survives_sigkill(base, tmp_path, report["reference_first"])


def assert_cli_process_survives_sigkill(base: Path, tmp_path: Path, reference: dict) -> None:
    """The real `python -m pipelines run` process, killed by the kernel while it writes tables."""
    crashed = tmp_path / "cli-crashed"
    shutil.copytree(base, crashed)
    command = [sys.executable, "-m", "pipelines", "run", "--parallel", "1", "--home", str(crashed)]
    killed = subprocess.run(
        command, env=run_env(IMPACT_CRASH_AT="publish.table:5"), capture_output=True, timeout=600
    )
    assert killed.returncode == -signal.SIGKILL
    rerun = subprocess.run(command, env=run_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert published_bytes(crashed) == reference
    assert temporaries(crashed) == []
