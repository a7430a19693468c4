"""token_length_summary measures texts in tokens and says how many max_length would cut."""

from __future__ import annotations

import pytest

from mlcore.preview import token_length_summary
from mlcore.train import ModelLoadError


def test_lengths_count_special_tokens_and_truncation_is_measured_against_max_length(tiny_bert):
    # Word counts 1..10, so token counts 3..12 with [CLS] and [SEP].
    texts = [" ".join(["good"] * n) for n in range(1, 11)]
    summary = token_length_summary(texts, str(tiny_bert), max_length=8)
    assert (summary["sampled"], summary["max"], summary["median"], summary["p90"]) == (10, 12, 8, 11)
    assert summary["mean"] == pytest.approx(7.5)
    assert summary["truncated_fraction"] == pytest.approx(0.4)  # 9, 10, 11 and 12 tokens
    histogram = summary["histogram"]
    assert len(histogram) == 10 and histogram[0] == {"start": 0, "end": 2, "count": 0}
    assert sum(b["count"] for b in histogram) == 10
    assert histogram[6] == {"start": 12, "end": 14, "count": 1}


def test_large_inputs_are_sampled(tiny_bert):
    summary = token_length_summary(["good film"] * 50, str(tiny_bert), sample_size=20)
    assert summary["sampled"] == 20 and summary["max"] == 4


def test_an_unknown_model_is_a_model_load_error():
    with pytest.raises(ModelLoadError, match="could not load the tokenizer of './missing'"):
        token_length_summary(["x"], "./missing")
