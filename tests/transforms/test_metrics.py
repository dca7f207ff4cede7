import polars as pl

from transforms.metrics import analysis_frame, cross_school_use, gains_by_band, reach_table, usage_band


def students():
    return pl.DataFrame(
        {
            "school_id": ["a"] * 4 + ["b"] * 2,
            "student_pid": ["p1", "p2", "p3", "p4", "q1", "q2"],
            "grade": [3, 3, 4, 4, 3, 3],
            "frl": [True, False, True, False, True, True],
            "ell": [False] * 6,
            "disability": [False] * 6,
            "sex": ["F", "M", "F", "M", "F", "M"],
        }
    )


def usage():
    return pl.DataFrame(
        {
            "school_id": ["a", "a", "a", "b"],
            "student_pid": ["p1", "p1", "p2", "q1"],
            "resource_id": ["r1", "r2", "r1", "r2"],
            "week": ["2026-W37", "2026-W38", "2026-W37", "2026-W37"],
            "minutes": [200.0, 200.0, 50.0, 1000.0],
        }
    )


def assessments():
    return pl.DataFrame(
        {
            "school_id": ["a", "a", "a", "a", "b", "b"],
            "student_pid": ["p1", "p2", "p3", "p4", "q1", "q2"],
            "pre_score": [50.0, 40.0, 60.0, 55.0, 45.0, 52.0],
            "post_score": [60.0, 42.0, None, 57.0, 60.0, 53.0],
        }
    )


def test_bands_follow_total_minutes():
    out = pl.DataFrame({"m": [0.0, 1.0, 300.0, 300.5, 900.0, 901.0]}).select(usage_band(pl.col("m")))
    assert out.to_series().to_list() == ["none", "low", "low", "medium", "medium", "high"]


def test_reach_by_hand_and_totals_add_up():
    analysis = analysis_frame(students(), usage(), assessments())
    reach = reach_table(analysis)

    def value(school, subgroup, subgroup_value, measure):
        row = reach.filter(
            (pl.col("school_id") == school)
            & (pl.col("subgroup") == subgroup)
            & (pl.col("subgroup_value") == subgroup_value)
            & (pl.col("measure") == measure)
        )
        return row["value"].item()

    assert value("a", "all", "all", "users") == 2 and value("a", "all", "all", "students") == 4
    assert value("a", "all", "all", "reach_pct") == 50.0
    assert value("ALL", "all", "all", "users") == 3 and value("ALL", "all", "all", "students") == 6
    assert value("ALL", "frl", "yes", "students") + value("ALL", "frl", "no", "students") == 6
    assert value("b", "frl", "yes", "reach_pct") == 50.0


def test_gains_by_band_uses_students_with_both_tests():
    gains = gains_by_band(analysis_frame(students(), usage(), assessments()))
    row = gains.filter(
        (pl.col("school_id") == "ALL") & (pl.col("band") == "all") & (pl.col("measure") == "students_tested")
    )
    assert row["value"].item() == 5  # p3 has no post-test
    high = gains.filter(
        (pl.col("band") == "high") & (pl.col("school_id") == "b") & (pl.col("measure") == "mean_gain")
    )
    assert high["value"].item() == 15.0


def test_cross_school_use_counts_students_once_per_school():
    resources = pl.DataFrame({"resource_id": ["r1", "r2"], "contributing_school": ["a", "b"]})
    cross = cross_school_use(usage(), resources)
    users = cross.filter(pl.col("measure") == "users")
    lookup = {(r["user_school"], r["contributing_school"]): r["value"] for r in users.iter_rows(named=True)}
    assert lookup[("a", "b")] == 1 and lookup[("a", "a")] == 2 and lookup[("b", "b")] == 1
    assert lookup[("ALL", "b")] == lookup[("a", "b")] + lookup[("b", "b")]


def test_sample_flow_categories_add_up_to_enrolled():
    from transforms.metrics import sample_flow

    flow = sample_flow(analysis_frame(students(), usage(), assessments()))
    cells = {(r["school_id"], r["tests"]): r["value"] for r in flow.iter_rows(named=True)}
    assert cells[("a", "pre_and_post")] == 3 and cells[("a", "pre_only")] == 1
    for school in ("a", "b", "ALL"):
        parts = sum(cells[(school, t)] for t in ("pre_and_post", "pre_only", "post_only", "neither"))
        assert parts == cells[(school, "all")]
