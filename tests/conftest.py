"""Shared fixtures: a test key from the environment and a tiny generated consortium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from demo.generate import generate_consortium
from privacy.zones import Home

TEST_KEY = "test-key-" + "k" * 40  # built in code, never a real key
TEST_MASTER_KEY = "test-master-" + "m" * 40  # encryption at rest; differs from TEST_KEY on purpose


@pytest.fixture
def test_key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("IMPACT_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("IMPACT_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.setenv("IMPACT_MASTER_KEY", TEST_MASTER_KEY)
    monkeypatch.delenv("IMPACT_MASTER_KEY_FILE", raising=False)
    monkeypatch.delenv("IMPACT_DEMO_MODE", raising=False)
    return TEST_KEY


@pytest.fixture(scope="session")
def tiny_consortium_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-template")
    generate_consortium(root, schools=3, students_per_school=80, weeks=8, seed=5)
    return root


@pytest.fixture
def tiny_home(tiny_consortium_template: Path, tmp_path: Path) -> Home:
    """A fresh copy of a 3-school consortium (the pipeline moves files, so each test gets its own)."""
    root = tmp_path / "home"
    shutil.copytree(tiny_consortium_template, root)
    home = Home(root)
    home.create()
    return home
