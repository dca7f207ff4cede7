"""Key rotation of staging: rebuild every school's staging under a new key version, then swap it in.

Staging holds only HMACs, which cannot be re-keyed without the values they were computed from, so
a rotation re-derives staging from the raw exports still in landing/ (the caller's `restage`).
The new staging is built in a draft folder inside the staging zone (`staging/.rotation-<version>/`),
checked, and only then moved into place:

- every row of the draft carries the new key version and no old pseudonym survives;
- apart from `student_pid` and `key_version`, every dataset of every school holds exactly the rows
  it held before: a rotation changes pseudonyms, never data (so published aggregates are unchanged).

The swap renames one entry at a time (each rename is atomic). A `ROTATION_COMPLETE` marker, written
last into a finished draft, makes the sequence resumable: `recover_interrupted_rotation` rolls a
complete draft forward and deletes an incomplete one, so a crash leaves either the old staging or
the new one, never a mix, once recovery has run. No key, pseudonym or row value appears in any
message here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from privacy.atomic import atomic_write_text, fsync_directory
from privacy.keys import PseudonymKey
from privacy.staging_store import read_staging_frame
from privacy.zones import Home

DRAFT_PREFIX = ".rotation-"
RETIRED_PREFIX = ".retired-"
COMPLETE_MARKER = "ROTATION_COMPLETE"
IDENTITY_COLUMNS = ("student_pid", "teacher_pid", "key_version")
PID_COLUMNS = ("student_pid", "teacher_pid")


class RotationRefused(RuntimeError):
    """Rotation cannot go ahead; staging is left as it was. The message names schools, never values."""


@dataclass(frozen=True)
class DraftHome(Home):
    """The home with its staging zone redirected to a draft folder (landing, keys, contracts shared)."""

    draft: Path = Path()

    @property
    def staging(self) -> Path:
        return self.draft


@dataclass
class RotationReport:
    old_key_versions: list[str]
    new_key_version: str
    schools: list[str] = field(default_factory=list)
    rows: int = 0


def draft_folder(home: Home, version: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in version)
    return home.staging / f"{DRAFT_PREFIX}{safe}"


def staged_files(home: Home, datasets: Iterable[str]) -> list[tuple[str, str, Path]]:
    """(dataset, school_id, path) of every staging file of the given datasets."""
    found = []
    for dataset in datasets:
        for path in sorted(home.staging.glob(f"{dataset}/school=*/part.parquet")):
            found.append((dataset, path.parent.name.removeprefix("school="), path))
    return found


def read_staged(home: Home, datasets: Iterable[str]) -> dict[tuple[str, str], pl.DataFrame]:
    return {
        (ds, school): read_staging_frame(path, school) for ds, school, path in staged_files(home, datasets)
    }


def key_versions(frames: dict[tuple[str, str], pl.DataFrame]) -> set[str]:
    versions: set[str] = set()
    for frame in frames.values():
        if "key_version" in frame.columns:
            versions.update(v for v in frame["key_version"].unique().to_list() if v is not None)
    return versions


def pseudonyms(frames: dict[tuple[str, str], pl.DataFrame]) -> set[str]:
    pids: set[str] = set()
    for frame in frames.values():
        for column in PID_COLUMNS:
            if column in frame.columns:
                pids.update(frame[column].to_list())
    return pids


def _content_without_identity(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows as a multiset, pseudonyms aside: sorted on every remaining column."""
    rest = frame.drop([c for c in IDENTITY_COLUMNS if c in frame.columns])
    return rest.sort(rest.columns, nulls_last=True) if rest.columns else rest


def data_differences(
    before: dict[tuple[str, str], pl.DataFrame], after: dict[tuple[str, str], pl.DataFrame]
) -> list[str]:
    """Which (dataset, school) hold different rows once pseudonyms are set aside; names only."""
    problems = []
    for ds, school in sorted(set(before) | set(after)):
        old, new = before.get((ds, school)), after.get((ds, school))
        if old is None or new is None:
            problems.append(f"{school}/{ds}: {'new' if old is None else 'missing'} after re-staging")
        elif not _content_without_identity(old).equals(_content_without_identity(new)):
            problems.append(f"{school}/{ds}: {old.height} rows before, {new.height} after, or values differ")
    return problems


def _check_draft(before: dict, after: dict, new_key: PseudonymKey) -> None:
    stale = key_versions(after) - {new_key.version}
    if stale:
        raise RotationRefused(f"re-staged rows still carry key version(s) {sorted(stale)}")
    if pseudonyms(before) & pseudonyms(after):
        raise RotationRefused(
            "the new key gives the same pseudonyms as the old one: the key itself must change, "
            "not only IMPACT_PSEUDONYM_KEY_VERSION"
        )
    differences = data_differences(before, after)
    if differences:
        raise RotationRefused(
            "re-staging from landing would change data, not only pseudonyms (new or deleted exports, "
            "or a changed contract): " + "; ".join(differences[:5]) + ". Run `impact run` first, then rotate"
        )


def rotate_staging(
    home: Home,
    new_key: PseudonymKey,
    schools: Iterable[str],
    restage: Callable[[Home, str], None],
    entries: Iterable[str],
    before_swap: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Rebuild staging for `schools` under `new_key` with `restage(draft_home, school_id)`, check it,
    and swap the staging `entries` (dataset folders and `_state`) into place. `before_swap(report)`
    may refuse (raise) while the old staging is still in place, e.g. an audit entry the log refuses."""
    entries = list(entries)
    datasets = [e for e in entries if not e.startswith("_")]
    recover_interrupted_rotation(home, entries)
    before = read_staged(home, datasets)
    old_versions = key_versions(before)
    if new_key.version in old_versions:
        raise RotationRefused(
            f"staging already holds key version {new_key.version!r}: set IMPACT_PSEUDONYM_KEY_VERSION "
            "to a new version together with the new key"
        )
    draft = draft_folder(home, new_key.version)
    shutil.rmtree(draft, ignore_errors=True)
    draft.mkdir(mode=0o700, parents=True)
    draft_home = DraftHome(home.root, draft)
    report = RotationReport(sorted(old_versions), new_key.version)
    try:
        for school_id in sorted(schools):
            restage(draft_home, school_id)
            report.schools.append(school_id)
        after = read_staged(draft_home, datasets)
        _check_draft(before, after, new_key)
        report.rows = sum(frame.height for frame in after.values())
        if before_swap is not None:
            before_swap(report)
    except BaseException:
        shutil.rmtree(draft, ignore_errors=True)
        raise
    held = sorted(name for name in entries if (draft / name).exists())
    marker = {"new_key_version": new_key.version, "entries": held}
    atomic_write_text(draft / COMPLETE_MARKER, json.dumps(marker), mode=0o600)
    fsync_directory(draft)
    _swap_into_place(home, draft, entries)
    return report


def _swap_into_place(home: Home, draft: Path, entries: list[str]) -> None:
    """Move each old staging entry aside and the draft's in its place. Idempotent: the marker lists
    what the draft held, so a repeat after a crash knows which entries are already new."""
    marker = json.loads((draft / COMPLETE_MARKER).read_text())
    new_entries = set(marker["entries"])
    retired = home.staging / f"{RETIRED_PREFIX}{draft.name.removeprefix(DRAFT_PREFIX)}"
    retired.mkdir(mode=0o700, exist_ok=True)
    for name in entries:
        current, replacement = home.staging / name, draft / name
        if name in new_entries and not replacement.exists():
            continue  # already moved in: `current` is the new one
        if current.exists():
            os.replace(current, retired / name)
        if name in new_entries:
            os.replace(replacement, current)
    fsync_directory(home.staging)
    shutil.rmtree(draft)
    shutil.rmtree(retired)


def recover_interrupted_rotation(home: Home, entries: Iterable[str]) -> list[str]:
    """Finish a rotation whose draft was complete; discard one that was not. Returns what was done."""
    done = []
    if not home.staging.is_dir():
        return done
    for draft in sorted(home.staging.glob(f"{DRAFT_PREFIX}*")):
        if (draft / COMPLETE_MARKER).exists():
            _swap_into_place(home, draft, list(entries))
            done.append(f"completed {draft.name}")
        else:
            shutil.rmtree(draft)
            done.append(f"discarded {draft.name}")
    for retired in sorted(home.staging.glob(f"{RETIRED_PREFIX}*")):
        shutil.rmtree(retired)
        done.append(f"removed {retired.name}")
    return done
