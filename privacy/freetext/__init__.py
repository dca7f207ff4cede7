"""Free-text PII scrubbing of teachers' comments, offline (roster names + Presidio patterns)."""

from privacy.freetext.patterns import DEFAULT_ID_PATTERNS
from privacy.freetext.scrubber import FreeTextScrubber, ScrubResult, Span, scrub_frame
from privacy.freetext.vocabulary import RosterVocabulary

__all__ = [
    "DEFAULT_ID_PATTERNS",
    "FreeTextScrubber",
    "RosterVocabulary",
    "ScrubResult",
    "Span",
    "scrub_frame",
]
