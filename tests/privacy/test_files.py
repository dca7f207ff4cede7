import hashlib
import os
from datetime import date, datetime

from privacy.files import export_date, file_sha256


def test_export_date_from_the_name_else_the_modification_day(tmp_path):
    dated = tmp_path / "usage_2027-06-15.csv"
    dated.write_text("a\n")
    assert export_date(dated) == date(2027, 6, 15)
    impossible = tmp_path / "usage_2027-02-30.csv"
    undated = tmp_path / "usage.csv"
    stamp = datetime(2026, 10, 3, 12, 0).timestamp()
    for path in (impossible, undated):
        path.write_text("a\n")
        os.utime(path, (stamp, stamp))
        assert export_date(path) == date(2026, 10, 3)


def test_file_sha256_reads_in_chunks(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
