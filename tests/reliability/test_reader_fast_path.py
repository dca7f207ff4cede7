"""The Polars fast paths of the reader give exactly what the careful, record-by-record path gives.

For every file the demo writes and every file of every corpus case, `read_export` with and without
the fast paths returns the same frame, the same reject summary (counts and first rows) and the same
notes, or raises the same error. Random small CSVs and odd JSON lines check the acceptance rules:
whenever the fast path accepts a text, its table equals the careful one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from export_corpus import CASES, SCHOOL, build_case
from polars.testing import assert_frame_equal

from contracts.loader import load_contracts
from contracts.model import DatasetTerms, FieldTerms
from demo.generate import generate_consortium
from transforms import readers
from transforms.readers import ExportError, read_export, read_raw_table


def outcome(path: Path, terms: DatasetTerms, fast: bool):
    try:
        result = read_export(path, terms, fast=fast)
    except ExportError as exc:
        return "error", str(exc)
    return "read", result


def assert_same(path: Path, terms: DatasetTerms) -> None:
    fast_kind, fast = outcome(path, terms, True)
    careful_kind, careful = outcome(path, terms, False)
    assert fast_kind == careful_kind, (path.name, fast, careful)
    if fast_kind == "error":
        assert fast == careful
        return
    assert_frame_equal(fast.frame, careful.frame)
    assert fast.reject_summary() == careful.reject_summary()
    assert (fast.rows_in, fast.notes, fast.dropped_columns) == (
        careful.rows_in,
        careful.notes,
        careful.dropped_columns,
    )
    raw_fast, raw_careful = read_raw_table(path, terms), read_raw_table(path, terms, fast=False)
    assert_frame_equal(raw_fast.frame, raw_careful.frame)
    assert raw_fast.shape_rejects == raw_careful.shape_rejects


def landed_files(home: Path, school: str) -> list[tuple[Path, DatasetTerms]]:
    agreements = load_contracts(home / "contracts").for_school(school)
    if not agreements:
        return []
    datasets = agreements[0].datasets
    files = []
    for path in sorted((home / "landing" / school).rglob("*")):
        dataset = path.relative_to(home / "landing" / school).parts[0]
        if path.is_symlink() or not path.is_file() or dataset not in datasets:
            continue
        if path.lstat().st_size > readers.DEFAULT_MAX_BYTES:
            continue
        files.append((path, datasets[dataset]))
    return files


def test_every_demo_file_reads_the_same_and_the_fast_paths_are_taken(tmp_path: Path):
    summary = generate_consortium(tmp_path, schools=8, students_per_school=40, weeks=3)
    taken = 0
    for school in summary.school_ids:
        for path, terms in landed_files(tmp_path, school):
            assert_same(path, terms)
            if terms.file_format in ("csv", "xapi"):
                text = readers._text(path.read_bytes(), terms.encoding, path.name, [])
                fast = (
                    readers._xapi_fast(text)
                    if terms.file_format == "xapi"
                    else readers._csv_fast(text, terms, path.name)
                )
                assert fast is not None, f"{school}/{path.name} fell back to the careful path"
                taken += 1
    assert taken >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_corpus_file_reads_the_same(case, corpus_base: Path, tmp_path: Path):
    home = build_case(case, corpus_base, tmp_path / case.name)
    files = landed_files(home, SCHOOL)
    assert files or case.name in ("retired_contract",)
    for path, terms in files:
        assert_same(path, terms)


def csv_terms(delimiter: str = ",") -> DatasetTerms:
    fields = (
        FieldTerms(name="a", logical_type="string", privacy_class="attribute", action="keep", source="a"),
    )
    return DatasetTerms(name="t", file_format="csv", fields=fields, delimiter=delimiter)


def assert_csv_agrees(text: str, terms: DatasetTerms) -> bool:
    """True when the fast path accepted `text` (and then gave the careful table)."""
    fast = readers._csv_fast(text, terms, "f.csv")
    if fast is None:
        return False
    careful = readers._csv_table_careful(text, terms, "f.csv")
    assert_frame_equal(fast.frame, careful.frame)
    assert (fast.shape_rejects, fast.notes) == (careful.shape_rejects, careful.notes), repr(text)
    return True


HOSTILE_CSV = [
    "a,b\n1,2\n",
    "a,b\n1\n",
    "a,b\n1,2,3\n",
    "a,b\n1,2,\n",
    "a,b\n\n1,2\n",
    "\na,b\n1,2\n",
    "a,b\n  \n1,2\n",
    "a,b\n,\n1,2\n",
    "a\n\nx\n",
    "a\n \nx\n",
    "a,b\n1,2\na,b\n3,4\n",
    "a,b\r\n1,2\r\n",
    "a,b\r1,2\r",
    'a,b\n"x\r\ny",2\r\n',
    'a,b\n"x,""y""\nz",2\n',
    'a,b\nx"y,2\n',
    'a,b\n"x"y,2\n',
    'a,b\n "x",2\n',
    'a,b\n"unterminated,2\n',
    "a,b\n1,2\n\n\n",
    "a,b\n1,2",
    "a;b\n1;2\n",
    "a,a\n1,2\n",
    "a,b\n\x1c,\x1d\n",
    "a,b\n\u00a0,\u3000\n",
]


@pytest.mark.parametrize("text", HOSTILE_CSV)
def test_hostile_csv_texts_agree_or_fall_back(text: str):
    assert_csv_agrees(text, csv_terms())


def test_random_csv_texts_agree_whenever_the_fast_path_accepts():
    rng = random.Random(20270615)
    alphabet = ["a", "b", ",", ",", '"', "\n", "\n", "\r\n", "\r", " ", "é", "\t"]
    accepted = 0
    for _ in range(3000):
        header = ",".join(rng.choice(["a", "b", "c", "d"]) + str(i) for i in range(rng.randint(1, 3)))
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        accepted += assert_csv_agrees(header + "\n" + body, csv_terms())
    assert accepted > 100  # the rules are not so strict that nothing is ever accepted


GOOD_XAPI = {
    "actor": {"mbox": "mailto:ann@example.org", "name": "x"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
    "object": {"id": "urn:resource:RES-001"},
    "timestamp": "2026-09-07T08:00:00Z",
    "result": {"duration": "PT1H2M30.5S"},
}
GOOD = json.dumps(GOOD_XAPI)

HOSTILE_XAPI = [
    GOOD + "\n" + GOOD + "\n",
    GOOD + "\r\n\r\n  \n" + GOOD,
    GOOD + "\nnot json\n",
    GOOD + "\n[1, 2]\n",
    GOOD + '\n{"timestamp": 5}\n',
    GOOD + "\n" + GOOD.replace('"2026-09-07T08:00:00Z"', "1e20") + "\n",
    GOOD + "\n" + GOOD.replace('"2026-09-07T08:00:00Z"', "true") + "\n",
    GOOD + "\n" + GOOD.replace('"PT1H2M30.5S"', "5") + "\n",
    GOOD + "\n" + GOOD.replace('"PT1H2M30.5S"', '"PT"') + "\n",
    GOOD + "\n" + GOOD.replace('"PT1H2M30.5S"', '"PT0.001S"') + "\n",
    GOOD + "\n" + GOOD.replace('"PT1H2M30.5S"', '"P1D"') + "\n",
    GOOD + "\n" + GOOD.replace('"mailto:ann@example.org"', "null") + "\n",
    GOOD + "\n" + GOOD.replace('{"id": "urn:resource:RES-001"}', '{"id": "a", "id": "b"}') + "\n",
    GOOD + "\n" + GOOD.replace('{"id": "urn:resource:RES-001"}', '{"id": "a", "\\u0069d": "b"}') + "\n",
    GOOD + "\n" + GOOD.replace('"timestamp"', '"timestamp": "x", "timestamp"') + "\n",
    GOOD + "\n" + GOOD.replace('"ann@', '"ann\u2028@') + "\n",
    GOOD + "\n" + GOOD.replace('"ann@', '"zo\\u00eb@') + "\n",
    GOOD + "\n" + GOOD.replace('"actor": {', '"actor": {"account": [{"id": "x"}], ') + "\n",
    GOOD + "\n" + GOOD.replace('"x"', '"id"') + "\n",
    GOOD + "\n" + GOOD.replace('"urn:resource:RES-001"', '""') + "\n",
    GOOD + "\n" + GOOD.replace('"mailto:ann@example.org"', '"mailto:"') + "\n",
    GOOD + "\n" + GOOD.replace('{"mbox"', '{"x": 1, "mbox"') + "\n",
    "\n".join([GOOD] * 150 + [GOOD.replace('{"id": "urn', '{"id": 7, "k": "urn')]) + "\n",
    "\n".join([GOOD] * 150 + [GOOD.replace('"actor": {', '"actor": {"mbox": "m", ')]) + "\n",
    "\n".join(
        [GOOD] * 150 + [GOOD.replace('"actor": {"mbox": "mailto:ann@example.org", ', '"actor": "x", "a": {')]
    )
    + "\n",
]


@pytest.mark.parametrize("text", HOSTILE_XAPI)
def test_hostile_xapi_lines_agree_or_fall_back(text: str):
    fast = readers._xapi_fast(text)
    if fast is None:
        return
    careful = readers._json_lines_careful(text, xapi=True)
    assert_frame_equal(fast.frame, careful.frame)
    assert fast.shape_rejects == careful.shape_rejects == []


def test_well_formed_xapi_takes_the_fast_path():
    text = "\n".join([GOOD, GOOD.replace("PT1H2M30.5S", "PT5M"), GOOD.replace("PT1H2M30.5S", "PT0.5S")])
    fast = readers._xapi_fast(text)
    assert fast is not None
    assert_frame_equal(fast.frame, readers._json_lines_careful(text, xapi=True).frame)
