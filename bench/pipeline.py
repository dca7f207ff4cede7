"""Benchmark: `impact run` at a given scale against the bare-engine floor on the same files, same run.

Run: `python -m bench.pipeline --scale small|medium|large [--workdir DIR] [--regenerate]`;
writes bench/results/pipeline-<scale>.json and prints a table.

1. `generate_consortium` at the scale (synthetic data only; reused when the folder already has it);
2. the floor (`bench.floor`) once to warm the page cache, then the full `impact run` in a child
   process (wall time, peak RSS of that child via `wait4`), its stages from Dagster's event log
   (per-school staging steps, the release step, the reports step) and the release split into
   metrics and disclosure control by calling the plain functions on the staged data;
3. an incremental run: one school sends a newer usage export, `impact run` again;
4. the floor again (the number the ratio uses), in its own child process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"
# Bench-only secrets for synthetic data; real runs bring their own from the environment.
BENCH_ENV = {
    "IMPACT_PSEUDONYM_KEY": "bench-pseudonym-key-" + "p" * 40,
    "IMPACT_PSEUDONYM_KEY_VERSION": "bench-1",
    "IMPACT_MASTER_KEY": "bench-master-key-" + "m" * 40,
}
# ~1M usage rows at small, ~10M at medium, ~100M at large (rows grow with students × weeks).
# 44 weeks keeps the export date inside the demo agreements (which end on 31 July).
SCALES = {
    "small": {"schools": 8, "students_per_school": 1650, "weeks": 36},
    "medium": {"schools": 100, "students_per_school": 1000, "weeks": 44},
    "large": {"schools": 1000, "students_per_school": 1000, "weeks": 44},
}
INCREMENTAL_SCHOOL = "sch02"


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float  # the largest single process (wait4)
    tree_rss_mb: float = 0.0  # the largest sum over the process and its workers (sampled)
    output: str = ""


class TreeRss(threading.Thread):
    """Samples the RSS summed over a process and its descendants (the runner stages schools in
    worker processes, so the largest single process understates the machine's peak)."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.done = pid, every, 0, threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
            while not self.done.is_set():
                total = 0
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
                self.peak = max(self.peak, total)
                self.done.wait(self.every)
        except psutil.Error:
            return


@dataclass
class Report:
    scale: str
    generator: dict
    usage_rows: int
    generate_seconds: float
    pipeline: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    incremental: dict = field(default_factory=dict)
    floor: dict = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)


def bench_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPACT_", "DAGSTER_"))}
    return env | BENCH_ENV


def run_child(args: list[str]) -> Measured:
    """Run a child process; wall time and its own peak RSS (`wait4` reports that child alone)."""
    started = time.perf_counter()
    child = subprocess.Popen(args, env=bench_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = TreeRss(child.pid)
    sampler.start()
    output = child.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    sampler.done.set()
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({child.returncode}):\n{output[-3000:]}")
    # Linux: ru_maxrss in KiB
    return Measured(seconds, usage.ru_maxrss / 1024, sampler.peak / 2**20, output)


def generate(home: Path, scale: str, regenerate: bool) -> tuple[int, float]:
    """Generate the consortium (or reuse it); the pipeline's outputs are reset either way."""
    marker = home / "bench-generated.json"
    if regenerate or not marker.exists():
        shutil.rmtree(home, ignore_errors=True)
        from demo.generate import generate_consortium

        started = time.perf_counter()
        summary = generate_consortium(home, seed=7, **SCALES[scale])
        seconds = time.perf_counter() - started
        rows = sum(r["usage"] for r in summary.rows.values())
        marker.write_text(json.dumps({"usage_rows": rows, "seconds": seconds, **SCALES[scale]}))
    for zone in ("staging", "published", "quarantine", "audit", "dagster", "keys"):
        shutil.rmtree(home / zone, ignore_errors=True)
    restore_landing(home)
    owner_only(home)
    saved = json.loads(marker.read_text())
    return saved["usage_rows"], saved["seconds"]


def owner_only(home: Path) -> None:
    """The pipeline refuses restricted zones open to others (as `impact generate` leaves them)."""
    for path in [home, *home.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)


INCREMENTAL_MARKER = "bench-incremental.json"  # the export `new_export` added, to undo next time


def restore_landing(home: Path) -> None:
    """Undo what a previous bench run changed in landing/ (the incremental export, quarantined files)."""
    marker = home / INCREMENTAL_MARKER
    if marker.exists():
        (home / json.loads(marker.read_text())["added"]).unlink(missing_ok=True)
        marker.unlink()
    quarantined = home / "bench-quarantined"
    if quarantined.is_dir():
        for path in quarantined.rglob("*"):
            if path.is_file():
                target = home / "landing" / path.relative_to(quarantined)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def keep_quarantine_originals(home: Path) -> None:
    """The run moves refused files out of landing/; keep copies so the next bench run starts equal."""
    target = home / "bench-quarantined"
    for reason in (home / "quarantine").rglob("*.reason.json"):
        record = json.loads(reason.read_text())
        source = reason.with_name(record["file"])
        if source.is_file():
            destination = target / record["school_id"] / record["dataset"] / record["file"]
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def dagster_stages(home: Path) -> dict:
    """Per-run and per-step seconds from the Dagster instance the run used (its event log)."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    schools, release, reports, run_overhead = {}, 0.0, 0.0, 0.0
    school_spans = []
    for record in instance.get_run_records():
        run = record.dagster_run
        steps = {
            s.step_key: (s.end_time or 0) - (s.start_time or 0)
            for s in instance.get_run_step_stats(run.run_id)
        }
        run_overhead += ((record.end_time or 0) - (record.start_time or 0)) - sum(steps.values())
        if "school" in run.tags:
            schools[run.tags["school"]] = round(sum(steps.values()), 3)
            school_spans.append((record.start_time or 0, record.end_time or 0))
        else:
            release += sum(v for k, v in steps.items() if "published_release" in k)
            reports += sum(v for k, v in steps.items() if "reports" in k)
    return {
        "staging_per_school": schools,
        "staging_total": round(sum(schools.values()), 2),
        # schools run side by side (`impact run --parallel`): the span from first start to last end
        "staging_wall": round(max(e for _, e in school_spans) - min(s for s, _ in school_spans), 2)
        if school_spans
        else 0.0,
        "release_step": round(release, 2),
        "reports_step": round(reports, 2),
        "dagster_run_overhead": round(run_overhead, 2),
    }


def release_split(home: Path) -> dict:
    """Metrics vs disclosure control, timed on the staged data with the plain functions."""
    os.environ.update(BENCH_ENV)
    from contracts.loader import load_contracts
    from privacy.suppression import DisclosureRules, protect, strictest_rules
    from privacy.zones import Home
    from transforms.disclosure_specs import prepared
    from transforms.impact import impact_tables
    from transforms.release import build_tables
    from transforms.release_run import staged_schools

    paths = Home(home)
    contracts = load_contracts(paths.contracts)
    started = time.perf_counter()
    release = build_tables(paths, contracts, staged_schools(paths, contracts), impact_tables=impact_tables)
    metrics_seconds = time.perf_counter() - started
    rules = strictest_rules(DisclosureRules(), [a.min_cell_size for a in contracts.agreements])
    started = time.perf_counter()
    tables, specs = prepared(release.tables)
    protect(tables, specs, rules)
    return {
        "metrics": round(metrics_seconds, 2),
        "suppression": round(time.perf_counter() - started, 2),
        "published_cells": sum(t.height for t in tables.values()),
    }


def new_export(home: Path, school_id: str) -> Path:
    """The school re-sends its usage a day later (same rows): a new export, a new fingerprint."""
    from privacy.files import DATED_NAME, export_date

    latest = max((home / "landing" / school_id / "usage").glob("usage_*"), key=export_date)
    next_day = (export_date(latest) + timedelta(days=1)).isoformat()
    target = latest.with_name(DATED_NAME.sub(next_day, latest.name, count=1))
    shutil.copy2(latest, target)
    (home / INCREMENTAL_MARKER).write_text(json.dumps({"added": str(target.relative_to(home))}))
    return target


def floor(home: Path) -> dict:
    measured = run_child([sys.executable, "-m", "bench.floor", str(home), "--json"])
    result = json.loads(measured.output.strip().splitlines()[-1])
    return result | {
        "wall_seconds": round(measured.seconds, 2),
        "peak_rss_mb": round(measured.peak_rss_mb),
        "tree_rss_mb": round(measured.tree_rss_mb),
    }


def impact_run(home: Path) -> Measured:
    return run_child([sys.executable, "-m", "pipelines", "run", "--home", str(home)])


def benchmark(scale: str, workdir: Path, regenerate: bool, with_floor: bool = True) -> Report:
    home = (workdir / f"bench-{scale}").resolve()
    rows, generate_seconds = generate(home, scale, regenerate)
    report = Report(scale, SCALES[scale], rows, round(generate_seconds, 2))
    if with_floor:
        floor(home)  # warm the page cache so the pipeline and the floor read the same way
    full = impact_run(home)
    keep_quarantine_originals(home)
    report.pipeline = {
        "seconds": round(full.seconds, 2),
        "peak_rss_mb": round(full.peak_rss_mb),
        "tree_rss_mb": round(full.tree_rss_mb),
    }
    report.stages = dagster_stages(home) | release_split(home)
    new_export(home, INCREMENTAL_SCHOOL)
    incremental = impact_run(home)
    report.incremental = {
        "school": INCREMENTAL_SCHOOL,
        "seconds": round(incremental.seconds, 2),
        "peak_rss_mb": round(incremental.peak_rss_mb),
        "tree_rss_mb": round(incremental.tree_rss_mb),
        "share_of_full": round(incremental.seconds / full.seconds, 3),
    }
    if not with_floor:  # large: the bare floor holds every session in memory (~24 GB at 100M rows)
        return _with_machine(report)
    report.floor = floor(home)
    report.ratios = {
        "pipeline_over_floor_wall": round(full.seconds / report.floor["wall_seconds"], 2),
        "pipeline_over_floor_engine": round(full.seconds / report.floor["seconds"], 2),
    }
    return _with_machine(report)


def _with_machine(report: Report) -> Report:
    # A shared machine (other jobs running) slows both sides; the load says how shared it was.
    report.machine = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
    }
    return report


def peak_mb(measured: dict) -> int:
    """The larger of the biggest single process (exact) and the sampled tree (misses short spikes)."""
    return max(measured["peak_rss_mb"], measured["tree_rss_mb"])


def table(report: Report) -> str:
    rows = report.usage_rows
    s = report.stages
    lines = [
        f"scale {report.scale}: {report.generator} → {rows:,} usage rows",
        f"{'stage':<34}{'seconds':>9}{'rows/s':>12}{'peak RSS MB':>13}{'× floor':>9}",
    ]

    def line(name: str, seconds: float, rss: float | str = "", ratio: bool = True) -> None:
        rate = f"{rows / seconds:,.0f}" if seconds else "-"
        times = f"{seconds / report.floor['seconds']:.1f}" if ratio and report.floor else ""
        lines.append(f"{name:<34}{seconds:>9.2f}{rate:>12}{rss!s:>13}{times:>9}")

    line("impact run (full, wall)", report.pipeline["seconds"], peak_mb(report.pipeline))
    line("  staging, all schools (wall)", s["staging_wall"])
    line("  staging, sum of school steps", s["staging_total"])
    line("  release step", s["release_step"])
    line("    metrics (plain functions)", s["metrics"])
    line("    disclosure control", s["suppression"])
    line("  reports (rendering)", s["reports_step"])
    line("  Dagster run bookkeeping", s["dagster_run_overhead"])
    other = report.pipeline["seconds"] - s["staging_wall"] - s["release_step"] - s["reports_step"]
    line("  outside runs (imports, checks)", other)
    line(
        f"impact run after {report.incremental['school']} re-sends",
        report.incremental["seconds"],
        peak_mb(report.incremental),
    )
    if not report.floor:
        lines.append("floor: not run (--no-floor)")
        return "\n".join(lines)
    line("floor (engine work)", report.floor["seconds"], "", ratio=False)
    line("floor (process wall)", report.floor["wall_seconds"], peak_mb(report.floor), ratio=False)
    lines.append(
        f"pipeline / floor: {report.ratios['pipeline_over_floor_engine']}× engine time, "
        f"{report.ratios['pipeline_over_floor_wall']}× process wall; incremental = "
        f"{report.incremental['share_of_full']:.0%} of a full run"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    parser.add_argument("--regenerate", action="store_true", help="generate the consortium again")
    parser.add_argument("--output", type=Path, help="JSON path (default bench/results/pipeline-<scale>.json)")
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the floor (large: it holds every session in memory)"
    )
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashed child never dumps restricted data
    report = benchmark(args.scale, args.workdir, args.regenerate, with_floor=not args.no_floor)
    print(table(report))
    output = args.output or RESULTS / f"pipeline-{args.scale}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
