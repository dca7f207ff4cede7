"""The home folder's zones, and which of them are restricted (owner-only)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

RESTRICTED_ZONES = ("landing", "quarantine", "staging", "audit", "dagster", "keys")
# Zones whose contents the pipeline does not write itself: senders deliver into landing/ with their
# own umask, Dagster writes its SQLite files 0644. The zone folder (0700) already keeps others out,
# so `tighten_received` makes these owner-only at each run instead of refusing to start.
SELF_TIGHTENED_ZONES = ("landing", "dagster")
OPEN_ZONES = ("published", "contracts")


DERIVED_FOLDER = "_derived"  # under staging/: see Home.derived


@dataclass(frozen=True)
class Home:
    """Paths of one deployment's home folder (`IMPACT_HOME`)."""

    root: Path

    @classmethod
    def from_env(cls, default: str = "var") -> Home:
        return cls(Path(os.environ.get("IMPACT_HOME", default)).resolve())

    @property
    def contracts(self) -> Path:
        return self.root / "contracts"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def tables(self) -> Path:
        return self.published / "tables"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def audit_log(self) -> Path:
        return self.audit / "audit.jsonl"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    @property
    def state(self) -> Path:
        """Restricted bookkeeping: what each school's staging was built from (digests only)."""
        return self.staging / "_state"

    @property
    def derived(self) -> Path:
        """Restricted, encrypted like staging: what the release caches from each school's staging
        (transforms.usage_summary); removed with the staging it came from."""
        return self.staging / DERIVED_FOLDER

    def derived_of(self, school_id: str) -> Path:
        """One school's derived files: `staging/_derived/school=<id>/`."""
        return self.derived / f"school={school_id}"

    def staging_file(self, dataset: str, school_id: str) -> Path:
        return self.staging / dataset / f"school={school_id}" / "part.parquet"

    def create(self) -> None:
        """Create every zone; restricted ones owner-only (0700)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for zone in RESTRICTED_ZONES:
            path = self.root / zone
            path.mkdir(exist_ok=True)
            path.chmod(0o700)
        for zone in OPEN_ZONES:
            (self.root / zone).mkdir(exist_ok=True)
        self.tables.mkdir(parents=True, exist_ok=True)

    def loose_permissions(self) -> list[Path]:
        """Restricted paths readable by group or others."""
        loose = []
        for zone in RESTRICTED_ZONES:
            top = self.root / zone
            if not top.exists():
                continue
            for path in [top, *top.rglob("*")]:
                if path.is_symlink():
                    continue
                if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                    loose.append(path)
        return loose

    def tighten_received(self) -> int:
        """chmod go-rwx what senders and Dagster created inside landing/ and dagster/; returns how many."""
        tightened = 0
        for zone in SELF_TIGHTENED_ZONES:
            top = self.root / zone
            for path in top.rglob("*") if top.is_dir() else ():
                if not path.is_symlink() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                    path.chmod(0o700 if path.is_dir() else 0o600)
                    tightened += 1
        return tightened

    def permission_problem(self) -> str | None:
        """Why `impact run` refuses to start (restricted paths open to group/others), or None."""
        loose = self.loose_permissions()
        if not loose:
            return None
        shown = ", ".join(
            f"{p.relative_to(self.root)} ({oct(stat.S_IMODE(p.stat().st_mode))})" for p in loose[:5]
        )
        more = f" and {len(loose) - 5} more" if len(loose) > 5 else ""
        return (
            f"restricted zones must be owner-only, but {len(loose)} path(s) are open to group or others: "
            f"{shown}{more}. Fix: `impact run --fix-permissions`, or `chmod -R go-rwx` on those zones"
        )

    def fix_permissions(self) -> int:
        fixed = 0
        for path in self.loose_permissions():
            path.chmod(0o700 if path.is_dir() else 0o600)
            fixed += 1
        return fixed
