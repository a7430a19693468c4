"""Each batch reports the training throughput it had, and the process's memory joins the batches about once a
second, so that the job page can chart both over time."""

from __future__ import annotations

import time

import pytest

from mlcore.config import TrainConfig
from mlcore.loop import USAGE_EVERY_SECONDS
from mlcore.testing import RecordingCallback
from mlcore.train import finetune
from mlcore.usage import MB, memory_metrics, resident_bytes

from .conftest import TINY_TRAINING

NO_EVAL = {**TINY_TRAINING, "epochs": 2, "valid_fraction": 0.0, "test_fraction": 0.0}


class TimedCallback(RecordingCallback):
    """Also keeps when each batch was reported, and sleeps after some, as a slow step would take."""

    def __init__(self, slow_steps=()):
        super().__init__()
        self.times: list[float] = []
        self.slow_steps = set(slow_steps)

    def on_batch_end(self, step, total_steps, metrics):
        self.times.append(time.perf_counter())
        super().on_batch_end(step, total_steps, metrics)
        if step in self.slow_steps:
            time.sleep(0.3)


@pytest.fixture(scope="module")
def run(tiny_bert, sentiment, tmp_path_factory):
    callback = TimedCallback(slow_steps={3, 12})
    finetune(sentiment, str(tiny_bert), tmp_path_factory.mktemp("usage") / "out", TrainConfig(**NO_EVAL), callback)
    return callback


def test_each_batch_reports_its_rows_over_the_time_since_the_previous_report(run):
    # No valid or test split: all 160 rows train, 10 batches of 16 per epoch.
    rates = [metrics["train/samples_per_s"] for _, _, metrics in run.batches]
    assert len(rates) == 20 and all(rate > 0 for rate in rates)
    for i in range(1, 10):  # within the first epoch (the next one starts its clock afresh)
        interval = run.times[i] - run.times[i - 1]
        assert 16 / rates[i] == pytest.approx(interval, abs=0.02)


def test_a_slow_step_shows_as_a_drop_in_throughput(run):
    rates = {step: metrics["train/samples_per_s"] for step, _, metrics in run.batches}
    # Step 3's report slept 0.3 s, which step 4's time includes: at most 16 rows / 0.3 s.
    assert rates[4] < 16 / 0.3 < min(rates[s] for s in (2, 3, 5, 6))


def test_memory_is_sampled_on_the_first_batch_then_at_most_once_a_second(run):
    sampled = [i for i, (_, _, metrics) in enumerate(run.batches) if "system/rss_mb" in metrics]
    assert sampled[0] == 0
    gaps = [run.times[b] - run.times[a] for a, b in zip(sampled, sampled[1:], strict=False)]
    assert all(gap >= USAGE_EVERY_SECONDS - 0.01 for gap in gaps)
    assert all("system/gpu_memory_mb" not in metrics for _, _, metrics in run.batches)  # a CPU run


def test_the_memory_reported_is_this_processs_resident_memory(run):
    import torch

    reported = next(m["system/rss_mb"] for _, _, m in run.batches if "system/rss_mb" in m)
    now = resident_bytes() / MB
    assert 50 < reported and abs(reported - now) < 0.5 * now  # torch alone is well over 50 MiB
    assert memory_metrics(torch.device("cpu")).keys() == {"system/rss_mb"}


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_gpu_memory_pytorch_holds_is_reported_too():
    import torch

    device = torch.device("cuda")
    held = torch.empty(64 * MB, dtype=torch.uint8, device=device)  # 64 MiB
    metrics = memory_metrics(device)
    assert metrics["system/gpu_memory_mb"] >= 64 and metrics["system/rss_mb"] > 0
    del held
