"""The synthetic consortium: deterministic, described by its contracts, and carrying the intended story."""

from __future__ import annotations

import math
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from demo_reading import custom, load_contract, read_canonical, read_raw, schema_of, undeclared_columns
from open_data_contract_standard.model import OpenDataContractStandard

from demo.canary import plant_canaries
from demo.generate import DEFAULT_BAND_THRESHOLDS, GenerationSummary, generate_consortium
from demo.population import POST_SD
from demo.profiles import DATASETS, TEACHER_SURVEY

STUDENT_DATASETS = ("roster", "usage", "assessments", "attendance", "comments")


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _canonical(summary: GenerationSummary, school: str, dataset: str) -> pl.DataFrame:
    schema = schema_of(load_contract(summary.contracts[school]), dataset)
    return read_canonical(summary.files[school][dataset], schema)


def test_same_arguments_give_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    arguments = {"schools": 3, "students_per_school": 60, "weeks": 10}
    generate_consortium(tmp_path / "a", seed=5, **arguments)
    generate_consortium(tmp_path / "b", seed=5, **arguments)
    generate_consortium(tmp_path / "c", seed=6, **arguments)
    first, second, other = (_tree_bytes(tmp_path / name) for name in "abc")
    assert first == second
    assert any(path.endswith(".parquet") for path in first)  # sch03's roster is covered
    assert first.keys() == other.keys()
    assert (
        first["landing/sch01/roster/roster_2027-06-15.csv"]
        != other["landing/sch01/roster/roster_2027-06-15.csv"]
    )


def test_every_contract_is_a_valid_active_odcs_agreement(small_consortium: GenerationSummary) -> None:
    for school, path in small_consortium.contracts.items():
        assert path == small_consortium.home / "contracts" / f"dsa-{school}.yaml"
        model = OpenDataContractStandard.from_file(str(path))
        terms = custom([p.model_dump() for p in model.customProperties])
        assert (model.apiVersion, model.kind, model.status, model.id) == (
            "v3.1.0",
            "DataContract",
            "active",
            f"dsa-{school}",
        )
        assert terms["schoolId"] == school
        assert (terms["agreementStart"], terms["agreementEnd"]) == ("2026-08-01", "2027-07-31")
        assert terms["minCellSize"] == 10
        datasets = [obj.name for obj in model.schema_]
        retention = {(sla.element, sla.driver): sla.value for sla in model.slaProperties}
        assert retention == {(d, "landing"): 30 for d in datasets} | {(d, "staging"): 365 for d in datasets}
        for obj in model.schema_:
            schema_terms = custom([p.model_dump() for p in obj.customProperties])
            assert schema_terms["fileFormat"] in {"csv", "jsonl", "xapi", "parquet"}
            for prop in obj.properties:
                field_terms = custom([p.model_dump() for p in prop.customProperties])
                assert prop.logicalType and prop.required is not None
                assert {"privacyClass", "action"} <= field_terms.keys()


def test_the_story_each_agreement_tells(small_consortium: GenerationSummary) -> None:
    contracts = {school: load_contract(path) for school, path in small_consortium.contracts.items()}
    datasets = {school: [obj["name"] for obj in c["schema"]] for school, c in contracts.items()}
    purposes = {school: custom(c["customProperties"])["allowedPurposes"] for school, c in contracts.items()}
    assert [s for s, names in datasets.items() if "attendance" not in names] == ["sch07"]
    assert all(set(names) >= set(DATASETS) - {"attendance"} for names in datasets.values())
    assert [s for s, p in purposes.items() if "learning_gains" not in p] == ["sch05"]
    assert [s for s, names in datasets.items() if TEACHER_SURVEY in names] == ["sch02", "sch08"]
    formats = {
        (school, obj["name"]): custom(obj["customProperties"])["fileFormat"]
        for school, c in contracts.items()
        for obj in c["schema"]
    }
    assert formats[("sch03", "roster")] == "parquet"
    assert formats[("sch03", "usage")] == "xapi"
    usage_keys = {s: schema_of(c, "usage")["properties"][0]["name"] for s, c in contracts.items()}
    assert usage_keys["sch03"] == usage_keys["sch07"] == "student_email"
    assert usage_keys["sch01"] == "student_id"
    delimiters = {
        custom(schema_of(c, "roster")["customProperties"]).get("delimiter") for c in contracts.values()
    }
    assert ";" in delimiters
    sex = next(f for f in schema_of(contracts["sch01"], "roster")["properties"] if f["name"] == "sex")
    assert sex["logicalTypeOptions"] == {"enum": ["F", "M", "X"]}


@pytest.mark.parametrize("dataset", (*DATASETS, TEACHER_SURVEY))
def test_each_contract_describes_exactly_the_columns_its_files_contain(
    small_consortium: GenerationSummary, dataset: str
) -> None:
    for school in small_consortium.school_ids:
        schema = schema_of(load_contract(small_consortium.contracts[school]), dataset)
        if schema is None:
            continue
        path = small_consortium.files[school][dataset]
        expected_extra = {"parent_name"} if (school, dataset) == ("sch04", "roster") else set()
        assert undeclared_columns(path, schema) == expected_extra, (school, dataset)
        frame = read_canonical(path, schema)  # strict parsing by each declared sourceFormat
        assert frame.height == small_consortium.rows[school][dataset]
        for field in schema["properties"]:
            column = frame[field["name"]]
            if field["required"]:
                assert column.null_count() == 0, (school, dataset, field["name"])
            if field.get("unique"):
                assert column.n_unique() == frame.height
            options = field.get("logicalTypeOptions", {})
            if "enum" in options:
                assert set(column.drop_nulls().to_list()) <= set(options["enum"])
            if "minimum" in options:
                assert column.min() >= options["minimum"] and column.max() <= options["maximum"]


def test_schools_spell_columns_dates_and_booleans_differently(small_consortium: GenerationSummary) -> None:
    headers = {
        school: read_raw(
            small_consortium.files[school]["roster"], schema_of(load_contract(path), "roster")
        ).columns
        for school, path in small_consortium.contracts.items()
    }
    id_columns = {columns[0] for columns in headers.values()}
    assert {"StudentNumber", "pupil_id", "LocalID", "student_id"} <= id_columns
    formats = set()
    for path in small_consortium.contracts.values():
        for field in schema_of(load_contract(path), "roster")["properties"]:
            formats.add(custom(field["customProperties"]).get("sourceFormat"))
    assert {"%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "Y/N", "1/0", "true/false"} <= formats


def test_rows_written_and_own_catalogues(small_consortium: GenerationSummary) -> None:
    rows = small_consortium.rows
    for school in small_consortium.school_ids:
        assert rows[school]["roster"] >= 60 and rows[school]["attendance"] == rows[school]["roster"]
        assert rows[school]["usage"] > 0 and rows[school]["comments"] > 0
        optional = {TEACHER_SURVEY} if school in ("sch02", "sch08") else set()
        assert set(small_consortium.files[school]) == set(DATASETS) | optional
    assert all(15 <= rows[s][TEACHER_SURVEY] <= 25 for s in ("sch02", "sch08"))
    assert rows["sch01"]["roster"] == 60  # the first school receives nobody
    # Each school's catalogue lists only its own contributions (issue 17): together the shared 40.
    catalogs = {s: pl.read_csv(small_consortium.files[s]["resources"]) for s in small_consortium.school_ids}
    for school, own in catalogs.items():
        assert own.height > 0 and set(own["contributing_school"]) == {school}
    catalog = pl.concat(catalogs.values())
    assert catalog.height == catalog["resource_id"].n_unique() == 40


def test_movers_keep_their_state_id_and_get_a_new_local_id(statistical_consortium: GenerationSummary) -> None:
    rosters = pl.concat(
        _canonical(statistical_consortium, school, "roster")
        .select("student_id", "state_id")
        .with_columns(school=pl.lit(school))
        for school in statistical_consortium.school_ids
    )
    movers = rosters.group_by("state_id").agg(
        pl.len().alias("schools"), pl.col("student_id").n_unique().alias("ids")
    )
    moved = movers.filter(pl.col("schools") > 1)
    assert moved.height == statistical_consortium.moved_students == 7 * 4  # 2% of 200, schools 1..7
    assert moved["schools"].max() == 2 and (moved["ids"] == 2).all()
    assert rosters["state_id"].str.contains(r"^ST\d{8}$").all()


def _analysis_frame(summary: GenerationSummary) -> pl.DataFrame:
    """One row per student with a pre-test at the school: pre, post, total minutes."""
    frames = []
    for school in summary.school_ids:
        roster = _canonical(summary, school, "roster")
        usage = _canonical(summary, school, "usage")
        key = "student_email" if "student_email" in usage.columns else "student_id"
        if key == "student_email":
            usage = usage.join(roster.select("student_id", pl.col("email").alias("student_email")), on=key)
        minutes = usage.group_by("student_id").agg(pl.col("minutes").sum())
        scores = _canonical(summary, school, "assessments").pivot("term", index="student_id", values="score")
        frame = (
            scores.filter(pl.col("pre").is_not_null())
            .join(minutes, on="student_id", how="left")
            .with_columns(pl.col("minutes").fill_null(0.0), school=pl.lit(school))
        )
        frames.append(frame)
    return pl.concat(frames, how="diagonal_relaxed")


def _stayers(summary: GenerationSummary) -> pl.DataFrame:
    """Students who sat both tests' chances at one school (leavers sit the post-test at the next)."""
    rosters = [_canonical(summary, school, "roster") for school in summary.school_ids]
    leavers = [
        roster.filter(pl.col("state_id").is_in(following["state_id"].implode()))["student_id"]
        .to_frame()
        .with_columns(school=pl.lit(school))
        for school, roster, following in zip(summary.school_ids, rosters, rosters[1:], strict=False)
    ]
    return _analysis_frame(summary).join(pl.concat(leavers), on=["school", "student_id"], how="anti")


@pytest.fixture(scope="module")
def analysis(statistical_consortium: GenerationSummary) -> pl.DataFrame:
    return _analysis_frame(statistical_consortium)


@pytest.fixture(scope="module")
def stayers(statistical_consortium: GenerationSummary) -> pl.DataFrame:
    return _stayers(statistical_consortium)


def test_usage_is_biased_towards_high_prior_attainment(analysis: pl.DataFrame) -> None:
    analysis = analysis.with_columns(user=pl.col("minutes") > 0)
    means = dict(analysis.group_by("user").agg(pl.col("pre").mean()).iter_rows())
    non_user_share = 1 - analysis["user"].mean()
    assert means[True] - means[False] > 2.5  # propensity slope 0.6 log-odds per SD of z
    assert 0.22 < non_user_share < 0.38


def test_bands_follow_the_default_thresholds(analysis: pl.DataFrame) -> None:
    assert dict(DEFAULT_BAND_THRESHOLDS) == {"none": 0.0, "low": 300.0, "medium": 900.0}
    minutes = analysis.filter(pl.col("minutes") > 0)["minutes"]
    low = (minutes <= 300).mean()
    high = (minutes > 900).mean()
    assert 0.12 < low < 0.4 and 0.15 < high < 0.45  # every band is well populated


def test_about_eight_percent_miss_the_post_test_more_among_non_users(stayers: pl.DataFrame) -> None:
    stayers = stayers.with_columns(missing=pl.col("post").is_null(), user=pl.col("minutes") > 0)
    assert 0.055 < stayers["missing"].mean() < 0.105
    by_use = dict(stayers.group_by("user").agg(pl.col("missing").mean()).iter_rows())
    assert by_use[False] > by_use[True] - 0.02  # small groups; the gap is 3.5 points by design


def test_adjusting_for_pre_recovers_the_true_effect_and_naive_comparisons_do_not(
    statistical_consortium: GenerationSummary, stayers: pl.DataFrame
) -> None:
    data = stayers.drop_nulls("post")
    minutes = data["minutes"].to_numpy()
    high, medium, low = minutes > 900, (minutes > 300) & (minutes <= 900), (minutes > 0) & (minutes <= 300)
    schools = data["school"].to_numpy()
    school_dummies = [(schools == s).astype(float) for s in statistical_consortium.school_ids[1:]]
    design = np.column_stack([np.ones(len(data)), data["pre"].to_numpy(), low, medium, high, *school_dummies])
    coefficients, *_ = np.linalg.lstsq(design, data["post"].to_numpy(), rcond=None)
    ancova_high = coefficients[4] / POST_SD
    post = data["post"].to_numpy()
    naive_high = (post[high].mean() - post[minutes == 0].mean()) / POST_SD
    assert abs(ancova_high - 0.4) < 0.12
    assert 0 < coefficients[2] < coefficients[3] < coefficients[4]  # dose-response
    assert naive_high > ancova_high + 0.2  # selection on prior attainment inflates the raw gap


def test_subgroup_shares_are_realistic_with_a_rare_group(statistical_consortium: GenerationSummary) -> None:
    roster = pl.concat(
        _canonical(statistical_consortium, s, "roster") for s in statistical_consortium.school_ids
    )
    assert 0.33 < roster["frl"].mean() < 0.47
    assert 0.10 < roster["ell"].mean() < 0.20
    assert 0.08 < roster["disability"].mean() < 0.16
    assert set(roster["grade"]) == {3, 4, 5, 6, 7, 8}
    assert 0 < (roster["sex"] == "X").mean() < 0.03


def test_comments_name_students_and_sometimes_contacts(small_consortium: GenerationSummary) -> None:
    for school in small_consortium.school_ids:
        roster = _canonical(small_consortium, school, "roster")
        comments = _canonical(small_consortium, school, "comments").join(roster, on="student_id")
        named = comments.select(pl.col("text").str.contains(pl.col("given_name"), literal=True)).to_series()
        assert named.all()
        students = comments["student_id"].n_unique()
        assert 0.1 < students / roster.height < 0.45
    texts = pl.concat(_canonical(small_consortium, s, "comments") for s in small_consortium.school_ids)[
        "text"
    ]
    assert texts.str.contains("@").any() and texts.str.contains(r"\d{4} ?\d{3}").any()


def _landing_copy(summary: GenerationSummary, tmp_path: Path) -> Path:
    shutil.copytree(summary.home, tmp_path / "home")
    return tmp_path / "home"


@pytest.mark.parametrize("school", [f"sch{i:02d}" for i in range(1, 9)])
def test_canary_appears_in_every_student_file_in_the_school_format(
    small_consortium: GenerationSummary, tmp_path: Path, school: str
) -> None:
    home = _landing_copy(small_consortium, tmp_path)
    before = {d: small_consortium.files[school][d].read_bytes() for d in STUDENT_DATASETS}
    canary = plant_canaries(home, school)
    assert canary.student_id.startswith("CANARY") and canary.state_id.startswith("ST99")
    assert len(set(canary.identifying_strings())) == 6
    contract = load_contract(small_consortium.contracts[school])
    for dataset in STUDENT_DATASETS:
        path = home / small_consortium.files[school][dataset].relative_to(small_consortium.home)
        schema = schema_of(contract, dataset)
        if schema is None:  # sch07's attendance: exported although its agreement omits it
            assert canary.student_id.encode() in path.read_bytes()
        else:
            frame = read_canonical(path, schema)  # the planted rows still parse under the contract
            key = "student_email" if "student_email" in frame.columns else "student_id"
            expected = canary.email if key == "student_email" else canary.student_id
            assert frame[key].to_list()[-1] == expected, (school, dataset)
        header_changes = dataset == "roster" and school != "sch04"  # parent_name is added
        if path.suffix != ".parquet" and not header_changes:
            assert path.read_bytes().startswith(before[dataset])  # existing rows untouched
    roster = read_raw(
        home / small_consortium.files[school]["roster"].relative_to(small_consortium.home),
        schema_of(contract, "roster"),
    )
    assert roster["parent_name"].to_list()[-1] == canary.parent_name
    assert roster.height == small_consortium.rows[school]["roster"] + 1
    comments = (
        home / small_consortium.files[school]["comments"].relative_to(small_consortium.home)
    ).read_text()
    for value in (canary.full_name, canary.email, canary.phone):
        assert value in comments


@pytest.mark.slow
def test_default_consortium_has_the_documented_shape(tmp_path: Path) -> None:
    # Generation speed is measured in bench/, never asserted in a unit test.
    summary = generate_consortium(tmp_path)
    assert sum(rows["roster"] for rows in summary.rows.values()) == 8 * 400 + summary.moved_students
    assert summary.files["sch01"]["roster"].name == f"roster_{date(2027, 6, 15).isoformat()}.csv"
    assert math.isclose(summary.true_effect, 0.25)
