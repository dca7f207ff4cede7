"""What encryption at rest costs: staging write + read, encrypted (the pipeline's staging store)
versus plain Parquet (the floor), on the same synthetic usage frame, in one run.

    python -m bench.encryption [--rows 10000000] [--students 100000] [--repeat 3] [--seed 0]

The plain path is what staging did before encryption (`write_parquet` through the same atomic,
fsync'ed 0600 replace; `read_parquet`); the encrypted path is
`write_staging_frame` + `read_staging_frame` (Parquet to memory, AES-256-GCM with the school's data
key, atomic 0600 write; and back). Best-of-`repeat` wall times; JSON in bench/results/encryption.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from privacy.atomic import atomic_path
from privacy.encryption import DataKeyStore, MasterKey
from privacy.staging_store import read_staging_frame, write_staging_frame
from privacy.zones import Home

RESULTS = Path(__file__).parent / "results" / "encryption.json"
BENCH_MASTER = b"bench-master-key-" + b"0" * 32  # synthetic, this run only


def usage_frame(rows: int, students: int, seed: int) -> pl.DataFrame:
    """Staging `usage` shape: school_id, student_pid (64 hex), key_version, resource_id, week, minutes."""
    rng = np.random.default_rng(seed)
    pids = pl.Series([f"{i:064x}" for i in rng.integers(0, 2**62, students)])
    return pl.DataFrame(
        {
            "school_id": pl.Series(["sch01"] * rows),
            "student_pid": pids.gather(rng.integers(0, students, rows)),
            "key_version": pl.Series(["1"] * rows),
            "resource_id": pl.Series([f"res{i:04d}" for i in rng.integers(0, 400, rows)]),
            "week": pl.Series([f"2026-W{i:02d}" for i in rng.integers(1, 53, rows)]),
            "minutes": rng.gamma(2.0, 12.0, rows).round(1),
        }
    ).sort("student_pid", "week", "resource_id")


def write_plain(path: Path, frame: pl.DataFrame) -> None:
    with atomic_path(path, mode=0o600) as tmp:
        frame.write_parquet(tmp, statistics=False)


def best_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(frame: pl.DataFrame, folder: Path, repeat: int) -> dict:
    home = Home(folder / "home")
    home.create()
    keys = DataKeyStore(home.root, MasterKey(BENCH_MASTER))
    plain = folder / "plain.parquet"
    sealed = home.staging_file("usage", "sch01")
    results = {
        "plain_write_s": best_of(repeat, lambda: write_plain(plain, frame)),
        "plain_read_s": best_of(repeat, lambda: pl.read_parquet(plain)),
        "encrypted_write_s": best_of(repeat, lambda: write_staging_frame(sealed, frame, "sch01", keys=keys)),
        "encrypted_read_s": best_of(repeat, lambda: read_staging_frame(sealed, "sch01", keys=keys)),
    }
    assert read_staging_frame(sealed, "sch01", keys=keys).equals(frame)  # the bench reads real data back
    results["plain_bytes"] = plain.stat().st_size
    results["encrypted_bytes"] = sealed.stat().st_size
    plain_total = results["plain_write_s"] + results["plain_read_s"]
    encrypted_total = results["encrypted_write_s"] + results["encrypted_read_s"]
    results["overhead_ratio"] = encrypted_total / plain_total
    results["overhead_s"] = encrypted_total - plain_total
    results["rows_per_s_encrypted_round_trip"] = frame.height / encrypted_total
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = usage_frame(args.rows, args.students, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-encryption-") as tmp:
        results = measure(frame, Path(tmp), args.repeat)
    report = {
        "benchmark": "staging write+read, AES-256-GCM envelope vs plain Parquet",
        "rows": args.rows,
        "students": args.students,
        "repeat": args.repeat,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "polars": pl.__version__},
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
