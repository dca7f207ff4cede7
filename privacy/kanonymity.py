"""k-anonymity of a school's staged students over its declared quasi-identifiers, enforced.

k is the size of the smallest equivalence class: students sharing every quasi-identifier value.
A suppressed cell is null and null counts as a value of its own, so an attacker who knows a
student's true values still faces at least k staged rows that look the same (the conservative
reading; sdcMicro's "NA matches anything" can be undone by elimination).

Where k is below the contract's floor we do what sdcMicro and ARX do, in two steps:

1. global recoding along a small hierarchy per column (birth_year -> 2-year -> 4-year bands ->
   suppressed; age_band -> 4-year bands -> suppressed; postcode_district -> suppressed);
2. local suppression: the rows still in too-small classes lose one quasi-identifier at a time, the
   least useful first (postcode, birth year, age band, then sex, then grade).

Every combination of hierarchy levels is tried (the lattice is tiny) and the one that changes
the least information wins: a generalized cell costs level/levels, a suppressed cell costs 1, and
a cell of a published subgroup (grade, sex) costs `SUBGROUP_COST` times more. Choices depend on
quasi-identifier values only, never on pseudonyms or row order, so re-keying gives the same result.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from contracts.model import DatasetTerms
from privacy.minimize import GENERALIZED_NAMES

# Least useful first: the analysis never reads postcode or birth year; grade and sex are subgroups.
SUPPRESSION_ORDER = ("postcode_district", "birth_year", "age_band", "sex", "grade")
SUBGROUP_COST = 4.0
COLUMN_COSTS = {"sex": SUBGROUP_COST, "grade": SUBGROUP_COST}


def _year_band(width: int) -> Callable[[pl.Expr], pl.Expr]:
    def band(expr: pl.Expr) -> pl.Expr:
        low = (expr.cast(pl.Int32) // width) * width
        return low.cast(pl.String) + pl.lit("-") + (low + width - 1).cast(pl.String)

    return band


def _age_band_widened(width: int) -> Callable[[pl.Expr], pl.Expr]:
    """'10-11' -> '8-11' for width 4: the band's lower bound rounded down to the wider band."""

    def band(expr: pl.Expr) -> pl.Expr:
        return _year_band(width)(expr.str.split("-").list.first())

    return band


def _suppressed(expr: pl.Expr) -> pl.Expr:
    return pl.lit(None, dtype=pl.String)


# Generalization hierarchies: level 0 is the staged value (as text), the last level suppresses.
HIERARCHIES: dict[str, tuple[tuple[str, Callable[[pl.Expr], pl.Expr]], ...]] = {
    "birth_year": (
        ("exact", lambda e: e.cast(pl.String)),
        ("2-year bands", _year_band(2)),
        ("4-year bands", _year_band(4)),
        ("suppressed", _suppressed),
    ),
    "age_band": (
        ("exact", lambda e: e.cast(pl.String)),
        ("4-year bands", _age_band_widened(4)),
        ("suppressed", _suppressed),
    ),
    "postcode_district": (("exact", lambda e: e.cast(pl.String)), ("suppressed", _suppressed)),
}


@dataclass
class KAnonymityReport:
    """What enforcing k did: category rules and counts only, never a row's values."""

    quasi_identifiers: list[str]
    k_required: int
    before: int
    after: int
    generalized: dict[str, str] = field(default_factory=dict)  # column -> hierarchy level name
    suppressed_cells: dict[str, int] = field(default_factory=dict)  # column -> cells set to null
    rows: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def quasi_identifier_columns(terms: DatasetTerms) -> list[str]:
    """The staged names of the fields a contract declares `quasi_identifier` (dropped ones excluded)."""
    names = []
    for f in terms.fields:
        if f.privacy_class != "quasi_identifier" or f.action in ("drop", "pseudonymize", "scrub"):
            continue
        rule = f.generalize_rule
        names.append(GENERALIZED_NAMES[rule](f.name) if rule else f.name)
    return names


def smallest_class(frame: pl.DataFrame, quasi_identifiers: Sequence[str]) -> int:
    """k: the size of the smallest group of rows alike on every quasi-identifier (null is a value)."""
    if frame.height == 0:
        return 0
    if not quasi_identifiers:
        return frame.height
    return int(frame.group_by(list(quasi_identifiers)).len()["len"].min())


def _class_sizes(frame: pl.DataFrame, quasi_identifiers: Sequence[str]) -> pl.Series:
    return frame.select(pl.len().over(list(quasi_identifiers)).alias("size"))["size"]


def _suppress_where(frame: pl.DataFrame, column: str, mask: pl.Series) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(mask).then(pl.lit(None, dtype=frame.schema[column])).otherwise(pl.col(column)).alias(column)
    )


def _suppress_offenders(frame: pl.DataFrame, qis: Sequence[str], k: int) -> pl.DataFrame:
    """Null one quasi-identifier at a time in the rows whose class is smaller than k."""
    order = [c for c in SUPPRESSION_ORDER if c in qis] + [c for c in qis if c not in SUPPRESSION_ORDER]
    for column in order:
        offending = _class_sizes(frame, qis) < k
        if not offending.any():
            return frame
        frame = _suppress_where(frame, column, offending & frame[column].is_not_null())
    return _absorb_suppressed_remainder(frame, qis, k)


def _absorb_suppressed_remainder(frame: pl.DataFrame, qis: Sequence[str], k: int) -> pl.DataFrame:
    """Rows suppressed on every quasi-identifier still form a class below k: suppress whole smallest
    classes into it until it reaches k (whole classes, so no pseudonym decides who is chosen)."""
    while smallest_class(frame, qis) < k:
        groups = frame.group_by(list(qis)).len()
        all_null = pl.all_horizontal(pl.col(c).is_null() for c in qis)
        donors = groups.filter(~all_null).sort(["len", *qis], nulls_last=True)
        if donors.height == 0:
            break  # the whole school is one class smaller than k: nothing more can be done
        donor = donors.row(0, named=True)
        in_donor = pl.all_horizontal(
            pl.col(c).is_null() if donor[c] is None else pl.col(c) == donor[c] for c in qis
        )
        mask = frame.select(in_donor.alias("m"))["m"]
        for column in qis:
            frame = _suppress_where(frame, column, mask)
    return frame


def _generalize(frame: pl.DataFrame, levels: Mapping[str, int]) -> pl.DataFrame:
    return frame.with_columns(HIERARCHIES[c][level][1](pl.col(c)).alias(c) for c, level in levels.items())


def _information_loss(original: pl.DataFrame, levels: Mapping[str, int], result: pl.DataFrame) -> float:
    loss = 0.0
    for column, level in levels.items():
        kept = int(result[column].is_not_null().sum())
        loss += kept * level / (len(HIERARCHIES[column]) - 1)
    for column in original.columns:
        nulled = int((original[column].is_not_null() & result[column].is_null()).sum())
        loss += nulled * COLUMN_COSTS.get(column, 1.0)
    return loss


def _suppressed_counts(original: pl.DataFrame, result: pl.DataFrame, levels: Mapping[str, int]) -> dict:
    counts = {}
    for column in original.columns:
        nulled = int((original[column].is_not_null() & result[column].is_null()).sum())
        if nulled and not (column in levels and HIERARCHIES[column][levels[column]][0] == "suppressed"):
            counts[column] = nulled
    return counts


def k_anonymize(
    students: pl.DataFrame, quasi_identifiers: Sequence[str], k: int
) -> tuple[pl.DataFrame, KAnonymityReport]:
    """Return `students` with k-anonymity over `quasi_identifiers` (where the rows allow it) and the report.

    Columns with a hierarchy are always returned as text ("2012", "2012-2013"), so every school's
    staging has one schema whether or not it needed recoding."""
    qis = [c for c in quasi_identifiers if c in students.columns]
    hierarchical = [c for c in qis if c in HIERARCHIES]
    as_text = _generalize(students, dict.fromkeys(hierarchical, 0))
    report = KAnonymityReport(qis, k, smallest_class(as_text, qis), 0, rows=students.height)
    if report.before >= k or not qis:
        report.after = report.before
        return as_text, report

    original = as_text.select(qis)
    best: tuple[float, int, dict, pl.DataFrame] | None = None
    for combination in itertools.product(*(range(len(HIERARCHIES[c])) for c in hierarchical)):
        levels = dict(zip(hierarchical, combination, strict=True))
        candidate = _suppress_offenders(_generalize(original, levels), qis, k)
        score = (_information_loss(original, levels, candidate), sum(combination))
        if best is None or score < best[:2]:
            best = (*score, levels, candidate)
    _, _, levels, protected = best
    report.after = smallest_class(protected, qis)
    report.generalized = {c: HIERARCHIES[c][lv][0] for c, lv in levels.items() if lv}
    report.suppressed_cells = _suppressed_counts(original, protected, levels)
    return as_text.with_columns(protected.get_columns()), report
