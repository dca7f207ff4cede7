"""Property: whatever roster, comments and usage-by-email a school sends, no roster name (as a whole
word), email, or raw student/state ID crosses `stage_school` into any staging frame."""

import re
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.model import Agreement, DatasetTerms, FieldTerms
from privacy.keys import PseudonymKey
from transforms.scrubbing import roster_text_scrubber
from transforms.staging import stage_school

KEY = PseudonymKey(b"property-test-key-" + b"p" * 32, "1")
SYLLABLES = ("zor", "vak", "mel", "tis", "quon", "bre", "dax", "lum", "fen", "rho", "kip", "sul")


def field(name, kind, privacy_class, action, **extra) -> FieldTerms:
    return FieldTerms(name, kind, privacy_class, action, name, **extra)


ROSTER = DatasetTerms(
    "roster",
    "csv",
    (
        field("student_id", "string", "linkage_key", "pseudonymize", required=True, unique=True),
        field("state_id", "string", "linkage_key", "pseudonymize"),
        field("given_name", "string", "direct_identifier", "drop"),
        field("family_name", "string", "direct_identifier", "drop"),
        field("email", "string", "direct_identifier", "drop"),
        field("birth_date", "date", "quasi_identifier", "generalize:birth_year"),
        field("grade", "integer", "quasi_identifier", "keep"),
        field("sex", "string", "quasi_identifier", "keep"),
    ),
)
USAGE = DatasetTerms(
    "usage",
    "csv",
    (
        field("student_email", "string", "linkage_key", "pseudonymize", required=True),
        field("resource_id", "string", "attribute", "keep"),
        field("started_at", "timestamp", "attribute", "generalize:iso_week"),
        field("minutes", "number", "attribute", "keep"),
    ),
)
COMMENTS = DatasetTerms(
    "comments",
    "csv",
    (
        field("student_id", "string", "linkage_key", "pseudonymize", required=True),
        field("teacher_name", "string", "direct_identifier", "drop"),
        field("written_on", "date", "attribute", "generalize:iso_week"),
        field("text", "string", "free_text", "scrub"),
    ),
)
AGREEMENT = Agreement(
    contract_id="dsa-prop",
    version="1.0.0",
    status="active",
    school_id="schp",
    consortium_id="prop",
    parties=("A", "B"),
    start=date(2026, 8, 1),
    end=date(2027, 7, 31),
    signed_version="1.0.0",
    purposes=("reach", "usage", "learning_gains"),
    min_cell_size=3,
    datasets={"roster": ROSTER, "usage": USAGE, "comments": COMMENTS},
    source_file=Path("dsa-prop.yaml"),
)

name = st.lists(st.sampled_from(SYLLABLES), min_size=2, max_size=3).map(lambda parts: "".join(parts).title())


@st.composite
def students(draw) -> list[dict]:
    count = draw(st.integers(1, 10))
    ids = draw(st.lists(st.integers(100_000, 9_999_999), min_size=count, max_size=count, unique=True))
    state_ids = draw(st.lists(st.integers(10**7, 10**8 - 1), min_size=count, max_size=count, unique=True))
    rows = []
    for i, (local, state) in enumerate(zip(ids, state_ids, strict=True)):
        given, family = draw(name), draw(name)
        rows.append(
            {
                "student_id": str(local),
                "state_id": f"ST{state}",
                "given_name": given,
                "family_name": family,
                "email": f"{given.lower()}.{family.lower()}{i}@school.example",
                "birth_date": (date(2012, 1, 1) + timedelta(days=draw(st.integers(0, 1500)))).isoformat(),
                "grade": draw(st.integers(3, 8)),
                "sex": draw(st.sampled_from(["F", "M"])),
            }
        )
    return rows


COMMENT_TEMPLATES = (
    "{given} {family} worked hard this week.",
    "Spoke with {given} about homework; email {email} for the report.",
    "ID {student_id} / {state_id}: {family} needs support with fractions.",
    "{given}'s group presented well. {family}, {given} and others helped.",
    "Contact: {email}. Pupil {student_id}.",
)


def write_csv(folder: Path, dataset: str, rows: list[dict]) -> Path:
    path = folder / f"{dataset}_2027-06-15.csv"
    pl.DataFrame(rows).write_csv(path)
    return path


def identifying_values(roster: list[dict]) -> tuple[list[str], list[str]]:
    """(whole words to hunt for, substrings to hunt for)."""
    words = [s[k] for s in roster for k in ("given_name", "family_name", "student_id", "state_id")]
    return words, [s["email"] for s in roster]


def staging_text(frames: dict[str, pl.DataFrame]) -> str:
    return "\n".join(f.select(pl.all().cast(pl.String)).write_csv() for f in frames.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(roster=students(), data=st.data())
def test_no_roster_name_email_or_raw_id_survives_staging(tmp_path, roster, data):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # hypothesis replays examples in one tmp_path
    comments = [
        {
            "student_id": s["student_id"],
            "teacher_name": "Ms Teacher",
            "written_on": "2026-10-05",
            "text": data.draw(st.sampled_from(COMMENT_TEMPLATES)).format(
                given=s["given_name"], family=s["family_name"], **s
            ),
        }
        for s in roster
    ]
    usage = [
        {
            "student_email": s["email"].upper() if i % 2 else s["email"],  # case differs from the roster
            "resource_id": "R1",
            "started_at": datetime(2026, 10, 5, 9, i).isoformat(),
            "minutes": 12.5,
            "learner_name": s["given_name"],  # undeclared: must be dropped
        }
        for i, s in enumerate(roster)
    ]
    exports = {
        "roster": write_csv(folder, "roster", roster),
        "usage": write_csv(folder, "usage", usage),
        "comments": write_csv(folder, "comments", comments),
    }
    staged = stage_school("schp", AGREEMENT, exports, KEY, roster_text_scrubber)

    assert staged.frames["students"].height == len(roster)  # the data really went through
    assert staged.frames["usage"].height == len(roster)
    text = staging_text(staged.frames).lower()
    words, substrings = identifying_values(roster)
    for word in words:
        assert not re.search(rf"(?<![0-9a-z]){re.escape(word.lower())}(?![0-9a-z])", text), word
    for value in substrings:
        assert value.lower() not in text, value
