"""S3-compatible object storage at the pipeline's two edges, configured by environment.

- **Inbox** (`IMPACT_INBOX_URL`, e.g. `s3://district-inbox/impact`): schools, or the district's
  SFTP gateway, drop exports at `<inbox>/<school>/<dataset>/<file>`. Each run first *moves* them into
  `landing/`: streamed to a temporary name, checked against the object's size, confirmed unchanged
  in the bucket (same ETag), renamed into place, recorded in the audit log, and only then deleted
  from the bucket. A raw export so lives in one place, where retention deletes it on the contract's
  schedule. (On a versioned bucket the delete leaves a version: give the inbox a lifecycle rule that
  expires noncurrent versions.)
- **Publication** (`IMPACT_PUBLISH_URL`, a prefix inside a bucket): after a committed release,
  `published/` is mirrored there with the manifest written last; objects of tables no longer
  published are removed. An object store has no rename, so during a push a reader may see new
  tables beside the old manifest: the manifest's per-table digests tell which match.

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
import time
from dataclasses import dataclass, field
from pathlib import Path

import fsspec

from contracts.model import DATASETS
from privacy.atomic import atomic_path, atomic_write_text, exclusive_lock
from privacy.audit_log import AuditLog, UnsafeAuditObject, validate_object
from privacy.zones import Home
from transforms.readers import DEFAULT_MAX_BYTES  # what intake refuses unread

INBOX_ENV = "IMPACT_INBOX_URL"
PUBLISH_ENV = "IMPACT_PUBLISH_URL"
# An export's file name: no separators, no control characters, no leading dot (hidden: in flight).
SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+ ()-]*")
SCHOOL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # the contract schema's schoolId pattern
PUSHED_MARKER = "impact-published-push.json"  # in dagster/: the release last mirrored
MANIFEST = "manifest.json"


class ObjectStoreError(RuntimeError):
    """The bucket could not be read or written; the message names the object, never a credential."""


@dataclass
class InboxReport:
    moved: list[str] = field(default_factory=list)  # <school>/<dataset>/<file>, as in the bucket
    left: dict[str, str] = field(default_factory=dict)  # object -> why it stays in the inbox
    busy: bool = False  # another process (the sensor, or `impact run`) was moving the inbox
    deferred: int = 0  # objects not looked at because the time budget ran out (next time)


INBOX_LOCK_NAME = "inbox.lock"  # one mover at a time: the landing sensor or `impact run`


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
    school_id, dataset, name = parts
    if not SCHOOL_ID.fullmatch(school_id):
        return "the school folder is not a school id (letters, digits, '-' and '_')"
    if dataset not in DATASETS:
        return f"the dataset folder is not one of {', '.join(DATASETS)}"
    if not SEGMENT.fullmatch(name):
        return "the file name is hidden or holds a separator or control character"
    return home.landing.joinpath(*parts)


def _linked_on_the_way(home: Home, target: Path) -> bool:
    """True when landing/, a folder under it on the way to `target`, or `target` is a symbolic link
    (intake never follows links; a download must not be written through one either)."""
    path = home.landing
    for part in target.relative_to(home.landing).parts:
        if path.is_symlink():
            return True
        path = path / part
    return path.is_symlink()


def _etag(info: dict) -> str:
    return str(info.get("ETag") or info.get("etag") or "")


def _download(fs, key: str, info: dict, temporary: Path) -> str:
    """Stream one object into `temporary`; its sha256 once the size is checked. (The ETag is no MD5
    on SSE-KMS buckets or multipart uploads, so only the size is compared; the sha256 is recorded.)"""
    sha, size = hashlib.sha256(), 0
    with fs.open(key, "rb") as source, open(temporary, "wb") as sink:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            sink.write(chunk)
            sha.update(chunk)
            size += len(chunk)
    if size != int(info.get("size", -1)):
        raise ObjectStoreError("the download does not match the object's size")
    return sha.hexdigest()


def _private_parents(path: Path, stop: Path) -> None:
    folder = path.parent
    missing = []
    while folder != stop and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        level.mkdir(mode=0o700, exist_ok=True)


def _move_one(fs, key: str, info: dict, home: Home, target: Path, audit: AuditLog | None) -> None:
    """Download → size check → still the same object? → rename into landing → audit → delete."""
    from transforms.intake import public_file_name  # intake's rule for names that look like PII

    school_id, dataset, name = target.relative_to(home.landing).parts
    entry = validate_object(  # refused here, before anything moves, if it would not log
        {"school_id": school_id, "dataset": dataset, "file": public_file_name(name)}
    )
    _private_parents(target, home.landing)
    with atomic_path(target, mode=0o600) as temporary:
        digest = _download(fs, key, info, temporary)
        if _etag(fs.info(key)) != _etag(info):  # re-sent while we read: take the new one next run
            raise ObjectStoreError("the object changed while it was downloaded; the next run takes it")
    if audit:
        audit.append("received", **entry, sha256=digest, rows=0, status="moved_from_inbox")
    fs.rm(key)


def pull_inbox(
    home: Home,
    url: str,
    audit: AuditLog | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    time_budget: float | None = None,
) -> InboxReport:
    """Move every export from the inbox into landing/. An object that cannot be moved stays in the
    bucket with the reason (never its name: it may look like PII); the others are moved regardless.
    Skipped (`busy`) while another process moves the inbox; with `time_budget` (seconds), no new
    object is started after it runs out (a sensor tick must end; the rest moves next time)."""
    with exclusive_lock(home.dagster / INBOX_LOCK_NAME) as mine:
        if not mine:
            return InboxReport(busy=True)
        return _pull_inbox(home, url, audit, max_bytes, time_budget)


def pull_configured_inbox(
    home: Home, actor: str, *, max_bytes: int = DEFAULT_MAX_BYTES, time_budget: float | None = None
) -> InboxReport | None:
    """`pull_inbox` from `IMPACT_INBOX_URL`, audited as `actor`; None when no inbox is configured.
    A bucket that cannot be listed, or a home whose audit log or lock cannot be opened, is an
    ObjectStoreError: the caller reports it and goes on with what landing holds."""
    url = configured(INBOX_ENV)
    if not url:
        return None
    try:
        audit = AuditLog.for_home(home.root, actor=actor)
        return pull_inbox(home, url, audit, max_bytes, time_budget)
    except OSError as exc:
        raise ObjectStoreError(
            f"moving the inbox stopped ({type(exc).__name__}); the rest stays in the bucket"
        ) from None


def _pull_inbox(
    home: Home, url: str, audit: AuditLog | None, max_bytes: int, time_budget: float | None
) -> InboxReport:
    started = time.monotonic()
    fs, root = remote(url)
    report = InboxReport()
    try:
        listing = fs.find(root, detail=True)
    except Exception as exc:  # botocore's connection and credential errors are not OSErrors
        raise ObjectStoreError(f"cannot list {url}: {type(exc).__name__}") from None
    for key, info in sorted(listing.items()):
        if time_budget is not None and time.monotonic() - started > time_budget:
            report.deferred += 1
            continue
        relative = key.removeprefix(root).lstrip("/")
        target = _landing_target(home, relative)
        if isinstance(target, str):
            report.left[relative] = target
        elif int(info.get("size", 0)) > max_bytes:
            report.left[relative] = f"larger than {max_bytes:,} bytes; intake would refuse it"
        elif _linked_on_the_way(home, target):
            report.left[relative] = "its landing folder is a symbolic link: links are never followed"
        elif os.path.lexists(target):
            report.left[relative] = "landing already holds a file of this name; rename and send again"
        else:
            try:
                _move_one(fs, key, info, home, target, audit)
            except ObjectStoreError as exc:
                report.left[relative] = str(exc)
                continue
            except UnsafeAuditObject:
                report.left[relative] = "a folder name looks like a personal identifier"
                continue
            except Exception as exc:  # this object stays in the inbox; the others go on
                report.left[relative] = f"could not be moved ({type(exc).__name__})"
                continue
            report.moved.append(relative)
    return report


def push_published(home: Home, url: str, release_id: str) -> list[str]:
    """Mirror published/ to the bucket: every file but the manifest, then the manifest, then remove
    objects that are no longer published. Records the release so an unchanged run does not re-push."""
    fs, root = remote(url)
    if "/" not in root:  # the sweep below removes what is not published: never a whole bucket
        raise ObjectStoreError(f"{url}: name a prefix inside the bucket (s3://bucket/prefix)")
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


def public_key(key: str) -> str:
    """An inbox key fit for a console or a log: every segment that looks like a personal
    identifier masked (a sender's folder or file may be named after a person)."""
    from transforms.intake import public_file_name

    return "/".join(public_file_name(part) for part in key.split("/"))
