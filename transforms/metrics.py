"""Usage and outcome metrics from staging, as tidy tables ready for disclosure control.

Every table carries `n` (distinct students behind the value) so suppression can judge each row;
school_id "ALL" and subgroup_value "all" are the additive totals that suppression must protect.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

ALL_SCHOOLS = "ALL"
ALL_VALUES = "all"
SUBGROUPS = ("frl", "ell", "disability", "grade", "sex")
# Total minutes over the year; must match demo.generate.DEFAULT_BAND_THRESHOLDS.
DEFAULT_BAND_THRESHOLDS: tuple[float, float] = (300.0, 900.0)
BANDS = ("none", "low", "medium", "high")
TIDY_COLUMNS = ("measure", "value", "n", "status", "note")


MEMBER = "__member"


def with_member(frame: pl.DataFrame, school: str = "school_id") -> pl.DataFrame:
    """A (school, student) key kept apart from the dims that totals overwrite."""
    return frame.with_columns((pl.col(school) + pl.lit(":") + pl.col("student_pid")).alias(MEMBER))


def distinct_students() -> pl.Expr:
    """Distinct (school, student) pairs: a student who moved counts once in each school, so
    school counts add up exactly to the consortium total (disclosure control relies on it)."""
    return pl.col(MEMBER).n_unique()


def per_student(usage: pl.DataFrame, dims: Sequence[str]) -> pl.DataFrame:
    """Usage summed to one row per (dims, school, student) before any roll-up.

    Totals over millions of session rows then group a frame a few times smaller; distinct
    students and summed minutes of every roll-up are unchanged by it."""
    keys = list(dict.fromkeys([*dims, "school_id", "student_pid"]))
    return usage.group_by(keys).agg(pl.col("minutes").sum())


def usage_band(minutes: pl.Expr, thresholds: Sequence[float] = DEFAULT_BAND_THRESHOLDS) -> pl.Expr:
    low, medium = thresholds
    return (
        pl.when(minutes <= 0)
        .then(pl.lit("none"))
        .when(minutes <= low)
        .then(pl.lit("low"))
        .when(minutes <= medium)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("high"))
    )


def student_usage(usage: pl.DataFrame) -> pl.DataFrame:
    return usage.group_by("school_id", "student_pid").agg(
        pl.col("minutes").sum().alias("minutes"),
        pl.col("week").n_unique().alias("active_weeks"),
    )


def analysis_frame(
    students: pl.DataFrame,
    usage: pl.DataFrame,
    assessments: pl.DataFrame,
    thresholds: Sequence[float] = DEFAULT_BAND_THRESHOLDS,
) -> pl.DataFrame:
    """One row per enrolled student: usage totals, band, pre/post scores and subgroup flags.

    `usage`: sessions, or their per-student totals already (`student_usage`'s columns)."""
    per_student = usage if "active_weeks" in usage.columns else student_usage(usage)
    scores = assessments.select(
        "school_id", "student_pid", pl.col("pre_score").alias("pre"), pl.col("post_score").alias("post")
    )
    frame = (
        students.join(per_student, on=["school_id", "student_pid"], how="left")
        .join(scores, on=["school_id", "student_pid"], how="left")
        .with_columns(pl.col("minutes").fill_null(0.0), pl.col("active_weeks").fill_null(0).cast(pl.Int64))
        .with_columns(
            usage_band(pl.col("minutes"), thresholds).alias("band"), (pl.col("minutes") > 0).alias("user")
        )
    )
    return frame.sort("school_id", "student_pid")


def _subgroup_text(frame: pl.DataFrame, subgroup: str) -> pl.Expr:
    dtype = frame.schema[subgroup]
    if dtype == pl.Boolean:
        return pl.when(pl.col(subgroup)).then(pl.lit("yes")).otherwise(pl.lit("no"))
    return pl.col(subgroup).cast(pl.String).fill_null("unknown")


def with_totals(
    frame: pl.DataFrame, dims: Sequence[str], aggs: Iterable[pl.Expr], totals: dict[str, str]
) -> pl.DataFrame:
    """Aggregate `frame` by `dims` and by every combination with total-dims replaced by their label."""
    aggs = list(aggs)
    parts = []
    total_dims = [d for d in dims if d in totals]
    for mask in range(1 << len(total_dims)):
        rolled = {d for i, d in enumerate(total_dims) if mask & (1 << i)}
        keys = [pl.lit(totals[d]).alias(d) if d in rolled else pl.col(d) for d in dims]
        parts.append(frame.with_columns(keys).group_by(list(dims)).agg(aggs))
    return pl.concat(parts, how="vertical_relaxed")


def _subgroup_long(frame: pl.DataFrame, subgroups: Sequence[str]) -> pl.DataFrame:
    """Stack the frame once per subgroup with (subgroup, subgroup_value) columns."""
    parts = [
        frame.with_columns(pl.lit(s).alias("subgroup"), _subgroup_text(frame, s).alias("subgroup_value"))
        for s in subgroups
        if s in frame.columns
    ]
    return pl.concat(parts, how="vertical_relaxed")


def tidy(frame: pl.DataFrame, dims: Sequence[str], measures: dict[str, str]) -> pl.DataFrame:
    """Wide aggregates → one measure a row; `measures` maps measure column -> its n column."""
    rows = [
        frame.select(
            *[pl.col(d).cast(pl.String) for d in dims],
            pl.lit(m).alias("measure"),
            pl.col(m).cast(pl.Float64).alias("value"),
            pl.col(n_col).cast(pl.Int64).alias("n"),
        )
        for m, n_col in measures.items()
    ]
    out = pl.concat(rows).with_columns(pl.lit("published").alias("status"), pl.lit("").alias("note"))
    return out.sort([*dims, "measure"])


def reach_table(analysis: pl.DataFrame, subgroups: Sequence[str] = SUBGROUPS) -> pl.DataFrame:
    """Enrolled students, users, and reach (% of enrolled who used any shared resource)."""
    stacked = pl.concat(
        [
            analysis.with_columns(
                pl.lit("all").alias("subgroup"), pl.lit(ALL_VALUES).alias("subgroup_value")
            ),
            _subgroup_long(analysis, subgroups),
        ],
        how="vertical_relaxed",
    )
    dims = ["school_id", "subgroup", "subgroup_value"]
    wide = with_totals(
        stacked,
        dims,
        [pl.len().alias("students"), pl.col("user").sum().alias("users")],
        {"school_id": ALL_SCHOOLS, "subgroup_value": ALL_VALUES},
    ).unique(subset=dims, keep="first", maintain_order=True)
    wide = wide.filter(~((pl.col("subgroup") == "all") & (pl.col("subgroup_value") != ALL_VALUES)))
    wide = wide.with_columns(
        (pl.col("students") - pl.col("users")).alias("non_users"),
        (100.0 * pl.col("users") / pl.col("students")).alias("reach_pct"),
    )
    # non_users is published as a cell of its own: students = users + non_users is then a relation
    # disclosure control sees, so 27 students and 18 users cannot reveal a group of 9 non-users.
    measures = {"students": "students", "users": "users", "non_users": "non_users", "reach_pct": "students"}
    return tidy(wide, dims, measures)


def usage_by_resource(usage: pl.DataFrame, resources: pl.DataFrame) -> pl.DataFrame:
    """Per school × resource (and totals): distinct users, total minutes, minutes per user."""
    catalog = resources.select("resource_id", "subject").unique("resource_id")
    frame = with_member(per_student(usage, ["resource_id"]).join(catalog, on="resource_id", how="left"))
    dims = ["school_id", "resource_id"]
    wide = with_totals(
        frame,
        dims,
        [distinct_students().alias("users"), pl.col("minutes").sum().alias("minutes_total")],
        {"school_id": ALL_SCHOOLS, "resource_id": ALL_VALUES},
    ).with_columns((pl.col("minutes_total") / pl.col("users")).alias("minutes_per_user"))
    return tidy(wide, dims, {"users": "users", "minutes_total": "users", "minutes_per_user": "users"})


def usage_by_week(usage: pl.DataFrame) -> pl.DataFrame:
    """Active users and minutes by ISO week, per school and across the consortium."""
    dims = ["school_id", "week"]
    wide = with_totals(
        with_member(per_student(usage, ["week"])),
        dims,
        [distinct_students().alias("active_users"), pl.col("minutes").sum().alias("minutes_total")],
        {"school_id": ALL_SCHOOLS},
    ).with_columns((pl.col("minutes_total") / pl.col("active_users")).alias("minutes_per_active_user"))
    return tidy(
        wide,
        dims,
        {
            "active_users": "active_users",
            "minutes_total": "active_users",
            "minutes_per_active_user": "active_users",
        },
    )


def consortium_rows(
    school_rows: pl.DataFrame, dims: Sequence[str], ratios: dict[str, tuple[str, str]] | None = None
) -> pl.DataFrame:
    """Tidy per-school rows (`dims[0]` is the school) plus the consortium's (school = ALL).

    Counts of distinct (school, student) pairs and sums of minutes add up across schools, so the
    consortium's rows are sums of the schools' and each school's rows can be computed alone, from
    that school's data only. `ratios` maps a measure to its (numerator, denominator) measures: it
    is recomputed from the sums, and its n is the denominator's."""
    ratios = ratios or {}
    school, rest = dims[0], list(dims[1:])
    summed = (
        school_rows.filter(~pl.col("measure").is_in(list(ratios)))
        .group_by([*rest, "measure"])
        .agg(pl.col("value").sum(), pl.col("n").sum())
    )
    for measure, (numerator, denominator) in ratios.items():
        top = summed.filter(pl.col("measure") == numerator).select(*rest, pl.col("value").alias("top"))
        bottom = summed.filter(pl.col("measure") == denominator).select(*rest, "value", "n")
        ratio = bottom.join(top, on=rest, how="inner", nulls_equal=True).select(
            *rest, pl.lit(measure).alias("measure"), (pl.col("top") / pl.col("value")).alias("value"), "n"
        )
        summed = pl.concat([summed, ratio], how="vertical_relaxed")
    consortium = summed.with_columns(
        pl.lit(ALL_SCHOOLS).alias(school), pl.lit("published").alias("status"), pl.lit("").alias("note")
    )
    columns = [*dims, *TIDY_COLUMNS]
    out = pl.concat([school_rows.select(columns), consortium.select(columns)], how="vertical_relaxed")
    return out.sort([*dims, "measure"])


def gains_by_band(analysis: pl.DataFrame) -> pl.DataFrame:
    """Pre→post gain by usage band, per school and overall (students with both tests)."""
    tested = analysis.filter(pl.col("pre").is_not_null() & pl.col("post").is_not_null()).with_columns(
        (pl.col("post") - pl.col("pre")).alias("gain")
    )
    dims = ["school_id", "band"]
    wide = with_totals(
        tested,
        dims,
        [
            pl.len().alias("students_tested"),
            pl.col("pre").mean().alias("mean_pre"),
            pl.col("post").mean().alias("mean_post"),
            pl.col("gain").mean().alias("mean_gain"),
            pl.col("gain").std().alias("sd_gain"),
        ],
        {"school_id": ALL_SCHOOLS, "band": ALL_VALUES},
    ).with_columns(pl.col("sd_gain").fill_nan(None))
    measures = {
        m: "students_tested" for m in ("students_tested", "mean_pre", "mean_post", "mean_gain", "sd_gain")
    }
    return tidy(wide, dims, measures).filter(
        pl.col("value").is_not_null() | (pl.col("measure") == "students_tested")
    )


def cross_school_use(usage: pl.DataFrame, resources: pl.DataFrame) -> pl.DataFrame:
    """Students of school A using resources contributed by school B (users and minutes)."""
    catalog = resources.select("resource_id", "contributing_school").unique("resource_id")
    used = per_student(usage, ["resource_id"]).join(catalog, on="resource_id", how="inner")
    frame = with_member(
        used.group_by("school_id", "student_pid", "contributing_school").agg(pl.col("minutes").sum())
    ).rename({"school_id": "user_school"})
    dims = ["user_school", "contributing_school"]
    wide = with_totals(
        frame,
        dims,
        [distinct_students().alias("users"), pl.col("minutes").sum().alias("minutes_total")],
        {"user_school": ALL_SCHOOLS, "contributing_school": ALL_SCHOOLS},
    )
    return tidy(wide, dims, {"users": "users", "minutes_total": "users"})


TEST_STATUSES = ("pre_and_post", "pre_only", "post_only", "neither")


def sample_flow(analysis: pl.DataFrame) -> pl.DataFrame:
    """Enrolled students by which tests they sat, per school and overall.

    One exclusive category a student, so the categories add up to `tests = all` (enrolled):
    with a pre-test = pre_and_post + pre_only, attrition = pre_only. Published as additive cells
    (not as with_pre / attrited side by side) so disclosure control sees that a small attrition
    count is the difference of two larger ones and protects it.
    """
    has_pre, has_post = pl.col("pre").is_not_null(), pl.col("post").is_not_null()
    status = (
        pl.when(has_pre & has_post)
        .then(pl.lit("pre_and_post"))
        .when(has_pre)
        .then(pl.lit("pre_only"))
        .when(has_post)
        .then(pl.lit("post_only"))
        .otherwise(pl.lit("neither"))
    )
    frame = analysis.with_columns(status.alias("tests"))
    dims = ["school_id", "tests"]
    wide = with_totals(
        frame, dims, [pl.len().alias("enrolled")], {"school_id": ALL_SCHOOLS, "tests": ALL_VALUES}
    )
    # every category appears for every school (a missing zero would be a hole in the margins)
    grid = (
        wide.select("school_id")
        .unique()
        .join(pl.DataFrame({"tests": [*TEST_STATUSES, ALL_VALUES]}), how="cross")
    )
    wide = grid.join(wide, on=dims, how="left").with_columns(pl.col("enrolled").fill_null(0))
    return tidy(wide, dims, {"enrolled": "enrolled"})


def teacher_time_saved(survey: pl.DataFrame) -> pl.DataFrame:
    """Teacher time saved, from the optional teacher survey, per school and across the consortium.

    `teachers` counts distinct responding teachers (a teacher counts once in each school, so school
    counts add up to ALL, like students); `minutes_saved_per_week_mean` is the mean over teachers of
    each teacher's own mean answer (a teacher who answered twice weighs as much as one who answered
    once). `n` is the teachers behind each value.
    """
    per_teacher = (
        survey.filter(pl.col("minutes_saved_per_week").is_not_null())
        .group_by("school_id", "teacher_pid")
        .agg(pl.col("minutes_saved_per_week").mean())
        .with_columns((pl.col("school_id") + pl.lit(":") + pl.col("teacher_pid")).alias(MEMBER))
    )
    dims = ["school_id"]
    wide = with_totals(
        per_teacher,
        dims,
        [
            pl.col(MEMBER).n_unique().alias("teachers"),
            pl.col("minutes_saved_per_week").mean().alias("minutes_saved_per_week_mean"),
        ],
        {"school_id": ALL_SCHOOLS},
    )
    return tidy(wide, dims, {"teachers": "teachers", "minutes_saved_per_week_mean": "teachers"})
