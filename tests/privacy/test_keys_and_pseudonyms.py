import hashlib
import hmac
import pickle

import polars as pl
import pytest

from privacy.keys import DEMO_KEY_PREFIX, KeyError_, PseudonymKey, create_demo_key, load_pseudonym_key
from privacy.pseudonymize import add_pseudonyms, linkage_value

MASTER = b"m" * 32


def test_missing_short_and_demo_keys_are_refused(tmp_path):
    with pytest.raises(KeyError_, match="no pseudonymization key"):
        load_pseudonym_key({})
    with pytest.raises(KeyError_, match="at least 32"):
        load_pseudonym_key({"IMPACT_PSEUDONYM_KEY": "short"})
    demo = create_demo_key(tmp_path / "demo.key")
    assert demo.stat().st_mode & 0o077 == 0
    with pytest.raises(KeyError_, match="demo key"):
        load_pseudonym_key({"IMPACT_PSEUDONYM_KEY_FILE": str(demo)})
    assert load_pseudonym_key({"IMPACT_PSEUDONYM_KEY_FILE": str(demo)}, demo_mode=True).is_demo
    assert demo.read_bytes().startswith(DEMO_KEY_PREFIX)


def test_key_never_shows_in_repr_errors_or_pickles():
    secret = "S3cret-" + "x" * 40
    key = load_pseudonym_key({"IMPACT_PSEUDONYM_KEY": secret, "IMPACT_PSEUDONYM_KEY_VERSION": "7"})
    assert secret not in repr(key) and secret not in str(key) and "version='7'" in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    try:
        load_pseudonym_key({"IMPACT_PSEUDONYM_KEY": secret[:10]})
    except KeyError_ as exc:
        assert secret[:10] not in str(exc)


def test_pseudonym_is_hmac_of_normalized_value_under_purpose_key():
    key = PseudonymKey(MASTER, "3")
    frame = add_pseudonyms(pl.DataFrame({"id": ["  AbC12 ", "abc12", "zz9"]}), pl.col("id"), key)
    purpose_key = key.for_purpose("analysis").hex().encode()
    expected = hmac.new(purpose_key, b"abc12", hashlib.sha256).hexdigest()
    assert frame["student_pid"].to_list()[:2] == [expected, expected]
    assert frame["student_pid"][2] != expected
    assert frame["key_version"].unique().to_list() == ["3"]
    # per-purpose keys: the same value under another purpose is unlinkable
    other = add_pseudonyms(pl.DataFrame({"id": ["abc12"]}), pl.col("id"), key, purpose="release")
    assert other["student_pid"][0] != expected
    assert hashlib.sha256(b"abc12").hexdigest() != expected


def test_cross_school_linkage_only_with_a_shared_key():
    key = PseudonymKey(MASTER)
    frame = pl.DataFrame({"local": ["100001", "100001"], "state": ["ST12345678", "ST12345678"]})

    def pid(school: str, shared: bool) -> str:
        expr = linkage_value(school, shared, pl.col("local"), pl.col("state"))
        return add_pseudonyms(frame.head(1), expr, key)["student_pid"][0]

    assert pid("sch01", shared=True) == pid("sch02", shared=True)
    assert pid("sch01", shared=False) != pid("sch02", shared=False)


def test_a_key_version_the_audit_log_would_refuse_is_refused_at_load():
    """A date written as digits only looks like a student id to the audit log; found at start-up,
    not after every school's intake has rewritten its staging and then failed to log it."""
    secret = "s" * 40
    for version in ("7", "v20261201", "2026-12-01", "key.2"):
        assert (
            load_pseudonym_key(
                {"IMPACT_PSEUDONYM_KEY": secret, "IMPACT_PSEUDONYM_KEY_VERSION": version}
            ).version
            == version
        )
    with pytest.raises(KeyError_, match=r"20261201 is refused.*\(v20261201\)"):
        load_pseudonym_key({"IMPACT_PSEUDONYM_KEY": secret, "IMPACT_PSEUDONYM_KEY_VERSION": "20261201"})
    for bad in ("", "two words", "-1", "x" * 33, "a@b.org"):
        with pytest.raises(KeyError_, match="IMPACT_PSEUDONYM_KEY_VERSION must be"):
            load_pseudonym_key({"IMPACT_PSEUDONYM_KEY": secret, "IMPACT_PSEUDONYM_KEY_VERSION": bad})
