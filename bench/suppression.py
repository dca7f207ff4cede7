"""Benchmark: suppress and audit linked consortium tables (~50,000 cells), MIP vs greedy heuristic.

Run: `python -m bench.suppression [--schools 200] [--seed 7]`; writes bench/results/suppression.json.
Synthetic data only: 200 schools × 10 subgroups (2–6 values each, with totals) × 5 measures in a
reach table, linked to a per-school usage table and a consortium-by-subgroup table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl

from privacy.suppression import SUPPRESSED, DisclosureRules, protect
from privacy.suppression.tables import consortium_specs, consortium_tables

RESULTS = Path(__file__).parent / "results" / "suppression.json"


def run_method(tables: dict[str, pl.DataFrame], method: str, rules: DisclosureRules) -> dict:
    started = time.perf_counter()
    result = protect(tables, consortium_specs(), rules, method=method)
    seconds = time.perf_counter() - started
    rows = sum(frame.height for frame in tables.values())
    counts = pl.concat(
        [f.filter(pl.col("measure") == "students").select("status") for f in result.tables.values()]
    )
    hidden_counts = counts.filter(pl.col("status") == SUPPRESSED).height
    return {
        "method": result.stats.method,
        "seconds_total": round(seconds, 2),
        "seconds_pattern": round(result.stats.seconds, 2),
        "seconds_audit": round(result.audit.seconds, 2),
        "rows": rows,
        "rows_not_exact": len(result.cells),
        "rows_not_exact_share": round(len(result.cells) / rows, 4),
        "count_rows": counts.height,
        "count_rows_suppressed": hidden_counts,
        "count_rows_suppressed_share": round(hidden_counts / counts.height, 4),
        "primary_count_rows": sum(
            1 for c in result.cells if c.reason.startswith("primary") and c.measure == "students"
        ),
        "students_hidden": sum(
            int(v)
            for f in tables.values()
            for v, s in zip(
                f.filter(pl.col("measure") == "students")["value"],
                result.tables[next(k for k, g in tables.items() if g is f)].filter(
                    pl.col("measure") == "students"
                )["status"],
                strict=True,
            )
            if s == SUPPRESSED
        ),
        "cut_rounds": result.stats.cut_rounds,
        "cuts": result.stats.cuts,
        "attacker_lps": result.stats.attacker_lps,
        "audit_passed": result.audit.passed,
        "audit_cells_checked": result.audit.cells_checked,
        "audit_narrowest": None
        if result.audit.narrowest is None
        else {
            "table": result.audit.narrowest.table,
            "cell": result.audit.narrowest.cell,
            "width": result.audit.narrowest.width,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    tables = consortium_tables(args.schools, args.seed)
    rules = DisclosureRules()
    results = {"schools": args.schools, "seed": args.seed, "methods": {}}
    for method in ("mip", "greedy"):
        outcome = run_method(tables, method, rules)
        results["methods"][method] = outcome
        print(
            f"{method:>6}: {outcome['seconds_total']:6.1f} s, count cells suppressed "
            f"{outcome['count_rows_suppressed']}/{outcome['count_rows']} "
            f"({outcome['count_rows_suppressed_share']:.1%}), rows not exact {outcome['rows_not_exact_share']:.1%}, "
            f"students hidden {outcome['students_hidden']}, audit {'passed' if outcome['audit_passed'] else 'FAILED'}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
