"""measure_cpu_speed times the saved model as it serves on CPU, within its time budget."""

from __future__ import annotations

import time

import pytest
import torch

from mlcore.evaluate import measure_cpu_speed

TEXTS = ["great film , loved it", "awful and boring", "the plot was dull and the acting poor"]


def test_it_reports_latency_and_throughput_at_batch_1_and_32_and_the_thread_count(finetuned):
    speed = measure_cpu_speed(finetuned.result.output_dir, TEXTS, repeats=5, max_seconds=5)
    assert set(speed) == {
        "cpu/latency_ms_b1", "cpu/samples_per_s_b1", "cpu/latency_ms_b32", "cpu/samples_per_s_b32", "cpu/threads",
    }  # fmt: skip
    assert all(value > 0 for value in speed.values())
    assert speed["cpu/threads"] == torch.get_num_threads()
    # A batch of 32 costs more per request than one text, and less per text.
    assert speed["cpu/latency_ms_b32"] > speed["cpu/latency_ms_b1"]
    assert speed["cpu/samples_per_s_b32"] > speed["cpu/samples_per_s_b1"]
    # Single requests: throughput and median latency describe the same few milliseconds.
    assert 1000 / speed["cpu/latency_ms_b1"] == pytest.approx(speed["cpu/samples_per_s_b1"], rel=0.5)


def test_the_time_budget_bounds_the_measurement(finetuned):
    began = time.perf_counter()
    measure_cpu_speed(finetuned.result.output_dir, TEXTS, batch_sizes=(1,), repeats=100_000, max_seconds=0.5)
    assert time.perf_counter() - began < 2.5  # the budget, plus loading the model once


def test_no_texts_is_an_error(finetuned):
    with pytest.raises(ValueError, match="at least one text"):
        measure_cpu_speed(finetuned.result.output_dir, [])
