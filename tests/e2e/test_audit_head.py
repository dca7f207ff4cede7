"""After a real release, `impact audit verify` holds the log to the head published/manifest.json
recorded: without a signing key, a cut, emptied or rewritten log fails and says why."""

import json

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.runner import run_pipeline
from privacy.audit_anchors import MANIFEST_HEAD_KEY
from privacy.audit_log import canonical_json, entry_hash, line_digest, read_entries

runner = CliRunner()


def verify(home, *extra: str):
    result = runner.invoke(app, ["audit", "verify", "--home", str(home.root), *extra])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.slow
def test_verify_without_a_key_catches_a_cut_an_emptied_and_a_rewritten_log(tiny_home, test_key_env, tmp_path):
    assert run_pipeline(tiny_home).released
    manifest = json.loads((tiny_home.published / "manifest.json").read_text())
    entries = read_entries(tiny_home.audit_log)
    head = manifest[MANIFEST_HEAD_KEY]
    # the head is the entry before the release's own `published` entry
    assert head == {"entries": len(entries) - 1, "hash": entries[-2]["hash"]}
    assert entries[-1]["action"] == "published" and entries[-1]["object"]["digest"] == manifest["release"]
    original = tiny_home.audit_log.read_bytes()

    code, said = verify(tiny_home)
    assert code == 0 and f"published/manifest.json (release {manifest['release'][:12]}) found" in said

    tiny_home.audit_log.write_bytes(b"".join(original.splitlines(keepends=True)[:-1]))  # one entry cut
    code, said = verify(tiny_home)
    assert code == 1 and "FAILED (truncated tail)" in said and "cut from the tail" in said

    tiny_home.audit_log.write_bytes(b"")  # emptied
    code, said = verify(tiny_home)
    assert code == 1 and "the log is empty" in said

    rewritten = [json.loads(line) for line in original.splitlines()]
    rewritten[3]["object"]["rows"] = 1  # an attacker edits an entry and recomputes the chain
    for index in range(3, len(rewritten)):
        rewritten[index]["prev"] = line_digest(rewritten[index - 1])
        rewritten[index]["hash"] = entry_hash(rewritten[index])
    tiny_home.audit_log.write_text("".join(canonical_json(e) + "\n" for e in rewritten))
    code, said = verify(tiny_home)
    assert code == 1 and "FAILED (rewritten chain)" in said

    tiny_home.audit_log.write_bytes(original)
    kept = tmp_path / "manifest-kept.json"  # a copy held outside the home
    kept.write_text((tiny_home.published / "manifest.json").read_text())
    code, said = verify(tiny_home, "--manifest", str(kept))
    assert code == 0 and said.count("found at seq") == 2
    code, said = verify(tiny_home, "--manifest", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read the manifest" in said
