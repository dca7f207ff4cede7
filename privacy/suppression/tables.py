"""Synthetic tidy tables with every margin, for fixtures, tests and the benchmark (no real data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import product

import numpy as np
import polars as pl

from privacy.suppression.spec import TableSpec


def tidy_counts_with_margins(
    counts: Mapping[tuple[str, ...], int],
    dims: Sequence[str],
    totals: Mapping[str, str],
    measure: str = "students",
) -> pl.DataFrame:
    """One row per cell and per margin: every dim in `totals` also takes its total label.

    `counts` maps the innermost cells (one value per dim) to their student counts.
    """
    summed: dict[tuple[str, ...], int] = {}
    for cell, count in counts.items():
        choices = [
            (value, totals[d]) if d in totals else (value,) for d, value in zip(dims, cell, strict=True)
        ]
        for key in product(*choices):
            summed[key] = summed.get(key, 0) + count
    rows = [
        {
            **dict(zip(dims, key, strict=True)),
            "measure": measure,
            "value": float(v),
            "n": v,
            "status": "published",
            "note": "",
        }
        for key, v in sorted(summed.items())
    ]
    schema = {
        **dict.fromkeys(dims, pl.String),
        "measure": pl.String,
        "value": pl.Float64,
        "n": pl.Int64,
        "status": pl.String,
        "note": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


SUBGROUP_SIZES = (2, 2, 3, 3, 4, 4, 5, 5, 6, 6)


def consortium_specs() -> list[TableSpec]:
    reach = TableSpec(
        "reach",
        ("school_id", "subgroup", "subgroup_value"),
        totals={"school_id": "ALL", "subgroup_value": "all"},
        nested={"subgroup_value": "subgroup"},
        percentages={"pct_users": "users"},
    )
    usage = TableSpec("usage", ("school_id",), totals={"school_id": "ALL"})
    by_subgroup = TableSpec(
        "by_subgroup",
        ("subgroup", "subgroup_value"),
        totals={"subgroup_value": "all"},
        nested={"subgroup_value": "subgroup"},
    )
    return [reach, usage, by_subgroup]


def consortium_tables(schools: int = 200, seed: int = 7) -> dict[str, pl.DataFrame]:
    """Student counts per school × subgroup value with all margins, plus derived measures."""
    rng = np.random.default_rng(seed)
    sizes = np.clip(rng.lognormal(np.log(450), 0.8, schools).astype(int), 25, 3000)
    counts: dict[tuple[str, str, str], int] = {}
    for s, size in enumerate(sizes):
        school = f"S{s:03d}"
        for g, values in enumerate(SUBGROUP_SIZES):
            split = rng.multinomial(size, rng.dirichlet(np.full(values, 4.0)))
            for v, count in enumerate(split):
                counts[(school, f"g{g}", f"v{v}")] = int(count)
                counts[("ALL", f"g{g}", f"v{v}")] = counts.get(("ALL", f"g{g}", f"v{v}"), 0) + int(count)
            counts[(school, f"g{g}", "all")] = int(size)
            counts[("ALL", f"g{g}", "all")] = counts.get(("ALL", f"g{g}", "all"), 0) + int(size)
    reach = pl.DataFrame(
        [row for key, count in counts.items() for row in _reach_rows(key, count, rng)],
        schema=_schema(("school_id", "subgroup", "subgroup_value")),
    )
    usage = pl.DataFrame(
        [
            row
            for (school, g, v), count in counts.items()
            if g == "g0" and v == "all"
            for row in (
                _row({"school_id": school}, "students", float(count), count),
                _row({"school_id": school}, "mean_minutes", float(rng.gamma(4, 30)), count),
            )
        ],
        schema=_schema(("school_id",)),
    )
    by_subgroup = pl.DataFrame(
        [
            _row({"subgroup": g, "subgroup_value": v}, "students", float(count), count)
            for (school, g, v), count in counts.items()
            if school == "ALL"
        ],
        schema=_schema(("subgroup", "subgroup_value")),
    )
    return {"reach": reach, "usage": usage, "by_subgroup": by_subgroup}


def _schema(dims: tuple[str, ...]) -> dict[str, pl.DataType]:
    return {
        **dict.fromkeys(dims, pl.String),
        "measure": pl.String,
        "value": pl.Float64,
        "n": pl.Int64,
        "status": pl.String,
        "note": pl.String,
    }


def _row(dims: dict[str, str], measure: str, value: float | None, n: int) -> dict:
    return {**dims, "measure": measure, "value": value, "n": n, "status": "published", "note": ""}


def _reach_rows(key: tuple[str, str, str], count: int, rng: np.random.Generator) -> list[dict]:
    dims = dict(zip(("school_id", "subgroup", "subgroup_value"), key, strict=True))
    users = int(rng.binomial(count, 0.7)) if count else 0
    tested = int(rng.binomial(count, 0.85)) if count else 0
    return [
        _row(dims, "students", float(count), count),
        _row(dims, "pct_users", 100.0 * users / count if count else None, count),
        _row(dims, "mean_minutes", float(rng.gamma(4, 30)) if count else None, count),
        _row(dims, "mean_post", float(rng.normal(60, 10)) if tested else None, tested),
        _row(dims, "effect_size", float(rng.normal(0.15, 0.1)) if count else None, count),
    ]


USERS_SPLIT = TableSpec(
    "reach_users",
    ("school_id", "subgroup", "subgroup_value"),
    totals={"school_id": "ALL", "subgroup_value": "all"},
    nested={"subgroup_value": "subgroup"},
    count_measure="students",
    extra_counts=("users", "non_users"),
    row_sums={"students": ("users", "non_users")},
)


def users_split_table(schools: int = 30, seed: int = 7) -> pl.DataFrame:
    """Students, users and non-users per school × subgroup value, every margin and the row sum
    students = users + non_users: the shape of the pipeline's reach table, where a rare value (a
    small non-user count) makes the greedy pattern run several attacker rounds, not one."""
    rng = np.random.default_rng(seed)
    values = {"sex": ("F", "M", "X"), "grade": ("6", "7", "8"), "ell": ("Y", "N")}
    shares = {"sex": (0.49, 0.49, 0.02), "grade": (1 / 3, 1 / 3, 1 / 3), "ell": (0.1, 0.9)}
    people: dict[tuple[str, str, str], list[int]] = {}  # (school, subgroup, value) -> [students, users]
    for s in range(schools):
        school = f"S{s:03d}"
        size = int(rng.integers(30, 120))
        users = rng.random(size) < 0.85
        for subgroup, labels in values.items():
            picked = rng.choice(len(labels), size=size, p=shares[subgroup])
            for v, label in enumerate(labels):
                members = picked == v
                for where in ((school, subgroup, label), ("ALL", subgroup, label)):
                    totals = people.setdefault(where, [0, 0])
                    totals[0] += int(members.sum())
                    totals[1] += int(users[members].sum())
            for where in ((school, subgroup, "all"), ("ALL", subgroup, "all")):
                totals = people.setdefault(where, [0, 0])
                totals[0] += size
                totals[1] += int(users.sum())
    rows = [
        _row(dict(zip(USERS_SPLIT.dims, key, strict=True)), measure, float(value), value)
        for key, (students, users) in sorted(people.items())
        for measure, value in (("students", students), ("users", users), ("non_users", students - users))
    ]
    return pl.DataFrame(rows, schema=_schema(USERS_SPLIT.dims))
