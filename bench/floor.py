"""The floor: the pipeline's core work as one bare Polars query over the same landing files.

Read every school's roster, usage and assessments as its contract maps them, link usage rows to
students (by local id or e-mail), HMAC the linkage keys (polars-hash, as staging does), aggregate
usage by school × resource × ISO week and pre→post gains by school × usage band. No contracts
checks, no row-level rejects, no disclosure control, no audit log, no Dagster: what the columnar
engine itself needs on this machine. `bench.pipeline` divides the pipeline's wall time by this.

Run alone: `python -m bench.floor HOME` (needs IMPACT_PSEUDONYM_KEY or IMPACT_PSEUDONYM_KEY_FILE).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import polars_hash as plh

from contracts.loader import load_contracts
from contracts.model import Agreement, DatasetTerms
from privacy.keys import PseudonymKey, load_pseudonym_key
from privacy.pseudonymize import linkage_value, normalized, purpose_key_bytes
from transforms.metrics import DEFAULT_BAND_THRESHOLDS, usage_band

DATASETS = ("roster", "usage", "assessments")
XAPI_DURATION = r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?"


@dataclass(frozen=True)
class SchoolFiles:
    school_id: str
    agreement: Agreement
    paths: dict[str, Path]  # dataset -> the latest export


@dataclass
class FloorResult:
    seconds: float
    usage_rows: int
    usage_cells: int
    gain_cells: int


def latest_exports(home: Path, school_id: str) -> dict[str, Path]:
    found = {}
    for dataset in DATASETS:
        files = sorted(
            p for p in (home / "landing" / school_id / dataset).glob(f"{dataset}_*") if p.is_file()
        )
        if files:
            found[dataset] = files[-1]
    return found


def plan(home: Path) -> list[SchoolFiles]:
    """Which file of each school to read and how (contract parsing is setup, not engine work)."""
    contracts = load_contracts(home / "contracts")
    schools = []
    for school_id in contracts.schools:
        agreement = contracts.for_school(school_id)[0]
        paths = latest_exports(home, school_id)
        if "roster" in paths and "usage" in paths:
            schools.append(SchoolFiles(school_id, agreement, paths))
    return schools


def scan_text(path: Path, terms: DatasetTerms) -> pl.LazyFrame:
    """The file as text columns under their source names."""
    if terms.file_format == "parquet":
        return pl.scan_parquet(path).select(pl.all().cast(pl.String))
    if terms.file_format in ("jsonl", "xapi"):
        return pl.scan_ndjson(path, infer_schema_length=None)
    return pl.scan_csv(path, separator=terms.delimiter, infer_schema=False)


def scan_canonical(path: Path, terms: DatasetTerms, names: tuple[str, ...]) -> pl.LazyFrame:
    """Canonical text columns `names` (those the contract declares) from the school's source columns."""
    if terms.file_format == "xapi":
        return scan_xapi(path)
    declared = [f for f in terms.fields if f.name in names]
    return scan_text(path, terms).select(pl.col(f.source).cast(pl.String).alias(f.name) for f in declared)


def scan_xapi(path: Path) -> pl.LazyFrame:
    statements = pl.scan_ndjson(path, infer_schema_length=None)
    duration = pl.col("result").struct.field("duration")
    return statements.select(
        pl.col("actor").struct.field("mbox").str.strip_prefix("mailto:").alias("student_email"),
        pl.col("object").struct.field("id").str.split(":").list.last().alias("resource_id"),
        pl.col("timestamp").alias("started_at"),
        (
            duration.str.extract(XAPI_DURATION, 1).cast(pl.Float64).fill_null(0) * 60
            + duration.str.extract(XAPI_DURATION, 2).cast(pl.Float64).fill_null(0)
        )
        .cast(pl.String)
        .alias("minutes"),
    )


def timestamp(terms: DatasetTerms) -> pl.Expr:
    fmt = terms.field("started_at").source_format
    text = pl.col("started_at").str.strip_chars()
    if fmt:
        return text.str.strptime(pl.Datetime("us"), fmt, strict=False)
    return text.str.to_datetime(time_zone="UTC", strict=False).dt.replace_time_zone(None)


def students(school: SchoolFiles, key: str) -> pl.LazyFrame:
    """Roster → (school_id, student_pid, id, email): the HMAC pseudonym and the keys usage links by."""
    terms = school.agreement.datasets["roster"]
    shared = terms.field("state_id")
    has_shared = shared is not None and shared.privacy_class == "linkage_key"
    roster = scan_canonical(school.paths["roster"], terms, ("student_id", "state_id", "email"))
    state = pl.col("state_id") if has_shared else pl.lit(None, dtype=pl.String)
    link = normalized(linkage_value(school.school_id, has_shared, pl.col("student_id"), state))
    return roster.select(
        pl.lit(school.school_id).alias("school_id"),
        link.alias("__link"),
        normalized(pl.col("student_id")).alias("__id"),
        (normalized(pl.col("email")) if terms.field("email") else pl.lit(None, pl.String)).alias("__email"),
    ).with_columns(plh.col("__link").chash.hmac_sha256(key=key).alias("student_pid"))


def usage(school: SchoolFiles, roster: pl.LazyFrame) -> pl.LazyFrame:
    terms = school.agreement.datasets["usage"]
    by = "student_email" if terms.field("student_email") else "student_id"
    names = (by, "resource_id", "started_at", "minutes")
    raw = scan_canonical(school.paths["usage"], terms, names)
    ids = roster.select(pl.col("__email" if by == "student_email" else "__id").alias("__key"), "student_pid")
    if by == "student_email":
        ids = ids.filter(pl.col("__key").is_not_null()).unique("__key", keep="first")
    started = (
        timestamp(terms)
        if terms.file_format != "xapi"
        else pl.col("started_at").str.to_datetime(strict=False, time_zone="UTC").dt.replace_time_zone(None)
    )
    return (
        raw.with_columns(normalized(pl.col(by)).alias("__key"), started.alias("__at"))
        .join(ids, on="__key", how="inner")
        .select(
            pl.lit(school.school_id).alias("school_id"),
            "student_pid",
            pl.col("resource_id"),
            (
                pl.col("__at").dt.iso_year().cast(pl.String)
                + "-W"
                + pl.col("__at").dt.week().cast(pl.String).str.zfill(2)
            ).alias("week"),
            pl.col("minutes").str.strip_chars().cast(pl.Float64, strict=False).alias("minutes"),
        )
        .drop_nulls(["week", "minutes"])
    )


def scores(school: SchoolFiles, roster: pl.LazyFrame) -> pl.LazyFrame:
    """(student_pid, pre, post): the latest score of each term."""
    if "assessments" not in school.paths:
        return pl.LazyFrame(schema={"student_pid": pl.String, "pre": pl.Float64, "post": pl.Float64})
    terms = school.agreement.datasets["assessments"]
    raw = scan_canonical(school.paths["assessments"], terms, ("student_id", "term", "score"))
    score = pl.col("score").str.strip_chars().cast(pl.Float64, strict=False)
    term = pl.col("term").str.to_lowercase()
    return (
        raw.with_columns(normalized(pl.col("student_id")).alias("__id"))
        .join(roster.select("__id", "student_pid"), on="__id", how="inner")
        .group_by("student_pid")
        .agg(
            score.filter(term == "pre").last().alias("pre"), score.filter(term == "post").last().alias("post")
        )
    )


def analysis_frame(school: SchoolFiles, roster: pl.LazyFrame, rows: pl.LazyFrame) -> pl.LazyFrame:
    """One row per student: minutes, usage band, pre and post."""
    per_student = rows.group_by("student_pid").agg(pl.col("minutes").sum())
    return (
        roster.select("school_id", "student_pid")
        .join(per_student, on="student_pid", how="left")
        .join(scores(school, roster), on="student_pid", how="left")
        .with_columns(usage_band(pl.col("minutes").fill_null(0.0), DEFAULT_BAND_THRESHOLDS).alias("band"))
    )


def run_floor(schools: list[SchoolFiles], key: PseudonymKey) -> FloorResult:
    """Rosters first (small: pseudonyms once), then every school's usage in parallel, then aggregates."""
    started = time.perf_counter()
    purpose_key = purpose_key_bytes(key, "analysis")
    rosters = [r.lazy() for r in pl.collect_all([students(s, purpose_key) for s in schools])]
    rows = [r.lazy() for r in pl.collect_all([usage(s, r) for s, r in zip(schools, rosters, strict=True)])]
    analyses = [analysis_frame(s, r, u) for s, r, u in zip(schools, rosters, rows, strict=True)]
    by_week = (
        pl.concat(rows)
        .group_by("school_id", "resource_id", "week")
        .agg(pl.col("minutes").sum().alias("minutes_total"), pl.col("student_pid").n_unique().alias("users"))
    )
    gains = (
        pl.concat(analyses)
        .filter(pl.col("pre").is_not_null() & pl.col("post").is_not_null())
        .group_by("school_id", "band")
        .agg(pl.len().alias("students_tested"), (pl.col("post") - pl.col("pre")).mean().alias("mean_gain"))
    )
    cells, gain_cells, counted = pl.collect_all([by_week, gains, pl.concat(rows).select(pl.len())])
    return FloorResult(time.perf_counter() - started, int(counted.item()), cells.height, gain_cells.height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    result = run_floor(plan(args.home.resolve()), load_pseudonym_key())
    if args.json:
        print(json.dumps(result.__dict__))
        return
    print(
        f"floor: {result.seconds:.2f} s, {result.usage_rows:,} usage rows "
        f"({result.usage_rows / result.seconds:,.0f} rows/s), {result.usage_cells:,} usage cells, "
        f"{result.gain_cells} gain cells"
    )


if __name__ == "__main__":
    main()
