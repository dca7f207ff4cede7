"""A hostile school beside healthy ones (issue 17): it plants its own students' names (faker-made,
from its roster), e-mail addresses, phone numbers, the release's reserved words and spreadsheet
formulas in every field it controls that can reach an output: usage resource ids, its catalogue's
resource ids, subjects, titles and contributing schools, column headers, file names, dataset and
school folder names; and a contract file that is a YAML alias bomb lands beside the contracts.

`impact run` (a subprocess, with a timeout) must finish and publish; none of the planted strings
may appear in published/, the audit log or the state files; the healthy schools publish.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from faker import Faker

from privacy.staging_store import read_staging_frame

IMPACT = [sys.executable, "-m", "pipelines"]
HOSTILE, HEALTHY = "sch01", ("sch02", "sch03")
RESERVED = ("all", "ALL", "Unknown")
FORMULAS = ('=HYPERLINK("http://x","y")', "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3")
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def env() -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMPACT_")}
    return clean | {
        "IMPACT_PSEUDONYM_KEY": "hostile-" + "h" * 40,
        "IMPACT_MASTER_KEY": "hostile-m-" + "m" * 40,
    }


def only_file(folder: Path) -> Path:
    (path,) = [p for p in folder.iterdir() if p.is_file()]
    return path


def planted_people(home) -> tuple[list[str], list[str], list[str]]:
    """(names, e-mails, phones): two of the school's own students, spelled as a sender might."""
    roster = pl.read_csv(only_file(home.landing / HOSTILE / "roster"), infer_schema=False)
    long_names = roster.filter(
        (pl.col("FirstName").str.len_chars() >= 5) & (pl.col("Surname").str.len_chars() >= 5)
    )
    a, b = long_names.row(0, named=True), long_names.row(1, named=True)
    names = [
        f"{a['FirstName']} {a['Surname']}",
        f"{a['FirstName']}_{a['Surname']}",
        f"{b['Surname']}{b['FirstName']}",
        f"{b['FirstName'].lower()}.{b['Surname'].lower()}",
    ]
    fake = Faker("en_GB")
    fake.seed_instance(17)
    return names, [a["email"], b["email"]], [fake.phone_number(), fake.phone_number()]


def plant(home, names: list[str], emails: list[str], phones: list[str]) -> None:
    values = [*names, *emails, *phones, *RESERVED, *FORMULAS]
    school = home.landing / HOSTILE
    # usage: resource ids, plus headers named after people and formulas
    usage_path = only_file(school / "usage")
    usage = pl.read_csv(usage_path, infer_schema=False)
    ids = usage["ResourceID"].to_list()
    ids[: len(values)] = values
    usage = usage.with_columns(
        pl.Series("ResourceID", ids), pl.lit("1").alias(names[0]), pl.lit("2").alias(FORMULAS[0])
    )
    usage.write_csv(usage_path)
    # the catalogue: every field the school controls
    catalogue_path = only_file(school / "resources")
    catalogue = pl.read_csv(catalogue_path, infer_schema=False)
    n = len(values)
    planted = pl.DataFrame(
        {
            "resource_id": values,
            "title": [f"Worksheet by {v}" for v in values],
            "subject": values,
            "contributing_school": [values[i % n] for i in range(n)],
        }
    )
    hijack = pl.DataFrame(
        {"resource_id": [f"RES-9{i:02d}" for i in range(n)], "title": ["t"] * n, "subject": values,
         "contributing_school": [HOSTILE] * n}
    )  # fmt: skip
    named_titles = pl.DataFrame(
        {"resource_id": ["RES-990"], "title": [f"Notes on {names[0]} ({emails[0]}, {phones[0]})"],
         "subject": ["maths"], "contributing_school": [HOSTILE]}
    )  # fmt: skip
    pl.concat([catalogue, planted, hijack, named_titles]).write_csv(catalogue_path)
    # roster: a header named after a student
    roster_path = only_file(school / "roster")
    roster = pl.read_csv(roster_path, infer_schema=False)
    roster.with_columns(pl.lit("x").alias(names[1]), pl.lit("y").alias(emails[1])).write_csv(roster_path)
    # file names: a name and birth date (dated before the agreement), an e-mail on a valid export
    attendance = only_file(school / "attendance")
    (attendance.parent / f"{names[1]}_2011-03-04.csv").write_bytes(attendance.read_bytes())
    comments = only_file(school / "comments")
    (comments.parent / f"{emails[0]} {phones[1]} 2027-06-16.csv").write_bytes(comments.read_bytes())
    # folder names: a dataset folder and a school folder named after students
    odd = school / f"{names[0]} 2011-03-04"
    odd.mkdir()
    (odd / "notes.csv").write_text("a\n1\n")
    stray = home.landing / names[1] / "usage"
    stray.mkdir(parents=True)
    stray.joinpath("usage_2027-06-15.csv").write_bytes(usage_path.read_bytes())
    (home.contracts / "zz-bomb.yaml").write_text(ALIAS_BOMB)


def readable(path: Path) -> str:
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        return frame.select(pl.all().cast(pl.String)).write_csv() + " ".join(frame.columns)
    return path.read_bytes().decode("utf-8", errors="replace")


@pytest.mark.slow
def test_a_hostile_school_leaks_nothing_and_stops_no_release(tiny_home, monkeypatch):
    monkeypatch.setenv("IMPACT_MASTER_KEY", env()["IMPACT_MASTER_KEY"])  # to read staging here
    names, emails, phones = planted_people(tiny_home)
    plant(tiny_home, names, emails, phones)

    done = subprocess.run(
        [*IMPACT, "run", "--home", str(tiny_home.root)],
        capture_output=True,
        text=True,
        env=env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Release published" in done.stdout

    outputs = [p for p in tiny_home.published.rglob("*") if p.is_file()]
    outputs += [tiny_home.audit_log, *tiny_home.state.glob("*.json")]
    texts = {str(p.relative_to(tiny_home.root)): readable(p).lower() for p in outputs}
    for secret in [*names, *emails, *phones, *FORMULAS, f"{names[1]}_2011-03-04"]:
        leaks = [where for where, text in texts.items() if secret.lower() in text]
        assert leaks == [], f"{secret!r} leaked into {leaks}"
    assert not list(tiny_home.state.glob(f"{names[1]}*"))  # no state file named after the folder

    # reserved words: only the release's own totals carry them
    by_resource = pl.read_parquet(tiny_home.tables / "usage_by_resource.parquet")
    ids = set(by_resource["resource_id"]) - {"all"}
    assert ids and all(i.startswith("RES-") for i in ids), sorted(ids)
    assert (
        by_resource.filter(pl.col("resource_id") == "all").group_by("school_id", "measure").len()["len"].max()
        == 1
    )
    cross = pl.read_parquet(tiny_home.tables / "cross_school_use.parquet")
    assert set(cross["contributing_school"]) <= {"sch01", "sch02", "sch03", "ALL"}
    assert not {"RES-9" + f"{i:02d}" for i in range(20)} & ids  # no catalogue row reached a dimension

    # the healthy schools publish, and so does the rest of the hostile school
    reach = pl.read_parquet(tiny_home.tables / "reach.parquet")
    assert {*HEALTHY, HOSTILE} <= set(reach["school_id"])
    for school in HEALTHY:
        staged = read_staging_frame(tiny_home.staging_file("usage", school), school)
        assert staged.height > 0
    report = json.loads((tiny_home.published / "compliance_report.json").read_text())
    section = next(s for s in report["contracts"] if s["school_id"] == HOSTILE)
    usage = next(f for f in section["files"] if f["dataset"] == "usage" and f["status"] == "rejected_rows")
    assert {r["field"] for r in usage["rejects"]} == {"resource_id"}
    assert section["undeclared_columns_dropped"] == {"roster": 2, "usage": 2}
    assert any("anchors or aliases" in p["message"] for p in report["contract_problems"])
