"""Named crash points for the crash-safety tests: `IMPACT_CRASH_AT=<label>:<n>` makes the n-th
pass through `crash_point(<label>)` in this process SIGKILL it, exactly where a power cut or an
OOM kill could land. Unset (always, outside tests) it costs one dictionary lookup.

Labels in use: intake.quarantine, intake.staging_write, intake.state, publish.table,
publish.manifest, run.school_done, run.release, run.committed (docs/reliability.md).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_ENV = "IMPACT_CRASH_AT"
_passes: Counter = Counter()


def crash_point(label: str) -> None:
    """SIGKILL this process if `IMPACT_CRASH_AT` names this label and this is its n-th pass."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    target, _, nth = spec.rpartition(":")
    if target != label:
        return
    _passes[label] += 1
    if _passes[label] == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)
