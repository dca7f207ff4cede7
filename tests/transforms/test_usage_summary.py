"""The release computes session-based tables school by school from cached per-student reductions:
the tables equal the all-sessions computation, and the cache follows the staged file it came from."""

from collections import Counter

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from contracts.loader import load_contracts
from privacy.keys import load_pseudonym_key
from privacy.staging_store import read_staging_frame, write_staging_frame
from transforms import metrics
from transforms.intake import intake_school
from transforms.release import build_tables
from transforms.usage_summary import reduce_usage, school_usage

SCHOOLS = ("sch01", "sch02", "sch03")


def no_scrub(texts: pl.Series, roster: pl.DataFrame, *_teachers):
    return texts, Counter()


@pytest.fixture
def staged(tiny_home, test_key_env):
    contracts = load_contracts(tiny_home.contracts)
    key = load_pseudonym_key()
    for school in SCHOOLS:
        intake_school(tiny_home, contracts, school, key, no_scrub)
    return tiny_home, contracts


def all_of(home, dataset):
    return pl.concat(
        [read_staging_frame(home.staging_file(dataset, s), s) for s in SCHOOLS], how="diagonal_relaxed"
    )


def test_school_by_school_tables_equal_the_all_sessions_tables(staged):
    home, contracts = staged
    release = build_tables(home, contracts, list(SCHOOLS)).tables
    usage = all_of(home, "usage")
    assert usage["school_id"].n_unique() == 3 and usage.height > 1000
    resources = all_of(home, "resources").unique("resource_id", keep="first").sort("resource_id")
    expected = {
        "usage_by_resource": metrics.usage_by_resource(usage, resources),
        "usage_by_week": metrics.usage_by_week(usage),
        "cross_school_use": metrics.cross_school_use(usage, resources),
        "reach": metrics.reach_table(
            metrics.analysis_frame(all_of(home, "students"), usage, all_of(home, "assessments"))
        ),
    }
    for name, table in expected.items():
        assert_frame_equal(release[name], table, check_exact=False, rel_tol=1e-12), name
        consortium = table.filter(pl.col(table.columns[0]) == metrics.ALL_SCHOOLS)
        assert consortium.height > 0, name  # the ALL rows (sums of schools) were really compared


def test_consortium_rows_sum_counts_and_recompute_ratios():
    rows = pl.DataFrame(
        {
            "school_id": ["a", "a", "a", "b", "b", "b"],
            "week": ["w1"] * 6,
            "measure": ["active_users", "minutes_total", "per_user"] * 2,
            "value": [2.0, 30.0, 15.0, 3.0, 30.0, 10.0],
            "n": [2, 2, 2, 3, 3, 3],
            "status": ["published"] * 6,
            "note": [""] * 6,
        }
    )
    out = metrics.consortium_rows(
        rows, ["school_id", "week"], {"per_user": ("minutes_total", "active_users")}
    )
    total = dict(out.filter(pl.col("school_id") == "ALL").select("measure", "value").iter_rows())
    assert total == {"active_users": 5.0, "minutes_total": 60.0, "per_user": 12.0}  # not 15 + 10
    assert out.filter(pl.col("school_id") == "ALL")["n"].to_list() == [5, 5, 5]


def test_reductions_are_cached_encrypted_and_follow_the_staged_file(staged):
    home, _ = staged
    first = school_usage(home, "sch01")
    cached = list(home.derived_of("sch01").glob("usage.*.parquet"))
    assert len(cached) == 1
    assert not cached[0].read_bytes().startswith(b"PAR1")  # sealed like staging, never plain Parquet
    assert cached[0].stat().st_mode & 0o077 == 0
    again = school_usage(home, "sch01")
    assert_frame_equal(again.by_week, first.by_week)
    # retention (or a new export) rewrites staging: the cache is stale and replaced, not reused
    staged_usage = home.staging_file("usage", "sch01")
    sessions = read_staging_frame(staged_usage, "sch01")
    kept = sessions.filter(pl.col("week") != sessions["week"].min())
    write_staging_frame(staged_usage, kept, "sch01")
    after = school_usage(home, "sch01")
    assert_frame_equal(after.by_week, reduce_usage(kept).by_week)
    assert after.by_week.height < first.by_week.height
    remaining = list(home.derived_of("sch01").glob("usage.*.parquet"))
    assert len(remaining) == 1 and remaining != cached


def test_a_school_without_usage_has_no_reductions(staged):
    home, _ = staged
    home.staging_file("usage", "sch02").unlink()
    assert school_usage(home, "sch02") is None


def test_schools_whose_contracts_type_minutes_differently_still_stack(staged):
    home, contracts = staged
    path = home.staging_file("usage", "sch02")
    sessions = read_staging_frame(path, "sch02")
    whole = sessions.with_columns(pl.col("minutes").round(0).cast(pl.Int64))  # an `integer` contract
    write_staging_frame(path, whole, "sch02")
    release = build_tables(home, contracts, list(SCHOOLS)).tables
    usage = all_of(home, "usage")  # diagonal_relaxed: Float64
    assert usage.schema["minutes"] == pl.Float64
    assert_frame_equal(
        release["usage_by_week"], metrics.usage_by_week(usage), check_exact=False, rel_tol=1e-12
    )
    assert release["reach"].height > 0


def test_a_cache_that_cannot_be_read_is_recomputed_from_staging(staged, monkeypatch):
    import transforms.usage_summary as usage_summary

    home, _ = staged
    first = school_usage(home, "sch01")
    (cached,) = home.derived_of("sch01").glob("usage.*.parquet")
    cached.write_bytes(b"sealed under a data key that was since rotated away")
    again = school_usage(home, "sch01")
    assert_frame_equal(again.by_resource, first.by_resource)
    assert_frame_equal(usage_summary._unpack(read_staging_frame(cached, "sch01")).by_week, first.by_week)

    read = usage_summary.read_staging_frame

    def vanishes(path, school_id):  # deleted between the exists() check and the read
        if path == cached:
            raise FileNotFoundError(path)
        return read(path, school_id)

    monkeypatch.setattr(usage_summary, "read_staging_frame", vanishes)
    assert_frame_equal(school_usage(home, "sch01").by_week, first.by_week)
