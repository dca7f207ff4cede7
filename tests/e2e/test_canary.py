"""Planted canaries (names, email, IDs, phone, an undeclared column) appear nowhere outside
landing/ and quarantine/: not in staging, published files, the audit log, or Dagster's home."""

import re
from pathlib import Path

import polars as pl

from demo.canary import plant_canaries
from pipelines.runner import run_pipeline
from privacy.staging_store import read_staging_frame

HEX_PSEUDONYM = re.compile(rb"\b[0-9a-f]{64}\b")


def searchable_text(path: Path) -> str:
    """A file's content as a reader could see it: Parquet decoded (it compresses strings)."""
    if path.suffix == ".parquet":
        school = path.parent.name.removeprefix("school=")
        frame = read_staging_frame(path, school) if "staging" in path.parts else pl.read_parquet(path)
        return frame.select(pl.all().cast(pl.String)).write_csv() + " ".join(frame.columns)
    return path.read_bytes().decode("utf-8", errors="replace")


def files_outside_raw_zones(home) -> list[Path]:
    raw = (home.landing, home.quarantine, home.root / "keys")
    return [p for p in home.root.rglob("*") if p.is_file() and not any(p.is_relative_to(z) for z in raw)]


def test_canaries_never_leave_the_raw_zones(tiny_home, test_key_env):
    canaries = [plant_canaries(tiny_home.root, school) for school in ("sch01", "sch02", "sch03")]
    # a sender may name a file after a person: the name must not reach published/ or the audit log
    comments = tiny_home.landing / "sch02" / "comments"
    named = comments / f"notes {canaries[1].email}.csv"
    named.write_bytes(next(comments.glob("*.csv")).read_bytes())
    summary = run_pipeline(tiny_home)
    assert summary.released and not summary.schools_failed
    files = files_outside_raw_zones(tiny_home)
    assert any(p.suffix == ".parquet" and "staging" in p.parts for p in files)
    assert any(p.name.endswith(".db") for p in files)  # Dagster's SQLite event log is scanned too
    texts = {p: searchable_text(p).lower() for p in files}
    for canary in canaries:
        for secret in (*canary.identifying_strings(), canary.full_name, canary.parent_name):
            leaks = [
                str(p.relative_to(tiny_home.root)) for p, text in texts.items() if secret.lower() in text
            ]
            assert leaks == [], f"{secret!r} leaked into {leaks}"
    # the canary was really read: its school's staging has one more student than the roster had
    # before planting, and its comment's PII was found and replaced
    comments = read_staging_frame(tiny_home.staging_file("comments", "sch01"), "sch01")
    assert comments["text"].str.contains("<PERSON>").any()
    # published files carry no pseudonym either
    pids = set(
        pl.concat(
            [
                read_staging_frame(p, p.parent.name.removeprefix("school="))
                for p in tiny_home.staging.glob("students/*/*.parquet")
            ]
        )["student_pid"]
    )
    for path in tiny_home.published.rglob("*"):
        if path.is_file():
            found = set(m.decode() for m in HEX_PSEUDONYM.findall(searchable_text(path).encode()))
            assert not (found & pids), f"a pseudonym is published in {path.name}"
