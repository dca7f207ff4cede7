"""Object storage at the edges, against a real S3 API (moto's server on loopback): exports move from
an inbox bucket into landing/ and nowhere else, and a committed release is mirrored with the
manifest last."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.request
from contextlib import redirect_stderr, redirect_stdout

import fsspec
import pytest
from moto.server import ThreadedMotoServer

from pipelines.cli import _print_storage
from pipelines.runner import run_pipeline
from privacy.atomic import atomic_path, exclusive_lock
from privacy.audit_log import read_entries
from storage import object_store


@pytest.fixture
def s3(monkeypatch):
    """A throwaway S3 endpoint; credentials are moto's dummies, set only for this test."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }.items():
        monkeypatch.setenv(name, value)
    # moto keeps its buckets per process, across servers: start from none
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"))
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("inbox")
    fs.mkdir("releases")
    yield fs
    server.stop()


def move_landing_to_inbox(home, fs, school: str) -> dict[str, str]:
    """What a school's SFTP gateway would do: its exports land in the bucket, not on the volume."""
    sent = {}
    for path in sorted((home.landing / school).rglob("*")):
        if path.is_file():
            key = f"inbox/impact/{path.relative_to(home.landing).as_posix()}"
            fs.pipe(key, path.read_bytes())
            sent[path.relative_to(home.landing).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
            path.unlink()
    return sent


def test_inbox_exports_move_into_landing_and_the_release_is_mirrored(
    tiny_home, test_key_env, s3, monkeypatch
):
    sent = move_landing_to_inbox(tiny_home, s3, "sch02")
    # a sender names an export after a person: it moves, but the name stays in landing/
    named = "sch02/comments/notes jane.doe@example.org.csv"
    s3.pipe(f"inbox/impact/{named}", s3.cat(next(k for k in s3.find("inbox/impact/sch02/comments"))))
    sent[named] = hashlib.sha256(s3.cat(f"inbox/impact/{named}")).hexdigest()
    assert sent and not list((tiny_home.landing / "sch02").rglob("*.*"))
    refused = {
        "sch02/usage/deeper/f.csv": "not at <school>/<dataset>/<file>",
        "sch02/.hidden/usage.csv": "the dataset folder is not one of",
        "sch02/usage/.in-flight.csv": "the file name is hidden",
        "sch..02/usage/f.csv": "the school folder is not a school id",
        "1234567/usage/usage_2027-06-15.csv": "a folder name looks like a personal identifier",
    }
    for key in refused:
        s3.pipe(f"inbox/impact/{key}", b"x")
    s3.invalidate_cache()
    monkeypatch.setenv(object_store.INBOX_ENV, "s3://inbox/impact")
    monkeypatch.setenv(object_store.PUBLISH_ENV, "s3://releases/impact/latest")

    summary = run_pipeline(tiny_home)

    assert summary.released and not summary.schools_failed and not summary.storage_problems
    assert "sch02" in summary.schools_run
    assert sorted(summary.inbox_moved) == sorted(sent)
    for relative, digest in sent.items():  # byte for byte, owner-only, and gone from the bucket
        landed = tiny_home.landing / relative
        assert hashlib.sha256(landed.read_bytes()).hexdigest() == digest
        assert landed.stat().st_mode & 0o077 == 0
    s3.invalidate_cache()
    left = {k.removeprefix("inbox/impact/") for k in s3.find("inbox/impact")}
    assert left == set(summary.inbox_left) == set(refused)
    for key, why in refused.items():
        assert summary.inbox_left[key].startswith(why), (key, summary.inbox_left[key])
    assert not (tiny_home.landing / "1234567").exists()  # refused before anything moved
    assert "jane.doe" not in tiny_home.audit_log.read_text()
    printed = io.StringIO()
    with redirect_stdout(printed), redirect_stderr(printed):
        _print_storage(summary)
    assert "Moved" in printed.getvalue() and "jane.doe" not in printed.getvalue()
    received = [e["object"] for e in read_entries(tiny_home.audit_log) if e["action"] == "received"]
    assert sum(1 for r in received if r.get("status") == "moved_from_inbox") == len(sent)

    # the release: every published file, byte for byte; the manifest names the release
    published = {
        p.relative_to(tiny_home.published).as_posix(): p.read_bytes()
        for p in tiny_home.published.rglob("*")
        if p.is_file()
    }
    mirrored = {
        k.removeprefix("releases/impact/latest/"): s3.cat(k) for k in s3.find("releases/impact/latest")
    }
    assert mirrored == published
    assert summary.published_to == "s3://releases/impact/latest"

    # an unchanged run pushes nothing; a table that disappears from published/ leaves the bucket
    s3.rm("releases/impact/latest/manifest.json")
    again = run_pipeline(tiny_home)
    assert again.published_to is None and not s3.exists("releases/impact/latest/manifest.json")
    (tiny_home.dagster / object_store.PUSHED_MARKER).unlink()
    s3.pipe("releases/impact/latest/tables/retired_table.csv", b"old")
    third = run_pipeline(tiny_home)
    s3.invalidate_cache()
    assert third.published_to and s3.exists("releases/impact/latest/manifest.json")
    assert not s3.exists("releases/impact/latest/tables/retired_table.csv")
    manifest = json.loads(s3.cat("releases/impact/latest/manifest.json"))
    assert manifest["release"] == json.loads((tiny_home.published / "manifest.json").read_text())["release"]


def test_manifest_is_written_last(tiny_home, s3, monkeypatch):
    (tiny_home.published / "tables").mkdir(parents=True, exist_ok=True)
    (tiny_home.published / "tables" / "reach.csv").write_text("a\n")
    (tiny_home.published / "manifest.json").write_text("{}")
    (tiny_home.published / "z_report.html").write_text("<html>")
    uploaded = []
    real_remote = object_store.remote

    def recording_remote(url):
        fs, root = real_remote(url)
        put_file = fs.put_file

        def recorded(local, key, **kwargs):
            uploaded.append(key)
            return put_file(local, key, **kwargs)

        monkeypatch.setattr(fs, "put_file", recorded)
        return fs, root

    monkeypatch.setattr(object_store, "remote", recording_remote)
    object_store.push_published(tiny_home, "s3://releases/x", "r1")
    assert uploaded[-1] == "releases/x/manifest.json"  # the order the bucket saw
    names = ("tables/reach.csv", "manifest.json", "z_report.html")
    assert set(uploaded) == {f"releases/x/{n}" for n in names}
    assert object_store.already_pushed(tiny_home, "s3://releases/x", "r1")
    assert not object_store.already_pushed(tiny_home, "s3://releases/y", "r1")
    with pytest.raises(object_store.ObjectStoreError, match="name a prefix"):
        object_store.push_published(tiny_home, "s3://releases", "r1")  # its sweep would empty a bucket


def test_oversized_objects_and_linked_landing_folders_stay_in_the_inbox(tiny_home, s3, tmp_path):
    s3.pipe("inbox/in/sch01/usage/big_2027-06-15.csv", b"x" * 2048)
    s3.pipe("inbox/in/sch01/comments/c_2027-06-15.csv", b"text\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    comments = tiny_home.landing / "sch01" / "comments"
    for path in comments.iterdir():
        path.unlink()
    comments.rmdir()
    comments.symlink_to(outside)  # a download must never be written through a link
    report = object_store.pull_inbox(tiny_home, "s3://inbox/in", max_bytes=1024)
    assert report.moved == []
    assert report.left["sch01/usage/big_2027-06-15.csv"].startswith("larger than 1,024 bytes")
    assert "symbolic link" in report.left["sch01/comments/c_2027-06-15.csv"]
    assert not list(outside.iterdir())
    assert s3.exists("inbox/in/sch01/usage/big_2027-06-15.csv")


def test_an_unreachable_inbox_is_reported_and_the_run_goes_on(tiny_home, test_key_env, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv(object_store.INBOX_ENV, "s3://inbox/impact")
    summary = run_pipeline(tiny_home)
    assert summary.released and len(summary.schools_run) == 3
    assert summary.storage_problems and summary.storage_problems[0].startswith("inbox: cannot list")
    assert "testing" not in " ".join(summary.storage_problems)


def test_a_download_that_does_not_match_the_object_is_refused(tmp_path):
    class ShortRead:
        def open(self, key, mode):
            import io

            return io.BytesIO(b"abc")

    with (
        pytest.raises(object_store.ObjectStoreError, match="does not match"),
        atomic_path(tmp_path / "f.csv") as temporary,
    ):
        object_store._download(ShortRead(), "k", {"size": 4}, temporary)
    assert not list(tmp_path.iterdir())  # the temporary is gone, nothing under the final name


def test_names_are_matched_whole(tiny_home):
    assert isinstance(object_store._landing_target(tiny_home, "sch02/usage/f.csv"), type(tiny_home.landing))
    for key in ("sch02/usage/f.csv\n", "sch02\n/usage/f.csv", "sch02/usage/a\tb.csv", "sch02/usage/a\\b.csv"):
        assert isinstance(object_store._landing_target(tiny_home, key), str), key


def test_an_export_resent_while_it_downloads_stays_in_the_inbox_for_the_next_run(tiny_home, s3, monkeypatch):
    key = "inbox/in/sch01/comments/comments_2027-06-20.csv"
    s3.pipe(key, b"comment_text\nfirst\n")
    download = object_store._download

    def resent_during_download(fs, key, info, temporary):
        digest = download(fs, key, info, temporary)
        fs.pipe(key, b"comment_text\nsecond, longer\n")  # the school's gateway writes it again
        fs.invalidate_cache()
        return digest

    monkeypatch.setattr(object_store, "_download", resent_during_download)
    report = object_store.pull_inbox(tiny_home, "s3://inbox/in")
    assert report.moved == []
    assert "changed while it was downloaded" in report.left["sch01/comments/comments_2027-06-20.csv"]
    assert not (tiny_home.landing / "sch01" / "comments" / "comments_2027-06-20.csv").exists()
    assert not list((tiny_home.landing / "sch01" / "comments").glob(".*.tmp"))
    assert s3.cat(key) == b"comment_text\nsecond, longer\n"  # kept: the next run takes the new one

    monkeypatch.setattr(object_store, "_download", download)
    again = object_store.pull_inbox(tiny_home, "s3://inbox/in")
    assert again.moved == ["sch01/comments/comments_2027-06-20.csv"]
    landed = tiny_home.landing / "sch01" / "comments" / "comments_2027-06-20.csv"
    assert landed.read_bytes() == b"comment_text\nsecond, longer\n"


def test_the_landing_sensor_moves_inbox_exports_and_requests_their_school(tiny_home, s3, monkeypatch, capfd):
    import dagster as dg

    from pipelines.schools.sensors import landing_sensor

    monkeypatch.setenv("IMPACT_HOME", str(tiny_home.root))
    monkeypatch.setenv(object_store.INBOX_ENV, "s3://inbox/daemon")
    instance = dg.DagsterInstance.ephemeral()
    first = landing_sensor(dg.build_sensor_context(instance=instance))
    s3.pipe("inbox/daemon/sch03/comments/comments_2027-06-21.csv", b"comment_text\nfine\n")
    s3.pipe("inbox/daemon/jane.doe@example.org/usage/u_2027-06-21.csv", b"x\n")
    tick = landing_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert [r.partition_key for r in tick.run_requests] == ["sch03"]
    landed = tiny_home.landing / "sch03" / "comments" / "comments_2027-06-21.csv"
    assert landed.read_bytes() == b"comment_text\nfine\n"
    assert not s3.exists("inbox/daemon/sch03/comments/comments_2027-06-21.csv")
    received = [e for e in read_entries(tiny_home.audit_log) if e["action"] == "received"]
    assert received[-1]["actor"] == "landing-sensor"
    assert s3.exists("inbox/daemon/jane.doe@example.org/usage/u_2027-06-21.csv")  # refused, kept
    assert "jane.doe" not in tiny_home.audit_log.read_text()
    ours = [line for line in capfd.readouterr().err.splitlines() if " - dagster - " in line]
    assert any("left in the inbox" in line for line in ours)
    assert not any("jane.doe" in line for line in ours)  # (moto's own server log names it)


def test_one_mover_at_a_time_and_a_time_budget_defers_the_rest(tiny_home, s3):
    for day in ("20", "21", "22"):
        s3.pipe(f"inbox/in/sch01/comments/comments_2027-06-{day}.csv", b"comment_text\nok\n")
    with exclusive_lock(tiny_home.dagster / object_store.INBOX_LOCK_NAME) as mine:
        assert mine
        busy = object_store.pull_inbox(tiny_home, "s3://inbox/in")  # the sensor, while a run moves it
        assert busy.busy and busy.moved == [] and len(s3.find("inbox/in")) == 3
    spent = object_store.pull_inbox(tiny_home, "s3://inbox/in", time_budget=0.0)
    assert spent.moved == [] and spent.deferred == 3 and len(s3.find("inbox/in")) == 3
    free = object_store.pull_inbox(tiny_home, "s3://inbox/in")
    assert (
        len(free.moved) == 3 and not free.busy and not [k for k in s3.find("inbox/in") if k.endswith(".csv")]
    )


def test_the_sensor_tick_survives_an_audit_log_it_cannot_open(tiny_home, s3, monkeypatch):
    import dagster as dg

    from pipelines.schools import sensors

    monkeypatch.setenv("IMPACT_HOME", str(tiny_home.root))
    monkeypatch.setenv(object_store.INBOX_ENV, "s3://inbox/daemon")
    s3.pipe("inbox/daemon/sch03/comments/comments_2027-06-21.csv", b"comment_text\nfine\n")

    def unwritable(*args, **kwargs):
        raise PermissionError("audit/ is read-only")

    monkeypatch.setattr(object_store.AuditLog, "for_home", unwritable)
    tick = sensors.landing_sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()))
    assert sorted(r.partition_key for r in tick.run_requests) == ["sch01", "sch02", "sch03"]
    assert s3.exists("inbox/daemon/sch03/comments/comments_2027-06-21.csv")  # nothing moved unaudited
