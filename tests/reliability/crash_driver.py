"""Kill `impact run` with SIGKILL at named points, re-run, and compare with an uninterrupted run.

Run as its own process by tests/reliability/test_crash_safety.py:

    python tests/reliability/crash_driver.py BASE_HOME WORK_DIR  ->  JSON report on stdout

Why a driver process: each `impact run` here is a fork of this (already imported) process calling
the CLI's `run` command, so a run costs its work, not 5-15 s of imports. The driver never touches
Polars itself before forking (its thread pool would not survive the fork).

The timeline is one home, killed again and again: every run is the re-run of the previous crash
and must get past that point to the next one; the last run completes. Points are visited in
pipeline order (ingest → staging → release → publish → commit), then again after a corrected
export arrives. At every crash state no file is half-written under a final name (temporaries only),
and after the final run no temporary is left and the audit chain verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pipelines.runner  # noqa: F401  (imported once here, not in every forked run)
from pipelines.cli import app
from privacy.audit_anchors import MANIFEST_HEAD_KEY, manifest_anchors
from privacy.audit_log import verify
from transforms.crashpoints import CRASH_ENV

# (label, pass) in the order a run reaches them: two schools, each with one file to quarantine.
FIRST_DELIVERY = (
    ("intake.quarantine", 1),
    ("intake.staging_write", 2),
    ("intake.staging_write", 5),
    ("intake.state", 1),
    ("run.school_done", 1),
    ("intake.quarantine", 1),
    ("intake.staging_write", 1),
    ("intake.staging_write", 4),
    ("intake.state", 1),
    ("run.school_done", 1),
    ("run.release", 1),
    ("publish.table", 1),
    ("publish.table", 4),
    ("publish.table", 9),
    ("publish.manifest", 1),
    ("run.committed", 1),
)
# A corrected usage export for sch01 arrives: re-stage it, re-release.
CORRECTION = (
    ("intake.staging_write", 2),
    ("intake.state", 1),
    ("run.school_done", 1),
    ("publish.table", 7),
    ("publish.manifest", 1),
    ("run.committed", 1),
)
KILLED = -9


def impact_run(home: Path, crash_at: str | None) -> int:
    """`impact run --home HOME --parallel 1` in a forked child; its exit code (-9: SIGKILLed)."""
    pid = os.fork()
    if pid == 0:  # the child: exactly the CLI command, then exit without running our atexit hooks
        if crash_at:
            os.environ[CRASH_ENV] = crash_at
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        code = 0
        try:
            app(["run", "--home", str(home), "--parallel", "1"], standalone_mode=False)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def published_bytes(home: Path) -> dict[str, str]:
    """tables/* and manifest.json, the outputs promised byte-identical (as hex digests); the
    manifest without the audit log's head, which records this home's own log (crashed runs add
    entries to it)."""
    files = sorted((home / "published" / "tables").glob("*"))
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    manifest = home / "published" / "manifest.json"
    if manifest.exists():
        release = json.loads(manifest.read_text())
        release.pop(MANIFEST_HEAD_KEY, None)
        digests[manifest.name] = hashlib.sha256(json.dumps(release, sort_keys=True).encode()).hexdigest()
    return digests


def temporaries(home: Path) -> list[str]:
    return sorted(
        str(p.relative_to(home))
        for zone in ("staging", "published", "quarantine")
        for p in (home / zone).rglob(".*.tmp")
    )


def visible_partial_files(home: Path) -> list[str]:
    """Files under final names that are not complete: a JSON that does not parse, a Parquet
    without its footer, a CSV without its final newline."""
    bad = []
    for path in (home / "published").rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            try:
                json.loads(data)
            except ValueError:
                bad.append(str(path))
        elif (path.suffix == ".parquet" and not data.endswith(b"PAR1")) or (
            path.suffix == ".csv" and not data.endswith(b"\n")
        ):
            bad.append(str(path))
    return bad


def deliver_correction(home: Path) -> None:
    """sch01 sends a corrected usage export (one row fewer), dated a day later."""
    folder = home / "landing" / "sch01" / "usage"
    source = sorted(folder.glob("usage_*.csv"))[-1]
    lines = source.read_text().splitlines(keepends=True)
    (folder / "usage_2027-06-16.csv").write_text("".join(lines[:-1]))


def timeline(home: Path, points: tuple[tuple[str, int], ...], report: dict) -> None:
    for label, n in points:
        code = impact_run(home, f"{label}:{n}")
        report["crashes"].append(
            {
                "point": f"{label}:{n}",
                "killed": code == KILLED,
                "exit": code,
                "partial_files": visible_partial_files(home),
            }
        )


def main(base: Path, work: Path) -> dict:
    report: dict = {"crashes": []}
    reference = work / "reference"
    shutil.copytree(base, reference, symlinks=True)
    report["reference_exit"] = impact_run(reference, None)
    report["reference_first"] = published_bytes(reference)
    deliver_correction(reference)
    report["reference_second_exit"] = impact_run(reference, None)

    home = work / "crashed"
    shutil.copytree(base, home, symlinks=True)
    timeline(home, FIRST_DELIVERY, report)
    report["first_final_exit"] = impact_run(home, None)
    report["first_digests"] = published_bytes(home)
    deliver_correction(home)
    timeline(home, CORRECTION, report)
    report["final_exit"] = impact_run(home, None)

    report["first_identical"] = report.pop("first_digests") == report["reference_first"]
    report["identical"] = published_bytes(home) == published_bytes(reference)
    report["differs"] = sorted(
        k
        for k in set(published_bytes(home)) | set(published_bytes(reference))
        if published_bytes(home).get(k) != published_bytes(reference).get(k)
    )
    report["tables"] = len(published_bytes(home))
    report["temporaries_left"] = temporaries(home)
    # the chain, held to the head the final manifest recorded (crashed runs' releases were redone)
    report["audit_ok"] = verify(home / "audit" / "audit.jsonl", anchors=manifest_anchors(home)[0]).ok
    report["landing_left"] = sorted(
        str(p.relative_to(home / "landing")) for p in (home / "landing").rglob("*") if p.is_file()
    )
    report["reference_landing_left"] = sorted(
        str(p.relative_to(reference / "landing")) for p in (reference / "landing").rglob("*") if p.is_file()
    )
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
