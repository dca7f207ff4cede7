"""`impact keys rotate`: staging re-keyed under a new version, atomically, audited; data unchanged."""

import json
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from contracts.loader import load_contracts
from pipelines.commands.key_rotation import app
from pipelines.runner import run_pipeline
from privacy import keys
from privacy.audit_log import read_entries
from privacy.keys import load_pseudonym_key
from privacy.rotation import (
    COMPLETE_MARKER,
    data_differences,
    draft_folder,
    recover_interrupted_rotation,
)
from privacy.staging_store import read_staging_frame
from privacy.zones import Home
from transforms.intake import intake_school, public_file_name
from transforms.scrubbing import roster_text_scrubber
from transforms.staging import STAGING_DATASETS
from transforms.validation import is_current, read_expectations

NEW_KEY = "rotated-key-" + "r" * 40  # built in code, never a real key
runner = CliRunner()


def staged_frames(home: Home) -> dict[tuple[str, str], pl.DataFrame]:
    frames = {}
    for ds in STAGING_DATASETS:
        for path in sorted(home.staging.glob(f"{ds}/school=*/part.parquet")):
            school = path.parent.name.removeprefix("school=")
            frames[(ds, school)] = read_staging_frame(path, school)
    return frames


def pids(frames) -> set[str]:
    return {p for f in frames.values() if "student_pid" in f.columns for p in f["student_pid"]}


def staging_bytes(home: Home) -> dict[str, bytes]:
    return {str(p.relative_to(home.staging)): p.read_bytes() for p in home.staging.rglob("*") if p.is_file()}


def stage_all(home: Home) -> None:
    """Stage every school without Dagster (the refusal tests need staging, not a release)."""
    contracts = load_contracts(home.contracts)
    key = load_pseudonym_key()
    for school in contracts.schools:
        intake_school(home, contracts, school, key, roster_text_scrubber)


def use_new_key(monkeypatch, key: str = NEW_KEY, version: str = "2") -> None:
    monkeypatch.setenv("IMPACT_PSEUDONYM_KEY", key)
    monkeypatch.setenv("IMPACT_PSEUDONYM_KEY_VERSION", version)


def rotate(home: Home):
    return runner.invoke(app, ["rotate", "--home", str(home.root)])


def said(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.mark.slow
def test_rotation_rekeys_every_row_and_the_rerun_release_is_byte_identical(
    tiny_home, test_key_env, monkeypatch
):
    first = run_pipeline(tiny_home)
    assert first.released and not first.schools_failed
    tables = {p.name: p.read_bytes() for p in tiny_home.tables.iterdir()}
    before = staged_frames(tiny_home)
    assert list(tiny_home.derived.rglob("*.parquet"))  # the release's cache holds old pseudonyms
    assert {
        f["key_version"].unique().to_list()[0] for f in before.values() if "key_version" in f.columns
    } == {"1"}

    use_new_key(monkeypatch)
    result = rotate(tiny_home)
    assert result.exit_code == 0, result.output
    after = staged_frames(tiny_home)
    assert set(after) == set(before)
    for (ds, school), frame in after.items():
        if "key_version" in frame.columns:
            assert frame["key_version"].unique().to_list() == ["2"], (ds, school)
    assert pids(before) and not (pids(before) & pids(after))
    assert data_differences(before, after) == []
    assert not list(tiny_home.staging.glob(".rotation-*")) and not list(tiny_home.staging.glob(".retired-*"))
    assert not tiny_home.derived.exists()  # retired with the old staging, derived again at the release

    rotated = [e for e in read_entries(tiny_home.audit_log) if e["action"] == "key_rotated"]
    assert len(rotated) == 1
    assert rotated[0]["object"]["old_key_version"] == "1"
    assert rotated[0]["object"]["new_key_version"] == "2"
    assert rotated[0]["object"]["school_ids"] == ["sch01", "sch02", "sch03"]
    assert NEW_KEY not in tiny_home.audit_log.read_text()
    assert test_key_env not in "".join(result.output.split())

    for school in ("sch01", "sch02", "sch03"):  # the expectation verdicts checked the new staging
        assert is_current(tiny_home, read_expectations(tiny_home, school)), school

    second = run_pipeline(tiny_home)  # the new key: nothing to re-stage, the release is redone
    assert second.schools_run == [] and second.released
    assert {p.name: p.read_bytes() for p in tiny_home.tables.iterdir()} == tables


def test_rotation_refuses_an_unchanged_key_version_and_touches_nothing(tiny_home, test_key_env, monkeypatch):
    stage_all(tiny_home)
    snapshot = staging_bytes(tiny_home)
    use_new_key(monkeypatch, version="1")
    result = rotate(tiny_home)
    assert result.exit_code == 2
    assert "already holds key version '1'" in said(result)
    assert staging_bytes(tiny_home) == snapshot


def test_rotation_refuses_a_new_version_of_the_same_key(tiny_home, test_key_env, monkeypatch):
    stage_all(tiny_home)
    snapshot = staging_bytes(tiny_home)
    use_new_key(monkeypatch, key=test_key_env, version="2")
    result = rotate(tiny_home)
    assert result.exit_code == 2 and "same pseudonyms" in said(result)
    assert test_key_env not in "".join(result.output.split())
    assert staging_bytes(tiny_home) == snapshot  # the draft is gone, staging untouched


def test_rotation_refuses_when_retention_deleted_a_raw_export(tiny_home, test_key_env, monkeypatch):
    stage_all(tiny_home)
    snapshot = staging_bytes(tiny_home)
    roster = next((tiny_home.landing / "sch02" / "roster").iterdir())
    roster.unlink()
    use_new_key(monkeypatch)
    result = rotate(tiny_home)
    assert result.exit_code == 2
    # state files name exports by digest (issue 17), so the refusal does too
    assert f"sch02: raw export roster/{public_file_name(roster.name)} is no longer in landing" in said(result)
    assert staging_bytes(tiny_home) == snapshot
    assert not any(e["action"] == "key_rotated" for e in read_entries(tiny_home.audit_log))


def test_rotation_refuses_when_new_exports_wait_in_landing(tiny_home, test_key_env, monkeypatch):
    stage_all(tiny_home)
    roster = next((tiny_home.landing / "sch01" / "roster").iterdir())
    shutil.copyfile(roster, roster.with_name("roster_2099-01-01" + "".join(roster.suffixes)))
    use_new_key(monkeypatch)
    result = rotate(tiny_home)
    assert result.exit_code == 2 and "arrived after the last staging" in said(result)


def test_nothing_staged_means_nothing_to_rotate(tiny_home, test_key_env, monkeypatch):
    use_new_key(monkeypatch)
    result = rotate(tiny_home)
    assert result.exit_code == 0 and "Nothing is staged" in said(result)


def fake_staging(home: Home, version: str, entries: dict[str, str]) -> None:
    for name, content in entries.items():
        (home.staging / name).mkdir(parents=True)
        (home.staging / name / "part.parquet").write_text(content)


def test_recovery_finishes_a_complete_draft_and_discards_an_incomplete_one(tmp_path):
    home = Home(tmp_path)
    home.create()
    fake_staging(home, "1", {"students": "old", "usage": "old", "comments": "old"})
    complete = draft_folder(home, "2")
    # a crash mid-swap: students already moved in, usage not yet; the new staging has no comments
    (home.staging / ".retired-2").mkdir()
    (home.staging / "students").rename(home.staging / ".retired-2" / "students")
    (complete / "usage").mkdir(parents=True)
    (complete / "usage" / "part.parquet").write_text("new")
    (home.staging / "students").mkdir()
    (home.staging / "students" / "part.parquet").write_text("new")
    (complete / COMPLETE_MARKER).write_text(
        json.dumps({"new_key_version": "2", "entries": ["students", "usage"]})
    )
    incomplete = draft_folder(home, "3")
    (incomplete / "students").mkdir(parents=True)

    done = recover_interrupted_rotation(home, ["students", "usage", "comments", "_state"])
    assert done == ["completed .rotation-2", "discarded .rotation-3"]
    assert (home.staging / "students" / "part.parquet").read_text() == "new"
    assert (home.staging / "usage" / "part.parquet").read_text() == "new"
    assert not (home.staging / "comments").exists()
    assert sorted(p.name for p in home.staging.iterdir()) == ["students", "usage"]


def test_data_differences_name_the_school_and_dataset_without_values():
    old = pl.DataFrame({"student_pid": ["a", "b"], "key_version": ["1", "1"], "minutes": [5.0, 7.0]})
    same = pl.DataFrame({"student_pid": ["y", "x"], "key_version": ["2", "2"], "minutes": [7.0, 5.0]})
    changed = same.with_columns(pl.lit(9.0).alias("minutes"))
    assert data_differences({("usage", "s1"): old}, {("usage", "s1"): same}) == []
    problems = data_differences({("usage", "s1"): old}, {("usage", "s1"): changed})
    assert problems == ["s1/usage: 2 rows before, 2 after, or values differ"]


def test_rotation_away_from_an_all_digit_version_is_logged(tiny_home, test_key_env, monkeypatch):
    """Staging written by an older version under IMPACT_PSEUDONYM_KEY_VERSION=20261201 (now refused
    at start-up): the rotation to a proper version completes and its entry is accepted by the log."""
    checked_version = keys.checked_version
    monkeypatch.setattr(keys, "checked_version", lambda version: version)  # the older code
    monkeypatch.setenv("IMPACT_PSEUDONYM_KEY_VERSION", "20261201")
    stage_all(tiny_home)
    monkeypatch.setattr(keys, "checked_version", checked_version)
    use_new_key(monkeypatch, version="v2")
    result = rotate(tiny_home)
    assert result.exit_code == 0, result.output
    (rotated,) = [e["object"] for e in read_entries(tiny_home.audit_log) if e["action"] == "key_rotated"]
    assert rotated["old_key_version"] == "version 20261201" and rotated["new_key_version"] == "v2"


def test_a_rotation_the_log_would_refuse_leaves_staging_as_it_was(tiny_home, test_key_env, monkeypatch):
    stage_all(tiny_home)
    snapshot = staging_bytes(tiny_home)
    use_new_key(monkeypatch)
    monkeypatch.setattr(
        "pipelines.commands.key_rotation._rotation_entry", lambda report: {"old_key_version": "123456789"}
    )
    result = rotate(tiny_home)
    assert result.exit_code == 2 and "audit log would refuse" in said(result)
    assert staging_bytes(tiny_home) == snapshot
    assert not list(tiny_home.staging.glob(".rotation-*"))
    assert not [e for e in read_entries(tiny_home.audit_log) if e["action"] == "key_rotated"]
