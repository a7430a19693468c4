"""Shared fixtures for mlcore's tests: a tiny random BERT, a learnable dataset, and one fine-tuned and one
distilled model that several test files read (training them once keeps the suite fast)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from mlcore.config import DistillConfig, TrainConfig
from mlcore.data import TextDataset
from mlcore.testing import RecordingCallback, make_tiny_bert, sentiment_rows

# Settings under which the tiny BERT reliably learns sentiment_rows (test accuracy 0.94-1.0 across seeds).
TINY_TRAINING = {
    "learning_rate": 3e-3,
    "batch_size": 16,
    "max_length": 32,
    "epochs": 8,
    "lr_gamma": 0.9,
    "lr_step_every": 10,
    "device": "cpu",
}


@dataclass
class Run:
    result: object  # mlcore.train.TrainResult
    callback: RecordingCallback
    config: TrainConfig


@pytest.fixture(scope="session", autouse=True)
def one_cpu_thread():
    """Tiny models train faster on one thread, and at a steady speed when other processes share the cores."""
    import torch

    saved_env, saved_threads = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    os.environ["OMP_NUM_THREADS"] = "1"  # finetune() leaves the thread count alone when this is set
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved_threads)
    if saved_env is None:
        del os.environ["OMP_NUM_THREADS"]
    else:
        os.environ["OMP_NUM_THREADS"] = saved_env


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="session")
def sentiment() -> TextDataset:
    return TextDataset.from_rows(sentiment_rows(160, seed=0))


@pytest.fixture(scope="session")
def long_reviews() -> TextDataset:
    """sentiment_rows with every review said three times: 17-32 tokens, so at max_length 16 every batch is cut to
    16 tokens and needs no padding, and the first saying, sentiment words included, is always kept."""
    return TextDataset.from_rows([(f"{text} {text} {text}", label) for text, label in sentiment_rows(160, seed=0)])


@pytest.fixture(scope="session")
def finetuned(tiny_bert: Path, sentiment: TextDataset, tmp_path_factory: pytest.TempPathFactory) -> Run:
    from mlcore.train import finetune

    config = TrainConfig(**TINY_TRAINING)
    callback = RecordingCallback()
    result = finetune(sentiment, str(tiny_bert), tmp_path_factory.mktemp("finetuned") / "model", config, callback)
    return Run(result, callback, config)


@pytest.fixture(scope="session")
def distilled(finetuned: Run, sentiment: TextDataset, tmp_path_factory: pytest.TempPathFactory) -> Run:
    from mlcore.distill import distill

    config = DistillConfig(**TINY_TRAINING, alpha=0.5, temperature=2.0)
    callback = RecordingCallback()
    out = tmp_path_factory.mktemp("distilled") / "model"
    result = distill(sentiment, finetuned.result.output_dir, out, config, callback)
    return Run(result, callback, config)


# Every way a tensor's value reaches Python, and so makes the host wait for a GPU.
SYNCING = ("item", "tolist", "__float__", "__int__", "__bool__")


def count_syncs(monkeypatch, modules: tuple[str, ...] | None) -> list[str]:
    """The syncing calls made from code in `modules` (None: from anywhere), recorded as they happen."""
    calls: list[str] = []
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            if modules is None or sys._getframe(1).f_globals.get("__name__") in modules:
                calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return calls
