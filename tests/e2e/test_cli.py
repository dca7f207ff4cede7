"""`impact` as a user runs it: a subprocess on a tiny consortium."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

IMPACT = [sys.executable, "-m", "pipelines"]
MASTER = {"IMPACT_MASTER_KEY": "cli-master-" + "w" * 40}  # encryption at rest, not the pseudonym key


def impact(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*IMPACT, *args], capture_output=True, text=True, env=env, timeout=600)


def env_with(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPACT_")}
    env.update(extra)
    return env


def published_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "published").rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_run_quarantines_uncovered_exports_and_second_run_changes_nothing(tiny_home):
    env = env_with(IMPACT_PSEUDONYM_KEY="cli-test-" + "q" * 40, **MASTER)
    # a school folder with no contract, and an export dated after the agreement ended
    stray = tiny_home.landing / "sch99" / "roster"
    stray.mkdir(parents=True)
    (stray / "roster_2027-06-15.csv").write_text("id\n1\n")
    late = tiny_home.landing / "sch02" / "usage" / "usage_2027-09-01.csv"
    late.write_bytes(next((tiny_home.landing / "sch02" / "usage").glob("*.csv")).read_bytes())

    first = impact("run", "--home", str(tiny_home.root), env=env)
    assert first.returncode == 0, first.stderr
    assert "Release published" in first.stdout
    reason = (tiny_home.quarantine / "sch99" / "roster_2027-06-15.csv.reason.json").read_text()
    assert "no valid contract" in reason
    assert (
        "after contract dsa-sch02 ended"
        in (tiny_home.quarantine / "sch02" / "usage_2027-09-01.csv.reason.json").read_text()
    )
    assert not late.exists()
    for name in ("impact_report.html", "funder_dashboard.html", "compliance_report.html", "manifest.json"):
        assert (tiny_home.published / name).exists()
    csv = pl.read_csv(tiny_home.tables / "reach.csv", infer_schema=False)
    hidden = csv.filter(pl.col("status").str.starts_with("suppressed"))
    assert hidden.height > 0 and set(hidden["value"]) == {"c"} and set(hidden["n"]) == {"c"}

    before = published_digests(tiny_home.root)
    second = impact("run", "--home", str(tiny_home.root), env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("unchanged (no new exports)") == 3 and "Release unchanged" in second.stdout
    assert published_digests(tiny_home.root) == before


def test_run_without_key_or_contracts_fails_clearly(tmp_path, tiny_home):
    no_key = impact("run", "--home", str(tiny_home.root), env=env_with())
    assert no_key.returncode == 2
    assert "IMPACT_PSEUDONYM_KEY" in no_key.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    no_contracts = impact("run", "--home", str(empty), env=env_with(IMPACT_PSEUDONYM_KEY="z" * 40, **MASTER))
    assert no_contracts.returncode == 2 and "no valid contract" in no_contracts.stderr


def test_contracts_check_explains_errors(tiny_home):
    good = impact("contracts", "check", "--home", str(tiny_home.root), env=env_with())
    assert good.returncode == 0 and good.stdout.count("ok ") == 3
    path = tiny_home.contracts / "dsa-sch01.yaml"
    path.write_text(path.read_text().replace("value: linkage_key", "value: secret", 1))
    bad = impact("contracts", "check", "--home", str(tiny_home.root), env=env_with())
    assert bad.returncode == 1
    assert "dsa-sch01.yaml" in bad.stderr and "privacyClass" in bad.stderr and "fix:" in bad.stderr
