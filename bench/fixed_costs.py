"""Benchmark: what every school costs whatever its size, against the floor's work for that school.

Why this exists: at `medium` (100 schools × ~94k usage rows) the pipeline is ~11× the floor and the
target is 2×. Most of the gap is paid per school, not per row: one Dagster run per school (the
design: a partition per school, one pod each in a cluster) and the contract's Great Expectations
suites on its staging (the blocking `staging_meets_contract` check). This measures both on schools of
medium's shape, in the same run as the floor on the same files, and prints the lower bound they
alone put on a medium run.

Run: `python -m bench.fixed_costs [--schools 8] [--workers 2] [--workdir DIR]`;
writes bench/results/fixed-costs.json. Synthetic data only (`generate_consortium`), deleted after.

1. generate `--schools` schools of 1,000 students × 44 weeks (medium's shape);
2. stage each school as `impact run` does (`_materialize_school`: its own Dagster run, the asset and
   its blocking check). The first school also pays the process's warm-up (imports, spaCy's model,
   GX's context), which every fresh process pays once; the rest give the per-school median;
3. one Dagster run of a partitioned asset and a blocking check that do nothing, on the same
   instance (SQLite, as `impact run`): the run's own cost, `--noop-runs` times;
4. the school's GX suites alone (`validate_school`: read the sealed staging, run every suite);
5. the floor (`bench.floor`) on the same schools, twice (the first warms the page cache).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg

from bench.pipeline import BENCH_ENV, RESULTS, SCALES

NOOP_PARTITIONS = dg.DynamicPartitionsDefinition(name="bench_noop_schools")
MEDIUM = SCALES["medium"]


@dg.asset(partitions_def=NOOP_PARTITIONS)
def noop_school() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 0})


@dg.asset_check(asset=noop_school, blocking=True)
def noop_check() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"checked": 0})


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def measure(workdir: Path, schools: int, workers: int, noop_runs: int) -> dict:
    os.environ.update(BENCH_ENV)
    from bench.floor import plan, run_floor
    from demo.generate import generate_consortium
    from pipelines.resources import ImpactHome
    from pipelines.runner import QUIET, _materialize_school, dagster_instance, preflight
    from privacy.zones import Home
    from transforms.validation import agreement_for_staging, validate_school

    home = Home(workdir / "fixed-costs")
    shutil.rmtree(home.root, ignore_errors=True)
    generate_consortium(
        home.root, schools=schools, students_per_school=MEDIUM["students_per_school"], weeks=MEDIUM["weeks"]
    )
    resource = ImpactHome(home=str(home.root))
    contracts, key = preflight(home, resource.pseudonym_key, fix_permissions=True)  # generated here
    instance = dagster_instance(home)
    school_ids = sorted(contracts.schools)
    instance.add_dynamic_partitions("schools", school_ids)

    school_runs = []
    for school_id in school_ids:
        seconds, failure = timed(_materialize_school, instance, resource, school_id)
        if failure:
            raise SystemExit(f"{school_id} did not stage: {failure}")
        school_runs.append(seconds)

    noop_keys = [f"n{i:03d}" for i in range(noop_runs)]
    instance.add_dynamic_partitions(NOOP_PARTITIONS.name, noop_keys)
    noop = []
    for partition in noop_keys:
        seconds, result = timed(
            dg.materialize,
            [noop_school, noop_check],
            partition_key=partition,
            instance=instance,
            run_config=QUIET,
            tags={"school": partition},
        )
        assert result.success
        noop.append(seconds)

    suites, expectations = [], 0
    for school_id in school_ids:
        seconds, report = timed(
            validate_school, home, agreement_for_staging(home, contracts, school_id), school_id
        )
        suites.append(seconds)
        expectations = max(expectations, report["expectations_evaluated"])

    files = plan(home.root)
    run_floor(files, key)  # warm the page cache, as bench.pipeline does
    floor = run_floor(files, key)

    per_school = median(school_runs[1:])
    dagster_run, gx_suites = median(noop[2:]), median(suites[1:])
    floor_per_school = round(floor.seconds / len(files), 3)
    at_medium = MEDIUM["schools"]
    bound = at_medium * (dagster_run + gx_suites) / workers
    shutil.rmtree(home.root, ignore_errors=True)
    return {
        "schools": len(school_ids),
        "shape": {k: MEDIUM[k] for k in ("students_per_school", "weeks")},
        "usage_rows_per_school": round(floor.usage_rows / len(files)),
        "first_school_seconds": round(school_runs[0], 3),
        "warm_up_seconds": round(school_runs[0] - per_school, 3),
        "school_run_seconds": per_school,
        "dagster_run_seconds": dagster_run,
        "gx_suites_seconds": gx_suites,
        "expectations_per_school": expectations,
        "rest_of_school_seconds": round(per_school - dagster_run - gx_suites, 3),
        "floor_seconds_per_school": floor_per_school,
        "medium": {
            "schools": at_medium,
            "workers": workers,
            "floor_seconds": round(at_medium * floor_per_school, 1),
            "two_x_floor_seconds": round(2 * at_medium * floor_per_school, 1),
            "dagster_runs_and_suites_alone_seconds": round(bound, 1),
        },
    }


def print_table(report: dict) -> None:
    rows = [
        ("one school's staging run (median)", report["school_run_seconds"]),
        ("  of which the Dagster run itself", report["dagster_run_seconds"]),
        (f"  of which {report['expectations_per_school']} GX expectations", report["gx_suites_seconds"]),
        ("  of which intake, scrubbing, sealing", report["rest_of_school_seconds"]),
        ("the floor's work for one school", report["floor_seconds_per_school"]),
        ("warm-up, once per process", report["warm_up_seconds"]),
    ]
    print(f"per school ({report['usage_rows_per_school']:,} usage rows):")
    for name, seconds in rows:
        print(f"  {name:<42} {seconds:7.3f} s")
    medium = report["medium"]
    print(
        f"at medium ({medium['schools']} schools, {medium['workers']} workers): the floor ≈ "
        f"{medium['floor_seconds']} s, 2× the floor ≈ {medium['two_x_floor_seconds']} s; Dagster runs "
        f"and GX suites alone ≈ {medium['dagster_runs_and_suites_alone_seconds']} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--noop-runs", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    args = parser.parse_args()
    if args.schools < 2:
        parser.error("--schools must be at least 2 (the first school also pays the warm-up)")
    if args.noop_runs < 3:
        parser.error("--noop-runs must be at least 3 (the first two warm the instance up)")
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        report = measure(Path(scratch), args.schools, args.workers, args.noop_runs)
    report["machine"] = {"cpus": os.cpu_count(), "load_average_1m_at_end": round(os.getloadavg()[0], 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fixed-costs.json").write_text(json.dumps(report, indent=1) + "\n")
    print_table(report)


if __name__ == "__main__":
    main()
