"""The free-text scrubber as staging calls it: texts plus the school's roster in, texts and counts out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import polars as pl


def roster_text_scrubber(
    texts: pl.Series, roster: pl.DataFrame, teacher_names: Sequence[str] = ()
) -> tuple[pl.Series, Counter]:
    """Replace roster and teacher names, emails, phones and IDs with typed placeholders; count by type."""
    from privacy.freetext import FreeTextScrubber, RosterVocabulary  # Presidio loads lazily: ~1 s

    scrubber = FreeTextScrubber(RosterVocabulary.from_roster(roster, teacher_names=tuple(teacher_names)))
    result = scrubber.scrub(texts)
    return result.texts, Counter(result.findings)
