"""The audit log's head, recorded in each published manifest, and read back to verify the log.

`transforms.release.publish` records `audit_head_for_manifest(home)` under `MANIFEST_HEAD_KEY`:
the entry count and the last entry's hash when the manifest is written, which is before the
release's own `published` entry is appended. `impact audit verify` turns every manifest it is
given (published/manifest.json, and copies kept elsewhere) into a `HeadAnchor` the log must
still hold, so a truncated, emptied or rewritten log fails even without a signing key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from privacy.audit_log import HeadAnchor, audit_log_path, current_head
from privacy.zones import Home, home_root

MANIFEST_HEAD_KEY = "audit_log_head"


class ManifestUnreadable(ValueError):
    """A manifest given to verify the log against cannot be read."""


def audit_head_for_manifest(home: Home | str | os.PathLike) -> dict[str, Any]:
    """{"entries", "hash"} of the home's audit log now (`home`: a `Home` or its folder)."""
    entries, last_hash = current_head(audit_log_path(home_root(home)))
    return {"entries": entries, "hash": last_hash}


def anchor_from_manifest(manifest: dict[str, Any], source: str) -> HeadAnchor | None:
    """The head a manifest recorded, or None for a manifest written before heads were recorded."""
    head = manifest.get(MANIFEST_HEAD_KEY)
    if head is None:
        return None
    entries, last_hash, release = head.get("entries"), head.get("hash"), manifest.get("release")
    if (
        not isinstance(entries, int)
        or isinstance(entries, bool)
        or entries < 0
        or not isinstance(release, str)
        or (last_hash is None) != (entries == 0)
    ):
        raise ManifestUnreadable(f"{source}: `{MANIFEST_HEAD_KEY}` is not an entry count and hash")
    return HeadAnchor(source, entries, last_hash, release)


def manifest_anchors(
    home_root: str | os.PathLike[str], extra: list[Path] | None = None
) -> tuple[list[HeadAnchor], list[str]]:
    """(anchors, notes) from published/manifest.json (when there is one) and each of `extra`
    (copies of earlier manifests kept elsewhere: the publication bucket, a funder's download)."""
    published = Path(home_root) / "published" / "manifest.json"
    sources = ([(published, "published/manifest.json")] if published.is_file() else []) + [
        (path, str(path)) for path in extra or []
    ]
    anchors, notes = [], []
    for path, name in sources:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ManifestUnreadable(f"cannot read the manifest {name}: {type(exc).__name__}") from None
        if not isinstance(manifest, dict):
            raise ManifestUnreadable(f"{name} is not a manifest")
        anchor = anchor_from_manifest(manifest, name)
        if anchor is None:
            notes.append(f"{name} records no audit head (published before heads were recorded)")
        else:
            anchors.append(anchor)
    if not sources:
        notes.append("no published manifest: a cut tail is caught only by a signed head")
    return anchors, notes
