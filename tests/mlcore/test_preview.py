"""token_length_summary measures texts in tokens and says how many max_length would cut."""

from __future__ import annotations

import pytest

from mlcore.preview import HISTOGRAM_MAX_BINS, length_histogram, token_length_summary
from mlcore.train import ModelLoadError


def test_lengths_count_special_tokens_and_truncation_is_measured_against_max_length(tiny_bert):
    # Word counts 1..10, so token counts 3..12 with [CLS] and [SEP].
    texts = [" ".join(["good"] * n) for n in range(1, 11)]
    summary = token_length_summary(texts, str(tiny_bert), max_length=8)
    assert (summary["sampled"], summary["max"], summary["median"], summary["p90"]) == (10, 12, 8, 11)
    assert summary["mean"] == pytest.approx(7.5)
    assert summary["truncated_fraction"] == pytest.approx(0.4)  # 9, 10, 11 and 12 tokens
    histogram = summary["histogram"]
    assert summary["max_length"] == 8 and sum(b["count"] for b in histogram) == 10
    # 8 is an edge: the bins from 8 on hold exactly the four texts it cuts.
    assert [b["start"] for b in histogram if b["cut"]][0] == 8
    assert sum(b["count"] for b in histogram if b["cut"]) == 4


def test_large_inputs_are_sampled(tiny_bert):
    summary = token_length_summary(["good film"] * 50, str(tiny_bert), sample_size=20)
    assert summary["sampled"] == 20 and summary["max"] == 4


def test_an_unknown_model_is_a_model_load_error():
    with pytest.raises(ModelLoadError, match="could not load the tokenizer of './missing'"):
        token_length_summary(["x"], "./missing")


# IMDB-like lengths: 20 to 1450 tokens. Ten equal bins were 145 wide, so at max_length 64 or 128 the first bin held
# texts that fit and texts that are cut, and the cut was never drawn.
LONG = [20 + (i * 37) % 1431 for i in range(600)]


@pytest.mark.parametrize("max_length", [64, 100, 127, 128, 512])
def test_max_length_is_a_bin_edge_so_no_bin_holds_texts_that_fit_and_texts_that_are_cut(max_length):
    bins = length_histogram(LONG, max_length)
    assert max_length in [b["start"] for b in bins]
    for b in bins:
        inside = [n for n in LONG if b["start"] < n <= b["end"]]
        assert b["count"] == len(inside)
        assert all(n > max_length for n in inside) if b["cut"] else all(n <= max_length for n in inside)
    assert sum(b["count"] for b in bins if b["cut"]) == sum(n > max_length for n in LONG)
    assert sum(b["count"] for b in bins) == len(LONG)
    assert 2 <= len([b for b in bins if not b["cut"]]) <= 8 and len(bins) <= HISTOGRAM_MAX_BINS


def test_bins_are_of_equal_width_but_for_rounding_and_the_last_open_one():
    bins = length_histogram(LONG, 128)
    widths = {b["end"] - b["start"] for b in bins if not b["open"]}
    assert widths == {64}
    short = length_histogram(LONG, 64)  # 32-token bins would be 45 of them: the longest share the last
    assert short[-1]["open"] and short[-1]["end"] == max(LONG) and len(short) == HISTOGRAM_MAX_BINS
    assert not any(b["open"] for b in short[:-1])


def test_when_every_text_fits_the_bins_cover_the_lengths_and_none_is_cut():
    bins = length_histogram([3, 5, 9, 40], 512)
    assert not any(b["cut"] for b in bins) and bins[-1]["end"] >= 40 and bins[-1]["end"] < 512
    assert sum(b["count"] for b in bins) == 4
