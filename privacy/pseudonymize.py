"""Keyed pseudonyms: HMAC-SHA256 over a normalized linkage key (RFC 2104), vectorized.

A plain SHA-256 of a 6-digit student ID is reversed by enumerating a million candidates; an HMAC
under a secret key is not. Normalizing first (trim, case-fold) makes ' S123 ' and 's123' one person.
"""

from __future__ import annotations

import polars as pl
import polars_hash as plh

from privacy.keys import PseudonymKey

ANALYSIS_PURPOSE = "analysis"
# Teachers get pseudonyms under their own purpose key: a teacher's pid can never equal a student's,
# even when a school numbers teachers and students from the same sequence.
TEACHER_PURPOSE = "teacher_survey"


def normalized(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.strip_chars().str.to_lowercase()


def add_pseudonyms(
    frame: pl.DataFrame,
    linkage: pl.Expr,
    key: PseudonymKey,
    out: str = "student_pid",
    purpose: str = ANALYSIS_PURPOSE,
) -> pl.DataFrame:
    """Add `out` (hex HMAC of `linkage`) and `key_version`. Eager on purpose: a lazy plan would
    carry the derived key into `explain()` output."""
    if not isinstance(frame, pl.DataFrame):  # a LazyFrame's serialize() would hold the derived key
        raise TypeError("add_pseudonyms takes a DataFrame: a lazy plan would carry the derived key")
    purpose_key = purpose_key_bytes(key, purpose)
    tmp = "__linkage_value"
    with_key = frame.with_columns(normalized(linkage).alias(tmp))
    return with_key.with_columns(
        plh.col(tmp).chash.hmac_sha256(key=purpose_key).alias(out),
        pl.lit(key.version).alias("key_version"),
    ).drop(tmp)


def purpose_key_bytes(key: PseudonymKey, purpose: str) -> str:
    # polars-hash takes the HMAC key as text: the hex form of the derived key (its 64 ASCII bytes).
    return key.for_purpose(purpose).hex()


def linkage_value(school_id: str, has_shared_key: bool, local_id: pl.Expr, shared_id: pl.Expr) -> pl.Expr:
    """What the pseudonym is computed from.

    With a shared linkage key (e.g. a state student ID) declared, the same student in two schools
    gets one pseudonym; without one the school id is mixed in, so two schools' pseudonyms never match.
    """
    local = pl.lit(f"local:{school_id}:") + local_id.cast(pl.String).str.strip_chars()
    if not has_shared_key:
        return local
    shared = pl.lit("shared:") + shared_id.cast(pl.String).str.strip_chars()
    return (
        pl.when(shared_id.is_not_null() & (shared_id.cast(pl.String).str.strip_chars() != ""))
        .then(shared)
        .otherwise(local)
    )
