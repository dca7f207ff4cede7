"""The seeded synthetic consortium: contracts and messy school exports with fake PII.

``generate_consortium(home)`` writes, for schools ``sch01..schNN``:

* ``home/contracts/dsa-schNN.yaml`` — the school's data-sharing agreement (ODCS v3.1 shape, see
  ``contracts/examples/sch01.yaml``), declaring every column the school sends except a deliberate
  undeclared one;
* ``home/landing/<school>/<dataset>/<dataset>_<YYYY-MM-DD>.<ext>`` — roster, usage, resources,
  assessments, attendance and comments, each in the school's own format (``demo.profiles``).

Same arguments, same bytes: randomness comes only from ``numpy.random.default_rng([seed, school])``
and seeded Faker instances, rows are written in a stable order and no wall-clock time is recorded.
Schools are generated one at a time (only the handful of students moving on is carried over), so a
100 × 1,000-student consortium streams without holding every school in memory.

The story in the data
---------------------
* sch03 sends its roster as Parquet and its usage as xAPI statements keyed by e-mail; sch07 sends
  usage keyed by e-mail in a CSV; sch06 sends plain JSON lines; sch02 uses ``;``.
* sch04's roster carries an undeclared ``parent_name`` column full of fake names (must be dropped).
* sch05's agreement does not allow ``learning_gains``.
* sch07's agreement omits ``attendance`` although the school exports it (must be quarantined).
* sch02 and sch08 also send the optional teacher survey (15-25 teachers each, one answer each:
  minutes saved per week), declared in their agreements; the others send none.
* 2 % of each school's students move mid-year to the next school: same ``state_id``, new local id.
  They sit the pre-test at the old school and the post-test at the new one.
* Local id formats overlap between schools (six-digit numbers at sch01, sch04, sch05, sch07), so a
  student id identifies a student only within a school.

Outcome model (the ground truth an impact analysis should recover)
-----------------------------------------------------------------
* Prior attainment ``z ~ N(0, 1)``. FRL (~40 %), ELL (~15 %) and disability (~12 %) are a little
  more likely at low ``z``; grades 3..8; sex F/M with a rare ``X`` (~1.5 %) for suppression to act on.
* Use: P(user) = logistic(logit(0.70) + 0.6 z), so ~30 % non-users and users have higher prior
  attainment: a naive user/non-user comparison is biased upwards. A user's total minutes over the
  year are lognormal (median 550 × weeks/36, log-SD 0.85, + 0.35 z on the log scale), spread over
  ~8-minute sessions in weeks that taper off during the year.
* Bands by total minutes: none = 0, low <= 300, medium <= 900, high > 900
  (``DEFAULT_BAND_THRESHOLDS``; the pipeline's default thresholds must match). Dose: none 0,
  low 1/3, medium 2/3, high 1.
* ``pre = 50 + 10 z + N(0, 5)``;
  ``post = pre + 5 + 0.1 (pre - 50) + dose × true_effect × POST_SD + u_school + N(0, 4)``,
  ``u_school ~ N(0, 2)``, ``POST_SD`` = SD of post among non-users (~13.1). Post depends on ``z``
  only through ``pre``, so adjusting for ``pre`` (ANCOVA) recovers ``true_effect`` (high vs none, in
  post-test SD units) while raw post and gain-score comparisons stay biased.
* Attrition: 7 % of users and 10.5 % of non-users miss the post-test (~8 % overall).
  Scores are clipped to 0..100 and rounded to 0.1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType

import numpy as np
import polars as pl

from demo.contract_yaml import build_contract, write_contract
from demo.exports import export_path, write_export
from demo.population import (
    SCHOOL_SD,
    Movers,
    SchoolInputs,
    SchoolYear,
    build_name_pools,
    simulate_school,
)
from demo.profiles import school_id_for, school_profile

__all__ = ["DEFAULT_BAND_THRESHOLDS", "GenerationSummary", "generate_consortium", "resource_catalog"]

# Inclusive upper bounds of a student's total minutes over the year: none = 0, low <= 300,
# medium <= 900, anything above is high. The pipeline's default band thresholds must match these.
DEFAULT_BAND_THRESHOLDS: Mapping[str, float] = MappingProxyType({"none": 0.0, "low": 300.0, "medium": 900.0})

RESOURCE_COUNT = 40
_SUBJECTS: dict[str, tuple[str, ...]] = {
    "maths": ("Fractions in the Kitchen", "Times-Table Sprint", "Shapes Around Us", "Algebra Tiles"),
    "english": ("Reading Detectives", "Poetry Workshop", "Grammar Garage", "Story Starters"),
    "science": ("Forces and Motion Lab", "The Water Cycle", "Plant Growth Diary", "Circuits Kit"),
    "history": ("Romans in Britain", "Voices of the Victorians", "Castles and Kings"),
    "geography": ("Rivers of the World", "Map Skills Quest", "Weather Watchers"),
    "computing": ("Scratch Animations", "Safe Online", "Debugging Detectives"),
    "languages": ("French Phonics", "Spanish Songs", "German Greetings"),
}


@dataclass(frozen=True)
class GenerationSummary:
    """What was written: per school, the contract, each dataset's file and its row count."""

    home: Path
    school_ids: tuple[str, ...]
    contracts: Mapping[str, Path]
    files: Mapping[str, Mapping[str, Path]]  # school -> dataset -> file
    rows: Mapping[str, Mapping[str, int]]  # school -> dataset -> rows written
    moved_students: int
    seed: int
    true_effect: float
    band_thresholds: Mapping[str, float] = field(default_factory=lambda: DEFAULT_BAND_THRESHOLDS)

    def all_paths(self) -> tuple[Path, ...]:
        exports = (path for school in self.school_ids for path in self.files[school].values())
        return (*self.contracts.values(), *exports)


def resource_catalog(rng: np.random.Generator, school_ids: tuple[str, ...]) -> pl.DataFrame:
    """~40 shared resources, each contributed by one school (every school contributes if it can)."""
    titles = [(subject, title) for subject, names in _SUBJECTS.items() for title in names]
    picked = [titles[i % len(titles)] for i in range(RESOURCE_COUNT)]
    contributors = np.resize(rng.permutation(np.array(school_ids)), RESOURCE_COUNT)
    return pl.DataFrame(
        {
            "resource_id": [f"RES-{k + 1:03d}" for k in range(RESOURCE_COUNT)],
            "title": [title if k < len(titles) else f"{title} II" for k, (_, title) in enumerate(picked)],
            "subject": [subject for subject, _ in picked],
            "contributing_school": contributors,
        }
    )


def _popularity(rng: np.random.Generator, catalog: pl.DataFrame, school_id: str) -> np.ndarray:
    """Zipf-like popularity, with a school's own contributions used twice as much at home."""
    base = 1.0 / (1.0 + rng.permutation(catalog.height)) ** 0.8
    home = (catalog["contributing_school"] == school_id).to_numpy()
    weights = base * np.where(home, 2.0, 1.0)
    return weights / weights.sum()


def teacher_survey(seed: int, school_index: int, export_date: date) -> pl.DataFrame:
    """15-25 teachers' answers (fake staff codes, minutes saved per week in 0..600, rounded to 5),
    from the school's own stream so the other exports' bytes do not depend on it."""
    rng = np.random.default_rng([seed, 2_000_003, school_index])
    count = int(rng.integers(15, 26))
    codes = rng.choice(9000, size=count, replace=False) + 1000
    minutes = np.clip(np.round(rng.gamma(2.0, 30.0, size=count) / 5) * 5, 0, 600)
    days_before = rng.integers(1, 22, size=count)
    return pl.DataFrame(
        {
            "teacher_id": [f"T{code}" for code in codes],
            "responded_on": [export_date - timedelta(days=int(d)) for d in days_before],
            "minutes_saved_per_week": minutes.astype(float),
        },
        schema={"teacher_id": pl.String, "responded_on": pl.Date, "minutes_saved_per_week": pl.Float64},
    ).sort("teacher_id")


def _export_dates(year: SchoolYear) -> tuple[date, date]:
    """(resources catalog date, every other export's date), both inside the agreement."""
    after_last_week = year.start + timedelta(weeks=year.weeks, days=7)
    return year.start - timedelta(days=6), max(date(year.start.year + 1, 6, 15), after_last_week)


def generate_consortium(
    home: Path,
    schools: int = 8,
    students_per_school: int = 400,
    weeks: int = 36,
    seed: int = 7,
    true_effect: float = 0.25,
    school_year_start: date = date(2026, 9, 7),
) -> GenerationSummary:
    """Write the consortium's contracts and landing exports under ``home``; same arguments, same bytes."""
    home = Path(home)
    year = SchoolYear(start=school_year_start, weeks=weeks)
    school_ids = tuple(school_id_for(i) for i in range(schools))
    agreement = (date(year.start.year, 8, 1), date(year.start.year + 1, 7, 31))
    resources_date, export_date = _export_dates(year)
    consortium_rng = np.random.default_rng([seed, 1_000_003])
    school_effects = consortium_rng.normal(0.0, SCHOOL_SD, size=schools)
    catalog = resource_catalog(consortium_rng, school_ids)
    pools = build_name_pools(seed)

    contracts: dict[str, Path] = {}
    files: dict[str, Mapping[str, Path]] = {}
    rows: dict[str, Mapping[str, int]] = {}
    arriving: Movers | None = None
    moved = 0
    for index, school_id in enumerate(school_ids):
        profile = school_profile(school_id)
        contract_path = home / "contracts" / f"dsa-{school_id}.yaml"
        contracts[school_id] = write_contract(contract_path, build_contract(profile, *agreement))
        inputs = SchoolInputs(
            profile=profile,
            school_index=index,
            is_last=index == schools - 1,
            year=year,
            students_per_school=students_per_school,
            seed=seed,
            true_effect=true_effect,
            school_effects=school_effects,
            resource_ids=catalog["resource_id"].to_numpy(),
            resource_weights=_popularity(consortium_rng, catalog, school_id),
            band_thresholds=DEFAULT_BAND_THRESHOLDS,
        )
        data = simulate_school(inputs, pools, arriving)
        frames = {
            "roster": data.roster,
            "usage": data.usage,
            # A school's catalogue lists only the resources it contributes (intake refuses others).
            "resources": catalog.filter(pl.col("contributing_school") == school_id),
            "assessments": data.assessments,
            "attendance": data.attendance,
            "comments": data.comments,
        }
        if profile.sends_teacher_survey:
            frames["teacher_survey"] = teacher_survey(seed, index, export_date)
        school_files, school_rows = {}, {}
        for dataset in profile.export_datasets:
            if frames[dataset].is_empty():
                continue  # a school that contributes no resource has no catalogue to send
            when = resources_date if dataset == "resources" else export_date
            path = export_path(home, profile, dataset, when)
            school_rows[dataset] = write_export(path, frames[dataset], profile, dataset)
            school_files[dataset] = path
        files[school_id] = MappingProxyType(school_files)
        rows[school_id] = MappingProxyType(school_rows)
        arriving = data.leaving
        moved += 0 if data.leaving is None else data.leaving.students.height
    return GenerationSummary(
        home=home,
        school_ids=school_ids,
        contracts=MappingProxyType(contracts),
        files=MappingProxyType(files),
        rows=MappingProxyType(rows),
        moved_students=moved,
        seed=seed,
        true_effect=true_effect,
    )
