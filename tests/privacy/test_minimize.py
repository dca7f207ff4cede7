from datetime import date

import polars as pl

from privacy.minimize import age_band, birth_year, iso_week, postcode_district, recode_rare


def test_generalizations():
    frame = pl.DataFrame(
        {
            "dob": [date(2014, 3, 1), date(2014, 12, 31)],
            "pc": ["eh1e 9tp", "90210"],
            "at": [date(2026, 9, 7), date(2027, 1, 3)],
        }
    )
    out = frame.select(
        birth_year(pl.col("dob")).alias("y"),
        age_band(pl.col("dob"), date(2026, 9, 1)).alias("band"),
        postcode_district(pl.col("pc")).alias("district"),
        iso_week(pl.col("at")).alias("week"),
    )
    assert out["y"].to_list() == [2014, 2014]
    assert out["band"].to_list() == ["12-13", "10-11"]  # 12 and 11 years old on 2026-09-01
    assert out["district"].to_list() == ["EH1E", "902"]
    assert out["week"].to_list() == ["2026-W37", "2026-W53"]


def test_rare_categories_are_recoded_and_reported():
    frame = pl.DataFrame({"sex": ["F"] * 12 + ["M"] * 12 + ["X"] * 2, "grade": [3] * 26})
    out, recoded = recode_rare(frame, ["sex", "grade"], k=10)
    assert recoded == {"sex": ["X"]}
    assert out["sex"].value_counts().sort("sex")["count"].to_list() == [12, 12, 2]
    assert "X" not in out["sex"].to_list()
