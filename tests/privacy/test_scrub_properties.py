"""Property: over generated rosters and comments, no roster name (as a whole word), email or raw
ID survives scrubbing.

The one documented exception is the common-word guard: a roster name that is also a common
English word ("Will", "Young") is removed when Capitalized and kept as a lowercase word ("will").
"""

from __future__ import annotations

import re

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.freetext import FreeTextScrubber, RosterVocabulary

LETTERS = "abcdefghijklmnopqrstuvwxyzéñüçøå"
WORDLIKE_NAMES = ["Will", "Grace", "Young", "May", "Art", "Hope", "Little"]
FILLER = ["did", "well", "in", "fractions", "today", "and", "needs", "help", "with", "reading", "the"]
JOINERS = [" ", ", ", "; ", " (", ") ", ": ", " - ", "! ", "\n"]
PLACEHOLDER = re.compile(r"<[A-Z_]+>")

names = st.one_of(
    st.text(alphabet=LETTERS, min_size=2, max_size=10).map(str.capitalize),
    st.sampled_from(WORDLIKE_NAMES),
)
local_ids = st.from_regex(r"[A-Z]{1,2}[0-9]{5,7}", fullmatch=True)
state_ids = st.from_regex(r"[1-9][0-9]{9}", fullmatch=True)


@st.composite
def rosters(draw) -> pl.DataFrame:
    size = draw(st.integers(1, 6))
    given = draw(st.lists(names, min_size=size, max_size=size))
    family = draw(st.lists(names, min_size=size, max_size=size))
    return pl.DataFrame(
        {
            "given_name": given,
            "family_name": family,
            "email": [
                f"{g}.{f}{i}@school.org".lower() for i, (g, f) in enumerate(zip(given, family, strict=True))
            ],
            "student_id": draw(st.lists(local_ids, min_size=size, max_size=size)),
            "state_id": draw(st.lists(state_ids, min_size=size, max_size=size)),
        }
    )


def surface_forms(name: str) -> list[str]:
    return [name, name.lower(), name.upper(), f"{name}'s"]


@st.composite
def roster_and_comment(draw) -> tuple[pl.DataFrame, str]:
    roster = draw(rosters())
    students = roster.to_dicts()
    pieces = []
    for _ in range(draw(st.integers(1, 12))):
        student = draw(st.sampled_from(students))
        choice = draw(
            st.sampled_from(["given", "family", "full", "email", "student_id", "state_id", "filler"])
        )
        if choice in ("given", "family"):
            pieces.append(draw(st.sampled_from(surface_forms(student[f"{choice}_name"]))))
        elif choice == "full":
            pieces.append(f"{student['given_name']} {student['family_name']}")
        elif choice == "filler":
            pieces.append(draw(st.sampled_from(FILLER)))
        else:
            pieces.append(student[choice])
        pieces.append(draw(st.sampled_from(JOINERS)))
    return roster, "".join(pieces)


def survives_as_word(word: str, text: str, *, capitalized_only: bool) -> bool:
    pattern = rf"(?<!\w){re.escape(word)}(?!\w)"
    found = re.finditer(pattern, text, flags=re.IGNORECASE)
    return any(m.group()[0].isupper() or not capitalized_only for m in found)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(roster_and_comment())
def test_no_roster_identifier_survives(case: tuple[pl.DataFrame, str]) -> None:
    roster, comment = case
    vocabulary = RosterVocabulary.from_roster(roster)
    scrubbed = FreeTextScrubber(vocabulary).scrub(pl.Series([comment])).texts[0]
    remaining = PLACEHOLDER.sub(" ", scrubbed)

    for row in roster.to_dicts():
        for name in (row["given_name"], row["family_name"]):
            guarded = name.lower() in vocabulary.guarded
            assert not survives_as_word(name, remaining, capitalized_only=guarded), (name, scrubbed)
        assert row["email"] not in remaining.lower(), scrubbed
        for identifier in (row["student_id"], row["state_id"]):
            assert not survives_as_word(identifier, remaining, capitalized_only=False), scrubbed
