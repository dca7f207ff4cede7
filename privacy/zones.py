"""The home folder's zones, and which of them are restricted (owner-only).

Restricted zones are open to no one but the owner. The home folder itself, `contracts/` and
`published/` may be read by others (contracts are shared agreements, the release is public), but
never written: whoever can write them can swap a contract, a published table or a whole zone.
"""

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
WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


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
        """Create every zone; restricted ones owner-only (0700), what it creates of the others
        writable by the owner only, whatever the umask."""
        _mkdir_not_writable_by_others(self.root, parents=True)
        for zone in RESTRICTED_ZONES:
            path = self.root / zone
            path.mkdir(exist_ok=True)
            path.chmod(0o700)
        for zone in OPEN_ZONES:
            _mkdir_not_writable_by_others(self.root / zone)
        _mkdir_not_writable_by_others(self.tables)

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

    def writable_by_others(self) -> list[Path]:
        """The home folder, and contracts/ and published/ with all they hold, where group or others
        may write (reading is allowed)."""
        candidates = [self.root]
        for zone in OPEN_ZONES:
            top = self.root / zone
            candidates += [top, *top.rglob("*")] if top.is_dir() else []
        return [
            p
            for p in candidates
            if p.exists() and not p.is_symlink() and p.stat().st_mode & WRITABLE_BY_OTHERS
        ]

    def permission_problem(self) -> str | None:
        """Why `impact run` refuses to start, or None: restricted paths open to group/others, or
        the home, contracts/ or published/ writable by them."""
        problems = []
        loose = self.loose_permissions()
        if loose:
            problems.append(
                f"restricted zones must be owner-only, but {len(loose)} path(s) are open to group or "
                f"others: {self._listed(loose)}. Fix: `impact run --fix-permissions`, or "
                "`chmod -R go-rwx` on those zones"
            )
        writable = self.writable_by_others()
        if writable:
            problems.append(
                f"the home folder, contracts/ and published/ may be readable by others but never "
                f"writable (whoever can write them can swap a contract or a published file), but "
                f"{len(writable)} path(s) are writable by group or others: {self._listed(writable)}. "
                f"Fix: `impact run --fix-permissions`, or `chmod go-w` on them (`chmod -R go-w "
                f"{self.root}/contracts {self.root}/published`)"
            )
        return "; ".join(problems) or None

    def _listed(self, paths: list[Path]) -> str:
        shown = ", ".join(
            f"{_relative(p, self.root)} ({oct(stat.S_IMODE(p.stat().st_mode))})" for p in paths[:5]
        )
        return shown + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")

    def fix_permissions(self) -> int:
        """Restricted paths owner-only; the home, contracts/ and published/ not writable by others."""
        fixed = 0
        for path in self.loose_permissions():
            path.chmod(0o700 if path.is_dir() else 0o600)
            fixed += 1
        for path in self.writable_by_others():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~WRITABLE_BY_OTHERS)
            fixed += 1
        return fixed


def home_root(home: Home | str | os.PathLike) -> Path:
    """The folder of a `Home` or of a home given as a path (`Path.root` is "/", so never
    `getattr(home, "root", home)`)."""
    return home.root if isinstance(home, Home) else Path(home)


def _relative(path: Path, root: Path) -> str:
    return "the home folder" if path == root else str(path.relative_to(root))


def _mkdir_not_writable_by_others(path: Path, parents: bool = False) -> None:
    """mkdir that, when it creates the folder, takes group/other write away (a umask of 002 would
    leave it group-writable, which `impact run` refuses)."""
    if path.is_dir():
        return
    path.mkdir(parents=parents, exist_ok=True)
    path.chmod(stat.S_IMODE(path.stat().st_mode) & ~WRITABLE_BY_OTHERS)
