"""Row checks staging runs on a read export before anything of it is staged: every value a school
controls that can become a published dimension value (labels), and a catalogue row's owner.

A failing row is rejected with its field and reason through the readers' reject machinery
(`ReadResult.reject`): counted, its first row number kept, never its value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date

import polars as pl

from contracts.model import DatasetTerms, FieldTerms
from contracts.requirements import label_fields
from privacy.minimize import generalize
from transforms.readers import ROW, ExportError, ReadResult

# value list, pattern, contract-declared values -> {value: reason} (privacy.freetext.labels.LabelChecker)
RefuseLabels = Callable[..., dict[str, str]]
MAX_DISTINCT_LABELS = 50_000  # per field of one export: more is not a set of categories
NOT_IN_CONSORTIUM = "not a school of the consortium"
ANOTHER_SCHOOLS = "another school's resource: a school's catalogue lists only its own resources"


def reject_rows(result: ReadResult, field: str, reason: str, bad: pl.Series) -> None:
    """Drop the rows flagged in `bad` from `result.frame`, counted under (field, reason)."""
    bad = bad.fill_null(False)
    if not bad.any():
        return
    rows = result.frame.filter(bad)[ROW]
    result.reject(field, reason, rows.len(), int(rows.min()))
    result.frame = result.frame.filter(~bad)


def staged_value(f: FieldTerms, reference: date) -> pl.Expr:
    """The value as staging will hold it (a postcode as its district): that is what is checked."""
    rule = f.generalize_rule
    value = generalize(pl.col(f.name), rule, reference) if rule else pl.col(f.name)
    return value.cast(pl.String)


def reject_bad_labels(
    file: str, dataset: str, terms: DatasetTerms, result: ReadResult, refuse: RefuseLabels, reference: date
) -> None:
    """Reject every row whose label fields hold a value that may not become a published label."""
    for f in label_fields(dataset, terms):
        if result.frame.is_empty():
            return
        values = result.frame.select(staged_value(f, reference).alias("v")).to_series()
        distinct = values.drop_nulls().unique()
        if distinct.len() > MAX_DISTINCT_LABELS:
            raise ExportError(
                file,
                f"field '{f.name}' holds {distinct.len()} distinct values, over the "
                f"{MAX_DISTINCT_LABELS} a set of categories may have",
                field=f.name,
            )
        refused = refuse(distinct.to_list(), f.pattern, f.allowed_values or ())
        for reason in sorted(set(refused.values())):
            flagged = [v for v, why in refused.items() if why == reason]
            reject_rows(result, f.name, reason, values.is_in(flagged))
            values = result.frame.select(staged_value(f, reference).alias("v")).to_series()


def reject_foreign_catalogue_rows(result: ReadResult, school_id: str, consortium: Collection[str]) -> None:
    """A catalogue row names its own school as contributor (none named: its own); any other school
    is not this catalogue's to describe, and a name outside the consortium is no school at all."""
    result.frame = result.frame.with_columns(pl.col("contributing_school").fill_null(school_id))
    contributor = result.frame["contributing_school"]
    reject_rows(result, "contributing_school", NOT_IN_CONSORTIUM, ~contributor.is_in(list(consortium)))
    contributor = result.frame["contributing_school"]
    reject_rows(result, "contributing_school", ANOTHER_SCHOOLS, contributor != school_id)
