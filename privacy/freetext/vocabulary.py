"""The roster's identifying words, normalized for one case-insensitive exact-match pass.

A roster gives us the names, email addresses and IDs that may turn up in a teacher's comment.
Everything is lowercased (the matcher lowercases the text the same way) and also folded to ASCII,
so "José" in the roster also catches "Jose" in a comment.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

import polars as pl

PERSON = "PERSON"
EMAIL = "EMAIL"
STUDENT_ID = "STUDENT_ID"

MIN_TERM_LENGTH = 2
# Short all-digit IDs collide with scores, years and page numbers ("scored 42", "in 2024").
MIN_NUMERIC_ID_LENGTH = 5

NAME_PART_SEPARATORS = re.compile(r"[\s\-']+")
EMAIL_LOCAL_SEPARATORS = re.compile(r"[._\-+]+")
HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam"})


@cache
def common_words() -> frozenset[str]:
    """Common English words; a roster name among them is only matched when Capitalized."""
    text = resources.files(__package__).joinpath("common_words.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def fold_case(text: str) -> str:
    """Lowercase without changing the length, so offsets in the folded text index the original."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A few characters (e.g. "İ") lower to two code points: keep those as they are.
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)


def fold_accents(term: str) -> str:
    """ASCII spelling of a term ("josé" -> "jose"): teachers often type names without accents."""
    decomposed = unicodedata.normalize("NFKD", term)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_term(term: str) -> str:
    """Lowercased, whitespace-collapsed form of a roster value."""
    return fold_case(" ".join(term.split()))


def name_terms(full_name: str) -> list[str]:
    """The whole name and its parts: "Mary-Jane O'Neil" -> the whole, mary-jane, mary, jane, o'neil, neil."""
    whole = normalize_term(full_name)
    words = [w for w in whole.split(" ") if w and w.strip(".") not in HONORIFICS]
    parts = [p for w in words for p in NAME_PART_SEPARATORS.split(w)]
    return [" ".join(words), *words, *parts]


def email_terms(email: str) -> tuple[str, list[str]]:
    """The whole address and the name-like pieces of its local part (digits-only pieces are years)."""
    address = normalize_term(email)
    local_part = address.split("@", 1)[0]
    pieces = [p for p in EMAIL_LOCAL_SEPARATORS.split(local_part) if p and not p.isdigit()]
    if not local_part.isdigit():
        pieces.insert(0, local_part)
    return address, pieces


def is_usable_id(identifier: str) -> bool:
    if identifier.isdigit():
        return len(identifier) >= MIN_NUMERIC_ID_LENGTH
    return len(identifier) >= MIN_TERM_LENGTH


@dataclass(frozen=True)
class RosterVocabulary:
    """Normalized identifying terms of a roster, each with the placeholder type it gets.

    `guarded` holds the terms that are also common English words: those match only when the
    text has them Capitalized ("Grace", "Young"), never as plain lowercase words ("grace", "young").
    """

    terms: Mapping[str, str]
    guarded: frozenset[str]

    def __len__(self) -> int:
        return len(self.terms)

    @classmethod
    def from_roster(
        cls,
        roster: pl.DataFrame,
        *,
        teacher_names: Iterable[str] = (),
        name_columns: tuple[str, ...] = ("given_name", "family_name"),
        email_columns: tuple[str, ...] = ("email",),
        id_columns: tuple[str, ...] = ("student_id", "state_id"),
        guard_common_words: bool = True,
    ) -> RosterVocabulary:
        """Collect names (given, family, full), email addresses and IDs of a roster frame.

        Missing optional columns are skipped. `teacher_names` are full names ("Ms. Ana Ruiz").
        """
        builder = _TermCollector()
        for full_name in _full_names(roster, name_columns):
            builder.add_name(full_name)
        # Each column on its own too, so a multi-word family name ("de la O") is one term.
        for name in _column_values(roster, name_columns):
            builder.add_name(name)
        for teacher in teacher_names:
            builder.add_name(teacher)
        for email in _column_values(roster, email_columns):
            builder.add_email(email)
        for identifier in _column_values(roster, id_columns):
            builder.add_id(identifier)
        guarded = frozenset(builder.terms) & common_words() if guard_common_words else frozenset()
        return cls(terms=dict(builder.terms), guarded=guarded)


class _TermCollector:
    """Accumulates terms; a term first seen as an email or ID keeps that stronger type."""

    def __init__(self) -> None:
        self.terms: dict[str, str] = {}

    def add(self, term: str, kind: str) -> None:
        for variant in {term, fold_accents(term)}:
            if len(variant) >= MIN_TERM_LENGTH and self.terms.get(variant) in (None, PERSON):
                self.terms[variant] = kind

    def add_name(self, full_name: str) -> None:
        for term in name_terms(full_name):
            self.add(term, PERSON)

    def add_email(self, email: str) -> None:
        address, pieces = email_terms(email)
        if "@" in address:
            self.add(address, EMAIL)
        for piece in pieces:
            self.add(piece, PERSON)

    def add_id(self, identifier: str) -> None:
        normalized = normalize_term(identifier)
        if is_usable_id(normalized):
            self.add(normalized, STUDENT_ID)


def _present(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[str]:
    return [c for c in columns if c in frame.columns]


def _column_values(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[str]:
    values: list[str] = []
    for column in _present(frame, columns):
        values.extend(frame.get_column(column).cast(pl.String).drop_nulls().unique().to_list())
    return [v for v in values if v.strip()]


def _full_names(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[str]:
    present = _present(frame, columns)
    if not present:
        return []
    joined = frame.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in present], separator=" ")
    )
    return [name for name in joined.to_series().unique().to_list() if name.strip()]
