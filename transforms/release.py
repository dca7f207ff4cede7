"""The consortium release: staging of every school → tables per purpose → disclosure control → published/.

Each published measure uses only the schools whose contracts allow its purpose; the manifest lists,
per table, the contracts (id and version) whose data it used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from contracts.loader import ContractSet
from privacy import optouts
from privacy.audit_anchors import MANIFEST_HEAD_KEY, audit_head_for_manifest
from privacy.staging_store import read_staging_frame
from privacy.zones import Home
from transforms import metrics
from transforms.catalogue import attributed_catalogue, staged_catalogues
from transforms.publication import release_fingerprint, write_manifest, write_table
from transforms.usage_summary import SchoolUsage, school_usage

# table -> the purpose a contract must allow for its school's data to be used
TABLE_PURPOSES: dict[str, str] = {
    "reach": "reach",
    "usage_by_resource": "usage",
    "usage_by_week": "usage",
    "teacher_time_saved": "usage",
    "cross_school_use": "cross_school_use",
    "sample_flow": "learning_gains",
    "gains_by_band": "learning_gains",
}


@dataclass
class Release:
    tables: dict[str, pl.DataFrame]
    schools_by_table: dict[str, list[str]]
    manifest: dict = field(default_factory=dict)


# What an absent dataset looks like to the metrics (a school may send no usage or no tests).
EMPTY = {
    "per_student": {
        "school_id": pl.String, "student_pid": pl.String, "minutes": pl.Float64, "active_weeks": pl.UInt32,
    },
    "assessments": {
        "school_id": pl.String, "student_pid": pl.String, "pre_score": pl.Float64, "post_score": pl.Float64,
    },
}  # fmt: skip


def read_staging(
    home: Home, dataset: str, schools: list[str], empty: dict | None = None
) -> pl.DataFrame | None:
    present = [s for s in schools if home.staging_file(dataset, s).exists()]
    if not present:
        return None if empty is None else pl.DataFrame(schema=empty)
    frames = [read_staging_frame(home.staging_file(dataset, s), s) for s in present]
    return pl.concat(frames, how="diagonal_relaxed")


def schools_allowing(contracts: ContractSet, purpose: str, schools: list[str]) -> list[str]:
    return sorted(s for s in schools if any(a.allows(purpose) for a in contracts.for_school(s)))


def _resources(home: Home, schools: list[str]) -> pl.DataFrame:
    """Each resource attributed to the school whose own catalogue lists it (transforms.catalogue)."""
    return attributed_catalogue(staged_catalogues(home, schools))[0]


@dataclass(frozen=True)
class SessionTable:
    """A table built from usage sessions, school by school (transforms.usage_summary): its
    purpose, its dims (the school first), the measures recomputed from summed ones, and how one
    school's reductions become the table (its ALL rows are dropped: consortium_rows sums them)."""

    purpose: str
    dims: tuple[str, ...]
    ratios: dict[str, tuple[str, str]]
    build: Callable[[SchoolUsage, pl.DataFrame], pl.DataFrame]

    def school_rows(self, summary: SchoolUsage, resources: pl.DataFrame) -> pl.DataFrame:
        return self.build(summary, resources).filter(pl.col(self.dims[0]) != metrics.ALL_SCHOOLS)


SESSION_TABLES: dict[str, SessionTable] = {
    "usage_by_resource": SessionTable(
        "usage", ("school_id", "resource_id"), {"minutes_per_user": ("minutes_total", "users")},
        lambda summary, resources: metrics.usage_by_resource(summary.by_resource, resources),
    ),
    "usage_by_week": SessionTable(
        "usage", ("school_id", "week"), {"minutes_per_active_user": ("minutes_total", "active_users")},
        lambda summary, _: metrics.usage_by_week(summary.by_week),
    ),
    "cross_school_use": SessionTable(
        "cross_school_use", ("user_school", "contributing_school"), {},
        lambda summary, resources: metrics.cross_school_use(summary.by_resource, resources),
    ),
}  # fmt: skip


@dataclass
class SessionTables:
    tables: dict[str, pl.DataFrame]
    per_student: dict[str, pl.DataFrame]  # school -> its students' usage totals (all purposes)


def session_tables(
    home: Home, contracts: ContractSet, schools: list[str], resources: pl.DataFrame
) -> SessionTables:
    """The tables built from usage sessions, one school at a time (memory: one school's sessions),
    each school's rows without the students who opted out of the table's purpose."""
    rows: dict[str, list[pl.DataFrame]] = {name: [] for name in SESSION_TABLES}
    per_student: dict[str, pl.DataFrame] = {}
    for school_id in schools:
        summary = school_usage(home, school_id)
        if summary is None:
            continue
        per_student[school_id] = summary.by_student
        students = read_staging(home, "students", [school_id])
        for name, table in SESSION_TABLES.items():
            if any(a.allows(table.purpose) for a in contracts.for_school(school_id)):
                allowed = summary.for_purpose(students, table.purpose)
                rows[name].append(table.school_rows(allowed, resources))
    tables = {
        name: metrics.consortium_rows(
            pl.concat(parts, how="vertical_relaxed"), SESSION_TABLES[name].dims, SESSION_TABLES[name].ratios
        )
        for name, parts in rows.items()
        if parts
    }
    return SessionTables(tables, per_student)


def build_tables(
    home: Home,
    contracts: ContractSet,
    schools: list[str],
    impact_tables: Callable[[pl.DataFrame], dict[str, pl.DataFrame]] | None = None,
    band_thresholds: tuple[float, float] = metrics.DEFAULT_BAND_THRESHOLDS,
) -> Release:
    """Unsuppressed tables (restricted until disclosure control has run over them)."""
    tables: dict[str, pl.DataFrame] = {}
    used: dict[str, list[str]] = {}
    resources = _resources(home, schools)
    sessions = session_tables(home, contracts, schools, resources)
    for name, table in sessions.tables.items():
        tables[name], used[name] = table, schools_allowing(contracts, SESSION_TABLES[name].purpose, schools)

    def analysis_for(purpose: str) -> tuple[pl.DataFrame | None, list[str]]:
        allowed = schools_allowing(contracts, purpose, schools)
        students = read_staging(home, "students", allowed)
        if students is None:
            return None, allowed
        # Students who opted out of this purpose leave; their usage and scores follow (left joins).
        students = optouts.for_purpose(students, students, purpose).drop(
            optouts.OPTED_OUT_PURPOSES, strict=False
        )
        totals = [sessions.per_student[s] for s in allowed if s in sessions.per_student]
        usage = (
            pl.concat(totals, how="vertical_relaxed") if totals else pl.DataFrame(schema=EMPTY["per_student"])
        )
        scores = read_staging(home, "assessments", allowed, EMPTY["assessments"])
        return metrics.analysis_frame(students, usage, scores, band_thresholds), allowed

    analysis, allowed = analysis_for("reach")
    if analysis is not None:
        tables["reach"], used["reach"] = metrics.reach_table(analysis), allowed

    usage_schools = schools_allowing(contracts, "usage", schools)
    survey = read_staging(home, "teacher_survey", usage_schools)  # teachers: no student opt-outs apply
    if survey is not None:
        tables["teacher_time_saved"] = metrics.teacher_time_saved(survey)
        used["teacher_time_saved"] = sorted(survey["school_id"].unique().to_list())

    analysis, allowed = analysis_for("learning_gains")
    if analysis is not None:
        tables["sample_flow"] = metrics.sample_flow(analysis)
        tables["gains_by_band"] = metrics.gains_by_band(analysis)
        used["sample_flow"] = used["gains_by_band"] = allowed
        if impact_tables is not None:
            for name, table in impact_tables(analysis).items():
                tables[name], used[name] = table, allowed
    return Release(tables, used)


def contracts_used(contracts: ContractSet, schools: list[str]) -> list[dict]:
    return [
        {"school_id": a.school_id, "contract_id": a.contract_id, "version": a.version}
        for s in schools
        for a in contracts.for_school(s)
    ]


def publish(
    home: Home, contracts: ContractSet, release: Release, protection: dict, inputs: dict[str, str]
) -> Path:
    """Write every (already protected) table and the manifest; return the manifest's path."""
    home.tables.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, table in sorted(release.tables.items()):
        entry = write_table(home.tables, name, table)
        entry["purpose"] = TABLE_PURPOSES.get(name, "learning_gains")
        entry["contracts"] = contracts_used(contracts, release.schools_by_table.get(name, []))
        entries[name] = entry
    for stale in home.tables.glob("*"):
        if stale.stem not in release.tables and stale.suffix in (".csv", ".parquet"):
            stale.unlink()
    manifest = {
        "release": release_fingerprint(inputs),
        "inputs": inputs,
        "tables": entries,
        "disclosure_control": protection,
        # The audit log's head before this release's `published` entry: `impact audit verify`
        # holds the log to it, so a cut or rewritten log shows without a signing key.
        MANIFEST_HEAD_KEY: audit_head_for_manifest(home),
    }
    release.manifest = manifest
    return write_manifest(home.published, manifest)
