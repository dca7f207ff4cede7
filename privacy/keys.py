"""The pseudonymization key: where it comes from, what is refused, and per-purpose derivation.

The key never lives in the home folder's data zones and never appears in logs, metadata or
exception text: `PseudonymKey` shows only its version and a fingerprint (an HMAC of a fixed label,
which reveals nothing about the key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_KEY_BYTES = 32
DEMO_KEY_PREFIX = b"DEMO-ONLY-NOT-FOR-REAL-DATA:"
ENV_KEY = "IMPACT_PSEUDONYM_KEY"
ENV_KEY_FILE = "IMPACT_PSEUDONYM_KEY_FILE"
ENV_KEY_VERSION = "IMPACT_PSEUDONYM_KEY_VERSION"
# The version is written into every staged row and every `staged` audit entry.
_VERSION_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class KeyError_(RuntimeError):
    """A key problem, described without the key."""


class PseudonymKey:
    """The master key (hidden) with its version label."""

    __slots__ = ("_master", "version")

    def __init__(self, master: bytes, version: str = "1") -> None:
        self._master = master
        self.version = version

    @property
    def fingerprint(self) -> str:
        return hmac.new(self._master, b"impact-key-fingerprint", hashlib.sha256).hexdigest()[:12]

    @property
    def is_demo(self) -> bool:
        return self._master.startswith(DEMO_KEY_PREFIX)

    def for_purpose(self, purpose: str) -> bytes:
        """HKDF-SHA256 (RFC 5869): pseudonyms for one purpose cannot be joined to another's."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"impact-pseudonym:{purpose}".encode()
        ).derive(self._master)

    def __repr__(self) -> str:
        return f"PseudonymKey(version={self.version!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into a Dagster event or a subprocess argument
        raise TypeError("PseudonymKey cannot be pickled")


def decode_secret(raw: bytes) -> bytes:
    """A key as written in an environment variable or key file: raw, `base64:…` or `hex:…`."""
    text = raw.strip()
    if text.startswith(b"base64:"):
        return base64.b64decode(text[7:])
    if text.startswith(b"hex:"):
        return bytes.fromhex(text[4:].decode())
    return text


def secret_from_env(
    env: Mapping[str, str], value_name: str, file_name: str, error: type[Exception] = RuntimeError
) -> tuple[bytes, str] | None:
    """(decoded secret, where it came from) from `value_name` or the file named by `file_name`;
    None when neither is set. Used for every key the pipeline reads, so they all load alike."""
    if env.get(value_name):
        return decode_secret(env[value_name].encode()), value_name
    if env.get(file_name):
        path = Path(env[file_name])
        if not path.is_file():
            raise error(f"{file_name} names {path}, which is not a readable file")
        return decode_secret(path.read_bytes()), str(path)
    return None


def checked_version(version: str) -> str:
    """Refuse, before anything is staged, a key version the audit log would refuse later: a date
    written as digits only (`20261201`) looks like a raw identifier to it, and every school's intake
    would then fail after writing its staging."""
    from privacy.audit_log import UnsafeAuditObject, validate_object

    if not _VERSION_SHAPE.match(version):
        raise KeyError_(
            f"{ENV_KEY_VERSION} must be 1-32 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    try:
        validate_object({"key_version": version})
    except UnsafeAuditObject:
        raise KeyError_(
            f"{ENV_KEY_VERSION}={version} is refused: six or more digits alone look like a student id "
            f"to the audit log; add a letter (v{version}) or a separator ({version[:4]}-{version[4:]})"
        ) from None
    return version


def load_pseudonym_key(env: Mapping[str, str] | None = None, demo_mode: bool = False) -> PseudonymKey:
    """From IMPACT_PSEUDONYM_KEY or the file named by IMPACT_PSEUDONYM_KEY_FILE; refuse weak keys."""
    env = os.environ if env is None else env
    version = checked_version(env.get(ENV_KEY_VERSION, "1"))
    found = secret_from_env(env, ENV_KEY, ENV_KEY_FILE, KeyError_)
    if found is None:
        raise KeyError_(
            f"no pseudonymization key: set {ENV_KEY} (>= {MIN_KEY_BYTES} bytes) or {ENV_KEY_FILE} "
            "(a file holding the key); `impact demo` creates a demo key for the demo only"
        )
    master, source = found
    if len(master) < MIN_KEY_BYTES:
        raise KeyError_(
            f"the key from {source} is {len(master)} bytes; at least {MIN_KEY_BYTES} are required"
        )
    key = PseudonymKey(master, version)
    if key.is_demo and not demo_mode:
        raise KeyError_(f"the key from {source} is a demo key; it is refused outside `impact demo`")
    return key


def create_demo_key(path: Path) -> Path:
    """Only `impact demo`/`generate` call this, and they say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(DEMO_KEY_PREFIX + secrets.token_hex(32).encode())
        path.chmod(0o600)
    return path
