"""Minimization: only what a contract declares survives, generalized as it says.

Each `generalize:<rule>` turns a precise quasi-identifier into a coarser one with a new name, so a
staging column's name tells how coarse it is (`birth_date` never reaches staging; `birth_year` does).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from contracts.model import DatasetTerms

# rule -> (suffix-free output name for a given input column)
GENERALIZED_NAMES = {
    "birth_year": lambda name: "birth_year",
    "age_band": lambda name: "age_band",
    "postcode_district": lambda name: "postcode_district",
    "iso_week": lambda name: "week",
}


def birth_year(expr: pl.Expr) -> pl.Expr:
    return expr.dt.year().cast(pl.Int32)


def age_band(expr: pl.Expr, reference: date, width: int = 2) -> pl.Expr:
    """Whole years at `reference`, in bands of `width` years ("10-11")."""
    ref = pl.lit(reference)

    def month_day(e: pl.Expr) -> pl.Expr:  # Int32: month() is Int8 and month * 100 would overflow
        return e.dt.month().cast(pl.Int32) * 100 + e.dt.day().cast(pl.Int32)

    years = (ref.dt.year() - expr.dt.year()).cast(pl.Int32) - (month_day(ref) < month_day(expr)).cast(
        pl.Int32
    )
    low = (years // width) * width
    return low.cast(pl.String) + pl.lit("-") + (low + width - 1).cast(pl.String)


def postcode_district(expr: pl.Expr) -> pl.Expr:
    """UK-style 'AB12 3CD' -> 'AB12' (the outward code); a 5-digit ZIP -> its 3-digit prefix."""
    text = expr.cast(pl.String).str.strip_chars().str.to_uppercase()
    return (
        pl.when(text.str.contains(" ")).then(text.str.split(" ").list.first()).otherwise(text.str.slice(0, 3))
    )


def iso_week(expr: pl.Expr) -> pl.Expr:
    """'2026-W37': the ISO year and week, so no day or time of an event is kept."""
    return expr.dt.iso_year().cast(pl.String) + pl.lit("-W") + expr.dt.week().cast(pl.String).str.zfill(2)


def generalize(expr: pl.Expr, rule: str, reference: date) -> pl.Expr:
    if rule == "birth_year":
        return birth_year(expr)
    if rule == "age_band":
        return age_band(expr, reference)
    if rule == "postcode_district":
        return postcode_district(expr)
    if rule == "iso_week":
        return iso_week(expr)
    raise ValueError(f"unknown generalization rule {rule!r}")


def minimized_columns(terms: DatasetTerms, reference: date, handled: set[str]) -> list[pl.Expr]:
    """Expressions for every declared field whose action keeps something; `handled` columns
    (linkage keys turned into pseudonyms, free text scrubbed elsewhere) are left to the caller."""
    exprs = []
    for f in terms.fields:
        if f.name in handled or f.action in ("drop", "pseudonymize", "scrub"):
            continue
        if f.action == "keep":
            exprs.append(pl.col(f.name))
        elif f.generalize_rule:
            exprs.append(
                generalize(pl.col(f.name), f.generalize_rule, reference).alias(
                    GENERALIZED_NAMES[f.generalize_rule](f.name)
                )
            )
    return exprs


def recode_rare(
    frame: pl.DataFrame, columns: list[str], k: int, other: str = "other"
) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """Recode categories held by fewer than k students to `other` (text columns only).

    Returns the frame and, per column, the categories recoded (category labels, not people)."""
    recoded: dict[str, list[str]] = {}
    for column in columns:
        if column not in frame.columns or frame.schema[column] != pl.String:
            continue
        counts = frame.group_by(column).len()
        rare = sorted(v for v in counts.filter(pl.col("len") < k)[column].to_list() if v is not None)
        if rare:
            recoded[column] = rare
            frame = frame.with_columns(
                pl.when(pl.col(column).is_in(rare))
                .then(pl.lit(other))
                .otherwise(pl.col(column))
                .alias(column)
            )
    return frame, recoded
