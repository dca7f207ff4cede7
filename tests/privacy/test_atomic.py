"""Atomic writes: readers see the old file or the whole new one, never a temporary or a half."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from privacy.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    is_temporary_name,
    remove_stale_temporaries,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_creates_parents_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "published" / "tables" / "usage.csv"
    atomic_write_text(target, "a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"
    assert os.listdir(target.parent) == ["usage.csv"]


def test_overwrite_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["manifest.json"]


def test_temporary_is_a_hidden_sibling_that_globs_do_not_see(tmp_path: Path) -> None:
    target = tmp_path / "part.parquet"
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".") and temporary.name.endswith(".tmp")
        assert is_temporary_name(temporary)
        temporary.write_bytes(b"PAR1")
        assert list(tmp_path.glob("*.parquet")) == []
        assert not target.exists()  # readers see nothing until the rename
    assert target.read_bytes() == b"PAR1"


def test_failure_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("old complete content\n")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "old complete content\n"
    assert os.listdir(tmp_path) == ["table.csv"]


def test_failure_before_first_write_leaves_no_target(tmp_path: Path) -> None:
    target = tmp_path / "new.csv"
    with pytest.raises(ValueError), atomic_path(target):
        raise ValueError("boom")
    assert os.listdir(tmp_path) == []


def test_explicit_mode_is_applied(tmp_path: Path) -> None:
    target = tmp_path / "staging" / "part.parquet"
    atomic_write_bytes(target, b"x", mode=0o600)
    assert _mode(target) == 0o600


def test_existing_permissions_are_kept_without_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert _mode(target) == 0o640


def test_new_file_without_mode_follows_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        target = tmp_path / "fresh.txt"
        atomic_write_text(target, "x")
    finally:
        os.umask(previous)
    assert _mode(target) == 0o640


def test_temporary_is_owner_only_while_being_written(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "restricted.parquet", mode=0o600) as temporary:
        assert _mode(temporary) == 0o600


def test_remove_stale_temporaries_deletes_only_leftovers(tmp_path: Path) -> None:
    nested = tmp_path / "staging" / "usage" / "school=S01"
    nested.mkdir(parents=True)
    stale = [tmp_path / ".manifest.json.ab12.tmp", nested / ".part.parquet.cd34.tmp"]
    kept = [nested / "part.parquet", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for path in stale + kept:
        path.write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in stale)


def test_remove_stale_temporaries_spares_young_files_and_nonrecursive(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    old = tmp_path / ".old.tmp"
    young = tmp_path / ".young.tmp"
    deep = tmp_path / "sub" / ".deep.tmp"
    for path in (old, young, deep):
        path.write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(deep, (an_hour_ago, an_hour_ago))
    assert remove_stale_temporaries(tmp_path, recursive=False, min_age_seconds=60) == [old]
    assert young.exists() and deep.exists()


def test_remove_stale_temporaries_on_missing_folder(tmp_path: Path) -> None:
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_an_exclusive_lock_has_one_holder_at_a_time_and_is_free_after(tmp_path):
    from pipelines.runner import CannotRun, run_lock
    from privacy.atomic import exclusive_lock
    from privacy.zones import Home

    lock = tmp_path / "locks" / "x.lock"
    with exclusive_lock(lock) as first, exclusive_lock(lock) as second:
        assert first and not second
    with exclusive_lock(lock) as again:
        assert again
    assert lock.stat().st_mode & 0o077 == 0
    home = Home(tmp_path / "home")
    with run_lock(home), pytest.raises(CannotRun, match="another `impact run`"), run_lock(home):
        pass
