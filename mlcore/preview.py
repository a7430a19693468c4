"""Token-length statistics for the dataset preview: how long the texts are, and how many max_length would cut."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from mlcore.catalogue import BUNDLED_ID, resolve_model


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
