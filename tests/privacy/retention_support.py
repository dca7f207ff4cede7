"""Helpers shared by the retention tests: a staged synthetic consortium, contract edits, digests.

Keys are built in code for tests only. The consortium (demo generator) has three schools with
agreements 2026-08-01..2027-07-31, eight weeks of usage from 2026-W37, exports dated 2027-06-15
(resources 2026-09-01) and retention of 30 days in landing, 365 in staging.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import yaml

from contracts.loader import load_contracts
from demo.generate import generate_consortium
from privacy.keys import load_pseudonym_key
from privacy.zones import Home

PSEUDONYM_KEY = "retention-test-key-" + "r" * 40
MASTER_KEY = "retention-test-master-" + "q" * 40
KEY_ENV = {"IMPACT_PSEUDONYM_KEY": PSEUDONYM_KEY, "IMPACT_MASTER_KEY": MASTER_KEY}
UNSET_ENV = ("IMPACT_PSEUDONYM_KEY_FILE", "IMPACT_MASTER_KEY_FILE", "IMPACT_DEMO_MODE")


def set_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEY_ENV.items():
        monkeypatch.setenv(name, value)
    for name in UNSET_ENV:
        monkeypatch.delenv(name, raising=False)


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env.update(KEY_ENV)
    return env


def stage_consortium(root: Path) -> Home:
    """Generate and stage (real intake) a 3-school consortium under `root`."""
    from transforms.intake import intake_school
    from transforms.scrubbing import roster_text_scrubber

    generate_consortium(root, schools=3, students_per_school=40, weeks=8, seed=5)
    home = Home(root)
    home.create()
    contracts = load_contracts(home.contracts)
    key = load_pseudonym_key()
    for school_id in contracts.schools:
        intake_school(home, contracts, school_id, key, roster_text_scrubber)
    return home


def staged_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One staged consortium per test session, shared by every retention test module."""
    root = tmp_path_factory.getbasetemp() / "retention-staged-template"
    done = root / ".staged"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        with pytest.MonkeyPatch.context() as monkeypatch:
            set_key_env(monkeypatch)
            stage_consortium(root / "home")
        done.touch()
    return root / "home"


def copy_home(template: Path, target: Path) -> Home:
    shutil.copytree(template, target, symlinks=True)
    return Home(target)


def contract_path(home: Home, school_id: str) -> Path:
    return home.contracts / f"dsa-{school_id}.yaml"


def edit_contract(
    home: Home,
    school_id: str,
    *,
    status: str | None = None,
    end: str | None = None,
    days: dict[tuple[str, str], int] | None = None,
) -> None:
    """Change a contract's status, end date or retention days ({(dataset, driver): days})."""
    path = contract_path(home, school_id)
    document = yaml.safe_load(path.read_text())
    if status:
        document["status"] = status
    if end:
        for prop in document["customProperties"]:
            if prop["property"] == "agreementEnd":
                prop["value"] = end
    for (dataset, driver), value in (days or {}).items():
        for sla in document["slaProperties"]:
            if sla["element"] == dataset and sla["driver"] == driver:
                sla["value"] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def digests(home: Home) -> dict[str, str]:
    """SHA-256 of every data file (landing, quarantine, staging, published, state), by relative path."""
    found = {}
    for zone in ("landing", "quarantine", "staging", "published", "keys"):
        root = home.root / zone
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.is_file():
                found[path.relative_to(home.root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
