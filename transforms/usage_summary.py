"""One school's usage sessions reduced to per-student rows, so the release never holds every session.

Every usage measure the release publishes counts distinct (school, student) pairs or sums minutes,
so it is computed school by school from these reductions and the consortium rows are sums
(`metrics.consortium_rows`); memory stays that of one school's sessions (docs/scaling.md).

The reductions are derived data, cached at `staging/_derived/school=<id>/usage.<source>.parquet`,
encrypted with the school's data key like staging itself. `<source>` names the staged usage file
they came from (inode, size, modification time), so anything that rewrites it (a new export,
retention deleting old weeks, a key rotation) makes the cache stale and the next release recomputes
it. Opt-outs are not baked in: the release applies them per purpose, as it does to sessions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from privacy import optouts
from privacy.encryption import EncryptionError
from privacy.staging_store import forget_derived, read_staging_frame, write_staging_frame
from privacy.zones import Home
from transforms import metrics

SUMMARY_VERSION = "2"  # bump when a reduction changes: every cache is then stale
KIND = "__reduction"


@dataclass(frozen=True)
class SchoolUsage:
    """One school's usage, one row per student (and resource, or week)."""

    by_student: pl.DataFrame  # school_id, student_pid, minutes, active_weeks
    by_resource: pl.DataFrame  # school_id, student_pid, resource_id, minutes
    by_week: pl.DataFrame  # school_id, student_pid, week, minutes

    def for_purpose(self, students: pl.DataFrame | None, purpose: str) -> SchoolUsage:
        """Without the students who opted out of `purpose` (privacy.optouts)."""
        return SchoolUsage(
            *(
                optouts.for_purpose(f, students, purpose)
                for f in (self.by_student, self.by_resource, self.by_week)
            )
        )


COLUMNS = {
    "by_student": ("school_id", "student_pid", "minutes", "active_weeks"),
    "by_resource": ("school_id", "student_pid", "resource_id", "minutes"),
    "by_week": ("school_id", "student_pid", "week", "minutes"),
}


def reduce_usage(usage: pl.DataFrame) -> SchoolUsage:
    """Sessions → per-student sums. Distinct students and summed minutes of every roll-up the
    release publishes are the same computed from these as from the sessions."""
    # minutes as Float64 whatever the contract declared, so every school's reductions stack
    usage = usage.with_columns(pl.col("minutes").cast(pl.Float64))
    frames = {
        "by_student": metrics.student_usage(usage),
        "by_resource": metrics.per_student(usage, ["resource_id"]),
        "by_week": metrics.per_student(usage, ["week"]),
    }
    return SchoolUsage(**{name: frames[name].select(cols).sort(cols[:3]) for name, cols in COLUMNS.items()})


def source_signature(path: Path) -> str:
    """Which staged file the reductions came from: a rewrite (always a new inode, since staging
    writes are rename-into-place) or a changed size or time gives another signature."""
    info = path.stat()
    text = f"{SUMMARY_VERSION}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _pack(summary: SchoolUsage) -> pl.DataFrame:
    parts = [
        frame.with_columns(pl.lit(name).alias(KIND))
        for name, frame in (
            ("by_student", summary.by_student),
            ("by_resource", summary.by_resource),
            ("by_week", summary.by_week),
        )
    ]
    return pl.concat(parts, how="diagonal_relaxed")


def _unpack(packed: pl.DataFrame) -> SchoolUsage:
    return SchoolUsage(
        **{name: packed.filter(pl.col(KIND) == name).select(cols) for name, cols in COLUMNS.items()}
    )


def school_usage(home: Home, school_id: str) -> SchoolUsage | None:
    """The school's reductions: from the cache when it matches the staged usage, else computed
    from the staged sessions and cached. None when the school has no staged usage."""
    source = home.staging_file("usage", school_id)
    if not source.exists():
        forget_derived(home, school_id)  # nothing may outlive the staged usage
        return None
    folder = home.derived_of(school_id)
    cached = folder / f"usage.{source_signature(source)}.parquet"
    if cached.exists():
        try:
            return _unpack(read_staging_frame(cached, school_id))
        except (EncryptionError, OSError):
            pass  # rewrapped away, or removed meanwhile: recompute below
    summary = reduce_usage(read_staging_frame(source, school_id))
    write_staging_frame(cached, _pack(summary), school_id)
    for stale in folder.glob("usage.*.parquet"):
        if stale != cached:
            stale.unlink(missing_ok=True)
    return summary
