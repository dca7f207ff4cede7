"""The pseudonymization key (raw, hex, base64, and the derived purpose key) appears nowhere: not in
the home folder (Dagster's SQLite event log and run config included), not in stdout/stderr/logging,
not in a failing run's error, not in a repr, not in a lazy plan; and Dagster's metadata for
`staged_school` holds counts and labels only, never a staged value."""

import base64
import logging
import os
import traceback

import dagster as dg
import polars as pl
import polars_hash as plh
import pytest

from pipelines.resources import ImpactHome
from pipelines.runner import CannotRun, dagster_instance, run_pipeline
from privacy.keys import load_pseudonym_key
from privacy.pseudonymize import (
    ANALYSIS_PURPOSE,
    add_pseudonyms,
    linkage_value,
    normalized,
    purpose_key_bytes,
)
from privacy.staging_store import read_staging_frame
from transforms.staging import STAGING_DATASETS


def secret_forms(key_text: str) -> list[str]:
    """Every spelling of the key a careless log line could use."""
    raw = key_text.encode()
    key = load_pseudonym_key({"IMPACT_PSEUDONYM_KEY": key_text})
    derived = key.for_purpose(ANALYSIS_PURPOSE)
    forms = [
        key_text,
        raw.hex(),
        base64.b64encode(raw).decode(),
        purpose_key_bytes(key, ANALYSIS_PURPOSE),
        base64.b64encode(derived).decode(),
    ]
    master = os.environ.get("IMPACT_MASTER_KEY")  # encryption at rest, when configured: same rules
    if master:
        forms += [master, master.encode().hex(), base64.b64encode(master.encode()).decode()]
    return forms


def home_texts(home) -> dict[str, bytes]:
    """Every file's bytes, plus decoded staging Parquet (encrypted or compressed bytes hide strings)."""
    texts = {str(p.relative_to(home.root)): p.read_bytes() for p in home.root.rglob("*") if p.is_file()}
    for ds in STAGING_DATASETS:
        for path in home.staging.glob(f"{ds}/school=*/part.parquet"):
            frame = read_staging_frame(path, path.parent.name.removeprefix("school="))
            texts[f"{path} (decoded)"] = frame.select(pl.all().cast(pl.String)).write_csv().encode()
    return texts


def dagster_records_text(home) -> str:
    """Run configs, tags and every event of every run, as Dagster hands them to the UI."""
    instance = dagster_instance(home)
    parts = []
    for run in instance.get_runs():
        parts += [repr(run.run_config), repr(run.tags)]
        parts += [repr(entry) for entry in instance.all_logs(run.run_id)]
    return "\n".join(parts)


def leaks(forms: list[str], **places: str | bytes) -> list[str]:
    found = []
    for where, text in places.items():
        haystack = text if isinstance(text, bytes) else text.encode()
        found += [f"form {i} in {where}" for i, form in enumerate(forms) if form.encode() in haystack]
    return found


@pytest.mark.slow
def test_the_key_appears_nowhere_after_a_run(tiny_home, test_key_env, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    summary = run_pipeline(tiny_home)
    assert summary.released and not summary.schools_failed
    forms = secret_forms(test_key_env)
    captured = capfd.readouterr()
    files = home_texts(tiny_home)
    assert any(name.endswith(".db") for name in files)  # Dagster's SQLite is searched
    found = leaks(forms, stdout=captured.out, stderr=captured.err, logging=caplog.text)
    found += leaks(forms, dagster_records=dagster_records_text(tiny_home))
    for name, content in files.items():
        found += leaks(forms, **{name: content})
    assert found == []
    staged_school_metadata_holds_counts_and_labels_only(tiny_home)  # same run, checked below


@pytest.mark.slow
def test_a_failing_run_does_not_carry_the_key(tiny_home, test_key_env, monkeypatch, capfd):
    import transforms.intake

    def failing_stage(*args, **kwargs):
        # formats the key object into the message on purpose: its repr shows version and fingerprint
        raise RuntimeError(f"simulated staging failure with {args[3]!r}")

    monkeypatch.setattr(transforms.intake, "stage_school", failing_stage)
    with pytest.raises(CannotRun) as refused:
        run_pipeline(tiny_home)  # every school fails, so the release refuses too
    forms = secret_forms(test_key_env)
    text = "".join(traceback.format_exception(refused.value))
    captured = capfd.readouterr()
    assert "simulated staging failure with PseudonymKey(version='1'" in dagster_records_text(tiny_home)
    assert leaks(forms, exception=text, out=captured.out + captured.err) == []
    assert leaks(forms, dagster_records=dagster_records_text(tiny_home)) == []


@pytest.mark.parametrize(
    "env",
    [
        {"IMPACT_PSEUDONYM_KEY": "short-but-secret-value"},
        {"IMPACT_PSEUDONYM_KEY": "DEMO-ONLY-NOT-FOR-REAL-DATA:" + "d" * 40},
    ],
    ids=["short key", "demo key outside the demo"],
)
def test_a_refused_key_is_not_quoted_in_the_refusal(tiny_home, monkeypatch, env):
    monkeypatch.delenv("IMPACT_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("IMPACT_DEMO_MODE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(CannotRun) as refused:
        run_pipeline(tiny_home)
    text = "".join(traceback.format_exception(refused.value))
    assert env["IMPACT_PSEUDONYM_KEY"] not in text
    assert env["IMPACT_PSEUDONYM_KEY"].encode().hex() not in text


def test_reprs_and_lazy_plans_do_not_show_the_key(tiny_home, test_key_env):
    key = load_pseudonym_key()
    resource = ImpactHome(home=str(tiny_home.root))
    forms = secret_forms(test_key_env)
    texts = {"key": repr(key) + str(key), "resource": repr(resource) + str(resource)}
    plan = (
        pl.LazyFrame({"student_id": [" S1 "], "state_id": [None]}, schema_overrides={"state_id": pl.String})
        .with_columns(linkage_value("sch01", True, pl.col("student_id"), pl.col("state_id")).alias("link"))
        .with_columns(
            plh.col("link").chash.hmac_sha256(key=purpose_key_bytes(key, ANALYSIS_PURPOSE)).alias("pid"),
            normalized(pl.col("student_id")).alias("norm"),
        )
    )
    texts["explain"] = plan.explain() + plan.explain(optimized=False) + str(plan)
    assert leaks(forms, **texts) == []
    with pytest.raises(TypeError):  # a lazy plan's serialize() would hold the derived key
        add_pseudonyms(plan, pl.col("link"), key)


def staged_values(home) -> set[str]:
    """Distinctive staged values: pseudonyms, comment texts, weeks, postcode districts, bands."""
    values: set[str] = set()
    for ds in STAGING_DATASETS:
        for path in home.staging.glob(f"{ds}/school=*/part.parquet"):
            frame = read_staging_frame(path, path.parent.name.removeprefix("school="))
            for column in ("student_pid", "text", "week", "postcode_district", "birth_year", "resource_id"):
                if column in frame.columns:
                    values.update(v for v in frame[column].cast(pl.String).drop_nulls() if len(v) >= 4)
    return values


def staged_school_metadata_holds_counts_and_labels_only(tiny_home) -> None:
    """(c) Materialization metadata of every school: counts and labels, no staged value."""
    instance = dagster_instance(tiny_home)
    records = instance.fetch_materializations(dg.AssetKey("staged_school"), limit=100).records
    assert len(records) == 3
    values = staged_values(tiny_home)
    assert values
    for record in records:
        metadata = record.asset_materialization.metadata
        for name, entry in metadata.items():
            value = entry.value
            if isinstance(value, dict):  # staged_rows, pii findings: {name: count}
                assert all(isinstance(v, int) for v in value.values()), name
            else:
                assert isinstance(value, int | bool | str), name
                assert not isinstance(value, str) or len(value) < 40, name  # a label, not a text
        text = repr(metadata)
        assert [v for v in values if v in text] == []


def test_an_all_digit_key_version_stops_the_run_before_any_staging(tiny_home, test_key_env, monkeypatch):
    monkeypatch.setenv("IMPACT_PSEUDONYM_KEY_VERSION", "20261201")
    with pytest.raises(CannotRun, match="IMPACT_PSEUDONYM_KEY_VERSION=20261201 is refused"):
        run_pipeline(tiny_home)
    assert not [p for p in tiny_home.staging.rglob("*.parquet")]
    monkeypatch.setenv("IMPACT_PSEUDONYM_KEY_VERSION", "v20261201")
    summary = run_pipeline(tiny_home)
    assert summary.released and not summary.schools_failed
    staged = read_staging_frame(
        tiny_home.staging_file("students", summary.schools_run[0]), summary.schools_run[0]
    )
    assert staged["key_version"].unique().to_list() == ["v20261201"]
