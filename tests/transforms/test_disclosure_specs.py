"""The pipeline's own tables through disclosure control: relations a reader could use are declared."""

import polars as pl

from privacy.suppression import DisclosureRules, audit, protect
from transforms.disclosure_specs import prepared
from transforms.metrics import sample_flow


def analysis(pre_only_at_b: int) -> pl.DataFrame:
    rows = []
    for school, both, pre_only in (("a", 40, 12), ("b", 50, pre_only_at_b), ("c", 45, 15)):
        rows += [(school, f"{school}{i}", 50.0, 55.0) for i in range(both)]
        rows += [(school, f"{school}x{i}", 50.0, None) for i in range(pre_only)]
    return pl.DataFrame(rows, schema=["school_id", "student_pid", "pre", "post"], orient="row")


def test_small_attrition_cannot_be_subtracted_from_published_counts():
    tables, specs = prepared({"sample_flow": sample_flow(analysis(pre_only_at_b=6))})
    result = protect(tables, specs, DisclosureRules())
    flow = result.tables["sample_flow"]
    hidden = {
        (r["school_id"], r["tests"])
        for r in flow.filter(pl.col("status") == "suppressed").iter_rows(named=True)
    }
    assert ("b", "pre_only") in hidden
    assert len(hidden) >= 4  # its row and column partners too, or the margins give it away
    check = audit(result.tables, specs, DisclosureRules())
    assert check.passed and check.narrowest.width >= 10


def test_attrition_counts_are_cells_and_differentials_follow_their_arms():
    from transforms.disclosure_specs import hide_differentials_of_hidden_arms
    from transforms.impact import impact_tables
    from transforms.impact.simulate import SimulationDesign, simulate_analysis_frame

    analysis = simulate_analysis_frame(SimulationDesign(), seed=3)
    tables, specs = prepared(impact_tables(analysis))
    attrition = tables["attrition"]
    assert set(attrition["partition"]) == {"usage", "band"}
    assert "n_attrited" in set(attrition["measure"])
    assert "attrition_differential" in tables
    # every partition's members add up to its "all" row
    counts = attrition.filter(pl.col("measure") == "n_students")
    for part in ("usage", "band"):
        rows = counts.filter(pl.col("partition") == part)
        total = rows.filter(pl.col("group") == "all")["value"].item()
        assert rows.filter(pl.col("group") != "all")["value"].sum() == total
    result = protect(tables, specs, DisclosureRules(min_cell_size=40))
    protected = hide_differentials_of_hidden_arms(result.tables)
    assert audit(result.tables, specs, DisclosureRules(min_cell_size=40)).passed
    hidden_arms = protected["attrition"].filter(pl.col("status").str.starts_with("suppressed"))
    if hidden_arms.height:
        diffs = protected["attrition_differential"]
        assert diffs.filter(pl.col("status") == "suppressed_secondary").height > 0


def test_a_small_group_of_non_users_cannot_be_subtracted_from_students_and_users():
    from transforms.metrics import reach_table

    rows = []
    for school, students, users in (("a", 27, 18), ("b", 60, 30), ("c", 55, 25)):
        rows += [(school, f"{school}{i}", i < users, "F" if i % 2 else "M") for i in range(students)]
    analysis = pl.DataFrame(rows, schema=["school_id", "student_pid", "user", "sex"], orient="row")
    tables, specs = prepared({"reach": reach_table(analysis, subgroups=("sex",))})
    result = protect(tables, specs, DisclosureRules())
    reach = result.tables["reach"]

    def row(school, measure):
        frame = reach.filter(
            (pl.col("school_id") == school) & (pl.col("subgroup") == "all") & (pl.col("measure") == measure)
        )
        return frame.row(0, named=True)

    assert row("a", "non_users")["status"] == "suppressed"
    # students - users would give the 9 back: at least one of them is hidden too
    assert "suppressed" in (row("a", "students")["status"], row("a", "users")["status"])
    # in no row is exactly one of the three hidden: it would be the difference of the other two
    counts = reach.filter(pl.col("measure").is_in(["students", "users", "non_users"]))
    hidden = counts.group_by("school_id", "subgroup", "subgroup_value").agg(
        (pl.col("status") == "suppressed").sum().alias("hidden")
    )
    assert 1 not in hidden["hidden"].to_list()
    check = audit(result.tables, specs, DisclosureRules())
    assert check.passed


def test_one_schools_small_arm_cannot_be_read_off_the_all_schools_row():
    from transforms.impact import impact_tables
    from transforms.impact.simulate import SimulationDesign, simulate_analysis_frame

    analysis = simulate_analysis_frame(SimulationDesign(), seed=5)
    first = analysis["school_id"].min()
    # keep only 6 non-users in the first school
    keep = ~((pl.col("school_id") == first) & ~pl.col("user")) | (
        pl.int_range(pl.len()).over("school_id", "user") < 6
    )
    tables, specs = prepared(impact_tables(analysis.filter(keep)))
    spec = next(s for s in specs if s.name == "impact_by_school")
    assert spec.totals["school_id"] == "ALL"
    result = protect(tables, specs, DisclosureRules())
    counts = result.tables["impact_by_school"].filter(
        (pl.col("comparison") == "users_vs_nonusers") & (pl.col("measure") == "n_comparison")
    )
    hidden = counts.filter(pl.col("status") == "suppressed")["school_id"].to_list()
    assert first in hidden and len(hidden) >= 2  # a second school (or ALL) hides it from subtraction
    assert audit(result.tables, specs, DisclosureRules()).passed


def test_the_published_view_audits_with_the_same_relations_when_a_comparison_is_not_estimable():
    from transforms.impact import impact_tables
    from transforms.impact.simulate import SimulationDesign, simulate_analysis_frame
    from transforms.publication import finalize

    analysis = simulate_analysis_frame(SimulationDesign(), seed=9).filter(pl.col("band") != "high")
    tables, specs = prepared(impact_tables(analysis))
    result = protect(tables, specs, DisclosureRules())
    published = {name: finalize(frame) for name, frame in result.tables.items()}
    seen, seen_specs = prepared(published)  # what the blocking check re-audits from the files
    assert [dict(s.totals) for s in seen_specs] == [dict(s.totals) for s in specs]
    assert audit(seen, seen_specs, DisclosureRules()).passed


def test_a_small_usage_band_cannot_be_read_off_users_minus_the_other_bands():
    from transforms.impact import impact_tables
    from transforms.impact.simulate import SimulationDesign, simulate_analysis_frame

    analysis = simulate_analysis_frame(SimulationDesign(), seed=11)
    first = analysis["school_id"].min()
    # only 3 high users left in the first school
    high_here = (pl.col("school_id") == first) & (pl.col("band") == "high")
    keep = ~high_here | (pl.int_range(pl.len()).over("school_id", "band") < 3)
    tables, specs = prepared(impact_tables(analysis.filter(keep)))
    result = protect(tables, specs, DisclosureRules())
    treated = result.tables["impact_by_school"].filter(
        (pl.col("school_id") == first) & (pl.col("measure") == "n_treated")
    )
    status = dict(zip(treated["comparison"], treated["status"], strict=True))
    assert status["high_vs_none"] == "suppressed"
    hidden = [
        c
        for c in ("users_vs_nonusers", "low_vs_none", "medium_vs_none", "high_vs_none")
        if status[c] == "suppressed"
    ]
    assert len(hidden) >= 2  # users − low − medium would otherwise give the 3 back
    assert audit(result.tables, specs, DisclosureRules()).passed
