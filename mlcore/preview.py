"""What a table holds, for the web side: its summary once checked (table_info), and its preview (table_preview):
the first rows, the label distribution and the texts' lengths in tokens, with how many max_length would cut.

table_info and table_preview are what the web process runs in its helper processes (jobs.offload): they take a
path and return small, picklable results, and their errors (DataError, PreviewError) unpickle without torch.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from typing import Any

from mlcore.catalogue import BUNDLED_ID, resolve_model
from mlcore.data import TableInfo, read_table


class PreviewError(ValueError):
    """A preview that cannot be made; `field` names what is wrong (the tokenizer's "model"), str() says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)  # both in args: pickle rebuilds it from them
        self.field, self.message = field, message

    def __str__(self) -> str:
        return self.message


def table_info(
    path: str | os.PathLike[str], *, format: str | None = None,  # noqa: A002 - read_table's name
    text_column: str | None = None, label_column: str | None = None, max_bytes: int | None = None,
) -> TableInfo:  # fmt: skip
    """read_table's checks on a file, and what it found (its label names are label_counts' keys, in order),
    without the rows: a DataError says what is wrong."""
    return read_table(path, format=format, text_column=text_column, label_column=label_column, max_bytes=max_bytes)[1]


def table_preview(
    path: str | os.PathLike[str], *, format: str | None = None,  # noqa: A002 - read_table's name
    text_column: str | None = None, label_column: str | None = None, max_bytes: int | None = None,
    model_id: str = BUNDLED_ID, max_length: int = 128, rows: int = 50, text_chars: int = 400,
) -> dict[str, Any]:  # fmt: skip
    """A stored table's preview: {"num_rows", "labels", "label_counts", "rows", "tokens"}, where rows are the
    first `rows` as {"text" (its first text_chars characters), "text_chars", "label"} and tokens is
    token_length_summary's. A DataError for a file that no longer reads, a PreviewError("model", ...) for a
    tokenizer that cannot be loaded."""
    data, info = read_table(
        path, format=format, text_column=text_column, label_column=label_column, max_bytes=max_bytes
    )
    from mlcore.loading import ModelLoadError  # imports torch: only here, in the helper that counts tokens

    try:
        tokens = token_length_summary(data.texts, model_id, max_length=max_length)
    except ModelLoadError as e:
        raise PreviewError("model", str(e)) from None
    sample = [
        {"text": text[:text_chars], "text_chars": len(text), "label": data.label_names[label]}
        for text, label in zip(data.texts[:rows], data.labels[:rows], strict=True)
    ]
    return {
        "num_rows": info.num_rows, "labels": data.label_names, "label_counts": info.label_counts,
        "rows": sample, "tokens": tokens,
    }  # fmt: skip


def token_length_summary(
    texts: Sequence[str],
    model_id: str = BUNDLED_ID,
    *,
    max_length: int = 128,  # tokens
    sample_size: int = 2000,  # texts tokenised at most; a seeded sample keeps large uploads fast
    seed: int = 0,
) -> dict[str, Any]:
    """Lengths in tokens of `model_id`'s tokenizer, special tokens included (as max_length counts them).

    Returns {"sampled", "mean", "median", "p90", "max", "truncated_fraction", "histogram"}, where histogram is
    ten equal-width bins [{"start", "end", "count"}] (start inclusive, end exclusive) covering 0..max.
    """
    # Local imports: the web process imports this module at start-up but tokenises only on a preview.
    from transformers import AutoTokenizer

    from mlcore.loading import ModelLoadError

    if not texts:
        raise ValueError("no texts to measure")
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(model_id))
    except Exception as e:
        raise ModelLoadError(f"could not load the tokenizer of {model_id!r}: {e}") from e
    chosen = list(texts) if len(texts) <= sample_size else random.Random(seed).sample(list(texts), sample_size)
    # verbose=False: measuring texts longer than the model accepts is the point, not a mistake to warn about.
    lengths = sorted(len(ids) for ids in tokenizer(chosen, truncation=False, verbose=False)["input_ids"])

    width = max(1, math.ceil((lengths[-1] + 1) / 10))
    counts = [0] * 10
    for n in lengths:
        counts[n // width] += 1
    return {
        "sampled": len(lengths),
        "mean": sum(lengths) / len(lengths),
        "median": lengths[len(lengths) // 2],
        "p90": lengths[min(len(lengths) - 1, math.ceil(0.9 * len(lengths)) - 1)],
        "max": lengths[-1],
        "truncated_fraction": sum(n > max_length for n in lengths) / len(lengths),
        "histogram": [{"start": i * width, "end": (i + 1) * width, "count": c} for i, c in enumerate(counts)],
    }
