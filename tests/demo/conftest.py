"""Fixtures for the demo generator tests: small and statistical consortia."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# demo_reading.py is a test helper beside this file; importlib import mode does not put it on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo.generate import GenerationSummary, generate_consortium

SMALL = {"schools": 8, "students_per_school": 60, "weeks": 12, "seed": 11}
# Big enough for shares (attrition, bias, effect) to be stable; still well under a second.
STATISTICAL = {"schools": 8, "students_per_school": 200, "seed": 3, "true_effect": 0.4}


@pytest.fixture(scope="session")
def small_consortium(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    return generate_consortium(tmp_path_factory.mktemp("small"), **SMALL)


@pytest.fixture(scope="session")
def statistical_consortium(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    return generate_consortium(tmp_path_factory.mktemp("stats"), **STATISTICAL)
