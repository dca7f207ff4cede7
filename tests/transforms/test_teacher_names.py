"""Teachers' names in comments are scrubbed like students' (they are on no student roster)."""

import polars as pl

from contracts.loader import load_contracts
from privacy.keys import PseudonymKey
from privacy.staging_store import read_staging_frame
from transforms.intake import intake_school
from transforms.scrubbing import roster_text_scrubber


def test_a_teacher_named_in_a_comment_is_replaced(tiny_home, test_key_env):
    comments_file = next((tiny_home.landing / "sch01" / "comments").glob("*.csv"))
    raw = pl.read_csv(comments_file, infer_schema=False)
    roster_file = next((tiny_home.landing / "sch01" / "roster").glob("*.csv"))
    roster_words = set(roster_file.read_text().lower().replace(",", " ").split())
    # a teacher whose surname is no student's name, so only the teacher list can catch it
    teacher = next(
        t for t in raw["teacher_name"].unique().sort() if t.split()[-1].lower() not in roster_words
    )
    surname = teacher.split()[-1]
    text_column = raw.columns[-1]
    raw = raw.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(f"Discussed with {teacher} and Ms Quibbleton-{surname}."))
        .otherwise(pl.col(text_column))
        .alias(text_column)
    )
    raw.write_csv(comments_file)
    intake_school(
        tiny_home, load_contracts(tiny_home.contracts), "sch01", PseudonymKey(b"t" * 32), roster_text_scrubber
    )
    staged = read_staging_frame(tiny_home.staging_file("comments", "sch01"), "sch01")
    texts = "\n".join(staged["text"].to_list())
    assert "Discussed with" in texts
    assert surname not in texts
