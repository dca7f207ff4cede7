"""The head each published manifest records holds the audit log without any signing key: a cut
tail, an emptied log or a chain rewritten by someone who recomputes every hash fails `verify`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from privacy.audit_anchors import (
    MANIFEST_HEAD_KEY,
    ManifestUnreadable,
    anchor_from_manifest,
    audit_head_for_manifest,
    manifest_anchors,
)
from privacy.audit_log import (
    AuditLog,
    ProblemKind,
    audit_log_path,
    canonical_json,
    entry_hash,
    line_digest,
    read_entries,
    verify,
)

RELEASE = "a1" * 32
NEXT_RELEASE = "b2" * 32


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def release(home: Path, log: AuditLog, digest: str, staged: int) -> dict:
    """What a run does: entries, the manifest (recording the head), then the `published` entry."""
    for index in range(staged):
        log.append("staged", school_id="sch01", dataset="usage", rows=index)
    manifest = {"release": digest, "tables": {"reach": {}}, MANIFEST_HEAD_KEY: audit_head_for_manifest(home)}
    published = home / "published"
    published.mkdir(exist_ok=True)
    (published / "manifest.json").write_text(json.dumps(manifest))
    log.append("published", tables=["reach"], digest=digest, cells=3, ok=True)
    return manifest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    log = AuditLog.for_home(tmp_path, actor="run-1", clock=Clock())
    release(tmp_path, log, RELEASE, staged=5)
    return tmp_path


def check(home: Path, extra: list[Path] | None = None):
    anchors, _ = manifest_anchors(home, extra)
    return verify(audit_log_path(home), anchors=anchors)


def rewrite(home: Path, change) -> None:
    """An attacker without the signing key: edit entries, recompute every hash and link."""
    path = audit_log_path(home)
    entries = read_entries(path)
    change(entries)
    for index, entry in enumerate(entries):
        entry["seq"] = index
        entry["prev"] = line_digest(entries[index - 1]) if index else "0" * 64
        entry["hash"] = entry_hash(entry)
    path.write_text("".join(canonical_json(e) + "\n" for e in entries))


def test_the_manifest_records_the_head_before_its_published_entry(home):
    manifest = json.loads((home / "published" / "manifest.json").read_text())
    entries = read_entries(audit_log_path(home))
    assert manifest[MANIFEST_HEAD_KEY] == {"entries": 5, "hash": entries[4]["hash"]}
    assert entries[5]["action"] == "published" and entries[5]["object"]["digest"] == RELEASE


def test_an_untouched_log_verifies_against_its_manifest(home):
    report = check(home)
    assert report.ok, report.summary()
    assert report.anchored == (f"published/manifest.json (release {RELEASE[:12]}) found at seq 4",)
    assert "found at seq 4" in report.summary()
    AuditLog.for_home(home, actor="later").append("retention_run", count=0)  # appends after are fine
    assert check(home).ok


def test_cutting_one_entry_off_the_tail_fails_naming_why(home):
    path = audit_log_path(home)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    assert verify(path).ok  # the chain alone cannot tell
    report = check(home)
    assert not report.ok and report.kind == ProblemKind.TRUNCATED
    assert "no `published` entry for published/manifest.json" in report.problem
    assert "cut from the tail" in report.problem and report.first_bad_line == 6


def test_cutting_into_the_recorded_head_fails_with_the_count(home):
    path = audit_log_path(home)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    report = check(home)
    assert report.kind == ProblemKind.TRUNCATED and report.first_bad_seq == 3
    assert "recorded 5 entries (head seq 4) but the log ends at seq 2" in report.problem


def test_an_emptied_log_fails_once_a_release_exists(home, tmp_path_factory):
    audit_log_path(home).write_text("")
    report = check(home)
    assert not report.ok and report.kind == ProblemKind.TRUNCATED and "the log is empty" in report.problem
    fresh = tmp_path_factory.mktemp("no-release")  # no manifest: an empty log is simply empty
    audit_log_path(fresh).parent.mkdir(parents=True)
    audit_log_path(fresh).write_text("")
    assert check(fresh).ok


def test_a_rewritten_chain_fails_without_any_signing_key(home):
    def edit(entries):
        entries[2]["object"]["rows"] = 999

    rewrite(home, edit)
    assert verify(audit_log_path(home)).ok  # a consistent chain: only the recorded head betrays it
    report = check(home)
    assert report.kind == ProblemKind.REWRITTEN and report.first_bad_seq == 4
    assert "differs from the head recorded in published/manifest.json" in report.problem


def test_a_rewritten_published_entry_or_a_dropped_one_fails(home):
    def other_release(entries):
        entries[-1]["object"]["digest"] = NEXT_RELEASE

    rewrite(home, other_release)
    report = check(home)
    assert report.kind == ProblemKind.REWRITTEN and "no `published` entry" in report.problem


def test_older_manifests_kept_elsewhere_hold_the_log_too(home, tmp_path_factory):
    kept = tmp_path_factory.mktemp("bucket") / "manifest-1.json"
    kept.write_text((home / "published" / "manifest.json").read_text())
    release(home, AuditLog.for_home(home, actor="run-2", clock=Clock()), NEXT_RELEASE, staged=3)
    report = check(home, [kept])
    assert report.ok and len(report.anchored) == 2

    def edit_first_release(entries):
        entries[1]["object"]["rows"] = 7

    # Rewriting only what came before the first release, and recomputing everything, fails
    # against the current manifest and the kept copy alike.
    rewrite(home, edit_first_release)
    assert check(home, [kept]).kind == ProblemKind.REWRITTEN


def test_a_manifest_without_a_head_is_noted_and_a_bad_one_refused(home):
    manifest = home / "published" / "manifest.json"
    content = json.loads(manifest.read_text())
    content.pop(MANIFEST_HEAD_KEY)
    manifest.write_text(json.dumps(content))
    anchors, notes = manifest_anchors(home)
    assert anchors == [] and "records no audit head" in notes[0]
    for bad in ({"entries": "5", "hash": "x"}, {"entries": 3, "hash": None}, {"entries": True, "hash": "x"}):
        with pytest.raises(ManifestUnreadable, match="not an entry count and hash"):
            anchor_from_manifest({"release": RELEASE, MANIFEST_HEAD_KEY: bad}, "m.json")
    manifest.write_text("{not json")
    with pytest.raises(ManifestUnreadable, match="cannot read the manifest"):
        manifest_anchors(home)
