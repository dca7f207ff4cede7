"""Simulates one school's students, their resource use and their outcomes (canonical Polars frames).

The outcome model is described in ``demo.generate``'s docstring; the constants below are its knobs.
Everything is vectorized with numpy; the only per-row Python work is the teachers' comment text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

import numpy as np
import polars as pl
from faker import Faker

from demo.profiles import SchoolProfile

DOSE_BY_BAND: MappingProxyType[str, float] = MappingProxyType(
    {"none": 0.0, "low": 1 / 3, "medium": 2 / 3, "high": 1.0}
)

USER_SHARE = 0.70  # at z = 0; propensity rises with prior attainment z
USE_PROPENSITY_SLOPE = 0.6  # log-odds per SD of z
USAGE_MEDIAN_MINUTES = 550.0  # users' total minutes over a 36-week year (lognormal)
USAGE_LOG_SD = 0.85
USAGE_Z_SLOPE = 0.35  # heavier use by higher attainers, too
MEAN_SESSION_MINUTES = 8.0
REFERENCE_WEEKS = 36

PRE_MEAN, PRE_Z_SCALE, PRE_NOISE_SD = 50.0, 10.0, 5.0
GROWTH, GROWTH_SLOPE = 5.0, 0.1  # post gains more for higher pre (so gain scores stay biased)
SCHOOL_SD, POST_NOISE_SD = 2.0, 4.0
# SD of post among non-users (before clipping): the unit of ``true_effect``.
POST_SD = math.sqrt(
    (1 + GROWTH_SLOPE) ** 2 * (PRE_Z_SCALE**2 + PRE_NOISE_SD**2) + SCHOOL_SD**2 + POST_NOISE_SD**2
)
ATTRITION_USERS, ATTRITION_NON_USERS = 0.07, 0.105
MOVER_SHARE = 0.02
COMMENTED_SHARE = 0.25
SCHOOL_DAYS_PER_WEEK = 5
EXTRA_COLUMN_SHARE = 0.85  # how often the undeclared parent_name column is filled

_STATE_ID_SPACE = 80_000_000  # "ST" + 10000000..89999999; canaries use 99xxxxxx
_STATE_ID_MULTIPLIER = 39_916_801  # odd, not a multiple of 5: a bijection modulo 80,000,000 = 2^10 5^7
_POSTCODE_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))


@dataclass(frozen=True)
class NamePools:
    """Names and places drawn once from a seeded Faker, then sampled with numpy."""

    female: np.ndarray
    male: np.ndarray
    family: np.ndarray
    districts: np.ndarray


@dataclass(frozen=True)
class SchoolYear:
    start: date
    weeks: int

    def day(self, offset_days: np.ndarray) -> np.ndarray:
        return np.datetime64(self.start, "D") + offset_days.astype("timedelta64[D]")


@dataclass(frozen=True)
class Movers:
    """Students leaving a school mid-year: who they are and what follows them to the next school."""

    students: pl.DataFrame  # identity + z + move_week + post (null if attrited)
    usage: pl.DataFrame  # state_id, resource_id, started_at, minutes (weeks >= move_week)


@dataclass(frozen=True)
class SchoolData:
    roster: pl.DataFrame
    usage: pl.DataFrame
    assessments: pl.DataFrame
    attendance: pl.DataFrame
    comments: pl.DataFrame
    leaving: Movers | None


def build_name_pools(seed: int) -> NamePools:
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    return NamePools(
        female=np.array(sorted({fake.first_name_female() for _ in range(600)})),
        male=np.array(sorted({fake.first_name_male() for _ in range(600)})),
        family=np.array(sorted({fake.last_name() for _ in range(1500)})),
        districts=np.array(sorted({fake.postcode().split()[0] for _ in range(400)})),
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def band_of(total_minutes: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    """none | low | medium | high: ``thresholds`` are inclusive upper bounds of none, low, medium."""
    low, medium = thresholds["low"], thresholds["medium"]
    return np.select(
        [total_minutes <= thresholds["none"], total_minutes <= low, total_minutes <= medium],
        ["none", "low", "medium"],
        default="high",
    )


def dose_of(total_minutes: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    bands = band_of(total_minutes, thresholds)
    return np.vectorize(DOSE_BY_BAND.__getitem__, otypes=[float])(bands) if bands.size else np.zeros(0)


def local_ids(rng: np.random.Generator, profile: SchoolProfile, count: int) -> np.ndarray:
    low = 10 ** (profile.id_digits - 1)
    numbers = rng.choice(9 * low, size=count, replace=False) + low
    return np.char.add(profile.id_prefix, numbers.astype(str))


def state_ids(rng: np.random.Generator, seed: int, school_index: int, students_per_school: int) -> np.ndarray:
    """Consortium-unique statewide ids: an affine bijection of (school, shuffled position)."""
    sequence = school_index * students_per_school + rng.permutation(students_per_school).astype(np.int64)
    numbers = (sequence * _STATE_ID_MULTIPLIER + seed * 7_919) % _STATE_ID_SPACE + 10_000_000
    return np.char.add("ST", numbers.astype(str))


def _school_emails(given: np.ndarray, family: np.ndarray, first_seq: int, domain: str) -> np.ndarray:
    frame = pl.DataFrame({"g": given, "f": family, "n": np.arange(first_seq, first_seq + len(given))})
    emails = frame.select(
        pl.concat_str(
            pl.col("g").str.to_lowercase().str.replace_all("[^a-z]", ""),
            pl.lit("."),
            pl.col("f").str.to_lowercase().str.replace_all("[^a-z]", ""),
            pl.lit("."),
            pl.col("n").cast(pl.String),
            pl.lit("@" + domain),
        )
    )
    return emails.to_series().to_numpy()


def _postcodes(rng: np.random.Generator, pools: NamePools, count: int) -> np.ndarray:
    """Mostly the school's four catchment districts, a few from far away (rare cells)."""
    local = rng.choice(pools.districts, size=4, replace=False)
    district = rng.choice(local, size=count, p=[0.45, 0.3, 0.17, 0.08])
    far = rng.random(count) < 0.02
    district[far] = rng.choice(pools.districts, size=int(far.sum()))
    sector = rng.integers(1, 10, size=count).astype(str)
    unit = np.char.add(rng.choice(_POSTCODE_LETTERS, count), rng.choice(_POSTCODE_LETTERS, count))
    return np.char.add(np.char.add(district, " "), np.char.add(sector, unit))


def _birth_dates(rng: np.random.Generator, year: SchoolYear, grade: np.ndarray) -> np.ndarray:
    # A grade-g cohort was born between 1 Sept (Y-g-6) and 31 Aug (Y-g-5).
    cohort_start = np.array([np.datetime64(date(year.start.year - g - 6, 9, 1), "D") for g in range(13)])[
        grade
    ]
    return cohort_start + rng.integers(0, 365, size=len(grade)).astype("timedelta64[D]")


def native_students(
    rng: np.random.Generator,
    profile: SchoolProfile,
    pools: NamePools,
    year: SchoolYear,
    state: np.ndarray,
) -> pl.DataFrame:
    """The school's own students with their latent prior attainment z and subgroup flags."""
    count = len(state)
    z = rng.standard_normal(count)
    grade = rng.choice(np.arange(3, 9), size=count, p=[0.18, 0.18, 0.17, 0.17, 0.16, 0.14])
    sex = rng.choice(np.array(["F", "M", "X"]), size=count, p=[0.49, 0.495, 0.015])
    female_name = (sex == "F") | ((sex == "X") & (rng.random(count) < 0.5))
    given = np.where(female_name, rng.choice(pools.female, count), rng.choice(pools.male, count))
    return pl.DataFrame(
        {
            "state_id": state,
            "given_name": given,
            "family_name": rng.choice(pools.family, count),
            "birth_date": _birth_dates(rng, year, grade),
            "grade": grade.astype(np.int64),
            "sex": sex,
            "frl": rng.random(count) < _sigmoid(_logit(0.40) - 0.5 * z),
            "ell": rng.random(count) < _sigmoid(_logit(0.15) - 0.3 * z),
            "disability": rng.random(count) < _sigmoid(_logit(0.12) - 0.4 * z),
            "z": z,
        }
    )


def _enrol(
    rng: np.random.Generator, profile: SchoolProfile, pools: NamePools, people: pl.DataFrame
) -> pl.DataFrame:
    """Give students this school's local id, e-mail and a home postcode."""
    count = people.height
    postcode = pl.Series(_postcodes(rng, pools, count), dtype=pl.String)
    postcode = postcode.set(pl.Series(rng.random(count) < 0.01), None)  # a few unknown addresses
    return people.with_columns(
        student_id=pl.Series(local_ids(rng, profile, count), dtype=pl.String),
        email=pl.Series(
            _school_emails(
                people["given_name"].to_numpy(), people["family_name"].to_numpy(), 1, profile.email_domain
            ),
            dtype=pl.String,
        ),
        postcode=postcode,
    )


def _sessions(
    rng: np.random.Generator,
    year: SchoolYear,
    students: pl.DataFrame,
    resource_weights: np.ndarray,
    resource_ids: np.ndarray,
) -> pl.DataFrame:
    """Usage sessions of every user: counts, weeks (tapering off), times of day, minutes."""
    z = students["z"].to_numpy()
    count = len(z)
    is_user = rng.random(count) < _sigmoid(_logit(USER_SHARE) + USE_PROPENSITY_SLOPE * z)
    log_total = math.log(USAGE_MEDIAN_MINUTES) + USAGE_Z_SLOPE * z + USAGE_LOG_SD * rng.standard_normal(count)
    target = np.exp(log_total) * year.weeks / REFERENCE_WEEKS
    n_sessions = np.where(is_user, np.maximum(1, np.rint(target / MEAN_SESSION_MINUTES)), 0).astype(np.int64)
    owner = np.repeat(np.arange(count), n_sessions)
    shares = rng.gamma(2.0, size=owner.size)
    share_sums = np.bincount(owner, weights=shares, minlength=count)
    minutes = np.clip(np.rint(shares / share_sums[owner] * target[owner]), 1, 600)
    taper = rng.uniform(1.0, 2.5, size=count)[owner]
    week = np.floor(year.weeks * rng.random(owner.size) ** taper).astype(np.int64)
    day = rng.choice(7, size=owner.size, p=[0.19, 0.19, 0.19, 0.19, 0.16, 0.04, 0.04])
    evening = rng.random(owner.size) < 0.3
    hour = np.where(evening, rng.integers(16, 22, owner.size), rng.integers(8, 16, owner.size))
    started = np.datetime64(year.start, "m") + (
        (week * 7 + day) * 1440 + hour * 60 + rng.integers(0, 60, owner.size)
    ).astype("timedelta64[m]")
    return pl.DataFrame(
        {
            "state_id": students["state_id"].to_numpy()[owner],
            "resource_id": resource_ids[rng.choice(len(resource_ids), size=owner.size, p=resource_weights)],
            "started_at": started.astype("datetime64[us]"),
            "minutes": minutes.astype(np.float64),
            "week": week,
        }
    )


def _scores(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0, 100), 1)


def _outcomes(
    rng: np.random.Generator,
    students: pl.DataFrame,
    total_minutes: np.ndarray,
    school_effect: np.ndarray,
    inputs: SchoolInputs,
) -> pl.DataFrame:
    """pre, post (null when attrited) for each student; see the model in ``demo.generate``."""
    z = students["z"].to_numpy()
    count = len(z)
    pre_raw = PRE_MEAN + PRE_Z_SCALE * z + PRE_NOISE_SD * rng.standard_normal(count)
    post_raw = (
        pre_raw
        + GROWTH
        + GROWTH_SLOPE * (pre_raw - PRE_MEAN)
        + dose_of(total_minutes, inputs.band_thresholds) * inputs.true_effect * POST_SD
        + school_effect
        + POST_NOISE_SD * rng.standard_normal(count)
    )
    attrition = np.where(total_minutes > 0, ATTRITION_USERS, ATTRITION_NON_USERS)
    post = np.where(rng.random(count) < attrition, np.nan, _scores(post_raw))
    return students.select("state_id").with_columns(
        pre=pl.Series(_scores(pre_raw)), post=pl.Series(post, nan_to_null=True)
    )


def _test_dates(rng: np.random.Generator, year: SchoolYear, count: int, term: str) -> np.ndarray:
    first_day = 7 if term == "pre" else (year.weeks - 2) * 7
    return year.day(first_day + rng.integers(0, 10, size=count))


def _assessment_rows(
    rng: np.random.Generator, year: SchoolYear, ids: pl.Series, scores: pl.Series, term: str
) -> pl.DataFrame:
    present = scores.is_not_null().to_numpy()
    return pl.DataFrame(
        {
            "student_id": ids.filter(present),
            "term": term,
            "score": scores.filter(present).cast(pl.Float64),
            "assessed_on": _test_dates(rng, year, int(present.sum()), term),
        }
    )


def _attendance(rng: np.random.Generator, students: pl.DataFrame, enrolled_weeks: np.ndarray) -> pl.DataFrame:
    z = students["z"].to_numpy()
    enrolled = np.minimum(enrolled_weeks * SCHOOL_DAYS_PER_WEEK, 200).astype(np.int64)
    rate = np.clip(
        0.93 + 0.02 * z - 0.02 * students["frl"].to_numpy() + 0.03 * rng.standard_normal(len(z)), 0.5, 1
    )
    return pl.DataFrame(
        {
            "student_id": students["student_id"],
            "days_enrolled": enrolled,
            "days_present": rng.binomial(enrolled, rate).astype(np.int64),
        }
    )


_COMMENT_TEMPLATES: tuple[str, ...] = (
    "{name} worked really well on the fractions unit this week.",
    "{name} needs more support with reading comprehension; spoke to home.",
    "Great effort from {name} in the science practical today.",
    "{name} was absent on Tuesday, follow up with the family.",
    "{name} finished the shared algebra resource early and helped others.",
    "Concerned about {name}'s focus in the afternoons; monitoring.",
    "{name} asked for extension work in history, gave the consortium pack.",
    "Parents of {name} asked about the homework platform login.",
)
_CONTACT_TEMPLATES: tuple[str, ...] = (
    " Mum can be reached on {phone}.",
    " Sent the feedback to {email}.",
    " Student ID {sid} for the intervention list.",
    " Called {phone} and left a message.",
)


def _comments(
    rng: np.random.Generator,
    fake: Faker,
    year: SchoolYear,
    students: pl.DataFrame,
) -> pl.DataFrame:
    """2-4 comments for about a quarter of students, naming them and sometimes their contacts."""
    count = students.height
    chosen = np.flatnonzero(rng.random(count) < COMMENTED_SHARE)
    per_student = rng.integers(2, 5, size=chosen.size)
    who = np.repeat(chosen, per_student)
    teachers = np.array(
        [f"{fake.prefix_female()} {fake.first_name_female()} {fake.last_name()}" for _ in range(7)]
        + [f"{fake.prefix_male()} {fake.first_name_male()} {fake.last_name()}" for _ in range(5)]
    )
    template = rng.integers(0, len(_COMMENT_TEMPLATES), size=who.size)
    contact = np.where(rng.random(who.size) < 0.35, rng.integers(0, len(_CONTACT_TEMPLATES), who.size), -1)
    full_name = rng.random(who.size) < 0.4
    given = students["given_name"].to_list()
    family = students["family_name"].to_list()
    email = students["email"].to_list()
    sid = students["student_id"].to_list()
    texts = []
    for row, student in enumerate(who.tolist()):
        name = f"{given[student]} {family[student]}" if full_name[row] else given[student]
        text = _COMMENT_TEMPLATES[template[row]].format(name=name)
        if contact[row] >= 0:
            contact_email = email[student] if row % 2 else fake.free_email()
            text += _CONTACT_TEMPLATES[contact[row]].format(
                phone=fake.phone_number(), email=contact_email, sid=sid[student]
            )
        texts.append(text)
    return pl.DataFrame(
        {
            "student_id": students["student_id"].to_numpy()[who],
            "teacher_name": rng.choice(teachers, size=who.size),
            "written_on": year.day(rng.integers(0, year.weeks * 7, size=who.size)),
            "text": pl.Series(texts, dtype=pl.String),
        }
    ).sort("written_on", "student_id", maintain_order=True)


def _fill_extra_column(
    rng: np.random.Generator, pools: NamePools, roster: pl.DataFrame, column: str | None
) -> pl.DataFrame:
    if column is None:
        return roster
    count = roster.height
    parent = np.char.add(np.char.add(rng.choice(pools.female, count), " "), roster["family_name"].to_numpy())
    filled = rng.random(count) < EXTRA_COLUMN_SHARE
    return roster.with_columns(
        pl.when(pl.Series(filled)).then(pl.Series(parent, dtype=pl.String)).otherwise(None).alias(column)
    )


ROSTER_COLUMNS = (
    "student_id", "state_id", "given_name", "family_name", "email", "birth_date",
    "postcode", "grade", "sex", "frl", "ell", "disability",
)  # fmt: skip


@dataclass(frozen=True)
class SchoolInputs:
    profile: SchoolProfile
    school_index: int
    is_last: bool
    year: SchoolYear
    students_per_school: int
    seed: int
    true_effect: float
    school_effects: np.ndarray
    resource_ids: np.ndarray
    resource_weights: np.ndarray
    band_thresholds: Mapping[str, float]


def _move_weeks(rng: np.random.Generator, count: int, year: SchoolYear, is_last: bool) -> np.ndarray:
    """The week each native student leaves: the year's end for stayers, mid-year for 2 % movers."""
    move_week = np.full(count, year.weeks)
    if is_last:  # nobody to move to: generation streams forwards only
        return move_week
    leavers = rng.choice(count, size=round(MOVER_SHARE * count), replace=False)
    move_week[leavers] = rng.integers(year.weeks // 3, 2 * year.weeks // 3 + 1, size=leavers.size)
    return move_week


def _split_at_move(
    sessions: pl.DataFrame, natives: pl.DataFrame, move_week: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """(sessions here, sessions at the next school, each native's full-year minutes)."""
    limits = pl.DataFrame({"state_id": natives["state_id"], "move_week": move_week})
    sessions = sessions.join(limits, on="state_id", how="left", maintain_order="left")
    here = sessions.filter(pl.col("week") < pl.col("move_week")).drop("week", "move_week")
    later = sessions.filter(pl.col("week") >= pl.col("move_week")).drop("week", "move_week")
    totals = sessions.group_by("state_id").agg(pl.col("minutes").sum())
    minutes = natives.select("state_id").join(totals, on="state_id", how="left", maintain_order="left")
    return here, later, minutes["minutes"].fill_null(0.0).to_numpy()


def _usage_rows(parts: list[pl.DataFrame], students: pl.DataFrame) -> pl.DataFrame:
    return (
        pl.concat(parts)
        .join(students.select("state_id", "student_id", "email"), on="state_id", how="inner")
        .select("student_id", pl.col("email").alias("student_email"), "resource_id", "started_at", "minutes")
        .sort("started_at", "student_id", "resource_id", "minutes")
    )


def _nobody_arriving(natives: pl.DataFrame) -> pl.DataFrame:
    return natives.clear().with_columns(move_week=pl.lit(0, pl.Int64), post=pl.lit(None, pl.Float64))


def simulate_school(inputs: SchoolInputs, pools: NamePools, arriving: Movers | None) -> SchoolData:
    """One school's canonical frames, plus the students who leave for the next school."""
    rng = np.random.default_rng([inputs.seed, inputs.school_index])
    fake = Faker("en_GB")
    fake.seed_instance(inputs.seed * 10_007 + inputs.school_index)
    year = inputs.year
    state = state_ids(rng, inputs.seed, inputs.school_index, inputs.students_per_school)
    natives = native_students(rng, inputs.profile, pools, year, state)
    arrivals = arriving.students if arriving is not None else _nobody_arriving(natives)
    students = _enrol(rng, inputs.profile, pools, pl.concat([natives, arrivals.select(natives.columns)]))
    native_ids = students.head(natives.height)["student_id"]
    arrived_ids = students.tail(arrivals.height)["student_id"]

    move_week = _move_weeks(rng, natives.height, year, inputs.is_last)
    leaving = move_week < year.weeks
    sessions = _sessions(rng, year, natives, inputs.resource_weights, inputs.resource_ids)
    stays, follows, full_year_minutes = _split_at_move(sessions, natives, move_week)
    # Leavers sit the post-test at the next school, so that school's effect applies to them.
    next_school = (inputs.school_index + 1) % len(inputs.school_effects)
    effect = np.where(leaving, inputs.school_effects[next_school], inputs.school_effects[inputs.school_index])
    outcomes = _outcomes(rng, natives, full_year_minutes, effect, inputs)

    assessments = pl.concat(
        [
            _assessment_rows(rng, year, native_ids, outcomes["pre"], "pre"),
            _assessment_rows(rng, year, native_ids, outcomes["post"].set(pl.Series(leaving), None), "post"),
            _assessment_rows(rng, year, arrived_ids, arrivals["post"], "post"),
        ]
    ).sort("student_id", "term", descending=[False, True])
    enrolled_weeks = np.concatenate([move_week, year.weeks - arrivals["move_week"].to_numpy()])
    usage_parts = [stays] if arriving is None else [stays, arriving.usage]
    roster = _fill_extra_column(
        rng, pools, students.select(ROSTER_COLUMNS), inputs.profile.extra_roster_column
    )
    leavers = natives.with_columns(move_week=pl.Series(move_week), post=outcomes["post"]).filter(
        pl.Series(leaving)
    )
    return SchoolData(
        roster=roster,
        usage=_usage_rows(usage_parts, students),
        assessments=assessments,
        attendance=_attendance(rng, students, enrolled_weeks),
        comments=_comments(rng, fake, year, students),
        leaving=Movers(students=leavers, usage=follows) if leavers.height else None,
    )
