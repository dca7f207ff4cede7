"""Pattern identifiers (email, phone, URL, the schools' ID formats) via Presidio, built offline.

`AnalyzerEngine()` with defaults downloads a spaCy model; tldextract (used by Presidio's email
check) fetches the public suffix list. Neither is allowed here, so the engine is assembled by hand:
a blank English spaCy pipeline, an explicit registry of pattern recognizers, and a tldextract that
only reads its bundled suffix snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import spacy
import tldextract
from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import EmailRecognizer, PhoneRecognizer, UrlRecognizer
from spacy.attrs import LEMMA, LOWER
from spacy.language import Language
from spacy.tokens import Doc

LANGUAGE = "en"
MIN_SCORE = 0.3

# The schools' ID formats. Roster IDs are also matched exactly by the name pass; these catch IDs
# of students who are not on the roster we were given (other years, other schools).
DEFAULT_ID_PATTERNS: list[str] = [
    r"\b[A-Z]{1,6}-?\d{5,10}\b",  # letter-prefixed IDs: P12345, L1234567, ST10482913, LH-0042178
    r"\b\d{6,10}\b",  # bare numeric IDs: six-digit local IDs, ten-digit state IDs
]

# Phone-shaped numbers phonenumbers rejects as invalid (unassigned area codes, typos, extensions)
# are still someone's number to a reader; these patterns back up the phonenumbers recognizer.
LOCAL_PHONE_PATTERNS: list[Pattern] = [
    # Not the tail of a longer number ("212-555-0142", "(212) 555-0142"): those are found whole.
    Pattern("US local", r"(?<![\d)][\s.-])(?<![\d)])\b\d{3}[-.]\d{4}\b", 0.4),
    Pattern(
        "NANP",
        r"(?<![\w+])(?:(?:\+|00)\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}"
        r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b",
        0.5,
    ),
    Pattern(
        "UK",
        r"(?<![\w+])(?:\+44\s?(?:\(0\))?\s?|\(?0)\d{2,4}\)?[\s-]?\d{3,4}[\s-]?\d{3,4}\b",
        0.5,
    ),
    Pattern("International", r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,6}\b", 0.5),
]

# Regions whose national formats (no "+country" prefix) are recognized; international "+44 ..."
# numbers are found whatever the list. Each region costs one more phonenumbers scan per text.
DEFAULT_PHONE_REGIONS = ("US", "GB")

# Presidio entity -> our placeholder type.
PLACEHOLDER_TYPES: dict[str, str] = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "URL": "URL",
    "STUDENT_ID": "STUDENT_ID",
}


# Cheap supersets of what each recognizer can match: a text goes through Presidio only for the
# entities whose trigger it contains, and not at all when it contains none.
def digits_close_together(count: int) -> str:
    return r"(?:\d[\s().+/-]{0,3}){" + str(count) + ",}"


EMAIL_TRIGGER = r"@"
URL_TRIGGER = r"://|www\.|[\w.-]\.[a-z]{2}"
# No US, UK or "+country" number has fewer than seven digits.
PHONE_TRIGGER = digits_close_together(7)
# A run of digits that is only a date or a school year ("2023-11-14", "12/03/2024", "2024-2025")
# has too few digits for a full US/UK number and no pattern of ours matches it: not a phone.
DATE_SHAPED = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{4}[-/]\d{4}")
TRAILING_SEPARATORS = " ().+/-\t\n"

TRAILING_PUNCTUATION = frozenset(".,;:!?")


@Language.component("lemma_is_lower")
def lemma_is_lower(doc: Doc) -> Doc:
    """A blank pipeline has no lemmatizer; Presidio's context boost compares lemmas to words.

    Same as `token.lemma_ = token.lower_` for every token, done as one array copy (faster).
    """
    doc.from_array([LEMMA], doc.to_array([LOWER]))
    return doc


class BlankSpacyNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine around an already built pipeline; it never loads or downloads one."""

    def __init__(self, nlp: Language) -> None:
        super().__init__(models=[{"lang_code": nlp.lang, "model_name": "blank"}])
        self.nlp = {nlp.lang: nlp}

    def load(self) -> None:
        """Already loaded in __init__."""


@cache
def offline_domain_extractor() -> tldextract.TLDExtract:
    """tldextract on its bundled public-suffix snapshot: no HTTP, no cache directory."""
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's email recognizer, validating the domain without the network.

    A school's internal domain ("x@school.internal", ".local") is no public suffix but still an
    address, so an alphabetic last label is accepted too.
    """

    def validate_result(self, pattern_text: str) -> bool:
        if offline_domain_extractor()(pattern_text).fqdn:
            return True
        return pattern_text.rsplit(".", 1)[-1].isalpha()


def blank_english_pipeline() -> Language:
    nlp = spacy.blank(LANGUAGE)
    nlp.add_pipe("lemma_is_lower")
    return nlp


def url_recognizer() -> UrlRecognizer:
    """URLs with a scheme or "www." whatever the TLD; bare domains by Presidio's TLD list, ending at a
    word end ("home.meeting" is no URL) and not inside a longer URL or an email address."""
    base = UrlRecognizer.BASE_URL_REGEX
    return UrlRecognizer(
        patterns=[
            # With a scheme or "www." any top-level domain will do (.biz, .school, new gTLDs);
            # this also covers Presidio's "Standard Url" pattern, left out to halve duplicate hits.
            Pattern("Any scheme URL", r"(?i)\bhttps?://[^\s()<>\"']+", 0.6),
            Pattern("Any www URL", r"(?i)\bwww\d{0,3}\.[^\s()<>\"']+", 0.5),
            Pattern("Non schema URL", r"(?i)(?<![\w.@/-])" + base + r"(?![\w-])", 0.5),
        ]
    )


def student_id_recognizer(id_patterns: Sequence[str]) -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity="STUDENT_ID",
        name="StudentIdRecognizer",
        patterns=[Pattern(f"student id {i}", p, 0.6) for i, p in enumerate(id_patterns)],
        context=["id", "student", "ssid", "number"],
    )


@cache
def offline_analyzer(
    id_patterns: tuple[str, ...], phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
) -> AnalyzerEngine:
    """A Presidio AnalyzerEngine that needs no model download and no network.

    Cached per configuration: it holds no roster data, so one per process serves every roster.
    """
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    recognizers = [
        OfflineEmailRecognizer(),
        PhoneRecognizer(supported_regions=tuple(phone_regions), leniency=1),
        PatternRecognizer(
            supported_entity="PHONE_NUMBER",
            name="LocalPhoneRecognizer",
            patterns=LOCAL_PHONE_PATTERNS,
            context=PhoneRecognizer.CONTEXT,
        ),
        url_recognizer(),
    ]
    if id_patterns:
        recognizers.append(student_id_recognizer(id_patterns))
    for recognizer in recognizers:
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=BlankSpacyNlpEngine(blank_english_pipeline()),
        supported_languages=[LANGUAGE],
    )


class Prefilter:
    """Which entities a text could hold: cheap regexes, each a superset of its recognizer's matches
    (case-insensitive, as Presidio compiles them). The ID recognizer runs exactly the ID patterns,
    so those patterns are their own trigger."""

    def __init__(self, id_patterns: Sequence[str]) -> None:
        flags = re.IGNORECASE
        self.email = re.compile(EMAIL_TRIGGER)
        self.url = re.compile(URL_TRIGGER, flags)
        self.phone = re.compile(PHONE_TRIGGER)
        self.student_id = re.compile("|".join(id_patterns), flags) if id_patterns else None
        triggers = [EMAIL_TRIGGER, URL_TRIGGER, PHONE_TRIGGER, *id_patterns]
        self.any_trigger = re.compile("|".join(f"(?:{t})" for t in triggers), flags)

    def could_be_phone(self, text: str) -> bool:
        return any(
            not DATE_SHAPED.fullmatch(run.group().rstrip(TRAILING_SEPARATORS))
            for run in self.phone.finditer(text)
        )

    def entities_in(self, text: str) -> list[str]:
        if not self.any_trigger.search(text):  # one scan settles most texts
            return []
        checks = {
            "EMAIL_ADDRESS": self.email.search(text) is not None,
            "URL": self.url.search(text) is not None,
            "PHONE_NUMBER": self.could_be_phone(text),
            "STUDENT_ID": self.student_id is not None and self.student_id.search(text) is not None,
        }
        return [entity for entity, possible in checks.items() if possible]


@dataclass(frozen=True)
class PatternSpan:
    start: int
    end: int
    kind: str
    score: float


class PatternFinder:
    """Finds pattern identifiers in texts, sending only prefiltered texts through Presidio."""

    def __init__(
        self,
        id_patterns: Sequence[str] = tuple(DEFAULT_ID_PATTERNS),
        phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
        prefilter: bool = True,
    ):
        self.analyzer = offline_analyzer(tuple(id_patterns), tuple(phone_regions))
        self.all_entities = sorted(PLACEHOLDER_TYPES)
        self.prefilter = Prefilter(id_patterns) if prefilter else None

    def entities_to_check(self, text: str) -> list[str]:
        return self.all_entities if self.prefilter is None else self.prefilter.entities_in(text)

    def find_all(self, texts: Sequence[str]) -> Iterator[tuple[int, list[PatternSpan]]]:
        """(index, spans) for each text that passed the prefilter, in order."""
        candidates = [(i, t, e) for i, t in enumerate(texts) if (e := self.entities_to_check(t))]
        artifacts = self.analyzer.nlp_engine.process_batch(
            [t for _, t, _ in candidates], LANGUAGE, batch_size=256
        )
        for (index, text, entities), (_, nlp_artifacts) in zip(candidates, artifacts, strict=True):
            yield index, self._analyze(text, entities, nlp_artifacts)

    def find(self, text: str) -> list[PatternSpan]:
        entities = self.entities_to_check(text)
        return self._analyze(text, entities, None) if entities else []

    def _analyze(self, text: str, entities: list[str], nlp_artifacts) -> list[PatternSpan]:
        results = self.analyzer.analyze(
            text,
            language=LANGUAGE,
            entities=entities,
            score_threshold=MIN_SCORE,
            nlp_artifacts=nlp_artifacts,
        )
        return [
            trimmed(text, PatternSpan(r.start, r.end, PLACEHOLDER_TYPES[r.entity_type], r.score))
            for r in results
        ]


def trimmed(text: str, span: PatternSpan) -> PatternSpan:
    """Span without surrounding whitespace (phonenumbers sometimes starts a match at a space) and
    without sentence punctuation a URL pattern swallowed ("see x.org/a." keeps its full stop)."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in TRAILING_PUNCTUATION):
        end -= 1
    return PatternSpan(start, end, span.kind, span.score)
