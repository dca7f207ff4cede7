"""A real PostgreSQL server for the deploy tests (session-wide; skipped, with the reason, when the
binaries are absent, unless IMPACT_REQUIRE_POSTGRES=1 makes that a failure)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# postgres_server.py and dagster_jobs.py are helpers beside this file (importlib import mode).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import postgres_server as pg


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.Server]:
    reason = pg.missing_reason()
    if reason:
        if os.environ.get(pg.REQUIRE_ENV) == "1":
            pytest.fail(f"{pg.REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    server = pg.start()
    try:
        yield server
    finally:
        pg.stop(server)
