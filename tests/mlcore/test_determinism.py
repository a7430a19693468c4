"""The same data, settings and seed train to the same numbers on CPU."""

from __future__ import annotations

from mlcore.config import TrainConfig
from mlcore.testing import RecordingCallback, learnt
from mlcore.train import finetune

from .conftest import TINY_TRAINING


def run(tiny_bert, dataset, out, seed):
    callback = RecordingCallback()
    config = TrainConfig(**{**TINY_TRAINING, "epochs": 2, "seed": seed})
    result = finetune(dataset, str(tiny_bert), out, config, callback)
    return result, callback


def test_the_same_seed_gives_identical_metrics(tiny_bert, sentiment, tmp_path):
    first, first_calls = run(tiny_bert, sentiment, tmp_path / "a", seed=7)
    second, second_calls = run(tiny_bert, sentiment, tmp_path / "b", seed=7)
    assert first.metrics == second.metrics
    assert learnt(first_calls.batches) == learnt(second_calls.batches)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_another_seed_gives_other_numbers(tiny_bert, sentiment, tmp_path):
    _, first_calls = run(tiny_bert, sentiment, tmp_path / "a", seed=7)
    _, other_calls = run(tiny_bert, sentiment, tmp_path / "b", seed=8)
    assert [m["train/loss"] for *_, m in first_calls.batches] != [m["train/loss"] for *_, m in other_calls.batches]
