"""The consortium's resource catalogue, from every school's own catalogue.

A school's catalogue describes only its own resources: intake rejects a row that names another
school as contributor (transforms.row_checks), and a row staged before that rule, or by any other
way, that does is not trusted here either. A resource id two schools both claim as their own is
attributed to neither (neither can take the other's), and the conflict is reported; the rest is
attributed to the one school whose catalogue lists it. The result does not depend on school ids'
sort order or on which school was staged first.
"""

from __future__ import annotations

import polars as pl

from privacy.staging_store import read_staging_frame
from privacy.zones import Home

CATALOGUE_SCHEMA = {"resource_id": pl.String, "subject": pl.String, "contributing_school": pl.String}
_SOURCE = "__catalogue_of"


def _own_rows(school_id: str, frame: pl.DataFrame) -> pl.DataFrame:
    if "contributing_school" not in frame.columns or "resource_id" not in frame.columns:
        return pl.DataFrame(schema=CATALOGUE_SCHEMA)
    own = frame.filter(pl.col("contributing_school") == school_id)
    return own.with_columns(pl.lit(school_id).alias(_SOURCE))


def attributed_catalogue(per_school: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, list[dict]]:
    """(one row per attributed resource id, [{resource_id, schools}] for ids claimed by several)."""
    parts = [_own_rows(s, f) for s, f in sorted(per_school.items())]
    claimed = [p for p in parts if _SOURCE in p.columns and p.height]
    if not claimed:
        return pl.DataFrame(schema=CATALOGUE_SCHEMA), []
    rows = pl.concat(claimed, how="diagonal_relaxed")
    claims = rows.group_by("resource_id").agg(pl.col(_SOURCE).unique().sort().alias("schools"))
    contested = claims.filter(pl.col("schools").list.len() > 1).sort("resource_id")
    catalogue = (
        rows.filter(~pl.col("resource_id").is_in(contested["resource_id"].implode()))
        .drop(_SOURCE)
        .sort(pl.all(), nulls_last=True)
        .unique("resource_id", keep="first", maintain_order=True)
        .sort("resource_id")
    )
    conflicts = [{"resource_id": r, "schools": list(s)} for r, s in contested.iter_rows()]
    return catalogue, conflicts


def staged_catalogues(home: Home, schools: list[str]) -> dict[str, pl.DataFrame]:
    return {
        s: read_staging_frame(home.staging_file("resources", s), s)
        for s in schools
        if home.staging_file("resources", s).exists()
    }
