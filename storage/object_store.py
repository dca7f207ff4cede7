"""S3-compatible object storage at the pipeline's two edges, configured by environment.

- **Inbox** (`IMPACT_INBOX_URL`, e.g. `s3://district-inbox/impact`): schools, or the district's
  SFTP gateway, drop exports at `<inbox>/<school>/<dataset>/<file>`. Each run first *moves* them into
  `landing/`: downloaded to a temporary name, checked against the object's size (and MD5 ETag when
  the store gives one), renamed into place, and only then deleted from the bucket. A raw export so
  lives in one place, where retention deletes it on the contract's schedule.
- **Publication** (`IMPACT_PUBLISH_URL`): after a committed release, `published/` is mirrored to the
  bucket with the manifest written last, so a reader who trusts the manifest never reads a table
  older than it; objects of tables no longer published are removed.

Local files stay the default: with neither variable set nothing here runs. Credentials and the
endpoint come from the standard `AWS_*` variables (`AWS_ENDPOINT_URL` for MinIO, Ceph, …) through
fsspec/s3fs; nothing is read from a file in the repository. Staging stays on the home volume: it is
sealed by the application (privacy/staging_store.py) and read back by the release, so a bucket would
add a round trip and nothing else (deploy/README.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import fsspec

from privacy.atomic import atomic_path, atomic_write_text
from privacy.audit_log import AuditLog
from privacy.zones import Home

INBOX_ENV = "IMPACT_INBOX_URL"
PUBLISH_ENV = "IMPACT_PUBLISH_URL"
# One path segment a landing folder or export may be named by: no separators, no leading dot.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+ -]*$")
PUSHED_MARKER = "impact-published-push.json"  # in dagster/: the release last mirrored
MANIFEST = "manifest.json"


class ObjectStoreError(RuntimeError):
    """The bucket could not be read or written; the message names the object, never a credential."""


@dataclass
class InboxReport:
    moved: list[str] = field(default_factory=list)  # <school>/<dataset>/<file>, as in the bucket
    left: dict[str, str] = field(default_factory=dict)  # object -> why it stays in the inbox


def remote(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and root path of an `s3://bucket/prefix` (or any fsspec) URL."""
    try:
        # a fresh client: fsspec's instance cache would keep an endpoint the environment has changed
        fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    except (ImportError, ValueError) as exc:
        raise ObjectStoreError(f"cannot open {url}: {exc}") from None
    return fs, root.rstrip("/")


def _landing_target(home: Home, relative: str) -> Path | str:
    """landing/<school>/<dataset>/<file> for a well-formed object key, else why it is refused."""
    parts = relative.split("/")
    if len(parts) != 3:
        return "not at <school>/<dataset>/<file>"
    if not all(SEGMENT.match(p) for p in parts):
        return "a path segment has an unsafe name (separator, leading dot or control character)"
    return home.landing.joinpath(*parts)


def _etag_md5(info: dict) -> str | None:
    """The object's MD5 when its ETag is one (single-part uploads); multipart ETags are not."""
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    return etag if re.fullmatch(r"[0-9a-f]{32}", etag) else None


def _download(fs, key: str, info: dict, target: Path) -> str:
    """Stream one object to `target` atomically; its sha256 once size (and MD5) are checked."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with atomic_path(target, mode=0o600) as temporary, fs.open(key, "rb") as source:
        with open(temporary, "wb") as sink:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                sink.write(chunk)
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
        expected_md5 = _etag_md5(info)
        if size != int(info.get("size", -1)) or (expected_md5 and expected_md5 != md5.hexdigest()):
            raise ObjectStoreError(f"{key}: the download does not match the object (size or MD5)")
    return sha.hexdigest()


def _private_parents(path: Path, stop: Path) -> None:
    folder = path.parent
    missing = []
    while folder != stop and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        level.mkdir(mode=0o700, exist_ok=True)


def pull_inbox(home: Home, url: str, audit: AuditLog | None = None) -> InboxReport:
    """Move every export from the inbox into landing/. An object that cannot be moved stays in the
    bucket with the reason; the others are moved regardless."""
    from transforms.intake import public_file_name  # intake's rule for names that look like PII

    fs, root = remote(url)
    report = InboxReport()
    try:
        listing = fs.find(root, detail=True)
    except Exception as exc:  # botocore's connection and credential errors are not OSErrors
        raise ObjectStoreError(f"cannot list {url}: {type(exc).__name__}") from None
    for key, info in sorted(listing.items()):
        relative = key.removeprefix(root).lstrip("/")
        target = _landing_target(home, relative)
        if isinstance(target, str):
            report.left[relative] = target
            continue
        if target.exists():
            report.left[relative] = "landing already holds a file of this name; rename and send again"
            continue
        try:
            _private_parents(target, home.landing)
            digest = _download(fs, key, info, target)
            fs.rm(key)
        except Exception as exc:  # this object stays in the inbox; the others go on
            report.left[relative] = str(exc) if isinstance(exc, ObjectStoreError) else type(exc).__name__
            continue
        report.moved.append(relative)
        if audit:
            school_id, dataset, name = relative.split("/")
            audit.append(
                "received", school_id=school_id, dataset=dataset, file=public_file_name(name),
                sha256=digest, rows=0, status="moved_from_inbox",
            )  # fmt: skip
    return report


def push_published(home: Home, url: str, release_id: str) -> list[str]:
    """Mirror published/ to the bucket: every file but the manifest, then the manifest, then remove
    objects that are no longer published. Records the release so an unchanged run does not re-push."""
    fs, root = remote(url)
    files = sorted(p for p in home.published.rglob("*") if p.is_file() and not p.name.startswith("."))
    names = [p.relative_to(home.published).as_posix() for p in files]
    ordered = sorted(names, key=lambda n: (n == MANIFEST, n))  # the manifest last: the commit point
    try:
        for name in ordered:
            fs.put_file(str(home.published / name), f"{root}/{name}")
        stale = [key for key in fs.find(root) if key.removeprefix(root).lstrip("/") not in set(names)]
        if stale:
            fs.rm(stale)
    except Exception as exc:  # the class only: botocore messages can echo request details
        raise ObjectStoreError(f"cannot write {url}: {type(exc).__name__}") from None
    atomic_write_text(
        home.dagster / PUSHED_MARKER, json.dumps({"release": release_id, "url": url}), mode=0o600
    )
    return ordered


def already_pushed(home: Home, url: str, release_id: str) -> bool:
    """True when this release was mirrored to this URL by an earlier run."""
    try:
        marker = json.loads((home.dagster / PUSHED_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker == {"release": release_id, "url": url}


def configured(env: str) -> str | None:
    return os.environ.get(env, "").strip() or None
