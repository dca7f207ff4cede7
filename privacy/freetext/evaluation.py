"""A labelled synthetic comment set and the recall/precision of a scrubber on it.

Shared by the tests and `bench/scrub.py`. Everything is generated (Faker, seeded): rosters,
teachers' comments with planted identifiers at known offsets, and distractors that must survive
(common words that are also names, names inside other words, scores, dates, room numbers).
Faker is imported only when a roster is generated, so the scrubber itself never needs it.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from privacy.freetext.scrubber import FreeTextScrubber, Span
from privacy.freetext.vocabulary import fold_accents

# Names that are also everyday words: a few are mixed into every roster so the distractor
# sentences below actually test the common-word guard.
WORDLIKE_GIVEN_NAMES = ["Art", "Will", "Grace", "May", "Bill", "Summer", "Hope", "Ed", "Al"]
WORDLIKE_FAMILY_NAMES = ["Young", "Little", "Long", "Green", "White", "Brown", "Price", "Rich", "Page"]
LOCALES = ["en_US", "en_US", "en_US", "en_GB", "es_MX"]
SCHOOL_DOMAINS = ["lincoln.k12.us", "riverside-academy.org", "school.org", "mvhs.edu", "stmarys.sch.uk"]
OTHER_ID_PREFIXES = ["LH", "MV", "RHS", "T"]
VALID_AREA_CODES = ["212", "415", "617", "312", "206", "303", "512"]

TOPICS = [
    "fractions", "long division", "reading comprehension", "photosynthesis", "the water cycle",
    "persuasive writing", "times tables", "World War II", "spelling", "the lab report",
]  # fmt: skip
SCORES = ["85%", "17/20", "B+", "62 percent", "9 out of 10", "3.5 GPA"]
DATES = ["12/03/2024", "Oct 3", "Monday", "2023-11-14", "the 5th", "last week"]
DISTRACTORS = [
    "Will need more practice at home.",
    "Made little progress with long division.",
    "A long way to go but improving.",
    "Works in the green group.",
    "Handled feedback with grace.",
    "May need extra time in tests.",
    "Great Artwork this week.",
    "Billing for the trip is sorted.",
    "Brown paper portfolio returned.",
    "Young learners' assembly on Friday.",
    "Scored 7/10 on the retest.",
    "Whiteboard work is neat, and she will keep it up.",
    "Summer reading list sent home.",
    "Hopefully the new seating plan helps.",
    "Edited the draft twice; always helpful.",
    "Priceless reaction to the experiment!",
    "Page 42 of the workbook is still blank.",
    "School year 2024-2025 targets agreed.",
]
TEMPLATES = [
    "{student} ({email}) struggled with {topic}; call her dad on {phone}.",
    "{given}'s essay on {topic} was thoughtful. {distractor}",
    "spoke with {given_lower}'s mum, she asked us to use {parent_email} from now on.",
    "{student} (ID {local_id}) missed three sessions. {distractor}",
    "Reminder: state ID {state_id} for {given} needs correcting in the portal.",
    "{given} shared her portfolio at {url} - lovely Artwork.",
    "Parent ({family_title}) called from {phone}, wants a meeting about {topic}.",
    "{given_upper} NEEDS TO HAND IN HOMEWORK!!",
    "{given} and {given2} worked well together on {topic}.",
    "Great progress in {topic} this term, scored {score}. {distractor}",
    "{given} will need more support with {topic}; made little progress since {date}.",
    "Transferred from another school (old ID {other_id}); {given} is settling in.",
    "{teacher} reports {given} was absent on {date}.",
    "Email to {email} bounced, try {parent_email} or {phone}.",
    "{given}: {score} on the {topic} quiz, up from last time.",
    "Moved {given} to the Young Readers group in Room {room}.",
    "Artwork by {given_plain} is displayed in the hall.",
    "{student}'s grandmother can be reached at {phone} after 5pm.",
    "Please see resources at {url} for {given_lower}.",
    "{given} (student no. {local_id}) may need extra time in tests.",
    "May {given} use the calculator in class? Ask {teacher}.",
    "No concerns. Reads fluently and helps others. {distractor}",
    "Grace period for the {topic} project extended to {date}.",
    "{student_lower} did not bring a signed form; phone home {phone}.",
    "Showed real will and hope this week; {given} is growing in confidence.",
    "{given}, {given2} and {given3} presented on {topic}. {distractor}",
]
CONTACT_SLOTS = frozenset({"email", "parent_email", "phone", "local_id", "state_id", "other_id", "url"})
SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class LabelledComment:
    text: str
    planted: tuple[Span, ...]


@dataclass(frozen=True)
class ScrubQuality:
    """Recall: planted identifiers fully covered by replacements. Precision: replaced spans that
    overlap a planted identifier, over all replaced spans."""

    planted: int
    removed: int
    replaced: int
    replaced_on_identifiers: int
    recall_by_kind: dict[str, float]
    missed: list[tuple[str, str]] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.removed / self.planted if self.planted else 1.0

    @property
    def precision(self) -> float:
        return self.replaced_on_identifiers / self.replaced if self.replaced else 1.0


def _faker(locale: str, seed: int):
    from faker import Faker  # only the synthetic data needs Faker

    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


def _ascii_handle(text: str) -> str:
    return "".join(ch for ch in fold_accents(text).lower() if ch in string.ascii_lowercase)


def _student_email(rng: random.Random, given: str, family: str) -> str:
    first, last = _ascii_handle(given.split()[0]), _ascii_handle(family.split()[-1])
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first[:1]}{last}{rng.randrange(10, 99)}",
            f"{first}_{last}{rng.randrange(1, 9)}",
        ]
    )
    return f"{local}@{rng.choice(SCHOOL_DOMAINS)}"


def synthetic_roster(size: int, seed: int = 0) -> pl.DataFrame:
    """A roster frame (canonical columns used by the scrubber) with fake, seeded people."""
    rng = random.Random(seed)
    fakers = {locale: _faker(locale, seed) for locale in set(LOCALES)}
    rows = []
    for n in range(size):
        fake = fakers[rng.choice(LOCALES)]
        given = rng.choice(WORDLIKE_GIVEN_NAMES) if rng.random() < 0.02 else fake.first_name()
        family = rng.choice(WORDLIKE_FAMILY_NAMES) if rng.random() < 0.02 else fake.last_name()
        rows.append(
            {
                "student_id": f"S{100000 + n * 7 + rng.randrange(7):06d}",
                "state_id": f"{rng.randrange(10**9, 10**10)}",
                "given_name": given,
                "family_name": family,
                "email": _student_email(rng, given, family),
            }
        )
    return pl.DataFrame(rows)


def synthetic_teachers(count: int, seed: int = 0) -> list[str]:
    fake, rng = _faker("en_US", seed + 1), random.Random(seed)
    titles = ["Ms.", "Mr.", "Mrs.", "Dr."]
    return [f"{rng.choice(titles)} {fake.first_name()} {fake.last_name()}" for _ in range(count)]


def _phone(rng: random.Random, fakers: dict) -> str:
    area, tail = rng.choice(VALID_AREA_CODES), f"01{rng.randrange(100):02d}"
    formats = [
        f"555-{tail}",
        f"({area}) 555-{tail}",
        f"{area}-555-{tail}",
        f"{area}.555.{tail}",
        f"+1 {area} 555 {tail}",
        f"07700 900{rng.randrange(1000):03d}",
        f"+44 7700 900{rng.randrange(1000):03d}",
        f"020 7946 0{rng.randrange(1000):03d}",
        "+33 1 " + " ".join(str(rng.randrange(10, 99)) for _ in range(4)),
        f"+52 55 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
    ]
    if rng.random() < 0.3:
        return fakers[rng.choice(["en_US", "en_GB"])].phone_number()
    return rng.choice(formats)


class _CommentBuilder:
    """Fills a template's slots, remembering where each planted identifier landed."""

    def __init__(self, rng: random.Random, fakers: dict, students: list[dict], teachers: list[str]):
        self.rng, self.fakers, self.teachers = rng, fakers, teachers
        self.people = rng.sample(students, 3)

    def value(self, slot: str) -> tuple[str, str | None]:
        """(surface text, planted kind or None) for one slot."""
        rng, first, other = self.rng, self.people[0], self.people
        given = first["given_name"]
        person_slots = {
            "student": f"{given} {first['family_name']}",
            "student_lower": f"{given} {first['family_name']}".lower(),
            "given": given if rng.random() < 0.85 else fold_accents(given),
            "given_plain": given,
            "given_lower": given.lower(),
            "given_upper": given.upper(),
            "given2": other[1]["given_name"],
            "given3": other[2]["given_name"],
            "family_title": f"{rng.choice(['Mr.', 'Mrs.', 'Ms.'])} {first['family_name']}",
            "teacher": rng.choice(self.teachers),
        }
        if slot in person_slots:
            return person_slots[slot], "PERSON"
        contact_slots = {
            "email": (first["email"], "EMAIL"),
            "parent_email": (self.fakers["en_US"].free_email(), "EMAIL"),
            "phone": (_phone(rng, self.fakers), "PHONE"),
            "local_id": (first["student_id"], "STUDENT_ID"),
            "state_id": (first["state_id"], "STUDENT_ID"),
            "other_id": (f"{rng.choice(OTHER_ID_PREFIXES)}-{rng.randrange(10**6):07d}", "STUDENT_ID"),
            "url": (self.fakers["en_US"].url() + rng.choice(["", "portfolio/7", "share?id=9"]), "URL"),
        }
        if slot in contact_slots:
            return contact_slots[slot]
        fillers = {
            "topic": TOPICS,
            "score": SCORES,
            "date": DATES,
            "distractor": DISTRACTORS,
            "room": [str(rng.randrange(100, 400))],
        }
        return rng.choice(fillers[slot]), None

    def fill(self, template: str) -> LabelledComment:
        pieces: list[str] = []
        planted: list[Span] = []
        cursor, length = 0, 0
        for slot in SLOT.finditer(template):
            literal = template[cursor : slot.start()]
            surface, kind = self.value(slot.group(1))
            pieces += [literal, surface]
            length += len(literal)
            if kind:
                planted.extend(_planted_spans(surface, length, kind, slot.group(1)))
            length += len(surface)
            cursor = slot.end()
        pieces.append(template[cursor:])
        return LabelledComment("".join(pieces), tuple(planted))


def _planted_spans(surface: str, offset: int, kind: str, slot: str) -> list[Span]:
    """A title ("Mrs.") is not part of the identifier; the name after it is."""
    if slot in {"family_title", "teacher"}:
        title = surface.partition(" ")[0]
        return [Span(offset + len(title) + 1, offset + len(surface), kind)]
    return [Span(offset, offset + len(surface), kind)]


def labelled_comments(
    roster: pl.DataFrame, teachers: list[str], count: int, seed: int = 0, contact_rate: float = 0.3
) -> list[LabelledComment]:
    """`count` comments; about `contact_rate` of them carry an email, phone, ID or URL."""
    rng = random.Random(seed)
    fakers = {locale: _faker(locale, seed + 7) for locale in ("en_US", "en_GB")}
    students = roster.to_dicts()
    with_contacts = [t for t in TEMPLATES if set(SLOT.findall(t)) & CONTACT_SLOTS]
    without_contacts = [t for t in TEMPLATES if t not in with_contacts]
    comments = []
    for _ in range(count):
        pool = with_contacts if rng.random() < contact_rate else without_contacts
        comments.append(_CommentBuilder(rng, fakers, students, teachers).fill(rng.choice(pool)))
    return comments


def _covered(text: str, span: Span, replaced: Sequence[Span]) -> bool:
    """No letter or digit of the span is left outside a replacement."""
    return all(
        not text[i].isalnum() or any(r.start <= i < r.end for r in replaced)
        for i in range(span.start, span.end)
    )


def _overlaps(span: Span, others: Sequence[Span]) -> bool:
    return any(o.start < span.end and span.start < o.end for o in others)


def measure(scrubber: FreeTextScrubber, comments: Sequence[LabelledComment]) -> ScrubQuality:
    """Recall and precision of a scrubber on labelled comments (span-level, typed recall by kind)."""
    spans_per_text, _ = scrubber.find_all([c.text for c in comments])
    planted_by_kind, removed_by_kind = Counter(), Counter()
    replaced = replaced_on_identifiers = 0
    missed, false_positives = [], []
    for comment, spans in zip(comments, spans_per_text, strict=True):
        for planted in comment.planted:
            planted_by_kind[planted.kind] += 1
            if _covered(comment.text, planted, spans):
                removed_by_kind[planted.kind] += 1
            else:
                missed.append((planted.kind, comment.text[planted.start : planted.end]))
        for span in spans:
            replaced += 1
            if _overlaps(span, comment.planted):
                replaced_on_identifiers += 1
            else:
                false_positives.append(comment.text[span.start : span.end])
    return ScrubQuality(
        planted=sum(planted_by_kind.values()),
        removed=sum(removed_by_kind.values()),
        replaced=replaced,
        replaced_on_identifiers=replaced_on_identifiers,
        recall_by_kind={k: removed_by_kind[k] / n for k, n in sorted(planted_by_kind.items())},
        missed=missed,
        false_positives=false_positives,
    )
