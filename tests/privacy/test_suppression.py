"""Literature fixtures and rules of disclosure control (synthetic data only)."""

import polars as pl
import pytest

from privacy.suppression import (
    BANDED,
    PUBLISHED,
    SUPPRESSED,
    SUPPRESSED_SECONDARY,
    DisclosureRules,
    TableSpec,
    audit,
    protect,
    strictest_rules,
)
from privacy.suppression.tables import (
    USERS_SPLIT,
    consortium_specs,
    consortium_tables,
    tidy_counts_with_margins,
    users_split_table,
)

GRID = TableSpec("grid", ("school_id", "group"), totals={"school_id": "ALL", "group": "all"})


def grid(counts: dict[tuple[str, str], int]) -> pl.DataFrame:
    return tidy_counts_with_margins(counts, GRID.dims, GRID.totals)


def status_of(frame: pl.DataFrame, **dims: str) -> str:
    row = frame.filter(*(pl.col(d) == v for d, v in dims.items()))
    assert row.height == 1, dims
    return row["status"][0]


def hidden(frame: pl.DataFrame, dims: tuple[str, ...]) -> set[tuple[str, ...]]:
    rows = frame.filter(pl.col("status") != PUBLISHED).select(dims).rows()
    return set(rows)


def with_status(frame: pl.DataFrame, dims: tuple[str, ...], cells: set[tuple[str, ...]]) -> pl.DataFrame:
    """A hand-made suppression pattern, for auditing naive patterns."""
    mask = pl.Series([tuple(r) in cells for r in frame.select(dims).rows()])
    return frame.with_columns(
        pl.when(mask).then(None).otherwise(pl.col("value")).alias("value"),
        pl.when(mask).then(None).otherwise(pl.col("n")).alias("n"),
        pl.when(mask).then(pl.lit(SUPPRESSED)).otherwise(pl.col("status")).alias("status"),
    )


def test_two_by_two_with_one_small_cell_hides_the_four_cycle_and_keeps_margins():
    table = grid({("A", "x"): 4, ("A", "y"): 30, ("B", "x"): 25, ("B", "y"): 40})
    result = protect({"grid": table}, [GRID])
    assert hidden(result.tables["grid"], GRID.dims) == {("A", "x"), ("A", "y"), ("B", "x"), ("B", "y")}
    reasons = {(c.dims["school_id"], c.dims["group"]): c.reason for c in result.cells}
    assert reasons[("A", "x")] == "primary: 4 students (< 10)"
    assert reasons[("B", "y")].startswith("complementary: protects students[group=x, school_id=A]")
    assert result.audit.passed and result.audit.cells_checked == 4
    assert result.audit.narrowest.width >= 10
    published = result.tables["grid"].filter(pl.col("status") == PUBLISHED)
    assert published.filter(pl.col("value").is_null()).height == 0
    assert result.tables["grid"].filter(pl.col("status") == SUPPRESSED)["value"].null_count() == 4


def test_a_row_with_two_unsafe_cells_needs_a_third_cell():
    counts = {("A", "x"): 3, ("A", "y"): 4, ("A", "z"): 50, ("B", "x"): 30, ("B", "y"): 20, ("B", "z"): 40}
    counts |= {("C", "x"): 25, ("C", "y"): 35, ("C", "z"): 45}
    table = grid(counts)
    # the two small cells hiding each other: x + y = 7 is published by the row, so each is pinned in [0, 7]
    naive = with_status(table, GRID.dims, {("A", "x"), ("A", "y"), ("B", "x"), ("B", "y")})
    naive_report = audit({"grid": naive}, [GRID], DisclosureRules())
    assert not naive_report.passed
    assert any("narrower than 10" in f.problem for f in naive_report.failures)

    result = protect({"grid": table}, [GRID])
    pattern = hidden(result.tables["grid"], GRID.dims)
    assert {("A", "x"), ("A", "y")} <= pattern
    assert len({cell for cell in pattern if cell[0] == "A"}) >= 3
    assert result.audit.passed


def test_a_small_subgroup_revealed_by_the_consortium_total_in_a_linked_table():
    schools = TableSpec("schools", ("school_id", "sex"), totals={"school_id": "ALL", "sex": "all"})
    consortium = TableSpec("consortium", ("sex",), totals={"sex": "all"})
    counts = {("A", "F"): 3, ("A", "M"): 50, ("B", "F"): 20, ("B", "M"): 30, ("C", "F"): 15, ("C", "M"): 25}
    full = tidy_counts_with_margins(counts, schools.dims, schools.totals)
    per_school = full.filter(pl.col("school_id") != "ALL")  # the consortium row lives in the other table
    by_sex = full.filter(pl.col("school_id") == "ALL").drop("school_id")

    alone = protect({"schools": per_school}, [schools])
    assert alone.audit.passed  # on its own the per-school table looks safe…
    together_naive = {"schools": alone.tables["schools"], "consortium": by_sex}
    report = audit(together_naive, [schools, consortium], DisclosureRules())
    assert not report.passed  # …but consortium F = 38 minus B and C gives A's 3 girls
    assert any("school_id=A" in f.cell and "sex=F" in f.cell for f in report.failures)

    result = protect({"schools": per_school, "consortium": by_sex}, [schools, consortium])
    assert result.audit.passed
    assert status_of(result.tables["schools"], school_id="A", sex="F") == SUPPRESSED


def test_linked_cells_share_status_and_derived_measures_become_secondary_everywhere():
    reach = TableSpec("reach", ("school_id", "group"), totals={"school_id": "ALL", "group": "all"})
    usage = TableSpec("usage", ("school_id",), totals={"school_id": "ALL"})
    counts = {("A", "x"): 4, ("A", "y"): 8, ("B", "x"): 25, ("B", "y"): 40, ("C", "x"): 30, ("C", "y"): 33}
    table = tidy_counts_with_margins(counts, reach.dims, reach.totals)
    means = table.with_columns(measure=pl.lit("mean_minutes"), value=pl.col("value") * 1.5)
    school_totals = table.filter(pl.col("group") == "all").drop("group")
    usage_table = pl.concat([school_totals, school_totals.with_columns(measure=pl.lit("mean_minutes"))])
    result = protect({"reach": pl.concat([table, means]), "usage": usage_table}, [reach, usage])
    assert result.audit.passed
    for frame, extra in ((result.tables["reach"], {"group": "all"}), (result.tables["usage"], {})):
        students = frame.filter(pl.col("measure") == "students")
        mean = frame.filter(pl.col("measure") == "mean_minutes")
        # school A's total (12) is hidden in both tables or in neither
        assert status_of(students, school_id="A", **extra) == status_of(
            result.tables["usage"].filter(pl.col("measure") == "students"), school_id="A"
        )
        for school in ("A", "B", "C", "ALL"):
            if status_of(students, school_id=school, **extra) == SUPPRESSED:
                assert status_of(mean, school_id=school, **extra) == SUPPRESSED_SECONDARY
    mean_ax = result.tables["reach"].filter(pl.col("measure") == "mean_minutes", school_id="A", group="x")
    assert mean_ax["status"][0] == SUPPRESSED_SECONDARY and mean_ax["value"][0] is None
    assert any(c.reason == "secondary: count suppressed" for c in result.cells)


def test_percentages_with_small_numerator_or_complement_are_banded_or_suppressed():
    spec = TableSpec("pct", ("school_id",), percentages={"pct_users": "users"})
    rows = [
        ("A", 200, 3.0 / 200 * 100),  # 3 users: band <5%
        ("B", 30, 3.0 / 30 * 100),  # 3 users but 10%: no band fits
        ("C", 250, 248.0 / 250 * 100),  # 2 non-users: band >95%
        ("D", 100, 40.0),  # safe
        ("E", 6, 50.0),  # denominator itself is small
    ]
    frame = pl.DataFrame(
        [
            {"school_id": s, "measure": "pct_users", "value": v, "n": n, "status": PUBLISHED, "note": ""}
            for s, n, v in rows
        ]
    )
    result = protect({"pct": frame}, [spec]).tables["pct"]
    assert result.filter(school_id="A").select("status", "note", "n").row(0) == (BANDED, "<5%", 200)
    assert result.filter(school_id="A")["value"][0] is None
    assert status_of(result, school_id="B") == SUPPRESSED
    assert result.filter(school_id="C").select("status", "note").row(0) == (BANDED, ">95%")
    assert result.filter(school_id="D").select("status", "value").row(0) == (PUBLISHED, 40.0)
    assert status_of(result, school_id="E") == SUPPRESSED


def test_zeros_follow_the_policy():
    counts = {("A", "x"): 0, ("A", "y"): 30, ("B", "x"): 25, ("B", "y"): 40}
    safe = protect({"grid": grid(counts)}, [GRID])
    assert hidden(safe.tables["grid"], GRID.dims) == set()
    unsafe = protect({"grid": grid(counts)}, [GRID], DisclosureRules(zeros_unsafe=True))
    assert ("A", "x") in hidden(unsafe.tables["grid"], GRID.dims)
    assert unsafe.audit.passed


def test_dominance_rule_suppresses_a_sum_with_one_dominant_contributor():
    spec = TableSpec("minutes", ("school_id",), totals={"school_id": "ALL"}, sum_measures=("minutes",))
    frame = pl.DataFrame(
        [
            {"school_id": s, "measure": "minutes", "value": v, "n": n, "status": PUBLISHED, "note": ""}
            for s, v, n in (("A", 1000.0, 12), ("B", 500.0, 20), ("C", 700.0, 25), ("ALL", 2200.0, 57))
        ]
    )
    contributions = pl.DataFrame(
        {"school_id": ["A"] * 12, "measure": ["minutes"] * 12, "contribution": [900.0, 50.0] + [5.0] * 10}
    )
    rules = DisclosureRules(dominance_p=10.0)
    result = protect({"minutes": frame}, [spec], rules, contributions={"minutes": contributions})
    assert status_of(result.tables["minutes"], school_id="A") == SUPPRESSED
    assert any(c.reason.startswith("primary: dominance") for c in result.cells)
    assert result.audit.passed
    without = protect({"minutes": frame}, [spec], rules)
    assert status_of(without.tables["minutes"], school_id="A") == PUBLISHED


def test_strictest_rules_never_weaker_than_a_contract():
    assert strictest_rules(DisclosureRules(), [5, 11, 10]).min_cell_size == 11
    assert strictest_rules(DisclosureRules(min_cell_size=20), [11]).min_cell_size == 20


def test_audit_reads_only_published_values_and_checks_truth_for_sanity():
    table = grid({("A", "x"): 4, ("A", "y"): 30, ("B", "x"): 25, ("B", "y"): 40})
    result = protect({"grid": table}, [GRID])
    blind = audit(result.tables, [GRID], DisclosureRules())
    assert blind.passed and blind.narrowest == result.audit.narrowest
    wrong_truth = table.with_columns(
        pl.when(pl.col("group") == "x").then(pl.col("value") + 100).otherwise(pl.col("value")).alias("value")
    )
    with pytest.raises((AssertionError, ValueError)):
        audit(result.tables, [GRID], DisclosureRules(), truth={"grid": wrong_truth})


def test_margins_that_do_not_add_up_are_refused():
    table = grid({("A", "x"): 4, ("A", "y"): 30, ("B", "x"): 25, ("B", "y"): 40})
    broken = table.with_columns(
        pl.when((pl.col("school_id") == "ALL") & (pl.col("group") == "all"))
        .then(1.0)
        .otherwise(pl.col("value"))
        .alias("value")
    )
    with pytest.raises(ValueError, match="margins must be exact"):
        protect({"grid": broken}, [GRID])


def test_mip_never_costs_more_than_greedy_and_both_pass_the_audit():
    tables = consortium_tables(schools=12, seed=3)
    costs = {}
    for method in ("mip", "greedy"):
        result = protect(tables, consortium_specs(), method=method)
        assert result.audit.passed, result.audit.summary()
        students = pl.concat(
            [f.filter(pl.col("measure") == "students").select("value") for f in tables.values()]
        )
        hidden_rows = (
            pl.concat(
                [f.filter(pl.col("measure") == "students").select("status") for f in result.tables.values()]
            )["status"]
            == SUPPRESSED
        )
        costs[method] = float((students["value"] + 1).filter(hidden_rows).sum())
    assert costs["mip"] <= costs["greedy"] + 1e-6


def test_auto_chooses_mip_or_greedy_by_the_count_of_primaries_never_by_the_clock():
    tables = consortium_tables(schools=12, seed=3)
    few = protect(tables, consortium_specs(), DisclosureRules(), method="auto")
    assert few.stats.method == "mip"  # small components: the optimum
    many = protect(tables, consortium_specs(), DisclosureRules(mip_max_primaries=1), method="auto")
    assert many.stats.method == "greedy" and many.audit.passed
    greedy = protect(tables, consortium_specs(), DisclosureRules(), method="greedy")
    assert {k: v.equals(greedy.tables[k]) for k, v in many.tables.items()} == dict.fromkeys(tables, True)
    # the same data always gets the same pattern, however long the solves took
    again = protect(tables, consortium_specs(), DisclosureRules(), method="auto")
    assert all(again.tables[k].equals(v) for k, v in few.tables.items())


@pytest.mark.parametrize("seed", [3, 8, 21])
def test_greedy_checks_only_new_and_failed_cells_and_finds_what_full_checks_find(seed, monkeypatch):
    """A hidden cell that passed its attacker LPs keeps passing as more cells are hidden, so the
    greedy pattern re-checks only the cells hidden since and those that failed. Here, at every
    round, checking every hidden cell afresh finds exactly the cells the round found failing."""
    from privacy.suppression import complementary
    from privacy.suppression.cells import build_cell_system
    from privacy.suppression.protect import additive_primaries, cell_needs

    rounds, failing = [], []
    explore, target_failures = complementary._explore, complementary._target_failures

    def recording_explore(lp, needs, targets):
        rounds.append(set(lp.hidden))
        failing.append(set())
        return explore(lp, needs, targets)

    def recording_target_failures(system, needs, lp, target):
        cuts = target_failures(system, needs, lp, target)
        if cuts:
            failing[-1].add(target)
        return cuts

    monkeypatch.setattr(complementary, "_explore", recording_explore)
    monkeypatch.setattr(complementary, "_target_failures", recording_target_failures)
    system = build_cell_system({USERS_SPLIT.name: users_split_table(30, seed)}, [USERS_SPLIT])
    rules = DisclosureRules()
    needs = cell_needs(system, rules, additive_primaries(system, rules))
    for cells in complementary._cell_components(system):
        primaries = [c for c in cells if needs.primary[c]]
        if primaries:
            complementary.greedy_pattern(system, needs, primaries)
    monkeypatch.undo()
    assert len(rounds) >= 2 and any(failing)  # attacker rounds after the first, with failures
    for pattern, found in zip(rounds, failing, strict=True):
        assert exact_failures(system, needs, pattern) == found


def exact_failures(system, needs, pattern):
    """The reference: both attacker LPs of every hidden cell, no witnesses, no shortcuts."""
    from privacy.suppression.attacker import ComponentLP, hidden_components
    from privacy.suppression.complementary import TOLERANCE

    def short(distance, need):
        return need > TOLERANCE and distance < need - TOLERANCE * max(1.0, need)

    failing = set()
    for cells, rows in hidden_components(system, pattern):
        lp = ComponentLP(system, cells, rows, lambda c: needs.value[c])
        for target in cells:
            up = lp.move(target, 1, needs.value[target]).distance
            down = lp.move(target, -1, needs.value[target]).distance
            if needs.primary[target]:
                fails = short(up, needs.upper[target]) or short(down, needs.lower[target])
            else:
                fails = short(up + down, needs.sliding[target])
            if fails:
                failing.add(target)
    return failing
