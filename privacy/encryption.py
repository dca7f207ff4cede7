"""Encryption at rest for staging: one data key per school, wrapped by a master key.

Envelope encryption, AES-256-GCM throughout (`cryptography`):

- the **master key** comes from `IMPACT_MASTER_KEY` or the file named by `IMPACT_MASTER_KEY_FILE`,
  like the pseudonymization key and never equal to it; only an HKDF-derived wrapping key is kept;
- each school's **data key** (32 random bytes) is stored wrapped in `<home>/keys/datakeys/<school>.json`
  (0600, written once, atomically); it never leaves memory unwrapped;
- a staging file is `MAGIC`, one JSON header line (school, key id, nonce) and the AES-GCM ciphertext
  of the Parquet bytes; the header is authenticated, so a file cannot be moved to another school.

Crypto-shredding: destroying a school's wrapped data key makes every copy of its staging files
(backups, stray copies) unreadable. Nothing here prints, logs or raises key material.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privacy.atomic import fsync_directory
from privacy.audit_log import validate_object
from privacy.keys import DEMO_KEY_PREFIX, ENV_KEY, ENV_KEY_FILE, MIN_KEY_BYTES, secret_from_env
from privacy.zones import home_root

ENV_MASTER_KEY = "IMPACT_MASTER_KEY"
ENV_MASTER_KEY_FILE = "IMPACT_MASTER_KEY_FILE"
# The same variable as pipelines.resources.DEMO_MODE_ENV (privacy/ may not import pipelines/).
DEMO_MODE_ENV = "IMPACT_DEMO_MODE"
MAGIC = b"IMPACT-STAGING-AES256GCM-1\n"
ALGORITHM = "AES-256-GCM"
NONCE_BYTES = 12
DATA_KEY_BYTES = 32
# AES-GCM in `cryptography` takes at most 2**31 - 1 bytes in one call; staging files are far smaller.
MAX_PLAINTEXT_BYTES = 2**31 - 1
_SCHOOL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Key ids carry a letter prefix: a bare hex id is all digits about once in 1,850 keys, and the audit
# log (rightly) refuses a long digit string as a possible raw identifier.
KEY_ID_PREFIX = "dk-"


class EncryptionError(RuntimeError):
    """Encrypted staging cannot be written or read; the message says why and never holds a key."""


class WrongMasterKey(EncryptionError):
    """The master key in the environment is not the one that wrapped the data keys: an operator's
    setting, not a fault of any school's data, so nothing may be recorded against a school for it."""


# --- the master key ------------------------------------------------------------------------


def _fingerprint(secret: bytes) -> str:
    """The same construction as PseudonymKey.fingerprint: reveals nothing about the key."""
    return hmac.new(secret, b"impact-key-fingerprint", hashlib.sha256).hexdigest()[:12]


class MasterKey:
    """The key-encryption key, kept only as an HKDF-derived wrapping key (hidden) and a fingerprint."""

    __slots__ = ("_wrapping", "fingerprint", "is_demo")

    def __init__(self, master: bytes) -> None:
        self._wrapping = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"impact-datakey-wrap"
        ).derive(master)
        self.fingerprint = _fingerprint(master)
        self.is_demo = master.startswith(DEMO_KEY_PREFIX)

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self._wrapping).encrypt(nonce, data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        return AESGCM(self._wrapping).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into a Dagster event or a subprocess argument
        raise TypeError("MasterKey cannot be pickled")


def _secret_from(env: Mapping[str, str], value_name: str, file_name: str) -> tuple[bytes, str] | None:
    """(decoded secret, where it came from) or None when neither variable is set."""
    return secret_from_env(env, value_name, file_name, EncryptionError)


def _equals_pseudonym_key(env: Mapping[str, str], master: bytes) -> bool:
    try:
        pseudonym = _secret_from(env, ENV_KEY, ENV_KEY_FILE)
    except EncryptionError:
        return False  # the pseudonym key's own loader reports its problem
    return pseudonym is not None and hmac.compare_digest(pseudonym[0], master)


def load_master_key(env: Mapping[str, str] | None = None, demo_mode: bool | None = None) -> MasterKey:
    """From IMPACT_MASTER_KEY or IMPACT_MASTER_KEY_FILE; refuse weak, demo (outside the demo) and
    pseudonym-equal keys: one leaked key must not both unmask pseudonyms and decrypt staging."""
    env = os.environ if env is None else env
    demo_mode = env.get(DEMO_MODE_ENV) == "1" if demo_mode is None else demo_mode
    found = _secret_from(env, ENV_MASTER_KEY, ENV_MASTER_KEY_FILE)
    if found is None:
        raise EncryptionError(
            f"no master key for encryption at rest: set {ENV_MASTER_KEY} (>= {MIN_KEY_BYTES} bytes) or "
            f"{ENV_MASTER_KEY_FILE} (a file holding the key), different from the pseudonymization key; "
            "`impact demo` creates a demo master key for the demo only"
        )
    master, source = found
    if len(master) < MIN_KEY_BYTES:
        raise EncryptionError(
            f"the master key from {source} is {len(master)} bytes; at least {MIN_KEY_BYTES} are required"
        )
    if _equals_pseudonym_key(env, master):
        raise EncryptionError(
            f"the master key from {source} is the pseudonymization key; use a different key for each"
        )
    key = MasterKey(master)
    if key.is_demo and not demo_mode:
        raise EncryptionError(
            f"the master key from {source} is a demo key; it is refused outside `impact demo`"
        )
    return key


def create_demo_master_key(path: Path) -> Path:
    """Only `impact demo` calls this, and says so: a marked demo key, owner-only, kept if present."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        _write_once(path, DEMO_KEY_PREFIX + b"master:" + secrets.token_hex(32).encode())
    return path


# --- the data-key store (wrapped keys, one file per school) --------------------------------


def datakeys_dir(home_root: Path) -> Path:
    return Path(home_root) / "keys" / "datakeys"


def _checked_school(school_id: str) -> str:
    if not _SCHOOL_ID.match(school_id or ""):
        raise EncryptionError(f"school id {school_id!r} cannot name a data key (letters, digits, _ . - only)")
    return school_id


def datakey_path(home_root: Path, school_id: str) -> Path:
    return datakeys_dir(home_root) / f"{_checked_school(school_id)}.json"


def _write_once(path: Path, data: bytes) -> bool:
    """Create `path` with `data` (0600) unless it exists; True when this call created it.

    Written to a temporary sibling, then hard-linked into place: the link fails if another process
    created the key first, so two writers never end up encrypting with different keys."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        fsync_directory(path.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(8)


def logged_key_id(key_id: str) -> str:
    """The key id as the audit log shows it: prefixed, so a legacy all-digit id is still loggable."""
    return key_id if key_id.startswith(KEY_ID_PREFIX) else KEY_ID_PREFIX + key_id


def _wrap_context(school_id: str, key_id: str) -> bytes:
    return f"impact-datakey:{school_id}:{key_id}".encode()


@dataclass(frozen=True)
class DataKeyInfo:
    """What may be shown about a data key: never the key."""

    school_id: str
    key_id: str
    created_at: str
    master_fingerprint: str


class DataKeyStore:
    """Wrapped per-school data keys under `<home>/keys/datakeys/`, usable with one master key."""

    def __init__(self, home_root: Path, master: MasterKey) -> None:
        self.root = datakeys_dir(home_root)
        self.home_root = Path(home_root)
        self._master = master

    @classmethod
    def from_env(cls, home_root: Path, env: Mapping[str, str] | None = None) -> DataKeyStore:
        return cls(home_root, load_master_key(env))

    def __repr__(self) -> str:
        return f"DataKeyStore(root={str(self.root)!r}, master={self._master!r})"

    def info(self, school_id: str) -> DataKeyInfo | None:
        path = datakey_path(self.home_root, school_id)
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        return DataKeyInfo(
            record["school_id"], record["key_id"], record["created_at"], record["master_fingerprint"]
        )

    def schools(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []

    def _create(self, school_id: str) -> None:
        self._check_master_before_creating(school_id)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.parent.chmod(0o700)
        key_id = new_key_id()
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        record = {
            "format": 1,
            "school_id": school_id,
            "key_id": key_id,
            "algorithm": ALGORITHM,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "master_fingerprint": self._master.fingerprint,
            "wrapped": base64.b64encode(
                self._master.wrap(data_key, _wrap_context(school_id, key_id))
            ).decode(),
        }
        _write_once(datakey_path(self.home_root, school_id), json.dumps(record, indent=2).encode() + b"\n")

    def data_key(self, school_id: str, create: bool = False) -> tuple[str, bytes]:
        """(key id, unwrapped key) of the school; created on first use when `create`."""
        path = datakey_path(self.home_root, school_id)
        if not path.exists():
            if not create:
                raise EncryptionError(
                    f"no data key for school {school_id}: it was shredded (its staging copies are "
                    "unreadable by design) or never created"
                )
            self._create(school_id)
        record = json.loads(path.read_text())
        try:
            key = self._master.unwrap(
                base64.b64decode(record["wrapped"]), _wrap_context(school_id, record["key_id"])
            )
        except InvalidTag:
            raise WrongMasterKey(
                f"the data key of school {school_id} cannot be unwrapped with this master key "
                f"(fingerprint {self._master.fingerprint}; the key was wrapped by master key "
                f"{record.get('master_fingerprint')}): {ENV_MASTER_KEY} or {ENV_MASTER_KEY_FILE} is "
                "probably the wrong key"
            ) from None
        return record["key_id"], key

    def unwrap_problems(self) -> dict[str, str]:
        """{school: why} for every data key this master key cannot unwrap (all of them, when it is
        the wrong key); empty when it opens them all. Reads key files only, never staging."""
        problems = {school: self.unwrap_problems_of(school) for school in self.schools()}
        return {school: why for school, why in problems.items() if why is not None}

    def unwrap_problems_of(self, school_id: str) -> str | None:
        """Why this master key cannot unwrap the school's data key, or None when it can."""
        try:
            self.data_key(school_id)
        except WrongMasterKey:
            return f"wrapped by master key {self.info(school_id).master_fingerprint}"
        except (EncryptionError, ValueError, KeyError, TypeError):  # unparsable or damaged record
            return "its key file is damaged"
        return None

    def check_master(self, school_id: str) -> None:
        """`WrongMasterKey` unless this master key opens the school's data key (for a school without
        one yet: the store's other keys). Cheap: one key file, no staging."""
        if datakey_path(self.home_root, school_id).exists():
            self.data_key(school_id)
        else:
            self._check_master_before_creating(school_id)

    def _check_master_before_creating(self, school_id: str) -> None:
        """A new data key is wrapped by the master key that wrapped the others, never by a wrong one
        (a key wrapped by it would leave that school unreadable under the right one)."""
        others = [s for s in self.schools() if s != school_id]
        if others:
            self.data_key(others[0])  # WrongMasterKey when this is not the store's master key

    def rewrap(self, school_id: str, new_master: MasterKey) -> None:
        """Wrap the school's data key with `new_master` (master-key rotation; staging untouched).
        A key already wrapped by `new_master` is left as it is, so a rotation that stopped half-way
        is finished by running it again."""
        from privacy.atomic import atomic_write_text

        if DataKeyStore(self.home_root, new_master).unwrap_problems_of(school_id) is None:
            return
        key_id, key = self.data_key(school_id)
        path = datakey_path(self.home_root, school_id)
        record = json.loads(path.read_text())
        record["master_fingerprint"] = new_master.fingerprint
        record["wrapped"] = base64.b64encode(new_master.wrap(key, _wrap_context(school_id, key_id))).decode()
        atomic_write_text(path, json.dumps(record, indent=2) + "\n", mode=0o600)

    # --- sealing staging bytes ---

    def seal(self, school_id: str, plaintext: bytes) -> bytes:
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise EncryptionError(f"a staging file of {len(plaintext)} bytes is over the 2 GiB AES-GCM limit")
        key_id, key = self.data_key(school_id, create=True)
        nonce = secrets.token_bytes(NONCE_BYTES)
        header = MAGIC + _header_line(school_id, key_id, nonce)
        return header + AESGCM(key).encrypt(nonce, plaintext, header)

    def unseal(self, school_id: str, blob: bytes, name: str = "staging file") -> bytes:
        header, fields, ciphertext = _split(blob, name)
        if fields["school_id"] != school_id:
            raise EncryptionError(f"{name} belongs to school {fields['school_id']}, not {school_id}")
        key_id, key = self.data_key(school_id)
        if key_id != fields["key_id"]:
            raise EncryptionError(
                f"{name} was encrypted with data key {fields['key_id']} of school {school_id}, which no "
                f"longer exists (shredded; the current key is {key_id}): this copy cannot be read"
            )
        try:
            return AESGCM(key).decrypt(base64.b64decode(fields["nonce"]), ciphertext, header)
        except InvalidTag:
            raise EncryptionError(f"{name} failed authentication: it was altered or truncated") from None


def _header_line(school_id: str, key_id: str, nonce: bytes) -> bytes:
    fields = {"school_id": school_id, "key_id": key_id, "nonce": base64.b64encode(nonce).decode()}
    return json.dumps(fields, sort_keys=True).encode() + b"\n"


def _split(blob: bytes, name: str) -> tuple[bytes, dict, bytes]:
    """(authenticated header, its fields, ciphertext) of an encrypted staging file."""
    if not blob.startswith(MAGIC):
        hint = " (plain Parquet written before encryption at rest: re-stage with `impact run --force`)"
        raise EncryptionError(
            f"{name} is not an encrypted staging file" + (hint if blob.startswith(b"PAR1") else "")
        )
    end = blob.find(b"\n", len(MAGIC))
    try:
        fields = json.loads(blob[len(MAGIC) : end])
    except ValueError:
        fields = None
    if not isinstance(fields, dict) or not {"school_id", "key_id", "nonce"} <= fields.keys():
        raise EncryptionError(f"{name} has a damaged encryption header")
    return blob[: end + 1], fields, blob[end + 1 :]


def is_encrypted(blob_start: bytes) -> bool:
    return blob_start.startswith(MAGIC)


# --- crypto-shredding ----------------------------------------------------------------------


def shred_school_key(home, school_id: str, audit=None, reason: str = "") -> bool:
    """Destroy the school's wrapped data key: overwrite, fsync, unlink, audit `data_key_shredded`.

    Every staging copy of the school (backups included) becomes unreadable. Returns False when the
    school had no data key. `home` is a `privacy.zones.Home` or a home folder path; `audit` an AuditLog.
    A later staging of the school creates a fresh key, which the old copies do not match.
    """
    root = home_root(home)
    path = datakey_path(root, school_id)
    if not path.exists():
        return False
    key_id = json.loads(path.read_text()).get("key_id", "")
    entry = {"school_id": school_id, "key_id": logged_key_id(key_id), "reason": reason or "requested"}
    if audit is not None:
        validate_object(entry)  # an entry the log would refuse must fail before the key is gone
    size = path.stat().st_size
    # Overwrite first: on file systems that write in place the old bytes are gone, not just unlinked.
    with open(path, "r+b") as handle:
        handle.write(secrets.token_bytes(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()
    fsync_directory(path.parent)
    if audit is not None:
        audit.append("data_key_shredded", **entry)
    return True
