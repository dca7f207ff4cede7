"""The one way staging Parquet is written and read, so every rule about it lives in one place:
owner-only files, atomic replace, and encryption at rest with the school's data key
(`privacy.encryption`). A staging file on disk is never plain Parquet.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from privacy.atomic import atomic_write_bytes
from privacy.encryption import DataKeyStore, EncryptionError
from privacy.zones import Home


def home_of_staging(path: Path) -> Path:
    """The home folder of `<home>/staging/<dataset>/school=<id>/part.parquet` (the layout is an interface)."""
    for folder in Path(path).resolve().parents:
        if folder.name == "staging":
            return folder.parent
    raise EncryptionError(f"{path} is not under a home folder's staging/ zone")


def _store(path: Path, keys: DataKeyStore | None) -> DataKeyStore:
    return keys if keys is not None else DataKeyStore.from_env(home_of_staging(path))


def write_staging_frame(
    path: Path, frame: pl.DataFrame, school_id: str, keys: DataKeyStore | None = None
) -> None:
    """Atomically replace `path` with `frame` encrypted under the school's data key (0600 in 0700).

    `keys` defaults to the home's key store opened with the master key from the environment."""
    store = _store(path, keys)
    buffer = io.BytesIO()
    frame.write_parquet(buffer, statistics=False)
    sealed = store.seal(school_id, buffer.getvalue())
    _private_folders(path.parent)
    atomic_write_bytes(path, sealed, mode=0o600)


def read_staging_frame(path: Path, school_id: str, keys: DataKeyStore | None = None) -> pl.DataFrame:
    """Decrypt and read one staging file; `EncryptionError` (a clear reason) when it cannot be read."""
    store = _store(path, keys)
    plain = store.unseal(school_id, Path(path).read_bytes(), name=_display_name(path))
    return pl.read_parquet(io.BytesIO(plain))


def _private_folders(folder: Path) -> None:
    """mkdir -p with every created level 0700 (`parents=True` would make the upper ones 0755)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        level.mkdir(mode=0o700, exist_ok=True)


def _display_name(path: Path) -> str:
    """`staging/<dataset>/school=<id>/part.parquet`: enough to find it, no absolute paths in messages."""
    parts = Path(path).parts
    return "/".join(parts[-4:]) if len(parts) >= 4 else str(path)


def forget_derived(home: Home, school_id: str) -> int:
    """Delete what the release derived from a school's staging (`Home.derived_of`): whoever
    rewrites or deletes that staging calls this, so no derived copy outlives the rows it came from
    (retention, re-staging, shredding; a rotation draft's home clears its own). Returns how many
    files went."""
    folder = home.derived_of(school_id)
    removed = 0
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
