"""Encryption at rest of staging: per-school data keys wrapped by a master key, crypto-shredding."""

import json
import pickle
import secrets
import shutil
import stat

import polars as pl
import pytest

from privacy import encryption
from privacy.audit_log import AuditLog, UnsafeAuditObject, verify
from privacy.encryption import (
    MAGIC,
    DataKeyStore,
    EncryptionError,
    MasterKey,
    WrongMasterKey,
    create_demo_master_key,
    datakey_path,
    load_master_key,
    shred_school_key,
)
from privacy.keys import DEMO_KEY_PREFIX
from privacy.staging_store import read_staging_frame, write_staging_frame
from privacy.zones import Home

MASTER = "unit-master-" + "a" * 40
OTHER_MASTER = "unit-master-" + "b" * 40
PSEUDONYM = "unit-pseudonym-" + "p" * 40
CANARY = "Zebediah-Quackenbush"  # a value that must never be visible in the file on disk


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    monkeypatch.setenv("IMPACT_MASTER_KEY", MASTER)
    monkeypatch.setenv("IMPACT_PSEUDONYM_KEY", PSEUDONYM)
    for name in ("IMPACT_MASTER_KEY_FILE", "IMPACT_PSEUDONYM_KEY_FILE", "IMPACT_DEMO_MODE"):
        monkeypatch.delenv(name, raising=False)
    home = Home(tmp_path / "home")
    home.create()
    return home


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {"student_pid": ["a1", "b2", "c3"], "text": [CANARY, "x", "y"], "minutes": [1.0, 2, 3]}
    )


def store(home: Home, master: str = MASTER) -> DataKeyStore:
    return DataKeyStore(home.root, load_master_key({"IMPACT_MASTER_KEY": master}))


def test_round_trip_is_encrypted_owner_only_and_keyed_per_school(home):
    path = home.staging_file("comments", "sch01")
    write_staging_frame(path, frame(), "sch01")
    raw = path.read_bytes()
    assert raw.startswith(MAGIC) and b"PAR1" not in raw and CANARY.encode() not in raw
    assert read_staging_frame(path, "sch01").equals(frame())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, path.parent.parent, datakey_path(home.root, "sch01").parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    key_file = datakey_path(home.root, "sch01")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    record = json.loads(key_file.read_text())
    assert set(record) >= {"school_id", "key_id", "wrapped", "master_fingerprint", "algorithm"}
    write_staging_frame(home.staging_file("comments", "sch02"), frame(), "sch02")
    assert store(home).info("sch01").key_id != store(home).info("sch02").key_id


def test_reading_without_or_with_the_wrong_master_key_fails_clearly(home, monkeypatch):
    path = home.staging_file("usage", "sch01")
    write_staging_frame(path, frame(), "sch01")
    monkeypatch.delenv("IMPACT_MASTER_KEY")
    with pytest.raises(EncryptionError, match=r"no master key.*IMPACT_MASTER_KEY"):
        read_staging_frame(path, "sch01")
    monkeypatch.setenv("IMPACT_MASTER_KEY", OTHER_MASTER)
    with pytest.raises(EncryptionError, match="cannot be unwrapped with this master key"):
        read_staging_frame(path, "sch01")


def test_altered_plain_and_misplaced_files_are_refused_not_misread(home):
    path = home.staging_file("usage", "sch01")
    write_staging_frame(path, frame(), "sch01")
    blob = bytearray(path.read_bytes())
    blob[-20] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(EncryptionError, match="failed authentication"):
        read_staging_frame(path, "sch01")
    path.write_bytes(blob[: len(MAGIC) + 5])
    with pytest.raises(EncryptionError, match="damaged encryption header"):
        read_staging_frame(path, "sch01")
    frame().write_parquet(path)
    with pytest.raises(EncryptionError, match=r"not an encrypted staging file.*re-stage"):
        read_staging_frame(path, "sch01")
    write_staging_frame(path, frame(), "sch01")
    stray = home.staging_file("usage", "sch02")
    stray.parent.mkdir(parents=True)
    shutil.copy(path, stray)
    with pytest.raises(EncryptionError, match="belongs to school sch01, not sch02"):
        read_staging_frame(stray, "sch02")


def test_shredded_key_makes_a_restored_copy_unreadable(home, tmp_path):
    path = home.staging_file("students", "sch01")
    write_staging_frame(path, frame(), "sch01")
    write_staging_frame(home.staging_file("students", "sch02"), frame(), "sch02")
    backup = tmp_path / "backup.parquet"
    shutil.copy2(path, backup)
    key_id = store(home).info("sch01").key_id
    audit = AuditLog.for_home(home.root, actor="test")

    assert shred_school_key(home, "sch01", audit, reason="contract withdrawn")
    assert not datakey_path(home.root, "sch01").exists()
    assert not shred_school_key(home, "sch01", audit)  # nothing left to shred
    shutil.copy2(backup, path)  # a restored backup
    with pytest.raises(EncryptionError, match="no data key for school sch01: it was shredded"):
        read_staging_frame(path, "sch01")
    write_staging_frame(home.staging_file("usage", "sch01"), frame(), "sch01")  # school re-joins: new key
    with pytest.raises(EncryptionError, match=f"data key {key_id} .* no longer exists"):
        read_staging_frame(path, "sch01")
    assert read_staging_frame(home.staging_file("students", "sch02"), "sch02").equals(frame())

    entries = [json.loads(line) for line in home.audit_log.read_text().splitlines()]
    shredded = [e for e in entries if e["action"] == "data_key_shredded"]
    assert len(shredded) == 1
    assert shredded[0]["object"] == {"school_id": "sch01", "key_id": key_id, "reason": "contract withdrawn"}
    assert verify(home.audit_log).ok


def test_master_key_rules(tmp_path):
    with pytest.raises(EncryptionError, match="at least 32"):
        load_master_key({"IMPACT_MASTER_KEY": "short"})
    with pytest.raises(EncryptionError, match="is the pseudonymization key"):
        load_master_key({"IMPACT_MASTER_KEY": PSEUDONYM, "IMPACT_PSEUDONYM_KEY": PSEUDONYM})
    same_file = tmp_path / "same.key"
    same_file.write_text(PSEUDONYM)
    with pytest.raises(EncryptionError, match="is the pseudonymization key"):
        load_master_key({"IMPACT_MASTER_KEY_FILE": str(same_file), "IMPACT_PSEUDONYM_KEY": PSEUDONYM})
    with pytest.raises(EncryptionError, match="not a readable file"):
        load_master_key({"IMPACT_MASTER_KEY_FILE": str(tmp_path / "missing.key")})
    demo = create_demo_master_key(tmp_path / "keys" / "demo-master.key")
    assert demo.read_bytes().startswith(DEMO_KEY_PREFIX) and stat.S_IMODE(demo.stat().st_mode) == 0o600
    with pytest.raises(EncryptionError, match="demo key"):
        load_master_key({"IMPACT_MASTER_KEY_FILE": str(demo)})
    assert load_master_key({"IMPACT_MASTER_KEY_FILE": str(demo), "IMPACT_DEMO_MODE": "1"}).is_demo
    assert create_demo_master_key(demo).read_bytes() == demo.read_bytes()  # kept, never replaced


def test_keys_never_show_in_repr_errors_files_or_pickles(home, monkeypatch):
    master = load_master_key({"IMPACT_MASTER_KEY": MASTER})
    keys = DataKeyStore(home.root, master)
    path = home.staging_file("usage", "sch01")
    write_staging_frame(path, frame(), "sch01", keys=keys)
    _, data_key = keys.data_key("sch01")
    texts = [repr(master), str(master), repr(keys), datakey_path(home.root, "sch01").read_text()]
    monkeypatch.setenv("IMPACT_MASTER_KEY", OTHER_MASTER)
    for attempt in (
        lambda: read_staging_frame(path, "sch01"),
        lambda: load_master_key({"IMPACT_MASTER_KEY": "x"}),
    ):
        with pytest.raises(EncryptionError) as caught:
            attempt()
        texts.append(str(caught.value))
    for text in texts:
        assert MASTER not in text and OTHER_MASTER not in text
        assert data_key.hex() not in text and data_key not in text.encode()
    with pytest.raises(TypeError):
        pickle.dumps(master)
    assert "fingerprint" in repr(master)


def test_rewrap_moves_data_keys_to_a_new_master_without_touching_staging(home):
    path = home.staging_file("usage", "sch01")
    write_staging_frame(path, frame(), "sch01")
    before = path.read_bytes()
    new_master = MasterKey(OTHER_MASTER.encode())
    store(home).rewrap("sch01", new_master)
    assert path.read_bytes() == before
    assert read_staging_frame(path, "sch01", keys=DataKeyStore(home.root, new_master)).equals(frame())
    with pytest.raises(EncryptionError, match="cannot be unwrapped"):
        read_staging_frame(path, "sch01", keys=store(home, MASTER))


def test_a_second_writer_reuses_the_first_data_key(home):
    first, second = store(home), store(home)
    first.data_key("sch01", create=True)
    second._create("sch01")  # a racing creator loses the link and keeps the first key
    assert first.data_key("sch01") == second.data_key("sch01")


def test_school_ids_cannot_escape_the_key_store(home):
    with pytest.raises(EncryptionError, match="cannot name a data key"):
        datakey_path(home.root, "../evil")


def test_datakeys_command_shows_shreds_and_rewraps_without_printing_keys(home, tmp_path):
    from typer.testing import CliRunner

    from pipelines.commands.datakeys import app

    path = home.staging_file("usage", "sch01")
    write_staging_frame(path, frame(), "sch01")
    runner = CliRunner()
    shown = runner.invoke(app, ["status", "--home", str(home.root)])
    assert shown.exit_code == 0 and "sch01" in shown.stdout and MASTER not in shown.stdout
    new_key = tmp_path / "new-master.key"
    new_key.write_text(OTHER_MASTER)
    assert (
        runner.invoke(app, ["rewrap", "--home", str(home.root), "--new-key-file", str(new_key)]).exit_code
        == 0
    )
    assert read_staging_frame(path, "sch01", keys=store(home, OTHER_MASTER)).equals(frame())
    assert runner.invoke(app, ["shred", "sch01", "--home", str(home.root)]).exit_code == 1  # needs --yes
    cached = home.derived / "school=sch01" / "usage.0123.parquet"  # what a release derived from it
    write_staging_frame(cached, frame(), "sch01", keys=store(home, OTHER_MASTER))
    assert runner.invoke(app, ["shred", "sch01", "--home", str(home.root), "--yes"]).exit_code == 0
    assert not datakey_path(home.root, "sch01").exists() and not path.exists()  # unreadable: removed
    assert not cached.exists()


def test_an_all_digit_key_id_is_still_shredded_and_audited(home, monkeypatch):
    """A bare hex key id is all digits about once in 1,850 keys; the audit log refuses long digit
    strings, so such a shred once destroyed the key and then failed to log it."""
    monkeypatch.setattr(secrets, "token_hex", lambda n: "8371127284785808")
    write_staging_frame(home.staging_file("students", "sch01"), frame(), "sch01")
    assert store(home).info("sch01").key_id == "dk-8371127284785808"
    # A key written by an older version, whose ids had no prefix: logged with the prefix.
    monkeypatch.setattr(encryption, "new_key_id", lambda: "8371127284785809")
    write_staging_frame(home.staging_file("students", "sch02"), frame(), "sch02")
    assert store(home).info("sch02").key_id == "8371127284785809"
    audit = AuditLog.for_home(home.root, actor="test")

    assert shred_school_key(home, "sch01", audit) and shred_school_key(home, "sch02", audit)

    entries = [json.loads(line) for line in home.audit_log.read_text().splitlines()]
    logged = [e["object"]["key_id"] for e in entries if e["action"] == "data_key_shredded"]
    assert logged == ["dk-8371127284785808", "dk-8371127284785809"]
    assert verify(home.audit_log).ok


def test_a_shred_the_log_would_refuse_leaves_the_key(home):
    write_staging_frame(home.staging_file("students", "sch01"), frame(), "sch01")
    audit = AuditLog.for_home(home.root, actor="test")
    with pytest.raises(UnsafeAuditObject, match="email"):
        shred_school_key(home, "sch01", audit, reason="asked by jane.doe@example.org")
    assert datakey_path(home.root, "sch01").exists()
    assert read_staging_frame(home.staging_file("students", "sch01"), "sch01").equals(frame())


def test_a_wrong_master_key_is_named_with_both_fingerprints_and_lists_every_school(home):
    for school in ("sch01", "sch02"):
        write_staging_frame(home.staging_file("comments", school), frame(), school)
    right, wrong = store(home), store(home, OTHER_MASTER)
    assert right.unwrap_problems() == {}
    with pytest.raises(WrongMasterKey) as refused:
        wrong.check_master("sch01")
    message = str(refused.value)
    assert right._master.fingerprint in message and wrong._master.fingerprint in message
    assert "probably the wrong key" in message
    wrapped_by = f"wrapped by master key {right._master.fingerprint}"
    assert wrong.unwrap_problems() == {"sch01": wrapped_by, "sch02": wrapped_by}
    datakey_path(home.root, "sch02").write_text("{not json")
    assert right.unwrap_problems() == {"sch02": "its key file is damaged"}


def test_a_wrong_master_key_never_creates_a_data_key_for_a_new_school(home):
    write_staging_frame(home.staging_file("comments", "sch01"), frame(), "sch01")
    wrong = store(home, OTHER_MASTER)
    with pytest.raises(WrongMasterKey):
        wrong.check_master("sch02")
    with pytest.raises(WrongMasterKey):  # what intake would call: refused before a key exists
        write_staging_frame(home.staging_file("comments", "sch02"), frame(), "sch02", keys=wrong)
    assert not datakey_path(home.root, "sch02").exists()
    store(home).check_master("sch02")  # the right key may create it
    write_staging_frame(home.staging_file("comments", "sch02"), frame(), "sch02")
    assert read_staging_frame(home.staging_file("comments", "sch02"), "sch02").equals(frame())


def test_a_rewrap_that_stopped_half_way_is_finished_by_running_it_again(home):
    for school in ("sch01", "sch02"):
        write_staging_frame(home.staging_file("usage", school), frame(), school)
    new_master = MasterKey(OTHER_MASTER.encode())
    store(home).rewrap("sch01", new_master)  # ...and the rotation stopped here
    assert set(store(home).unwrap_problems()) == {"sch01"}  # a mixed store: named, not guessed
    for school in ("sch01", "sch02"):  # run again, from the old key
        store(home).rewrap(school, new_master)
    assert DataKeyStore(home.root, new_master).unwrap_problems() == {}


def test_a_home_given_as_a_path_is_shredded_too_not_looked_up_under_slash(home):
    write_staging_frame(home.staging_file("usage", "sch01"), frame(), "sch01")
    assert shred_school_key(home.root, "sch01")  # Path.root is "/": the key must still be found
    assert not datakey_path(home.root, "sch01").exists()
