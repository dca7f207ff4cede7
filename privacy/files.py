"""Facts about a received file that intake, retention and the compliance report must agree on."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from pathlib import Path

DATED_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def modified_on(path: Path) -> date:
    return datetime.fromtimestamp(path.lstat().st_mtime).date()  # lstat: never follow a symlink


def export_date(path: Path) -> date:
    """The export's date from its name (`<dataset>_<YYYY-MM-DD>.<ext>`), else its modification date."""
    match = DATED_NAME.search(path.name)
    if match:
        try:
            return date.fromisoformat(match.group(1))
        except ValueError:
            pass
    return modified_on(path)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (exports can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_export_date(record: dict) -> date | None:
    """The export date a file's state record carries: intake keeps it because the record's name
    may be withheld (a sender's name that looks like PII); older records: from the dated name."""
    if record.get("exported_on"):
        return date.fromisoformat(record["exported_on"])
    match = DATED_NAME.search(record.get("file") or "")
    try:
        return date.fromisoformat(match.group(1)) if match else None
    except ValueError:
        return None
