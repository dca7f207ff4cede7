"""The home folder's zones, and which of them are restricted (owner-only)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

RESTRICTED_ZONES = ("landing", "quarantine", "staging", "audit", "dagster")
OPEN_ZONES = ("published", "contracts")


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

    def fix_permissions(self) -> int:
        fixed = 0
        for path in self.loose_permissions():
            path.chmod(0o700 if path.is_dir() else 0o600)
            fixed += 1
        return fixed
