"""The tamper-evident audit log: append-only, hash-chained JSON lines at ``<home>/audit/audit.jsonl``.

Each line is the canonical JSON of one entry::

    {"action":..,"actor":..,"hash":..,"object":{..},"prev":..,"seq":..,"time":..}

``hash`` is SHA-256 of the entry's canonical JSON without ``hash``; ``prev`` is SHA-256 of the
previous line (its canonical JSON, ``hash`` included); the genesis entry's ``prev`` is 64 zeros.
Editing, deleting or reordering a line breaks the chain where it happened. Cutting lines off the
end, or rewriting the whole chain, is only detectable against a head kept outside the log: a
signed head (``sign_head``), whose Ed25519 signature names the last entry's seq and hash, or the
head each published manifest records (``HeadAnchor``, ``privacy.audit_anchors``).

The log must never hold a raw identifier or a data value: ``object`` accepts only scalars (or
lists of scalars) under known keys, and refuses email-like strings and long strings.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from privacy.atomic import atomic_write_bytes, atomic_write_text, fsync_directory

GENESIS_PREV = "0" * 64
LOG_RELATIVE_PATH = Path("audit") / "audit.jsonl"
HEAD_FILE_NAME = "head.sig.json"
# Signed bytes start with a fixed label so a head signature can never be replayed as another message.
_HEAD_SIGNATURE_LABEL = b"impact-audit-head-v1\n"
_ENTRY_FIELDS = frozenset({"seq", "time", "actor", "action", "object", "prev", "hash"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AuditAction(StrEnum):
    """Everything the log may record. Unknown actions are refused at append time."""

    RECEIVED = "received"
    QUARANTINED = "quarantined"
    VALIDATED = "validated"
    STAGED = "staged"
    PUBLISHED = "published"
    DELETED = "deleted"
    KEY_ROTATED = "key_rotated"
    CONTRACT_LOADED = "contract_loaded"
    CONTRACT_REJECTED = "contract_rejected"
    RETENTION_RUN = "retention_run"
    OPT_OUT_APPLIED = "opt_out_applied"
    DATA_KEY_SHREDDED = "data_key_shredded"
    VERIFIED = "verified"
    REPAIRED = "repaired"
    RUN_STARTED = "run_started"
    RUN_FINISHED = "run_finished"


class ProblemKind(StrEnum):
    """What ``verify`` found wrong, in the words a data officer reads."""

    MISSING = "missing log"
    MALFORMED = "malformed line"
    EDITED = "edited line"
    DELETED = "deleted line"
    REORDERED = "reordered lines"
    DUPLICATED = "duplicated seq"
    BROKEN_LINK = "broken link"
    TORN = "torn line"
    TRUNCATED = "truncated tail"
    REWRITTEN = "rewritten chain"
    FORGED_HEAD = "forged head"
    MISSING_HEAD = "missing head"


class AuditLogError(Exception):
    """The log cannot be appended to as it is."""


class TornTailError(AuditLogError):
    """The last line has no newline (a crash mid-append); call ``repair_torn_tail()`` first."""


class UnsafeAuditObject(ValueError):
    """An ``object`` field that could carry a raw identifier or a data value."""


# --- what an entry's object may hold -------------------------------------------------------

ALLOWED_OBJECT_KEYS = frozenset(
    {
        "school_id", "school_ids", "dataset", "datasets", "file", "files", "file_name", "path",
        "sha256", "digest", "bytes", "rows", "rows_in", "rows_out", "row_count", "count",
        "reason", "reasons", "contract_id", "contract_version", "valid_until", "key_version",
        "key_id", "old_key_version", "new_key_version", "table", "tables", "partition",
        "run_id", "stage", "status", "ok", "entries", "head_seq", "retention_rule", "kind",
        "torn_file", "note", "cells", "purpose", "term", "week", "since", "until", "problem",
    }
)  # fmt: skip
# Counts may be named freely (n_students, suppressed_cells) because their values must be numbers.
NUMERIC_KEYS = frozenset(
    {"bytes", "rows", "rows_in", "rows_out", "row_count", "count", "entries", "head_seq"}
)
NUMERIC_KEY_PATTERN = re.compile(r"^(n_[a-z0-9_]+|[a-z0-9_]+_(count|rows|bytes|cells|seconds))$")
# Digests, versions, dates and flags under a descriptive prefix are safe by construction.
SAFE_KEY_PATTERNS = (re.compile(r"^[a-z0-9_]+_(sha256|digest|version|date|at|ok)$"),)
# ...unless the name says it is about a person.
_PERSONAL_KEY_FRAGMENTS = (
    "student", "pid", "email", "mail", "name", "birth", "postcode", "address", "phone", "text",
    "comment", "teacher",
)  # fmt: skip
_KEY_SHAPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+|mailto:", re.IGNORECASE)
# A bare run of 6+ digits is how student and state IDs look; counts belong in ints, not strings.
_DIGIT_IDENTIFIER = re.compile(r"^\d{6,}$")
MAX_VALUE_CHARS = 200
MAX_LIST_ITEMS = 1000


def _is_numeric_key(key: str) -> bool:
    return key in NUMERIC_KEYS or bool(NUMERIC_KEY_PATTERN.match(key))


def _is_allowed_key(key: str) -> bool:
    if key in ALLOWED_OBJECT_KEYS or _is_numeric_key(key):
        return True
    if not _KEY_SHAPE.match(key) or any(fragment in key for fragment in _PERSONAL_KEY_FRAGMENTS):
        return False
    return any(pattern.match(key) for pattern in SAFE_KEY_PATTERNS)


def _check_number(key: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise UnsafeAuditObject(f"{key}: a count must be a number (got {type(value).__name__})")


def _check_scalar(key: str, value: Any) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeAuditObject(f"{key}: non-finite number")
        return
    if not isinstance(value, str):
        raise UnsafeAuditObject(f"{key}: only str, int, float, bool or None (got {type(value).__name__})")
    if len(value) > MAX_VALUE_CHARS:
        raise UnsafeAuditObject(f"{key}: value longer than {MAX_VALUE_CHARS} characters")
    if _EMAIL_LIKE.search(value):
        raise UnsafeAuditObject(f"{key}: value looks like an email address")
    if _DIGIT_IDENTIFIER.match(value):
        raise UnsafeAuditObject(f"{key}: value looks like a raw identifier (a long digit string)")


def validate_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj`` (lists as lists) if every key is allowed and every value is safe to log."""
    for key, value in obj.items():
        if not _is_allowed_key(key):
            raise UnsafeAuditObject(f"{key!r} is not an allowed audit object key")
        items = value if isinstance(value, list | tuple) else [value]
        if len(items) > MAX_LIST_ITEMS:
            raise UnsafeAuditObject(f"{key}: more than {MAX_LIST_ITEMS} items")
        for item in items:
            if _is_numeric_key(key):
                _check_number(key, item)
            _check_scalar(key, item)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in obj.items()}


def _validate_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor:
        raise UnsafeAuditObject("actor must be a non-empty string (a run id or CLI command)")
    _check_scalar("actor", actor)
    return actor


# --- canonical form and hashing ------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """The one serialization that is hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of the entry's canonical JSON without its ``hash`` field."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return _sha256_hex(canonical_json(body).encode("utf-8"))


def line_digest(entry: dict[str, Any]) -> str:
    """What the next entry's ``prev`` must be: SHA-256 of this entry's full canonical line."""
    return _sha256_hex(canonical_json(entry).encode("utf-8"))


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the audit clock must return a timezone-aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def audit_log_path(home: str | os.PathLike[str]) -> Path:
    """Where a home folder's audit log lives."""
    return Path(home) / LOG_RELATIVE_PATH


def head_path(log_path: str | os.PathLike[str]) -> Path:
    """Where the signed head of ``log_path`` lives (next to the log)."""
    return Path(log_path).parent / HEAD_FILE_NAME


# --- locking and reading the tail ----------------------------------------------------------


@contextmanager
def _locked_log(log_path: Path, exclusive: bool) -> Iterator[int]:
    """Open the log and hold a process-level flock on it for the block.

    Exclusive: read-write, O_APPEND, created if missing (writers). Shared: read-only (readers).
    """
    created = exclusive and not log_path.exists()
    if created:
        log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the audit zone is restricted
    # Readers open read-only so a data officer can verify a log they may not write.
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT if exclusive else os.O_RDONLY
    fd = os.open(log_path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        if created:
            fsync_directory(log_path.parent)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _last_newline_before(fd: int, end: int, chunk: int = 65536) -> int:
    """Offset of the last b"\\n" in [0, end), or -1."""
    position = end
    while position > 0:
        start = max(0, position - chunk)
        block = os.pread(fd, position - start, start)
        found = block.rfind(b"\n")
        if found >= 0:
            return start + found
        position = start
    return -1


@dataclass(frozen=True)
class _Tail:
    last_line: bytes | None  # the last complete line without its newline; None for an empty log
    torn: bytes  # bytes after the last newline (empty when the tail is clean)
    complete_size: int  # file size up to and including the last newline


def _read_tail(fd: int) -> _Tail:
    size = os.fstat(fd).st_size
    last_newline = _last_newline_before(fd, size)
    complete_size = last_newline + 1
    torn = os.pread(fd, size - complete_size, complete_size) if size > complete_size else b""
    if last_newline < 0:
        return _Tail(None, torn, 0)
    previous_newline = _last_newline_before(fd, last_newline)
    start = previous_newline + 1
    return _Tail(os.pread(fd, last_newline - start, start), torn, complete_size)


def _parse_last_entry(line: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError as error:
        raise AuditLogError(f"the last line of the audit log is not JSON ({error}); run verify") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
        raise AuditLogError("the last line of the audit log is not an audit entry; run verify")
    return entry


def _write_all(fd: int, data: bytes) -> None:
    """One write() per line; a short write (disk full) is finished while we still hold the lock."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --- appending -----------------------------------------------------------------------------


class AuditLog:
    """Appends hash-chained entries to one audit log, safely across threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        actor: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self.actor = _validate_actor(actor)
        self._clock = clock

    @classmethod
    def for_home(cls, home: str | os.PathLike[str], actor: str, **kwargs: Any) -> AuditLog:
        return cls(audit_log_path(home), actor, **kwargs)

    @property
    def has_torn_tail(self) -> bool:
        """True when the last line has no newline; appends are refused until it is repaired."""
        if not self.path.exists():
            return False
        with _locked_log(self.path, exclusive=False) as fd:
            return bool(_read_tail(fd).torn)

    def append(self, action: AuditAction | str, **object_fields: Any) -> dict[str, Any]:
        """Append one entry (validated, chained, fsync'ed) and return it."""
        checked_action = _known_action(action)
        checked_object = validate_object(object_fields)
        with _locked_log(self.path, exclusive=True) as fd:
            tail = _read_tail(fd)
            if tail.torn:
                raise TornTailError(
                    f"{self.path} ends with a torn line ({len(tail.torn)} bytes without a newline);"
                    " call repair_torn_tail() before appending"
                )
            return self._append_locked(fd, tail, checked_action, checked_object)

    def _append_locked(
        self, fd: int, tail: _Tail, action: AuditAction, obj: dict[str, Any]
    ) -> dict[str, Any]:
        if tail.last_line is None:
            seq, prev = 0, GENESIS_PREV
        else:
            previous = _parse_last_entry(tail.last_line)
            seq, prev = previous["seq"] + 1, line_digest(previous)
        entry: dict[str, Any] = {
            "seq": seq,
            "time": _iso_utc(self._clock()),
            "actor": self.actor,
            "action": str(action),
            "object": obj,
            "prev": prev,
        }
        entry["hash"] = entry_hash(entry)
        _write_all(fd, (canonical_json(entry) + "\n").encode("utf-8"))
        os.fsync(fd)
        return entry

    def repair_torn_tail(self) -> Path | None:
        """Move a torn last line to ``audit.jsonl.torn-<n>`` and record a ``repaired`` entry.

        Returns the file holding the torn bytes, or None when the tail was clean. The torn bytes
        are saved before the log is cut, so a crash during repair loses nothing.
        """
        with _locked_log(self.path, exclusive=True) as fd:
            tail = _read_tail(fd)
            if not tail.torn:
                return None
            torn_file = _next_torn_path(self.path)
            atomic_write_bytes(torn_file, tail.torn, mode=0o600)
            os.ftruncate(fd, tail.complete_size)
            os.fsync(fd)
            clean_tail = _read_tail(fd)
            self._append_locked(
                fd,
                clean_tail,
                AuditAction.REPAIRED,
                validate_object(
                    {
                        "torn_file": torn_file.name,
                        "bytes": len(tail.torn),
                        "sha256": _sha256_hex(tail.torn),
                    }
                ),
            )
            return torn_file


def _known_action(action: AuditAction | str) -> AuditAction:
    try:
        return AuditAction(action)
    except ValueError:
        known = ", ".join(sorted(member.value for member in AuditAction))
        raise ValueError(f"unknown audit action {action!r}; known: {known}") from None


def _next_torn_path(log_path: Path) -> Path:
    number = 1
    while (candidate := log_path.with_name(f"{log_path.name}.torn-{number}")).exists():
        number += 1
    return candidate


def read_entries(log_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete entry, in file order (no verification: call ``verify`` for that)."""
    path = Path(log_path)
    if not path.exists():
        return []
    with _locked_log(path, exclusive=False) as fd:
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0)
    complete = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.split(b"\n") if line]


# --- signing the head ----------------------------------------------------------------------


def public_key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 hex of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _sha256_hex(raw)


def generate_signing_keypair(
    private_path: str | os.PathLike[str], public_path: str | os.PathLike[str], *, overwrite: bool = False
) -> str:
    """Write a new Ed25519 key pair as PEM (private 0600, public 0644); return its fingerprint."""
    private_target = Path(private_path)
    if private_target.exists() and not overwrite:
        raise FileExistsError(f"{private_target} exists; refusing to replace a signing key")
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    atomic_write_bytes(private_target, private_pem, mode=0o600)
    atomic_write_bytes(public_path, public_pem, mode=0o644)
    return public_key_fingerprint(private_key.public_key())


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def _head_message(seq: int, entry_hash_hex: str, signed_at: str) -> bytes:
    body = canonical_json({"hash": entry_hash_hex, "seq": seq, "signed_at": signed_at})
    return _HEAD_SIGNATURE_LABEL + body.encode("utf-8")


def sign_head(
    log_path: str | os.PathLike[str],
    private_key: Ed25519PrivateKey | str | os.PathLike[str],
    clock: Callable[[], datetime] = utc_now,
) -> Path:
    """Sign the last entry's seq and hash into ``audit/head.sig.json`` (written atomically).

    Refuses to sign a log that does not verify, so a signature never blesses tampering.
    """
    key = private_key if isinstance(private_key, Ed25519PrivateKey) else load_private_key(private_key)
    path = Path(log_path)
    if not path.is_file():
        raise AuditLogError(f"no audit log at {path}")
    with _locked_log(path, exclusive=True) as fd:  # exclusive: no append between verify and sign
        report = _verify_locked(path, fd, public_key=None)
        if not report.ok:
            raise AuditLogError(f"refusing to sign a log that does not verify: {report.problem}")
        tail = _read_tail(fd)
        if tail.last_line is None:
            raise AuditLogError("refusing to sign an empty log")
        last = _parse_last_entry(tail.last_line)
        signed_at = _iso_utc(clock())
        signature = key.sign(_head_message(last["seq"], last["hash"], signed_at))
        head = {
            "algorithm": "ed25519",
            "seq": last["seq"],
            "hash": last["hash"],
            "signed_at": signed_at,
            "signature": base64.b64encode(signature).decode("ascii"),
            "public_key_fingerprint": public_key_fingerprint(key.public_key()),
        }
        target = head_path(path)
        atomic_write_text(target, json.dumps(head, indent=2, sort_keys=True) + "\n", mode=0o644)
    return target


# --- verification --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    """The result of ``verify``: ``ok`` or exactly where and how the log first goes wrong."""

    ok: bool
    entries: int
    first_bad_line: int | None = None  # 1-based line number in audit.jsonl
    first_bad_seq: int | None = None
    problem: str | None = None  # words for a person
    kind: ProblemKind | None = None
    head_signed: bool = False  # a head signature was checked against the given public key
    head_seq: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    anchored: tuple[str, ...] = field(default_factory=tuple)  # heads recorded elsewhere, found intact

    def summary(self) -> str:
        head = f", signed head at seq {self.head_seq}" if self.head_signed else ", head not signed"
        if self.anchored:
            head += ", " + "; ".join(self.anchored)
        if self.ok:
            return f"OK: {self.entries} entries verify{head}"
        where = []
        if self.first_bad_line is not None:
            where.append(f"line {self.first_bad_line}")
        if self.first_bad_seq is not None:
            where.append(f"seq {self.first_bad_seq}")
        location = f" at {', '.join(where)}" if where else ""
        return f"FAILED ({self.kind}){location}: {self.problem}"


class _ChainBreak(Exception):
    def __init__(self, kind: ProblemKind, line: int | None, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.kind, self.line, self.seq, self.problem = kind, line, seq, problem


def verify(
    log_path: str | os.PathLike[str],
    public_key: str | os.PathLike[str] | None = None,
    anchors: Sequence[HeadAnchor] = (),
) -> VerifyReport:
    """Check the whole chain (and the signed head, if any, and every head recorded elsewhere:
    `anchors`) and name the first bad entry."""
    path = Path(log_path)
    if not path.is_file():
        return VerifyReport(ok=False, entries=0, problem=f"no audit log at {path}", kind=ProblemKind.MISSING)
    with _locked_log(path, exclusive=False) as fd:
        return _verify_locked(path, fd, public_key, anchors)


def _verify_locked(
    path: Path, fd: int, public_key: str | os.PathLike[str] | None, anchors: Sequence[HeadAnchor] = ()
) -> VerifyReport:
    data = os.pread(fd, os.fstat(fd).st_size, 0)
    lines = data.split(b"\n")
    torn = lines.pop()  # bytes after the final newline: empty unless the tail is torn
    try:
        entries = _check_chain(lines)
        if torn:
            _report_torn(len(lines) + 1, torn)
        anchored = tuple(_check_anchor(anchor, entries) for anchor in anchors)
        head_signed, head_seq, notes = _check_head(path, entries, public_key)
    except _ChainBreak as broken:
        return VerifyReport(
            ok=False,
            entries=len(lines),
            first_bad_line=broken.line,
            first_bad_seq=broken.seq,
            problem=broken.problem,
            kind=broken.kind,
        )
    if anchored and not head_signed:  # the recorded heads catch truncation up to the last release
        kept = (n for n in notes if not n.startswith("no signed head"))
        notes = (
            *kept,
            "entries after the last release's `published` entry are covered only by a signed head",
        )
    return VerifyReport(
        ok=True,
        entries=len(entries),
        head_signed=head_signed,
        head_seq=head_seq,
        notes=notes,
        anchored=anchored,
    )


def _report_torn(line_number: int, torn: bytes) -> None:
    seq_match = re.search(rb'"seq":(\d+)', torn)
    raise _ChainBreak(
        ProblemKind.TORN,
        line_number,
        int(seq_match.group(1)) if seq_match else None,
        f"the last line ({len(torn)} bytes) has no newline: an append was cut short by a crash;"
        " repair_torn_tail() moves it aside",
    )


def _parse_line(raw: bytes, line_number: int) -> dict[str, Any]:
    try:
        entry = json.loads(raw)
    except ValueError:
        raise _ChainBreak(ProblemKind.MALFORMED, line_number, None, "line is not valid JSON") from None
    if not isinstance(entry, dict) or set(entry) != _ENTRY_FIELDS:
        raise _ChainBreak(
            ProblemKind.MALFORMED, line_number, None, "line does not have exactly the audit entry fields"
        )
    seq = entry["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise _ChainBreak(ProblemKind.MALFORMED, line_number, None, "seq is not a non-negative integer")
    if not isinstance(entry["hash"], str) or not isinstance(entry["prev"], str):
        raise _ChainBreak(ProblemKind.MALFORMED, line_number, seq, "hash or prev is not a string")
    return entry


def _check_entry_integrity(raw: bytes, entry: dict[str, Any], line_number: int) -> None:
    seq = entry["seq"]
    if entry_hash(entry) != entry["hash"]:
        raise _ChainBreak(
            ProblemKind.EDITED, line_number, seq, f"entry seq {seq} does not match its hash: it was edited"
        )
    if canonical_json(entry).encode("utf-8") != raw:
        raise _ChainBreak(
            ProblemKind.EDITED,
            line_number,
            seq,
            f"entry seq {seq} is not in canonical form: the line was rewritten by hand",
        )


def _check_position(
    entry: dict[str, Any], line_number: int, expected_seq: int, later_seqs: Counter[int], seen: set[int]
) -> None:
    seq = entry["seq"]
    if seq == expected_seq:
        return
    if seq in seen:
        raise _ChainBreak(ProblemKind.DUPLICATED, line_number, seq, f"seq {seq} appears twice")
    if seq < expected_seq or later_seqs[expected_seq] > 0:
        raise _ChainBreak(
            ProblemKind.REORDERED,
            line_number,
            seq,
            f"expected seq {expected_seq} here but found seq {seq}: lines were reordered",
        )
    missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
    raise _ChainBreak(
        ProblemKind.DELETED,
        line_number,
        seq,
        f"seq {missing} missing before seq {seq}: {seq - expected_seq} line(s) deleted",
    )


def _check_chain(lines: list[bytes]) -> list[dict[str, Any]]:
    """Parse and check every complete line; raise _ChainBreak at the first problem."""
    parsed = [_parse_line(raw, number) for number, raw in enumerate(lines, start=1)]
    later_seqs = Counter(entry["seq"] for entry in parsed)  # to tell a reorder from a deletion
    seen: set[int] = set()
    expected_prev = GENESIS_PREV
    for number, (raw, entry) in enumerate(zip(lines, parsed, strict=True), start=1):
        later_seqs[entry["seq"]] -= 1
        _check_entry_integrity(raw, entry, number)
        _check_position(entry, number, number - 1, later_seqs, seen)
        if entry["prev"] != expected_prev:
            raise _ChainBreak(
                ProblemKind.BROKEN_LINK,
                number,
                entry["seq"],
                f"entry seq {entry['seq']} does not link to the line before it:"
                " an earlier line was replaced or the chain was spliced",
            )
        seen.add(entry["seq"])
        expected_prev = line_digest(entry)
    return parsed


def _load_head(path: Path) -> dict[str, Any] | None:
    head_file = head_path(path)
    if not head_file.exists():
        return None
    try:
        head = json.loads(head_file.read_text(encoding="utf-8"))
    except ValueError:
        raise _ChainBreak(
            ProblemKind.FORGED_HEAD, None, None, f"{head_file.name} is not valid JSON"
        ) from None
    required = {"seq", "hash", "signed_at", "signature", "public_key_fingerprint"}
    if not isinstance(head, dict) or not required <= set(head) or not isinstance(head["seq"], int):
        raise _ChainBreak(ProblemKind.FORGED_HEAD, None, None, f"{head_file.name} lacks the head fields")
    return head


def _check_head_signature(head: dict[str, Any], public_key_path: str | os.PathLike[str]) -> None:
    key = load_public_key(public_key_path)
    seq = head["seq"]
    if head["public_key_fingerprint"] != public_key_fingerprint(key):
        raise _ChainBreak(
            ProblemKind.FORGED_HEAD, None, seq, "the head was signed by a different key than the one given"
        )
    try:
        signature = base64.b64decode(head["signature"], validate=True)
        key.verify(signature, _head_message(seq, head["hash"], head["signed_at"]))
    except (InvalidSignature, ValueError, TypeError):
        raise _ChainBreak(
            ProblemKind.FORGED_HEAD, None, seq, "the head signature does not verify: the head was forged"
        ) from None


def _check_head(
    path: Path, entries: list[dict[str, Any]], public_key: str | os.PathLike[str] | None
) -> tuple[bool, int | None, tuple[str, ...]]:
    """Compare the log with its signed head; returns (signature checked, head seq, notes)."""
    head = _load_head(path)
    if head is None:
        if public_key is not None:
            raise _ChainBreak(
                ProblemKind.MISSING_HEAD,
                None,
                None,
                f"a public key was given but {HEAD_FILE_NAME} is missing: the head may have been removed",
            )
        return False, None, ("no signed head: truncation of the tail cannot be detected",)
    notes: tuple[str, ...] = ()
    if public_key is not None:
        _check_head_signature(head, public_key)
    else:
        notes = ("head present but its signature was not checked (no public key given)",)
    _check_head_in_log(head, entries)
    return public_key is not None, head["seq"], notes


def _check_head_in_log(head: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    head_seq = head["seq"]
    if head_seq >= len(entries):
        last_seq = len(entries) - 1
        missing = head_seq - last_seq
        ends = f"ends at seq {last_seq}" if entries else "is empty"
        raise _ChainBreak(
            ProblemKind.TRUNCATED,
            len(entries) + 1,
            last_seq + 1,
            f"the signed head is seq {head_seq} but the log {ends}:"
            f" {missing} entr{'y' if missing == 1 else 'ies'} cut from the tail",
        )
    if entries[head_seq]["hash"] != head["hash"]:
        raise _ChainBreak(
            ProblemKind.REWRITTEN,
            head_seq + 1,
            head_seq,
            f"entry seq {head_seq} differs from the signed head: the chain was rewritten up to it",
        )


# --- heads recorded outside the log (published manifests) ---------------------------------


@dataclass(frozen=True)
class HeadAnchor:
    """A head of the log recorded outside it, which the log must still hold: its first `entries`
    entries, the last one with hash `hash`, followed later by a `published` entry whose `digest`
    is `release` (the manifest is written before its release's `published` entry is appended).

    Whoever can rewrite the log cannot rewrite the copies of a published manifest others hold, so
    without any signing key a cut tail, an emptied log or a rewritten chain shows."""

    source: str  # where the head was recorded, in words ("published/manifest.json")
    entries: int
    hash: str | None  # None when the log was empty
    release: str

    @property
    def name(self) -> str:
        return f"{self.source} (release {self.release[:12]})"


def current_head(log_path: str | os.PathLike[str]) -> tuple[int, str | None]:
    """(entries, hash of the last entry) of the log now; (0, None) when it is empty or missing.
    Reads the tail only: the count is the last seq + 1, which verify holds to the chain."""
    path = Path(log_path)
    if not path.is_file():
        return 0, None
    with _locked_log(path, exclusive=False) as fd:
        tail = _read_tail(fd)
    if tail.last_line is None:
        return 0, None
    last = _parse_last_entry(tail.last_line)
    return last["seq"] + 1, last["hash"]


def _check_anchor(anchor: HeadAnchor, entries: list[dict[str, Any]]) -> str:
    """Raise _ChainBreak unless the log still holds `anchor`; words for the report when it does."""
    if anchor.entries > len(entries):
        missing = anchor.entries - len(entries)
        ends = f"ends at seq {len(entries) - 1}" if entries else "is empty"
        raise _ChainBreak(
            ProblemKind.TRUNCATED,
            len(entries) + 1,
            len(entries),
            f"{anchor.name} recorded {anchor.entries} entries (head seq {anchor.entries - 1}) but the "
            f"log {ends}: {missing} or more entr{'y' if missing == 1 else 'ies'} cut from the tail",
        )
    if anchor.entries and entries[anchor.entries - 1]["hash"] != anchor.hash:
        seq = anchor.entries - 1
        raise _ChainBreak(
            ProblemKind.REWRITTEN,
            anchor.entries,
            seq,
            f"entry seq {seq} differs from the head recorded in {anchor.name}: the chain was rewritten "
            "up to it",
        )
    later = [e for e in entries[anchor.entries :] if e["action"] == AuditAction.PUBLISHED]
    if not any(e["object"].get("digest") == anchor.release for e in later):
        cut = not later
        raise _ChainBreak(
            ProblemKind.TRUNCATED if cut else ProblemKind.REWRITTEN,
            len(entries) + 1 if cut else anchor.entries + 1,
            len(entries) if cut else anchor.entries,
            f"no `published` entry for {anchor.name} after seq {anchor.entries - 1}: "
            + ("entries were cut from the tail" if cut else "the entries after its head were rewritten"),
        )
    return f"{anchor.name} found at seq {anchor.entries - 1}"
