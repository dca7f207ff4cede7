"""The audit log: every kind of tampering is caught and named at the first bad entry."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from privacy.audit_log import (
    GENESIS_PREV,
    AuditAction,
    AuditLog,
    AuditLogError,
    ProblemKind,
    TornTailError,
    UnsafeAuditObject,
    audit_log_path,
    canonical_json,
    entry_hash,
    generate_signing_keypair,
    head_path,
    line_digest,
    read_entries,
    sign_head,
    verify,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class FixedClock:
    """A clock that ticks one second per call, so entries are reproducible."""

    def __init__(self) -> None:
        self.now = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _write_log(home: Path, count: int) -> Path:
    log = AuditLog.for_home(home, actor="run-42", clock=FixedClock())
    for index in range(count):
        log.append("received", school_id="S01", dataset="usage", file=f"usage_{index}.csv", rows=index)
    return log.path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _keys(tmp_path: Path, name: str = "signing") -> tuple[Path, Path]:
    private, public = tmp_path / "keys" / f"{name}.pem", tmp_path / "keys" / f"{name}.pub"
    generate_signing_keypair(private, public)
    return private, public


# --- format ---------------------------------------------------------------------------------


def test_entries_are_chained_canonical_json_lines(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 3)
    assert path == audit_log_path(tmp_path) == tmp_path / "audit" / "audit.jsonl"
    raw_lines = _lines(path)
    entries = [json.loads(line) for line in raw_lines]
    assert [entry["seq"] for entry in entries] == [0, 1, 2]
    assert entries[0]["prev"] == GENESIS_PREV
    assert entries[0]["time"] == "2025-09-01T08:00:01.000000Z"
    assert entries[0]["actor"] == "run-42" and entries[0]["action"] == "received"
    assert entries[0]["object"] == {"school_id": "S01", "dataset": "usage", "file": "usage_0.csv", "rows": 0}
    for previous, entry, raw in zip([None, *entries], entries, raw_lines, strict=False):
        assert raw == canonical_json(entry) + "\n"
        assert entry["hash"] == entry_hash(entry)
        if previous is not None:
            assert entry["prev"] == line_digest(previous)
    assert read_entries(path) == entries


def test_log_and_its_folder_are_owner_only(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_clean_log_of_1000_entries_verifies(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 1000)
    report = verify(path)
    assert report.ok, report.summary()
    assert report.entries == 1000
    assert report.first_bad_line is None and report.problem is None
    assert report.head_signed is False


def test_reopened_log_continues_the_chain(tmp_path: Path) -> None:
    _write_log(tmp_path, 2)
    entry = AuditLog.for_home(tmp_path, actor="impact retention").append(
        AuditAction.RETENTION_RUN, deleted_count=3
    )
    assert entry["seq"] == 2
    assert verify(audit_log_path(tmp_path)).ok


# --- what may be logged ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"reason": "student jane.doe@example.org has no consent"},
        {"reasons": ["missing column", "contact: a.b@school.k12.us"]},
        {"note": "mailto:someone"},
        {"note": "x" * 500},
        {"reasons": ["ok", "y" * 201]},
        {"student_id": "S1-0042"},
        {"given_name": "Jane"},
        {"note": "123456"},
        {"note": {"nested": "dict"}},
        {"file": Path("usage.csv")},
        {"rows": "12"},
        {"n_students": "Jane Doe"},
        {"Weird-Key": 1},
        {"rows": float("nan")},
    ],
)
def test_unsafe_objects_are_refused_and_nothing_is_written(tmp_path: Path, fields: dict) -> None:
    log = AuditLog.for_home(tmp_path, actor="run-1")
    with pytest.raises(UnsafeAuditObject):
        log.append("quarantined", **fields)
    assert not log.path.exists() or log.path.read_bytes() == b""


def test_safe_objects_are_accepted(tmp_path: Path) -> None:
    log = AuditLog.for_home(tmp_path, actor="impact ingest")
    entry = log.append(
        "quarantined",
        school_id="S03",
        file="roster_2025-09-01.csv",
        sha256="ab" * 32,
        reasons=["no contract covers roster", "missing column grade"],
        n_students=412,
        suppressed_cells=7,
        contract_version="1.2.0",
        received_at="2025-09-01",
        note=None,
    )
    assert entry["object"]["n_students"] == 412


def test_unknown_action_and_unsafe_actor_are_refused(tmp_path: Path) -> None:
    log = AuditLog.for_home(tmp_path, actor="run-1")
    with pytest.raises(ValueError, match="unknown audit action"):
        log.append("exfiltrated", school_id="S01")
    with pytest.raises(UnsafeAuditObject):
        AuditLog.for_home(tmp_path, actor="officer@district.org")


# --- tampering ------------------------------------------------------------------------------


def _tamper(path: Path, edit) -> None:
    lines = _lines(path)
    path.write_text("".join(edit(lines)), encoding="utf-8")


def _assert_fails_at(path: Path, kind: ProblemKind, line: int | None, seq: int | None, **verify_kwargs):
    report = verify(path, **verify_kwargs)
    assert not report.ok, report.summary()
    assert report.kind is kind, report.summary()
    assert (report.first_bad_line, report.first_bad_seq) == (line, seq), report.summary()
    assert report.problem
    return report


def test_edited_field_is_named(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 10)

    def edit(lines: list[str]) -> list[str]:
        entry = json.loads(lines[4])
        entry["object"]["rows"] = 999
        lines[4] = canonical_json(entry) + "\n"
        return lines

    _tamper(path, edit)
    report = _assert_fails_at(path, ProblemKind.EDITED, line=5, seq=4)
    assert "seq 4" in report.summary() and "line 5" in report.summary()


def test_whitespace_only_edit_is_caught(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 5)
    _tamper(path, lambda lines: [*lines[:2], json.dumps(json.loads(lines[2])) + "\n", *lines[3:]])
    _assert_fails_at(path, ProblemKind.EDITED, line=3, seq=2)


def test_deleted_middle_line_is_named(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 10)
    _tamper(path, lambda lines: lines[:5] + lines[6:])
    report = _assert_fails_at(path, ProblemKind.DELETED, line=6, seq=6)
    assert "seq 5 missing" in report.problem


def test_swapped_lines_are_named(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 10)

    def swap(lines: list[str]) -> list[str]:
        lines[3], lines[4] = lines[4], lines[3]
        return lines

    _tamper(path, swap)
    _assert_fails_at(path, ProblemKind.REORDERED, line=4, seq=4)


def test_replaced_line_with_renumbered_seq_breaks_the_link(tmp_path: Path) -> None:
    """Delete a line and re-hash the next entry as if it were the missing seq: prev gives it away."""
    path = _write_log(tmp_path, 6)

    def splice(lines: list[str]) -> list[str]:
        entry = json.loads(lines[3])
        entry["seq"] = 2
        entry["hash"] = entry_hash(entry)
        return [*lines[:2], canonical_json(entry) + "\n"]

    _tamper(path, splice)
    _assert_fails_at(path, ProblemKind.BROKEN_LINK, line=3, seq=2)


def test_duplicated_line_is_named(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 4)
    _tamper(path, lambda lines: [*lines[:3], lines[1], *lines[3:]])
    _assert_fails_at(path, ProblemKind.DUPLICATED, line=4, seq=1)


def test_malformed_line_is_named(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 4)
    _tamper(path, lambda lines: [lines[0], "not json\n", *lines[2:]])
    _assert_fails_at(path, ProblemKind.MALFORMED, line=2, seq=None)


def test_truncated_tail_without_a_signed_head_goes_unnoticed(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 10)
    _tamper(path, lambda lines: lines[:7])
    report = verify(path)
    assert report.ok and report.entries == 7  # the documented limit of an unsigned chain
    assert any("truncation" in note for note in report.notes)


def test_truncated_tail_with_a_signed_head_is_named(tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    path = _write_log(tmp_path, 10)
    sign_head(path, private)
    _tamper(path, lambda lines: lines[:7])
    report = _assert_fails_at(path, ProblemKind.TRUNCATED, line=8, seq=7, public_key=public)
    assert "seq 9" in report.problem and "3 entries" in report.problem
    # Even without the public key, the head's seq betrays the truncation.
    _assert_fails_at(path, ProblemKind.TRUNCATED, line=8, seq=7)


def test_rewritten_chain_is_only_caught_by_the_signed_head(tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    path = _write_log(tmp_path, 6)
    sign_head(path, private)

    def rewrite(lines: list[str]) -> list[str]:
        """An attacker who edits entry 2 and recomputes every later hash and prev."""
        entries = [json.loads(line) for line in lines]
        entries[2]["object"]["rows"] = 999
        for index in range(2, len(entries)):
            entries[index]["prev"] = line_digest(entries[index - 1])
            entries[index]["hash"] = entry_hash(entries[index])
        return [canonical_json(entry) + "\n" for entry in entries]

    _tamper(path, rewrite)
    _assert_fails_at(path, ProblemKind.REWRITTEN, line=6, seq=5, public_key=public)
    head_path(path).unlink()
    assert verify(path).ok  # without the head, a full rewrite is undetectable


def test_signed_head_verifies_and_later_appends_still_verify(tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    path = _write_log(tmp_path, 5)
    head_file = sign_head(path, private)
    assert head_file == tmp_path / "audit" / "head.sig.json"
    head = json.loads(head_file.read_text())
    assert {"seq", "hash", "signature", "public_key_fingerprint"} <= set(head)
    assert head["seq"] == 4
    AuditLog(path, actor="run-43").append("published", table="usage_by_grade", rows=12)
    report = verify(path, public_key=public)
    assert report.ok and report.head_signed and report.head_seq == 4 and report.entries == 6


def test_head_signed_with_another_key_is_forged(tmp_path: Path) -> None:
    _, public = _keys(tmp_path, "officer")
    attacker_private, _ = _keys(tmp_path, "attacker")
    path = _write_log(tmp_path, 5)
    sign_head(path, attacker_private)
    report = _assert_fails_at(path, ProblemKind.FORGED_HEAD, line=None, seq=4, public_key=public)
    assert "different key" in report.problem


def test_head_with_the_right_fingerprint_but_a_foreign_signature_is_forged(tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    path = _write_log(tmp_path, 5)
    sign_head(path, private)
    head_file = head_path(path)
    head = json.loads(head_file.read_text())
    _tamper(path, lambda lines: lines[:3])
    # The attacker moves the head back to the new end and signs it with their own key.
    head["seq"], head["hash"] = 2, json.loads(_lines(path)[2])["hash"]
    forged_signature = Ed25519PrivateKey.generate().sign(b"anything")
    head["signature"] = base64.b64encode(forged_signature).decode()
    head_file.write_text(json.dumps(head))
    _assert_fails_at(path, ProblemKind.FORGED_HEAD, line=None, seq=2, public_key=public)


def test_missing_head_with_a_public_key_fails(tmp_path: Path) -> None:
    _, public = _keys(tmp_path)
    path = _write_log(tmp_path, 3)
    _assert_fails_at(path, ProblemKind.MISSING_HEAD, line=None, seq=None, public_key=public)


def test_sign_head_refuses_a_tampered_log(tmp_path: Path) -> None:
    private, _ = _keys(tmp_path)
    path = _write_log(tmp_path, 4)
    _tamper(path, lambda lines: [lines[0], *lines[2:]])
    with pytest.raises(AuditLogError, match="does not verify"):
        sign_head(path, private)
    assert not head_path(path).exists()


def test_keypair_files_and_refusal_to_overwrite(tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(FileExistsError):
        generate_signing_keypair(private, public)


def test_missing_log_is_reported(tmp_path: Path) -> None:
    report = verify(tmp_path / "audit" / "audit.jsonl")
    assert not report.ok and report.kind is ProblemKind.MISSING


# --- torn tail and repair -------------------------------------------------------------------


def test_torn_last_line_is_named_blocks_appends_and_is_repaired(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 5)
    full_line = _lines(path)[-1]
    with path.open("ab") as handle:  # a crash after half of an append's bytes reached the disk
        handle.write(full_line.replace('"seq":4', '"seq":5')[:60].encode())
    _assert_fails_at(path, ProblemKind.TORN, line=6, seq=None)

    log = AuditLog(path, actor="run-44")
    assert log.has_torn_tail
    with pytest.raises(TornTailError):
        log.append("received", school_id="S01")

    torn_file = log.repair_torn_tail()
    assert torn_file == path.with_name("audit.jsonl.torn-1")
    assert torn_file.read_bytes() == full_line.replace('"seq":4', '"seq":5')[:60].encode()
    assert not log.has_torn_tail
    repaired = read_entries(path)[-1]
    assert repaired["action"] == "repaired" and repaired["seq"] == 5
    assert repaired["object"]["torn_file"] == "audit.jsonl.torn-1"
    log.append("received", school_id="S01")
    report = verify(path)
    assert report.ok and report.entries == 7
    assert log.repair_torn_tail() is None  # nothing left to repair


def test_torn_line_with_a_readable_seq_names_it(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 2)
    with path.open("ab") as handle:
        handle.write(b'{"action":"received","actor":"run-42","hash":"ab","object":{},"prev":"c","seq":2')
    _assert_fails_at(path, ProblemKind.TORN, line=3, seq=2)


def test_a_second_repair_gets_a_new_torn_file(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 1)
    log = AuditLog(path, actor="run-1")
    for expected in ("audit.jsonl.torn-1", "audit.jsonl.torn-2"):
        with path.open("ab") as handle:
            handle.write(b'{"seq":')
        assert log.repair_torn_tail().name == expected
    assert verify(path).ok


# --- concurrency and crashes ----------------------------------------------------------------

APPENDS_PER_WORKER = 50


def _append_many(path: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    log = AuditLog(path, actor=f"worker-{worker}")
    start.wait()
    for index in range(APPENDS_PER_WORKER):
        log.append("staged", school_id=f"S0{worker}", rows=index)


def test_four_processes_appending_at_once_keep_one_valid_chain(tmp_path: Path) -> None:
    path = audit_log_path(tmp_path)
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_append_many, args=(str(path), w, start)) for w in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    report = verify(path)
    assert report.ok, report.summary()
    assert report.entries == 4 * APPENDS_PER_WORKER
    written = {(entry["actor"], entry["object"]["rows"]) for entry in read_entries(path)}
    expected = {(f"worker-{w}", i) for w in range(4) for i in range(APPENDS_PER_WORKER)}
    assert written == expected


_APPEND_FOREVER = """
import sys
from privacy.audit_log import AuditLog
log = AuditLog(sys.argv[1], actor="crash-test")
index = 0
while True:
    log.append("received", school_id="S01", note="x" * 150, rows=index)
    index += 1
"""


def test_sigkill_while_appending_leaves_a_log_that_verifies_or_is_repairable(tmp_path: Path) -> None:
    path = audit_log_path(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-c", _APPEND_FOREVER, str(path)], env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < 40_000):
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert path.stat().st_size >= 40_000, "the appender never got going"

    report = verify(path)
    if not report.ok:
        assert report.kind is ProblemKind.TORN, report.summary()
        assert AuditLog(path, actor="recovery").repair_torn_tail() is not None
    log = AuditLog(path, actor="after-crash")
    log.append("verified", entries=report.entries)
    after = verify(path)
    assert after.ok, after.summary()
    assert after.entries >= report.entries + 1
