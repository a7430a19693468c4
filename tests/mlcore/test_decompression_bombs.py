"""Decompression bombs: a gzip table is refused while it inflates, past the byte cap its caller passes or past
MAX_GZIP_RATIO times its size, holding little memory and taking little time; real gzip tables still read."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlcore.data import MAX_GZIP_RATIO, DataError, read_table, read_texts
from mlcore.folders import read_folder
from mlcore.testing import sentiment_rows, write_gzip_bomb

REPO = Path(__file__).resolve().parents[2]
IMDB_TRAIN = REPO.parent / "shared" / "data" / "imdb" / "train.csv.gz"
UPLOAD_LIMIT = 200 * 2**20  # DISTILLERY_MAX_UPLOAD_MB's default, as the platform passes it

# Reads a file in a fresh interpreter and reports its peak memory (ru_maxrss, which counts zlib's and every
# other C allocation that tracemalloc misses) before and after, and the seconds read_table took. The address
# space is capped a GiB above the start, so that a reader that holds the bomb fails here with MemoryError
# instead of taking gigabytes from a shared machine.
_MEASURE = """
import json, resource, sys, time
from mlcore.data import DataError, read_table

pages = int(open("/proc/self/statm").read().split()[0])
room = pages * resource.getpagesize() + 2**30
resource.setrlimit(resource.RLIMIT_AS, (room, resource.getrlimit(resource.RLIMIT_AS)[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    read_table(sys.argv[1], max_bytes=int(sys.argv[2]))
    message = None
except DataError as e:
    message = str(e)
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024, "seconds": seconds, "message": message}))
"""


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 500 MiB cell in about 510 KB of gzip, the upload of issue 16."""
    return write_gzip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.csv.gz", 500)


def _gzip_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    out = io.StringIO()
    csv.writer(out).writerows([("text", "label"), *rows])
    path.write_bytes(gzip.compress(out.getvalue().encode(), mtime=0))
    return path


def test_the_500_mib_bomb_is_refused_while_it_inflates_in_little_memory_and_time(bomb: Path) -> None:
    assert bomb.stat().st_size < 600_000
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(bomb), str(UPLOAD_LIMIT)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    measured = json.loads(run.stdout)
    assert measured["message"] == (
        f"the file inflates to more than {MAX_GZIP_RATIO} times its compressed size of "
        f"{bomb.stat().st_size:,} bytes; the limit is 100:1 (text compresses about 3:1)"
    )
    assert measured["growth_mb"] < 100, measured
    assert measured["seconds"] < 2, measured


def test_a_bomb_under_the_byte_cap_is_refused_by_the_ratio_alone(tmp_path: Path) -> None:
    small_bomb = write_gzip_bomb(tmp_path / "b.csv.gz", 20)  # 20 MiB from about 20 KB: 1000:1
    for reader in (read_table, read_texts):
        for cap in (2**30, None):
            with pytest.raises(DataError, match=r"inflates to more than 100 times its compressed size"):
                reader(small_bomb, max_bytes=cap)


def test_the_cap_counts_inflated_bytes_so_a_file_just_under_it_reads_and_just_over_is_refused(
    tmp_path: Path,
) -> None:
    path = _gzip_csv(tmp_path / "r.csv.gz", sentiment_rows(400))
    inflated = len(gzip.decompress(path.read_bytes()))
    assert path.stat().st_size < inflated // 3  # a cap on the bytes sent would let it through at inflated - 1

    data, info = read_table(path, max_bytes=inflated)
    assert info.num_rows == 400 and data.label_names == ["negative", "positive"]
    with pytest.raises(DataError, match=rf"^the file inflates to more than {inflated - 1:,} bytes; the limit is "):
        read_table(path, max_bytes=inflated - 1)
    with pytest.raises(DataError, match="inflates to more than"):
        read_texts(path, max_bytes=inflated - 1)


def test_a_plain_file_over_the_cap_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"text,label\n" + b"good,pos\nbad,neg\n" * 100)
    size = path.stat().st_size
    assert len(read_table(path, max_bytes=size)[0]) == 200
    with pytest.raises(DataError, match=rf"^the file is {size:,} bytes; the limit is {size - 1:,} bytes$"):
        read_table(path, max_bytes=size - 1)


def test_a_small_file_is_not_held_to_the_ratio(tmp_path: Path) -> None:
    rows = [("the same short review", "pos"), ("the same other review", "neg")] * 15_000
    path = _gzip_csv(tmp_path / "r.csv.gz", rows)
    inflated = len(gzip.decompress(path.read_bytes()))
    assert MAX_GZIP_RATIO * path.stat().st_size < inflated < 2**20  # over the ratio, under a MiB
    assert len(read_table(path, max_bytes=UPLOAD_LIMIT)[0]) == 30_000


def test_a_gzip_file_cut_short_is_refused_as_undecompressable(tmp_path: Path) -> None:
    whole = _gzip_csv(tmp_path / "r.csv.gz", sentiment_rows(50)).read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="gzip-compressed but could not be decompressed"):
        read_table(path, max_bytes=UPLOAD_LIMIT)


@pytest.mark.skipif(not IMDB_TRAIN.exists(), reason="the shared IMDB data is not on this machine")
def test_the_real_imdb_train_csv_still_reads_under_the_caps(tmp_path: Path) -> None:
    with gzip.open(IMDB_TRAIN, "rt", encoding="utf-8", newline="") as f:
        rows = [row for _, row in zip(range(2_001), csv.reader(f), strict=False)]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    path = tmp_path / "imdb-2000.csv.gz"
    path.write_bytes(gzip.compress(out.getvalue().encode(), mtime=0))

    data, info = read_table(path, max_bytes=UPLOAD_LIMIT)
    assert info.num_rows == 2_000 and data.label_names == ["negative", "positive"]
    assert data.texts[0] == rows[1][0]


def test_a_bomb_among_a_folders_texts_is_refused_naming_the_file(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for name, text in {"pos/a.txt": "a joy", "neg/b.txt": "dull", "neg/c.txt": "weak"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    with gzip.GzipFile(root / "pos" / "bomb.txt", "wb", mtime=0) as gz:
        for _ in range(20):
            gz.write(b"a" * 2**20)
    with pytest.raises(DataError, match=r"^pos/bomb\.txt: the file inflates to more than 100 times"):
        read_folder(root, max_bytes=UPLOAD_LIMIT)
    with pytest.raises(DataError, match=r"^pos/bomb\.txt: the file inflates to more than 10,000 bytes"):
        read_folder(root, max_bytes=10_000)
    (root / "pos" / "bomb.txt").write_bytes(gzip.compress(b"loved it", mtime=0))
    assert "loved it" in read_folder(root, max_bytes=10_000)[0].texts
