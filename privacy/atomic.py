"""Atomic file writes: the project's one way to write a file that someone else reads.

A reader (a person, a glob like ``*.parquet``, DuckDB, the dashboard) must see either the old
file or the complete new one, never a half-written file. We write to a hidden temporary sibling
(same directory, so the rename stays on one filesystem), fsync it, ``os.replace`` it onto the
target and fsync the directory so the rename itself survives a power cut.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"
# The temporary file starts owner-only: restricted data must never be readable mid-write.
_TEMPORARY_CREATION_MODE = 0o600


def temporary_sibling_name(target: Path) -> Path:
    """A fresh hidden name next to ``target``: ``.<name>.<random>.tmp``."""
    return target.with_name(f"{TEMP_PREFIX}{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


def is_temporary_name(path: Path) -> bool:
    """True for the names ``atomic_path`` creates (and a crash may leave behind)."""
    return path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX)


def fsync_directory(folder: Path) -> None:
    """Persist a directory's entries (a rename or a new file) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _current_umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    previous = os.umask(0o022)  # no read-only API elsewhere; set and restore at once
    os.umask(previous)
    return previous


def _final_mode(target: Path, mode: int | None) -> int:
    """Explicit ``mode`` wins; otherwise keep the existing target's mode; otherwise umask default."""
    if mode is not None:
        return mode
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def _create_empty_temporary(target: Path) -> Path:
    """Reserve a unique temporary name (O_EXCL), owner-only until the write succeeds."""
    while True:
        candidate = temporary_sibling_name(target)
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _TEMPORARY_CREATION_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate


@contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[Path]:
    """Yield a hidden temporary sibling of ``path``; on success it replaces ``path`` atomically.

    The temporary file already exists (empty, mode 0600) so the name is ours alone; write to it
    with any tool that overwrites (Polars, DuckDB ``COPY``, ``open(..., "wb")``). On success it is
    fsync'ed, given ``mode`` (or the old target's mode, or the umask default), renamed onto
    ``path`` and the directory fsync'ed. On any exception the temporary file is removed and the
    old ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_empty_temporary(target)
    try:
        yield temporary
        _fsync_file(temporary)
        os.chmod(temporary, _final_mode(target, mode))
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically; returns the target path."""
    with atomic_path(path, mode=mode) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, mode: int | None = None, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``path`` atomically; returns the target path."""
    return atomic_write_bytes(path, text.encode(encoding), mode=mode)


def remove_stale_temporaries(
    folder: str | os.PathLike[str], *, recursive: bool = True, min_age_seconds: float = 0.0
) -> list[Path]:
    """Delete ``.*.tmp`` files a crashed writer left behind; returns what was removed.

    ``min_age_seconds`` spares temporaries younger than that, so a cleanup that runs while
    another process is mid-write does not pull the file from under it.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    candidates = (
        root.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}") if recursive else root.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}")
    )
    oldest_allowed = time.time() - min_age_seconds
    removed: list[Path] = []
    for candidate in sorted(candidates):
        try:
            if not candidate.is_file() or candidate.is_symlink():
                continue
            if min_age_seconds > 0 and candidate.stat().st_mtime > oldest_allowed:
                continue
            candidate.unlink()
        except FileNotFoundError:
            continue  # another cleaner or the writer itself got there first
        removed.append(candidate)
    return removed


@contextmanager
def exclusive_lock(path: Path) -> Iterator[bool]:
    """True while this process holds an exclusive lock on `path` (created 0600), False when another
    process holds it. Never waits; the kernel drops the lock when the holder dies, so a killed
    process never blocks the next one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
