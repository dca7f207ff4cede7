"""Canary students: improbable identities planted in a school's exports to prove nothing leaks.

``plant_canaries(home, school_id)`` appends one canary student to every student-level export of
the school (roster, usage, assessments, attendance, comments), in whatever format, delimiter,
column names and date/boolean spelling that school uses. Any of the canary's strings appearing in
staging, published tables or reports is a leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from demo.exports import school_layout, write_frame, xapi_lines
from demo.profiles import SchoolProfile, school_index, school_profile

EXTRA_COLUMN = "parent_name"  # added to rosters that do not already carry an undeclared column
_GIVEN = (
    "Zyxqaviera",
    "Qorvilune",
    "Xanthoriel",
    "Vexlorinda",
    "Zorquelline",
    "Jyxabeth",
    "Wuxandria",
    "Plorvessa",
)
_FAMILY = ("Quonkleworth", "Brindlequist", "Throckmuzzle", "Vonderplatz", "Snargleby", "Fenwhistlex")
_PARENT_GIVEN = "Ovrelda"
_EXPORT_DATE = re.compile(r"_(\d{4}-\d{2}-\d{2})\.")


@dataclass(frozen=True)
class Canary:
    school_id: str
    given_name: str
    family_name: str
    full_name: str
    email: str
    student_id: str
    state_id: str
    phone: str
    parent_name: str

    def identifying_strings(self) -> tuple[str, ...]:
        """Strings that must never appear outside the landing zone."""
        return (
            self.given_name,
            self.family_name,
            self.email,
            self.student_id,
            self.state_id,
            self.phone,
        )


def make_canary(profile: SchoolProfile) -> Canary:
    """The school's canary: unique per school, improbable everywhere, ids in the school's id shape."""
    index = school_index(profile.school_id)
    given = _GIVEN[index % len(_GIVEN)]
    family = _FAMILY[(index // len(_GIVEN)) % len(_FAMILY)]
    return Canary(
        school_id=profile.school_id,
        given_name=given,
        family_name=family,
        full_name=f"{given} {family}",
        email=f"{given}.{family}@{profile.email_domain}".lower(),
        student_id=f"CANARY{index + 1:0{profile.id_digits}d}",
        state_id=f"ST99{index + 1:06d}",  # real state ids never start with 9
        # 555-01xx numbers are reserved for fiction; the area code varies past 100 schools.
        phone=f"+1-{201 + index // 100}-555-01{index % 100:02d}",
        parent_name=f"{_PARENT_GIVEN} {family}",
    )


def _canonical_rows(canary: Canary, export_day: date) -> dict[str, pl.DataFrame]:
    """The canary's records in canonical columns, dated a few weeks before the export."""
    ids = {"student_id": canary.student_id}
    recent = datetime.combine(export_day - timedelta(days=40), time(10, 30))
    return {
        "roster": pl.DataFrame(
            {
                **ids,
                "state_id": canary.state_id,
                "given_name": canary.given_name,
                "family_name": canary.family_name,
                "email": canary.email,
                "birth_date": date(export_day.year - 11, 5, 17),
                "postcode": "ZZ99 3CZ",
                "grade": 5,
                "sex": "F",
                "frl": False,
                "ell": False,
                "disability": False,
            }
        ),
        "usage": pl.DataFrame(
            {
                **ids,
                "student_email": canary.email,
                "resource_id": ["RES-001", "RES-002", "RES-001"],
                "started_at": [recent, recent + timedelta(days=1), recent + timedelta(days=8)],
                "minutes": [25.0, 40.0, 15.0],
            }
        ),
        "assessments": pl.DataFrame(
            {
                **ids,
                "term": ["pre", "post"],
                "score": [61.5, 70.0],
                "assessed_on": [export_day - timedelta(days=270), export_day - timedelta(days=35)],
            }
        ),
        "attendance": pl.DataFrame({**ids, "days_enrolled": 180, "days_present": 171}),
        "comments": pl.DataFrame(
            {
                **ids,
                "teacher_name": "Ms Canary Teacher",
                "written_on": export_day - timedelta(days=30),
                "text": (
                    f"{canary.full_name} asked for extra help; call home on {canary.phone} "
                    f"or write to {canary.email}."
                ),
            }
        ),
    }


def latest_export(folder: Path) -> Path:
    files = sorted(path for path in folder.iterdir() if path.is_file())
    if not files:
        raise FileNotFoundError(f"no export in {folder}")
    return files[-1]


def _export_day(path: Path) -> date:
    match = _EXPORT_DATE.search(path.name)
    if not match:
        raise ValueError(f"export file name has no date: {path.name}")
    return date.fromisoformat(match.group(1))


def _read_export(path: Path, profile: SchoolProfile, dataset: str) -> pl.DataFrame:
    file_format = profile.file_format(dataset)
    if file_format == "parquet":
        return pl.read_parquet(path)
    if file_format == "jsonl":
        return pl.read_ndjson(path)
    # Every CSV value stays text, so the existing rows are written back exactly as they were.
    return pl.read_csv(path, separator=profile.delimiter_for(dataset), infer_schema=False)


def _append(path: Path, profile: SchoolProfile, dataset: str, canonical: pl.DataFrame) -> None:
    if profile.file_format(dataset) == "xapi":
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in xapi_lines(canonical, profile))
        return
    existing = _read_export(path, profile, dataset)
    added = school_layout(canonical, profile, dataset)
    if profile.file_format(dataset) == "csv":
        added = added.select(pl.all().cast(pl.String))
    write_frame(path, pl.concat([existing, added], how="diagonal_relaxed"), profile, dataset)


def _already_planted(roster_path: Path, profile: SchoolProfile, canary: Canary) -> bool:
    roster = _read_export(roster_path, profile, "roster")
    return canary.student_id in roster[profile.source_column("roster", "student_id")].to_list()


def plant_canaries(home: Path, school_id: str) -> Canary:
    """Append the school's canary student to each of its student-level landing exports (once)."""
    profile = school_profile(school_id)
    canary = make_canary(profile)
    landing = Path(home) / "landing" / school_id
    roster_path = latest_export(landing / "roster")
    if _already_planted(roster_path, profile, canary):
        return canary
    export_day = _export_day(roster_path)
    rows = _canonical_rows(canary, export_day)
    extra = profile.extra_roster_column or EXTRA_COLUMN
    rows["roster"] = rows["roster"].with_columns(pl.lit(canary.parent_name).alias(extra))
    for dataset, canonical in rows.items():
        _append(latest_export(landing / dataset), profile, dataset, canonical)
    return canary
