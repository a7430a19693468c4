"""Datasets from the Hugging Face Hub (or any path HF datasets' load_dataset takes), read into a TextDataset.

Needs internet for a hub id: without it, the import fails at once (catalogue.hub_unreachable), as it does with
HF_HUB_OFFLINE=1, instead of after the loader's retries.
The rows go through the same column detection and checks as an uploaded file (mlcore.data.table_from_records).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from mlcore import catalogue
from mlcore.data import DataError, TableInfo, TextDataset, table_from_records


def read_hub_dataset(
    dataset_id: str,
    split: str = "train",
    *,
    config: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    max_rows: int = 1_000_000,
    max_text_chars: int = 100_000,
    cache_dir: str | os.PathLike[str] | None = None,  # None: HF datasets' own cache (HF_DATASETS_CACHE)
) -> tuple[TextDataset, TableInfo]:
    """One split of a dataset load_dataset can open (a hub id such as "stanfordnlp/imdb", or a local folder of
    CSV/JSON/Parquet files): (dataset, info with format "hub"). ClassLabel columns give their label names.

    Raises DataError saying why: it could not be loaded (offline, unknown id, no such split or config), too
    many rows, or read_table's checks (columns, empty texts, fewer than 2 labels).
    """
    import datasets  # local: a heavy import the web process needs only when it imports one

    if catalogue.hub_online() and not os.path.isdir(dataset_id):
        unreachable = catalogue.hub_unreachable()
        if unreachable:  # fail now, not after huggingface_hub's retries
            raise DataError(
                f"could not load the dataset {dataset_id!r}: the Hugging Face Hub cannot be reached from this server "
                f"({unreachable}); upload the file instead, or import a server folder"
            )
    try:
        loaded = datasets.load_dataset(
            dataset_id, name=config or None, split=split, cache_dir=str(cache_dir) if cache_dir else None
        )
    except Exception as e:  # the loader raises many kinds (ConnectionError, FileNotFoundError, ValueError, ...)
        raise DataError(f"could not load the dataset {dataset_id!r} (split {split!r}): {_reason(e)}") from None
    if len(loaded) > max_rows:
        raise DataError(f"the split has {len(loaded):,} rows; the limit is {max_rows:,}")
    columns = list(loaded.column_names)
    return table_from_records(
        "hub", columns, _records(loaded), text_column=text_column, label_column=label_column,
        max_text_chars=max_text_chars,
    )  # fmt: skip


def _records(loaded: Any) -> Iterator[tuple[int, dict[str, object]]]:
    """Rows numbered from 1, with every ClassLabel value replaced by its name ("neg", not 0)."""
    import datasets

    names = {c: f for c, f in loaded.features.items() if isinstance(f, datasets.ClassLabel)}
    for i, row in enumerate(loaded, start=1):
        for column, feature in names.items():
            if isinstance(row.get(column), int) and row[column] >= 0:  # -1 marks an unlabelled row
                row[column] = feature.int2str(row[column])
        yield i, row


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        text += " (this server is offline: HF_HUB_OFFLINE is set)"
    return text[:500]
