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
