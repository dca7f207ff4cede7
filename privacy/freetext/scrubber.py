"""Replace identifiers in free text with typed placeholders: `<PERSON>`, `<EMAIL>`, `<PHONE>`, ...

Two detectors run on the original text and their spans are merged before anything is replaced:
1. roster terms (names, roster emails and IDs) through one Aho-Corasick automaton over the
   lowercased text, kept only at word boundaries — the hot path, every text goes through it;
2. patterns (any email, phone, URL, ID format) through an offline Presidio analyzer, only for
   texts a cheap regex prefilter says could hold one.
Overlapping spans are merged into their union, so no piece of an identifier survives next to a
placeholder (an email "maria.lopez@x.org" becomes one `<EMAIL>`, not `<PERSON>.<PERSON>@x.org`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import ahocorasick
import polars as pl

from privacy.freetext.patterns import DEFAULT_ID_PATTERNS, DEFAULT_PHONE_REGIONS, PatternFinder
from privacy.freetext.vocabulary import RosterVocabulary, fold_case

PLACEHOLDER_TYPES = ("PERSON", "EMAIL", "PHONE", "STUDENT_ID", "URL")
# When merged spans of equal length disagree on type, the more specific one names the placeholder
# (a bare ten-digit number that is also a valid phone number reads as a phone).
TYPE_PRIORITY = {"EMAIL": 5, "URL": 4, "PHONE": 3, "STUDENT_ID": 2, "PERSON": 1}


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class ScrubResult:
    """Scrubbed texts (same length and order; nulls stay null) and counts of replaced spans by type."""

    texts: pl.Series
    findings: dict[str, int]
    texts_screened_by_presidio: int = 0


@dataclass
class _Match:
    start: int
    end: int
    members: list[Span] = field(default_factory=list)

    def kind(self) -> str:
        """The longest member names the union ("+44 7700 900123" is a phone with a 6-digit run in
        it, not an ID); on equal length the more specific type wins."""
        longest = max(self.members, key=lambda s: (s.end - s.start, TYPE_PRIORITY[s.kind]))
        return longest.kind


def is_word_char(ch: str) -> bool:
    return ch.isalnum()


def at_word_boundaries(text: str, start: int, end: int) -> bool:
    before_ok = start == 0 or not is_word_char(text[start - 1])
    after_ok = end == len(text) or not is_word_char(text[end])
    return before_ok and after_ok


def build_automaton(vocabulary: RosterVocabulary) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for term, kind in vocabulary.terms.items():
        automaton.add_word(term, (len(term), kind, term in vocabulary.guarded))
    if len(automaton) > 0:
        automaton.make_automaton()
    return automaton


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Union of overlapping spans, so no piece of an identifier is left beside a placeholder."""
    merged: list[_Match] = []
    for span in sorted(spans):
        if merged and span.start < merged[-1].end:
            merged[-1].end = max(merged[-1].end, span.end)
            merged[-1].members.append(span)
        else:
            merged.append(_Match(span.start, span.end, [span]))
    return [Span(m.start, m.end, m.kind()) for m in merged]


def replace_spans(text: str, spans: Sequence[Span]) -> str:
    """Text with each (non-overlapping, sorted) span replaced by `<KIND>`."""
    pieces: list[str] = []
    cursor = 0
    for span in spans:
        pieces.append(text[cursor : span.start])
        pieces.append(f"<{span.kind}>")
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)


class FreeTextScrubber:
    """Removes roster names, emails, phones, student IDs and URLs from free text, offline.

    Build one per roster. The first scrubber in a process builds the Presidio analyzer (about a
    second); later ones with the same ID patterns and phone regions reuse it.
    `use_prefilter=False` sends every text through Presidio (slower; for checking the prefilter).
    """

    def __init__(
        self,
        vocabulary: RosterVocabulary,
        id_patterns: list[str] | None = None,
        *,
        phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
        use_prefilter: bool = True,
    ) -> None:
        self.vocabulary = vocabulary
        self.automaton = build_automaton(vocabulary)
        patterns = DEFAULT_ID_PATTERNS if id_patterns is None else id_patterns
        self.pattern_finder = PatternFinder(patterns, phone_regions, prefilter=use_prefilter)

    def roster_spans(self, text: str) -> list[Span]:
        """Roster terms found in a text at word boundaries (case-insensitive; guarded terms Capitalized)."""
        if len(self.automaton) == 0:
            return []
        folded = fold_case(text)
        spans = []
        for last, (length, kind, guarded) in self.automaton.iter(folded):
            start, end = last - length + 1, last + 1
            if guarded and not text[start].isupper():
                continue
            if at_word_boundaries(folded, start, end):
                spans.append(Span(start, end, kind))
        return spans

    def find(self, text: str) -> list[Span]:
        """Every span that would be replaced in one text (merged, sorted)."""
        pattern_spans = [Span(p.start, p.end, p.kind) for p in self.pattern_finder.find(text)]
        return merge_spans([*self.roster_spans(text), *pattern_spans])

    def find_all(self, texts: Sequence[str]) -> tuple[list[list[Span]], int]:
        """Merged spans per text, and how many texts went through Presidio."""
        spans = [self.roster_spans(text) for text in texts]
        screened = 0
        for index, found in self.pattern_finder.find_all(texts):
            screened += 1
            spans[index].extend(Span(p.start, p.end, p.kind) for p in found)
        return [merge_spans(s) for s in spans], screened

    def scrub(self, texts: pl.Series) -> ScrubResult:
        """Scrubbed copy of a string series, with counts of what was replaced (never the values)."""
        values = texts.cast(pl.String).to_list()
        present = [(i, v) for i, v in enumerate(values) if v]
        spans_per_text, screened = self.find_all([v for _, v in present])
        findings = Counter({kind: 0 for kind in PLACEHOLDER_TYPES})
        for (index, text), spans in zip(present, spans_per_text, strict=True):
            if spans:
                values[index] = replace_spans(text, spans)
                findings.update(span.kind for span in spans)
        scrubbed = pl.Series(texts.name, values, dtype=pl.String)
        return ScrubResult(texts=scrubbed, findings=dict(findings), texts_screened_by_presidio=screened)

    def scrub_text(self, text: str) -> str:
        return replace_spans(text, self.find(text))


def scrub_frame(
    frame: pl.DataFrame, text_columns: Sequence[str], scrubber: FreeTextScrubber
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The frame with each text column scrubbed, and the findings summed over those columns."""
    totals = Counter({kind: 0 for kind in PLACEHOLDER_TYPES})
    scrubbed_columns = []
    for column in text_columns:
        result = scrubber.scrub(frame.get_column(column))
        scrubbed_columns.append(result.texts)
        totals.update(result.findings)
    return frame.with_columns(scrubbed_columns), dict(totals)
