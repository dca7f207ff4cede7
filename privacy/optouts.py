"""Consent opt-outs: who is removed from what, applied at the privacy boundary (staging).

A school reports opt-outs in an `opt_outs` dataset (student_id, date, scope) or in a roster column
`opt_out`, as its contract declares. A scope is `all` (the student leaves every staging dataset) or
a purpose from `contracts.model.PURPOSES` (the student stays in staging, marked in the students
frame's `opted_out_purposes` text, and every table of that purpose leaves them out).

Only counts and dates leave this module (for the compliance report and the audit log), never an
identifier. An unrecognized scope is read as `all`: a family that asked to be left out of something
is left out of everything rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from contracts.model import PURPOSES

ALL = "all"
SCOPES = (ALL, *PURPOSES)
ROSTER_FLAG = "opt_out"  # the roster column a contract may declare
# Students staging column: the purposes a student opted out of, sorted and comma-separated ("" for
# none). Text, not a list, so every generic reader of staging (CSV, DuckDB, casts) handles it.
OPTED_OUT_PURPOSES = "opted_out_purposes"
# Tokens a roster flag column may use for "opted out of everything" / "not opted out".
YES_TOKENS = ("true", "t", "yes", "y", "1", "x")
NO_TOKENS = ("", "false", "f", "no", "n", "0", "none")
SCOPE_SEPARATORS = r"[,;|/ ]+"
OPT_OUT_SCHEMA = {"student_pid": pl.String, "scope": pl.String, "requested_on": pl.Date}


@dataclass
class OptOuts:
    """The opt-outs that apply to one school's staging: (student_pid, scope, requested_on)."""

    frame: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=OPT_OUT_SCHEMA))
    unrecognized_scopes: int = 0

    @property
    def leaving_all(self) -> pl.Series:
        return self.frame.filter(pl.col("scope") == ALL)["student_pid"].unique()

    def summary(self) -> list[dict]:
        """Counts of distinct students per (scope, date requested): no identifiers."""
        counts = (
            self.frame.group_by("scope", "requested_on")
            .agg(pl.col("student_pid").n_unique().alias("students"))
            .sort("scope", "requested_on")
        )
        return [
            {"scope": r["scope"], "requested_on": r["requested_on"].isoformat(), "students": r["students"]}
            for r in counts.iter_rows(named=True)
        ]


def scope_lists(text: pl.Expr) -> pl.Expr:
    """A flag or scope text → list of scopes: yes-tokens → [all], no-tokens → [], else the named
    scopes (unknown names become `all`, see the module note)."""
    clean = text.cast(pl.String).fill_null("").str.strip_chars().str.to_lowercase()
    tokens = clean.str.replace_all(SCOPE_SEPARATORS, ",").str.strip_chars(",").str.split(",")
    known = tokens.list.eval(
        pl.when(pl.element().is_in(list(SCOPES))).then(pl.element()).otherwise(pl.lit(ALL))
    )
    return (
        pl.when(clean.is_in(list(NO_TOKENS)))
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .when(clean.is_in(list(YES_TOKENS)))
        .then(pl.lit([ALL], dtype=pl.List(pl.String)))
        .otherwise(known.list.unique().list.sort())
    )


def _unrecognized(text: pl.Expr) -> pl.Expr:
    clean = text.cast(pl.String).fill_null("").str.strip_chars().str.to_lowercase()
    tokens = clean.str.replace_all(SCOPE_SEPARATORS, ",").str.strip_chars(",").str.split(",")
    bad = tokens.list.eval(~pl.element().is_in(list(SCOPES))).list.any()
    return ~clean.is_in([*NO_TOKENS, *YES_TOKENS]) & bad


def _explode(frame: pl.DataFrame, scope_text: str, requested_on: pl.Expr) -> tuple[pl.DataFrame, int]:
    with_scopes = frame.select(
        "student_pid",
        scope_lists(pl.col(scope_text)).alias("scope"),
        requested_on.cast(pl.Date).alias("requested_on"),
        _unrecognized(pl.col(scope_text)).alias("__unrecognized"),
    )
    unrecognized = int(with_scopes["__unrecognized"].sum() or 0)
    rows = with_scopes.drop("__unrecognized").explode("scope").filter(pl.col("scope").is_not_null())
    return rows.select(list(OPT_OUT_SCHEMA)), unrecognized


def from_roster(roster: pl.DataFrame, exported_on: date) -> OptOuts:
    """Opt-outs flagged in the roster's `opt_out` column (roster rows already carry student_pid);
    dated by the roster export, the first day the pipeline could know of them."""
    if ROSTER_FLAG not in roster.columns:
        return OptOuts()
    frame, unrecognized = _explode(roster, ROSTER_FLAG, pl.lit(exported_on))
    return OptOuts(frame, unrecognized)


def from_dataset(linked: pl.DataFrame, exported_on: date) -> OptOuts:
    """Rows of an `opt_outs` export linked to student_pid; `date` (when present) is when the family
    asked, else the export date."""
    requested = pl.col("date") if "date" in linked.columns else pl.lit(exported_on)
    scope = "scope" if "scope" in linked.columns else None
    if scope is None:  # a file without a scope column is a list of full opt-outs
        linked = linked.with_columns(pl.lit(ALL).alias("scope"))
    frame, unrecognized = _explode(
        linked.with_columns(requested.fill_null(exported_on).alias("__requested")),
        "scope",
        pl.col("__requested"),
    )
    return OptOuts(frame, unrecognized)


def combined(*parts: OptOuts) -> OptOuts:
    frames = [p.frame for p in parts if p.frame.height]
    if not frames:
        return OptOuts(unrecognized_scopes=sum(p.unrecognized_scopes for p in parts))
    # The earliest request wins when the roster and the file both report one student and scope.
    frame = (
        pl.concat(frames)
        .group_by("student_pid", "scope")
        .agg(pl.col("requested_on").min())
        .sort("student_pid", "scope")
        .select(list(OPT_OUT_SCHEMA))
    )
    return OptOuts(frame, sum(p.unrecognized_scopes for p in parts))


def without_students(frame: pl.DataFrame, pids: pl.Series) -> pl.DataFrame:
    """`frame` minus the rows of students in `pids` (frames without student_pid pass unchanged)."""
    if "student_pid" not in frame.columns or pids.is_empty():
        return frame
    return frame.filter(~pl.col("student_pid").is_in(pids.implode()))


def mark_purposes(students: pl.DataFrame, opt_outs: OptOuts) -> pl.DataFrame:
    """Add `opted_out_purposes` ("learning_gains,reach"; "" when none) to the students frame."""
    per_student = (
        opt_outs.frame.filter(pl.col("scope") != ALL)
        .group_by("student_pid")
        .agg(pl.col("scope").unique().sort().str.join(",").alias(OPTED_OUT_PURPOSES))
    )
    marked = students.drop(OPTED_OUT_PURPOSES, strict=False).join(per_student, on="student_pid", how="left")
    return marked.with_columns(pl.col(OPTED_OUT_PURPOSES).fill_null(""))


def apply(frames: dict[str, pl.DataFrame], opt_outs: OptOuts) -> dict[str, pl.DataFrame]:
    """Scope `all` removes students from every staging frame; purpose scopes mark students."""
    leaving = opt_outs.leaving_all
    kept = {name: without_students(frame, leaving) for name, frame in frames.items()}
    if "students" in kept:
        kept["students"] = mark_purposes(kept["students"], opt_outs)
    return kept


# --- at release: leave purpose opt-outs out of that purpose's tables ------------------------


def opted_out_of(students: pl.DataFrame, purpose: str) -> pl.DataFrame:
    """(school_id, student_pid) of students who opted out of `purpose`."""
    if OPTED_OUT_PURPOSES not in students.columns:
        return students.select("school_id", "student_pid").head(0)
    purposes = pl.col(OPTED_OUT_PURPOSES).fill_null("").str.split(",")
    return students.filter(purposes.list.contains(purpose)).select("school_id", "student_pid")


def for_purpose(frame: pl.DataFrame, students: pl.DataFrame | None, purpose: str) -> pl.DataFrame:
    """`frame` without the rows of students who opted out of `purpose` (matched per school)."""
    if students is None or "student_pid" not in frame.columns:
        return frame
    excluded = opted_out_of(students, purpose)
    if excluded.is_empty():
        return frame
    return frame.join(excluded, on=["school_id", "student_pid"], how="anti")


# --- for the compliance report: counts suppressed like every small count ---------------------


def reported_count(n: int, min_cell_size: int) -> int | str:
    """`n` as a data officer may read it: 0 or >= min_cell_size as is, else "fewer than k"."""
    return n if n == 0 or n >= min_cell_size else f"fewer than {min_cell_size}"


def compliance_rows(
    summary: list[dict], applied: list[dict], published: list[dict], min_cell_size: int
) -> dict:
    """Per scope: the students (suppressed), and per date requested when it took effect (first
    `opt_out_applied` audit entry) and which releases, already out, predate it.

    `summary` is the school's last staging's `OptOuts.summary()`; `applied` and `published` are
    audit entries (`time`, and `purpose`/`since` or `digest`)."""
    first_applied: dict[tuple[str, str], str] = {}
    for entry in sorted(applied, key=lambda e: e["time"]):
        first_applied.setdefault((entry.get("purpose", ""), entry.get("since", "")), entry["time"])
    by_scope: dict[str, dict] = {}
    for row in summary:
        scope = by_scope.setdefault(row["scope"], {"students": 0, "requests": []})
        scope["students"] += row["students"]
        took_effect = first_applied.get((row["scope"], row["requested_on"]))
        scope["requests"].append(
            {
                "requested_on": row["requested_on"],
                "students": reported_count(row["students"], min_cell_size),
                "took_effect": took_effect,
                "releases_predating": [
                    {"release": p.get("digest", "")[:16], "time": p["time"]}
                    for p in published
                    if took_effect is None or p["time"] < took_effect
                ],
            }
        )
    for scope in by_scope.values():
        scope["students"] = reported_count(scope["students"], min_cell_size)
    return dict(sorted(by_scope.items()))
