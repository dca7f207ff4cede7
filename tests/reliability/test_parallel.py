"""Schools staged in parallel processes (one Dagster run each, one SQLite instance, one audit log)
publish exactly what a serial run publishes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from demo.generate import generate_consortium
from pipelines.runner import run_pipeline
from privacy.audit_anchors import MANIFEST_HEAD_KEY, manifest_anchors
from privacy.audit_log import read_entries, verify
from privacy.zones import Home

SCHOOLS = [f"sch{i:02d}" for i in range(1, 9)]


def eight_schools(root: Path) -> Home:
    """8 schools × 40 students, without free-text comments (Presidio is not what this tests)."""
    generate_consortium(root, schools=8, students_per_school=40, weeks=4, seed=7)
    for school in SCHOOLS:
        shutil.rmtree(root / "landing" / school / "comments")
    home = Home(root)
    home.create()
    return home


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_eight_schools_in_parallel_publish_what_a_serial_run_publishes(tmp_path, test_key_env):
    serial = eight_schools(tmp_path / "serial")
    parallel = Home(tmp_path / "parallel")
    shutil.copytree(serial.root, parallel.root)

    serial_run = run_pipeline(serial, parallel=1)
    parallel_run = run_pipeline(parallel, parallel=2)

    assert parallel_run.schools_failed == {} and serial_run.schools_failed == {}
    assert sorted(parallel_run.schools_run) == sorted(serial_run.schools_run) == SCHOOLS
    assert digests(parallel.tables) == digests(serial.tables)
    # Byte for byte but the audit log's head, which records each home's own log (its times differ).
    assert release_manifest(parallel) == release_manifest(serial)
    for name in ("impact_report.html", "funder_dashboard.html"):
        assert (parallel.published / name).read_bytes() == (serial.published / name).read_bytes(), name
    assert digests(parallel.staging) == digests(serial.staging) or _same_staging_rows(serial, parallel)

    anchors, _ = manifest_anchors(parallel.root)
    assert verify(parallel.audit_log, anchors=anchors).ok  # concurrent appends kept one unbroken chain
    staged = {e["object"]["school_id"] for e in read_entries(parallel.audit_log) if e["action"] == "staged"}
    assert staged == set(SCHOOLS)


def release_manifest(home: Home) -> str:
    manifest = json.loads((home.published / "manifest.json").read_text())
    assert manifest.pop(MANIFEST_HEAD_KEY)["entries"] > 0
    return json.dumps(manifest, sort_keys=True)


def _same_staging_rows(serial: Home, parallel: Home) -> bool:
    """Staging is encrypted with a fresh nonce per write, so compare the school state files instead."""
    return all(
        (serial.state / f"{s}.json").read_text() == (parallel.state / f"{s}.json").read_text()
        for s in SCHOOLS
    )
