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


def restricted_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for zone in ("staging", "audit", "keys", "landing", "quarantine")
        for p in sorted((root / zone).rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_a_run_with_the_wrong_master_key_is_refused_and_leaves_nothing_behind(tiny_home):
    from privacy.encryption import MasterKey

    right = env_with(IMPACT_PSEUDONYM_KEY="cli-test-" + "q" * 40, **MASTER)
    wrong_key = "cli-master-" + "z" * 40
    wrong = env_with(IMPACT_PSEUDONYM_KEY="cli-test-" + "q" * 40, IMPACT_MASTER_KEY=wrong_key)
    first = impact("run", "--home", str(tiny_home.root), env=right)
    assert first.returncode == 0 and "Release published" in first.stdout, first.stderr
    published = published_digests(tiny_home.root)
    restricted = restricted_bytes(tiny_home.root)

    for extra in ((), ("--force",)):
        refused = impact("run", "--home", str(tiny_home.root), *extra, env=wrong)
        said = " ".join(refused.stderr.split())
        assert refused.returncode == 2, refused.stdout
        assert "probably the wrong key" in said and "cannot unwrap the data keys of 3 school(s)" in said
        assert MasterKey(wrong_key.encode()).fingerprint in said  # this key's fingerprint...
        assert MasterKey(MASTER["IMPACT_MASTER_KEY"].encode()).fingerprint in said  # ...and the right one's
        assert "Traceback" not in refused.stderr
    # no state, verdict, data key or audit entry from the wrong key
    assert restricted_bytes(tiny_home.root) == restricted

    again = impact("run", "--home", str(tiny_home.root), env=right)  # no --force needed
    assert again.returncode == 0, again.stderr
    assert "failed" not in again.stdout and "Release unchanged" in again.stdout
    assert published_digests(tiny_home.root) == published
