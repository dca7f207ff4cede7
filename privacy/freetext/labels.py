"""Is a label (a resource id, a subject, a category) someone's name, e-mail, phone or id?

A label a school sends can become a published dimension value, so it is held to more than a
free-text field: it may not be changed (a scrubbed id is another id), only refused. The same two
detectors as the free-text scrubber decide: the roster's names, e-mails and ids through its
Aho-Corasick pass, and the offline Presidio patterns (any e-mail, phone, URL or id format). The
label's shape (reserved words, formulas, the contract's pattern) is contracts.labels' rule.

Reasons never repeat the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import ahocorasick
import polars as pl

from contracts.labels import is_reserved, label_shape_problem
from privacy.freetext.scrubber import FreeTextScrubber
from privacy.freetext.vocabulary import HONORIFICS, RosterVocabulary, fold_accents

NOT_ALNUM = re.compile(r"[\W_]+")
MIN_SQUEEZED = 6  # "janedoe": shorter run-together names collide with ordinary words

REASONS = {
    "PERSON": "matches a name on the school's roster",
    "EMAIL": "looks like an e-mail address",
    "PHONE": "looks like a phone number",
    "STUDENT_ID": "looks like a student id",
    "URL": "looks like a web address",
}
RUN_TOGETHER = "spells a name on the school's roster"


def squeezed(text: str) -> str:
    """Lowercase letters and digits only: "Jane_Doe", "JaneDoe" and "doe.jane" lose their seams."""
    return NOT_ALNUM.sub("", fold_accents(text.casefold()))


def run_together_names(roster: pl.DataFrame, teacher_names: Sequence[str] = ()) -> set[str]:
    """Given and family name written as one word, either way round, and e-mail local parts."""
    names: set[str] = set()
    if {"given_name", "family_name"} <= set(roster.columns):
        pairs = roster.select(pl.col("given_name").cast(pl.String), pl.col("family_name").cast(pl.String))
        for given, family in pairs.drop_nulls().unique().iter_rows():
            names.update({squeezed(given + family), squeezed(family + given)})
    if "email" in roster.columns:
        for email in roster["email"].cast(pl.String).drop_nulls().unique():
            names.add(squeezed(email.split("@", 1)[0]))
    for teacher in teacher_names:
        words = [w for w in teacher.split() if w.strip(".").casefold() not in HONORIFICS]
        names.update({squeezed("".join(words)), squeezed("".join(reversed(words)))})
    return {n for n in names if len(n) >= MIN_SQUEEZED}


class LabelChecker:
    """Checks labels against one school's roster (and its teachers' names) and the patterns."""

    def __init__(
        self,
        vocabulary: RosterVocabulary,
        id_patterns: list[str] | None = None,
        run_together: Iterable[str] = (),
    ) -> None:
        self.scrubber = FreeTextScrubber(vocabulary, id_patterns)
        self.run_together = ahocorasick.Automaton()
        for name in run_together:
            self.run_together.add_word(name, name)
        if len(self.run_together):
            self.run_together.make_automaton()

    @classmethod
    def from_roster(cls, roster: pl.DataFrame | None, teacher_names: Sequence[str] = ()) -> LabelChecker:
        frame = roster if roster is not None else pl.DataFrame()
        vocabulary = RosterVocabulary.from_roster(frame, teacher_names=tuple(teacher_names))
        return cls(vocabulary, run_together=run_together_names(frame, teacher_names))

    def _spells_a_name(self, value: str) -> bool:
        return (
            bool(len(self.run_together)) and next(self.run_together.iter(squeezed(value)), None) is not None
        )

    def refused(
        self, values: Iterable[str], pattern: str | None = None, declared: Iterable[str] = ()
    ) -> dict[str, str]:
        """value -> why it may not be a label, for each refused value. A value the contract itself
        lists (`declared`: its enum) is the data officer's word: only its shape is checked."""
        trusted = set(declared)
        unique = list(dict.fromkeys(values))
        # A name, e-mail or id is named as such (a privacy matter for the data officer) before
        # any mismatch of shape; a value the contract lists is only held to its shape.
        to_scan = [v for v in unique if v not in trusted and not is_reserved(v)]
        spans, _ = self.scrubber.find_all(to_scan)
        refused: dict[str, str] = {}
        for value, found in zip(to_scan, spans, strict=True):
            if found:
                refused[value] = REASONS[max(found, key=lambda s: s.end - s.start).kind]
            elif self._spells_a_name(value):
                refused[value] = RUN_TOGETHER
        for value in unique:
            problem = None if value in refused else label_shape_problem(value, pattern)
            if problem:
                refused[value] = problem
        return refused
