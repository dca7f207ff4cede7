"""Free-text PII scrubbing: the stable import path (`from privacy.scrub import FreeTextScrubber`).

The implementation lives in `privacy.freetext`; see docs/free_text.md for the method and its numbers.
"""

from privacy.freetext import (
    DEFAULT_ID_PATTERNS,
    FreeTextScrubber,
    RosterVocabulary,
    ScrubResult,
    Span,
    scrub_frame,
)

__all__ = [
    "DEFAULT_ID_PATTERNS",
    "FreeTextScrubber",
    "RosterVocabulary",
    "ScrubResult",
    "Span",
    "scrub_frame",
]
