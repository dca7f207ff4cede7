"""Resources: the home folder and the run's settings, from the environment (`EnvVar`).

The pseudonymization key is deliberately NOT a resource field: resource config is stored in run
config and the event log. It is read from the environment inside the step that needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from contracts.loader import ContractSet, load_contracts
from privacy.keys import PseudonymKey, load_pseudonym_key
from privacy.zones import Home

DEMO_MODE_ENV = "IMPACT_DEMO_MODE"  # set only by `impact demo`: lets the demo key through


class ImpactHome(dg.ConfigurableResource):
    """Where a deployment keeps its zones, and its limits."""

    home: str
    max_export_bytes: int = 512 * 1024 * 1024

    @property
    def paths(self) -> Home:
        return Home(Path(self.home).resolve())

    def contracts(self) -> ContractSet:
        return load_contracts(self.paths.contracts)

    def pseudonym_key(self) -> PseudonymKey:
        return load_pseudonym_key(demo_mode=os.environ.get(DEMO_MODE_ENV) == "1")


def default_resources() -> dict:
    return {"impact": ImpactHome(home=dg.EnvVar("IMPACT_HOME"))}
