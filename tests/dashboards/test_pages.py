"""The report and dashboard built from a real release: every section present, numbers for people,
suppression shown in words, and the dashboard's embedded data disclosure-safe."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
from markupsafe import escape
from release_fixture import TEST_KEYS

from dashboards.data import embeddable_rows, fmt_num, fmt_p
from dashboards.funder_page import term_of, term_order
from dashboards.impact_page import reason_in_words
from privacy.staging_store import read_staging_frame

HEX_64 = re.compile(r"\b[0-9a-f]{64}\b")


def test_numbers_are_formatted_for_people():
    assert fmt_p(1.2e-43) == "< 0.001"
    assert fmt_p(0.0492897) == "0.049"
    assert fmt_num(0.280265) == "0.28"
    assert fmt_num(-0.0004) == "0.00"  # never "-0.00"
    assert fmt_num(None) == "—"


def test_embedded_rows_never_carry_a_small_count_even_if_a_table_is_wrong():
    table = pl.DataFrame(
        {
            "school_id": ["a", "b", "c"],
            "measure": ["users"] * 3,
            "value": [4.0, None, 25.0],
            "n": [4, None, 25],
            "status": ["published", "suppressed", "published"],  # row a is a (simulated) control bug
            "note": ["", "", ""],
        }
    )
    rows = embeddable_rows(table, ["users"], k=10)
    assert rows[0] == {"school_id": "a", "measure": "users", "value": None, "n": None, "status": "suppressed"}
    assert rows[1]["status"] == "suppressed" and rows[1]["value"] is None
    assert rows[2]["value"] == 25.0 and rows[2]["n"] == 25


def test_suppression_reasons_read_as_words():
    words = reason_in_words(
        "reach: school_id=sch01, subgroup=sex, subgroup_value=F · users — fewer students than the minimum cell size"
    )
    assert words == {
        "table": "Reach",
        "where": "school sch01, subgroup sex, subgroup value F",
        "what": "students using shared resources",
        "why": "fewer students than the minimum cell size",
    }


def test_terms_follow_the_school_year():
    assert term_of("2026-W37") == "fall-2026" and term_of("2027-W02") == "spring-2027"
    assert sorted(["fall-2026", "spring-2027", "spring-2026"], key=term_order) == [
        "spring-2026",
        "fall-2026",
        "spring-2027",
    ]


@pytest.mark.slow
def test_impact_report_has_every_section_from_the_release(release_home):
    html = (release_home.published / "impact_report.html").read_text()
    manifest = json.loads((release_home.published / "manifest.json").read_text())
    for anchor in (
        "evidence",
        "sample",
        "baseline",
        "impact",
        "forest",
        "dosage",
        "subgroups",
        "methods",
        "suppression",
    ):
        assert f'id="{anchor}"' in html
    for words in ("Improvement index", "WWC category", "p (BH-adjusted)", "95% prediction interval", "REML"):
        assert words in html
    control = manifest["disclosure_control"]
    assert f'<strong id="min-cell-size">{control["min_cell_size"]}</strong>' in html
    assert html.count("<li>") >= len(control["reasons"])  # every suppressed cell listed, in words
    assert "fewer students than the minimum cell size" in html
    sentences = pl.read_parquet(release_home.tables / "evidence_summary.parquet").filter(
        (pl.col("measure") == "essa_tier") & (pl.col("status") == "published")
    )["note"]
    assert sentences.len() > 0 and all(str(escape(s)) in html for s in sentences)
    visible = re.sub(r"<(script|style).*?</\1>", "", html, flags=re.S)
    assert not re.search(r"\de-\d", visible)  # p-values read "< 0.001", never 1.2e-43


def embedded_json(html: str) -> dict:
    match = re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the dashboard embeds its data"
    return json.loads(match.group(1))


@pytest.mark.slow
def test_dashboard_data_has_no_small_count_and_no_pseudonym(release_home, monkeypatch):
    html = (release_home.published / "funder_dashboard.html").read_text()
    data = embedded_json(html)
    k = data["k"]
    rows = [r for key in ("weekly", "resources", "reach") for r in data[key]]
    assert rows and any(r["status"] == "suppressed" for r in rows)
    assert not [r for r in rows if r["n"] is not None and 0 < r["n"] < k]
    assert all(r["value"] is None and r["n"] is None for r in rows if r["status"] == "suppressed")
    for name, value in TEST_KEYS.items():  # staging is sealed: the test reads it with the run's keys
        monkeypatch.setenv(name, value)
    pids = set()
    for part in release_home.staging.glob("students/*/*.parquet"):
        pids |= set(read_staging_frame(part, part.parent.name.split("=", 1)[1])["student_pid"])
    assert pids, "staging was read: the pseudonyms are known to the test"
    for page in ("funder_dashboard.html", "impact_report.html"):
        text = (release_home.published / page).read_text()
        assert not (set(HEX_64.findall(text)) & pids)
    assert not HEX_64.findall(json.dumps(data))


@pytest.mark.slow
def test_suppressed_cells_are_shown_as_suppressed_never_zero(release_home):
    html = (release_home.published / "funder_dashboard.html").read_text()
    reach = pl.read_parquet(release_home.tables / "reach.parquet")
    hidden = reach.filter(
        (pl.col("measure") == "reach_pct")
        & pl.col("status").str.starts_with("suppressed")
        & (pl.col("subgroup_value") != "all")
    )
    assert hidden.height > 0
    cells = re.findall(r'<td class="num suppressed">([^<]*)</td>', html)
    assert len(cells) == hidden.height and set(cells) == {"suppressed"}


@pytest.mark.slow
def test_the_impact_page_indexes_each_table_once_not_once_per_school(release_home, monkeypatch):
    """At 1,000 schools a per-school re-index of impact_by_school made the page take minutes."""
    from dashboards import impact_page

    manifest = json.loads((release_home.published / "manifest.json").read_text())
    tables = {
        name: pl.read_parquet(release_home.published / e["parquet"]) for name, e in manifest["tables"].items()
    }
    calls: list[int] = []
    index = impact_page.measures_by_key

    def counted(table, dims):
        calls.append(0 if table is None else table.height)
        return index(table, dims)

    monkeypatch.setattr(impact_page, "measures_by_key", counted)
    page = impact_page.context(manifest, tables)
    schools = {s for s in tables["impact_by_school"]["school_id"].unique().to_list() if s != "ALL"}
    assert len(page["impact_schools"]) == len(schools) >= 3
    big = tables["impact_by_school"].height
    assert calls.count(big) <= 2 < len(schools), calls  # a constant count, not one per school
