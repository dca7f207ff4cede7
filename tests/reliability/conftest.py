"""Fixtures for the reliability tests: the corpus's clean base home and a pseudonymization key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The corpus generator lives in tests/corpus/; importlib import mode does not put it on the path.
# (Never put tests/ itself on the path: its folders would shadow the packages they test.)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "corpus"))

from export_corpus import build_base


@pytest.fixture(scope="session")
def corpus_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_base(tmp_path_factory.mktemp("corpus-base"))
