"""What a table holds, for the web side: its summary once checked (table_info), and its preview (table_preview):
the first rows, the label distribution and the texts' lengths in tokens, with how many max_length would cut.

table_info and table_preview are what the web process runs in its helper processes (jobs.offload): they take a
path and return small, picklable results, and their errors (DataError, PreviewError) unpickle without torch.
"""

from __future__ import annotations

import bisect
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

    Returns {"sampled", "mean", "median", "p90", "max", "max_length", "truncated_fraction", "histogram"}, where
    histogram is length_histogram's bins for these lengths.
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

    return {
        "sampled": len(lengths),
        "mean": sum(lengths) / len(lengths),
        "median": lengths[len(lengths) // 2],
        "p90": lengths[min(len(lengths) - 1, math.ceil(0.9 * len(lengths)) - 1)],
        "max": lengths[-1],
        "truncated_fraction": sum(n > max_length for n in lengths) / len(lengths),
        "max_length": max_length,
        "histogram": length_histogram(lengths, max_length),
    }


HISTOGRAM_BINS = 16  # bins the histogram aims at over 0..longest
HISTOGRAM_MAX_BINS = 24  # past this many, the longest texts share one last, open-ended bin
MAX_BINS_UNDER_CUT = 8  # bins below max_length: at most 8, at least 2 (a short max_length before long texts)


def length_histogram(lengths: Sequence[int], max_length: int) -> list[dict[str, Any]]:
    """Bins of token lengths, [{"start", "end", "count", "cut", "open"}], each holding the lengths n with
    start < n <= end. When any text is longer than max_length, max_length is an edge: no bin holds both texts
    that fit and texts that would be cut, so "cut" (start >= max_length) marks whole bins, and the share of cut
    texts reads off the bars.

    Bins are of (nearly) equal width, max_length / k tokens for a whole k (edges rounded to whole tokens), with k
    chosen so the histogram has about HISTOGRAM_BINS bins; past HISTOGRAM_MAX_BINS, the last bin runs to the
    longest text ("open": true). When every text fits, about HISTOGRAM_BINS equal bins cover 1..longest."""
    if not lengths:
        return []
    longest = max(lengths)
    if longest <= max_length:  # nothing is cut: the bins need not reach max_length
        width = max(1, math.ceil(longest / HISTOGRAM_BINS))
        edges = list(range(0, longest + width, width))
    else:
        per_cut = min(MAX_BINS_UNDER_CUT, max_length, max(2, round(HISTOGRAM_BINS * max_length / longest)))
        edges = [0]
        while edges[-1] < longest:
            edges.append(round(len(edges) * max_length / per_cut))  # the per_cut-th edge is max_length itself
    opened = len(edges) - 1 > HISTOGRAM_MAX_BINS
    if opened:
        edges = [*edges[:HISTOGRAM_MAX_BINS], longest]
    counts = [0] * (len(edges) - 1)
    for n in lengths:
        counts[max(0, bisect.bisect_left(edges, n) - 1)] += 1
    return [
        {"start": edges[i], "end": edges[i + 1], "count": counts[i], "cut": edges[i] >= max_length,
         "open": opened and i == len(counts) - 1}
        for i in range(len(counts))
    ]  # fmt: skip


def first_texts(
    path: str | os.PathLike[str], *, format: str | None = None,  # noqa: A002 - read_table's name
    text_column: str | None = None, label_column: str | None = None, max_bytes: int | None = None, count: int = 32,
) -> list[str]:  # fmt: skip
    """A stored table's first `count` texts, whole (what a speed measurement times the models on)."""
    data, _ = read_table(path, format=format, text_column=text_column, label_column=label_column, max_bytes=max_bytes)
    return data.texts[:count]
