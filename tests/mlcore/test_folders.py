"""Folder datasets in the IMDB layout (<split>/<label>/*.txt): read, and refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcore.data import DataError
from mlcore.folders import folder_splits, read_folder


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


@pytest.fixture
def imdb(tmp_path: Path) -> Path:
    """aclImdb in miniature: two splits, pos/neg label folders, an unlabelled folder and stray files."""
    return _write(tmp_path / "aclImdb", {
        "README": "not a split",
        "imdb.vocab": "the\nand\n",
        "train/pos/10_9.txt": "A joy.", "train/pos/2_8.txt": "\ufeffLoved it.",
        "train/neg/1_2.txt": "Dull.", "train/neg/labeledBow.feat": "0:1",
        "train/unsup/0_0.txt": "no label here",
        "test/pos/0_10.txt": "Superb.", "test/neg/0_1.txt": "Awful.", "test/neg/1_3.txt": "Weak <br />plot.",
    })  # fmt: skip


def test_a_split_of_the_imdb_layout_reads_each_file_as_a_text_labelled_by_its_folder(imdb: Path) -> None:
    data, info = read_folder(imdb, "train")
    assert data.label_names == ["neg", "pos"]
    rows = sorted(zip(data.texts, (data.label_names[y] for y in data.labels), strict=True))
    assert rows == [("A joy.", "pos"), ("Dull.", "neg"), ("Loved it.", "pos")]  # BOM dropped, unsup skipped
    assert info.splits == ["test", "train"] and info.split == "train"
    assert info.label_counts == {"neg": 1, "pos": 2} and info.num_rows == 3


def test_the_other_split_is_read_alone(imdb: Path) -> None:
    data, _ = read_folder(imdb, "test")
    assert data.label_counts() == {"neg": 2, "pos": 1}
    assert "Weak <br />plot." in data.texts


def test_a_folder_of_label_folders_is_one_split(tmp_path: Path) -> None:
    root = _write(tmp_path / "flat", {"spam/a.txt": "win money", "ham/b.txt": "see you at 5", "ham/c.txt": "ok"})
    assert folder_splits(root) == []
    data, info = read_folder(root)
    assert data.label_counts() == {"ham": 2, "spam": 1} and info.split is None


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (None, "'aclImdb' holds the splits test, train: choose one"),
        ("valid", "'aclImdb' has no split 'valid' with label folders of .txt files; its splits are: test, train"),
    ],
)
def test_a_missing_or_unknown_split_names_the_splits_there_are(imdb: Path, split, message) -> None:
    with pytest.raises(DataError) as error:
        read_folder(imdb, split)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"pos/a.txt": "fine"}, "at least 2 label folders of .txt files under 'd'; found only 'pos'"),
        ({"pos/a.txt": "fine", "neg/b.txt": "  \n"}, "neg/b.txt: the file is empty"),
        ({"pos/a.txt": "fine", "neg/b.txt": b"caf\xe9"}, "neg/b.txt: the file is not UTF-8 text (invalid byte 0xe9"),
        ({"pos/a.txt": "x" * 50, "neg/b.txt": "ok"}, "pos/a.txt: the text is 50 characters long; the limit is 40"),
    ],
)
def test_a_bad_folder_is_refused_naming_the_file(tmp_path: Path, files, message) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        read_folder(_write(tmp_path / "d", files), max_text_chars=40)


def test_a_folder_over_the_row_or_size_limit_is_refused(tmp_path: Path) -> None:
    root = _write(tmp_path / "d", {f"{label}/{i}.txt": "text " * 10 for label in ("a", "b") for i in range(3)})
    with pytest.raises(DataError, match="more than 5 texts"):
        read_folder(root, max_rows=5)
    with pytest.raises(DataError, match="more than 0 MB"):
        read_folder(root, max_bytes=200)
    assert len(read_folder(root, max_rows=6, max_bytes=300)[0]) == 6


def test_no_folder_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no folder at"):
        read_folder(tmp_path / "missing")
