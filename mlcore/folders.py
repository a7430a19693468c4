"""Datasets kept as folders of text files, in the layout of the Large Movie Review Dataset (aclImdb):

    <root>/<split>/<label>/<any name>.txt     e.g. aclImdb/train/pos/0_9.txt, aclImdb/test/neg/1_3.txt
    <root>/<label>/<any name>.txt             one split only

Each .txt file is one text; its folder's name is its label. IMDB's `train/unsup` (reviews without a label)
is not a label and is skipped. No torch here: the web process validates folders with it.

Written by hand: neither HF datasets' builders (its "text" builder reads lines, its folder builders take
images and audio) nor the standard library read labels from folder names for text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlcore.data import DataError, TextDataset, decode_text, read_file

UNLABELLED = frozenset({"unsup"})  # folders of texts without a label, as in aclImdb/train/unsup
SUFFIX = ".txt"


@dataclass(frozen=True)
class FolderInfo:
    """What read_folder found: the split read (None for a folder of label folders) and the ones beside it."""

    root: str
    split: str | None
    splits: list[str]
    num_rows: int
    label_counts: dict[str, int]


def folder_splits(root: str | os.PathLike[str]) -> list[str]:
    """The split folders under root (those holding label folders of .txt files), sorted; [] for a root that
    holds label folders itself."""
    root = Path(root)
    if _label_folders(root):
        return []
    return sorted(p.name for p in _subfolders(root) if _label_folders(p))


def is_folder_dataset(root: str | os.PathLike[str]) -> bool:
    """Whether root holds label folders, or split folders of label folders, of .txt files."""
    root = Path(root)
    return root.is_dir() and (len(_label_folders(root)) >= 2 or bool(folder_splits(root)))


def read_folder(
    root: str | os.PathLike[str],
    split: str | None = None,
    *,
    max_rows: int = 1_000_000,
    max_text_chars: int = 100_000,
    max_bytes: int | None = None,  # all files together, counted once inflated; None: no limit
) -> tuple[TextDataset, FolderInfo]:
    """Read one split of a folder dataset: (dataset, info). Files are read in name order, label by label.

    Raises DataError, saying what was expected, for: a root that is not a folder, an unknown split, a root
    with splits but none chosen, fewer than 2 labels, an empty or blank file, a file that is not UTF-8, a text
    over max_text_chars, more than max_rows files or max_bytes in all, and a split, label folder or file that
    leads outside the root (a symlink): whoever may import the root may not read what it points at.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise DataError(f"no folder at {str(root)!r}")
    splits = folder_splits(root)
    if split:
        if split not in splits:
            found = f"its splits are: {', '.join(splits)}" if splits else "it has no split folders"
            raise DataError(f"{root.name!r} has no split {split!r} with label folders of .txt files; {found}")
        base = _inside(root, root / split, split)
    elif splits:
        raise DataError(f"{root.name!r} holds the splits {', '.join(splits)}: choose one")
    else:
        base = root
    labels = _label_folders(base)
    if len(labels) < 2:
        found = f"only {labels[0].name!r}" if labels else "none"
        raise DataError(
            f"a folder dataset needs at least 2 label folders of {SUFFIX} files under {base.name!r}; found {found}"
        )

    texts: list[str] = []
    label_strings: list[str] = []
    total = 0
    for folder in labels:
        _inside(root, folder, folder.name)
        for path in sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and p.is_file()):
            if len(texts) >= max_rows:
                raise DataError(f"the folder holds more than {max_rows:,} texts; the limit is {max_rows:,}")
            where = f"{folder.name}/{path.name}"
            _inside(root, path, where)
            # A .txt file may be gzip-compressed: each is inflated under the folder's whole budget, so that
            # one bomb among the texts is refused while it inflates, not after.
            raw = read_file(path, max_bytes=max_bytes, where=where)
            total += len(raw)
            if max_bytes is not None and total > max_bytes:
                raise DataError(f"the folder's texts come to more than {max_bytes / 2**20:.0f} MB, the limit")
            text = decode_text(raw, where)
            if not text.strip():
                raise DataError(f"{where}: the file is empty")
            if len(text) > max_text_chars:
                raise DataError(f"{where}: the text is {len(text):,} characters long; the limit is {max_text_chars:,}")
            texts.append(text)
            label_strings.append(folder.name)
    dataset = TextDataset.from_rows(zip(texts, label_strings, strict=True))
    info = FolderInfo(str(root), split or None, splits, len(dataset), dataset.label_counts())
    return dataset, info


def _inside(root: Path, path: Path, where: str) -> Path:
    """`path` once it is known to lie under `root` with every symlink resolved; DataError naming it otherwise."""
    if not path.resolve().is_relative_to(root):
        raise DataError(f"{where} leads outside the dataset folder (a symbolic link); it is not read")
    return path


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _label_folders(folder: Path) -> list[Path]:
    """Subfolders that hold at least one .txt file (checked without listing a 12,500-file folder whole)."""
    return [p for p in _subfolders(folder) if p.name not in UNLABELLED and _holds_texts(p)]


def _holds_texts(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(e.name.endswith(SUFFIX) and e.is_file() for e in entries)
