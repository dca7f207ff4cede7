"""Fixtures for the dashboard tests: a real published release, built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# release_fixture.py is a helper beside this file; importlib import mode does not put it on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from release_fixture import hostile_release, released_home

from privacy.zones import Home


@pytest.fixture(scope="session")
def release_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return released_home(tmp_path_factory)


@pytest.fixture(scope="session")
def hostile_published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """published/ of the session's release with hostile HTML in every school-controlled value."""
    return hostile_release(tmp_path_factory)
