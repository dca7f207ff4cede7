"""Restricted zones are owner-only; `impact run` refuses to start when one is open, unless repaired."""

import os
import stat

import pytest

from pipelines.runner import CannotRun, preflight
from privacy.keys import load_pseudonym_key
from privacy.zones import OPEN_ZONES, RESTRICTED_ZONES, Home


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_makes_restricted_zones_owner_only_and_published_readable(tmp_path):
    home = Home(tmp_path / "home")
    home.create()
    for zone in RESTRICTED_ZONES:
        assert mode(home.root / zone) == 0o700, zone
    for zone in OPEN_ZONES:
        assert mode(home.root / zone) & 0o005 == 0o005, zone  # others may read and enter
    assert home.permission_problem() is None


def test_run_refuses_an_open_zone_and_says_how_to_fix_it(tiny_home, test_key_env):
    tiny_home.staging.chmod(0o755)
    with pytest.raises(CannotRun) as refused:
        preflight(tiny_home, load_pseudonym_key)
    message = str(refused.value)
    assert "staging (0o755)" in message and "--fix-permissions" in message and "chmod -R go-rwx" in message
    assert mode(tiny_home.staging) == 0o755  # refusing changes nothing

    preflight(tiny_home, load_pseudonym_key, fix_permissions=True)
    assert mode(tiny_home.staging) == 0o700 and tiny_home.permission_problem() is None


def test_an_open_file_inside_a_closed_zone_is_refused_too(tiny_home, test_key_env):
    state = tiny_home.state / "sch01.json"
    state.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    state.write_text("{}")
    state.chmod(0o644)
    with pytest.raises(CannotRun, match=r"staging/_state/sch01.json \(0o644\)"):
        preflight(tiny_home, load_pseudonym_key)
    preflight(tiny_home, load_pseudonym_key, fix_permissions=True)
    assert mode(state) == 0o600


def test_senders_and_dagster_files_are_tightened_not_refused(tiny_home, test_key_env):
    """A sender's umask (0644 files, 0755 folders) is not a deployment error: the landing zone
    (0700) already keeps others out, so the run makes what it received owner-only and goes on."""
    received = next(tiny_home.landing.rglob("*.csv"))
    received.chmod(0o644)
    received.parent.chmod(0o755)
    dagster_file = tiny_home.dagster / "history" / "runs.db"
    dagster_file.parent.mkdir(parents=True)
    dagster_file.write_bytes(b"")
    dagster_file.chmod(0o644)
    preflight(tiny_home, load_pseudonym_key)
    assert mode(received) == 0o600 and mode(received.parent) == 0o700 and mode(dagster_file) == 0o600


def test_run_refuses_without_a_master_key(tiny_home, test_key_env, monkeypatch):
    monkeypatch.delenv("IMPACT_MASTER_KEY")
    with pytest.raises(CannotRun, match="no master key for encryption at rest: set IMPACT_MASTER_KEY"):
        preflight(tiny_home, load_pseudonym_key)
    monkeypatch.setenv("IMPACT_MASTER_KEY", test_key_env)  # the pseudonymization key itself
    with pytest.raises(CannotRun, match="is the pseudonymization key"):
        preflight(tiny_home, load_pseudonym_key)


def test_a_home_writable_by_others_is_refused_and_repaired_read_access_kept(tiny_home, test_key_env):
    tiny_home.root.chmod(0o777)
    with pytest.raises(CannotRun) as refused:
        preflight(tiny_home, load_pseudonym_key)
    message = str(refused.value)
    assert "the home folder (0o777)" in message and "writable by group or others" in message
    assert "--fix-permissions" in message and "chmod go-w" in message
    assert mode(tiny_home.root) == 0o777  # refusing changes nothing

    preflight(tiny_home, load_pseudonym_key, fix_permissions=True)
    assert mode(tiny_home.root) == 0o755 and tiny_home.permission_problem() is None


@pytest.mark.parametrize("zone", OPEN_ZONES)
def test_contracts_and_published_may_be_read_but_not_written_by_others(tiny_home, test_key_env, zone):
    folder = tiny_home.root / zone
    inside = next((p for p in folder.rglob("*") if p.is_file()), None) or folder / "x.json"
    inside.touch()
    folder.chmod(0o755)
    inside.chmod(0o644)
    assert tiny_home.writable_by_others() == []  # readable by all: by design
    preflight(tiny_home, load_pseudonym_key)
    folder.chmod(0o775)  # group-writable folder: anyone in the group can swap a file
    inside.chmod(0o666)  # a world-writable file inside
    with pytest.raises(CannotRun) as refused:
        preflight(tiny_home, load_pseudonym_key)
    message = str(refused.value)
    assert f"{zone} (0o775)" in message and f"{inside.relative_to(tiny_home.root)} (0o666)" in message
    preflight(tiny_home, load_pseudonym_key, fix_permissions=True)
    assert mode(folder) == 0o755 and mode(inside) == 0o644


def test_create_leaves_nothing_writable_by_others_whatever_the_umask(tmp_path):
    old = os.umask(0o000)
    try:
        home = Home(tmp_path / "fresh")
        home.create()
    finally:
        os.umask(old)
    assert home.writable_by_others() == [] and home.permission_problem() is None
    assert mode(home.root) == 0o755 and mode(home.published) == 0o755
