"""The engine trains what the study's loop trains: given the study loop's batch order, step for step the same.

bench-train compares the two loops on the same rows and seed, but each draws its own batch order (the study's
DataLoader shuffle, the engine's seeded length-grouped order), so their accuracies differ by what any two
orders differ by. These tests pin down that the order is the only difference: the engine's tokenise-once
batches, dropped attention masks, one-sync metric fetch, scheduler and optimiser compute the same losses as the
study's loop (bench/baseline.py), batch after batch, when both see the same batches in the same order.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

import mlcore.batching
from bench.baseline import StudyConfig, distill_baseline, finetune_baseline
from mlcore.config import DistillConfig, TrainConfig
from mlcore.data import TextDataset
from mlcore.testing import RecordingCallback, make_tiny_bert, sentiment_rows

# The study's hyperparameters, scaled to a tiny BERT that learns within a few dozen steps.
# Weight decay off on both sides: the study loop decays every weight, the engine skips biases and norms.
STUDY = {
    "max_length": 16, "batch_size": 16, "learning_rate": 3e-3, "weight_decay": 0.0, "lr_gamma": 0.9,
    "lr_step_every": 10, "seed": 7,
}  # fmt: skip
ENGINE_AS_STUDY = {
    **STUDY, "epochs": 6, "valid_fraction": 0.0, "test_fraction": 0.0, "device": "cpu", "precision": "fp32",
    "truncation": "head", "scheduler": "exponential",
}  # fmt: skip


def dataloader_order(lengths, batch_size: int, *, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """The batches the study loop's DataLoader (shuffle=True, a generator seeded with `seed`, made once) draws
    in its epoch-th pass, read off such a loader over the row indices."""
    loader = DataLoader(range(len(lengths)), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed), collate_fn=list)  # fmt: skip
    passes = [list(loader) for _ in range(epoch + 1)]
    return passes[epoch]


@pytest.fixture
def long_rows() -> TextDataset:
    """Reviews of 17 tokens or more: at max_length 16 the study's fixed padding adds none, so both loops run the
    same tensor shapes and dropout draws the same masks."""
    rows = sentiment_rows(160, seed=3)
    return TextDataset.from_rows([(f"{text} {text} {text}", label) for text, label in rows])


@pytest.fixture
def study_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mlcore.batching, "batch_order", dataloader_order)


def _losses(callback: RecordingCallback) -> list[float]:
    return [metrics["train/loss"] for _, _, metrics in callback.batches]


def test_fine_tuning_in_the_study_loops_order_gives_its_losses_step_for_step(
    tmp_path: Path, long_rows: TextDataset, study_order: None
) -> None:
    from mlcore.train import finetune, make_splits

    base = make_tiny_bert(tmp_path / "base")
    config = TrainConfig(**ENGINE_AS_STUDY)
    engine = RecordingCallback()
    result = finetune(long_rows, str(base), tmp_path / "engine", config, engine)
    study: list[float] = []
    train, none = make_splits(long_rows, config)["train"], long_rows.subset([])
    figures = finetune_baseline(
        train, none, train, str(base), tmp_path / "study", StudyConfig(**STUDY, epochs=6),
        on_step=lambda step, total, loss, acc: study.append(loss),
    )  # fmt: skip

    assert len(study) == result.steps == 60  # 160 rows / 16, six epochs
    assert _losses(engine) == pytest.approx(study, rel=1e-6)  # bit-identical on this machine
    assert result.metrics["train/avg_accuracy"] == pytest.approx(figures["avg_train_accuracy"], abs=1e-9)
    assert sum(study[-10:]) < 0.5 * sum(study[:10])  # it learnt: equal losses are not two flat lines


def test_distillation_in_the_study_loops_order_gives_its_losses_step_for_step(
    tmp_path: Path, long_rows: TextDataset, study_order: None
) -> None:
    from mlcore.distill import distill
    from mlcore.train import finetune, make_splits

    teacher = finetune(
        long_rows, str(make_tiny_bert(tmp_path / "base")), tmp_path / "teacher", TrainConfig(**ENGINE_AS_STUDY)
    ).output_dir
    engine = RecordingCallback()
    config = DistillConfig(**ENGINE_AS_STUDY, alpha=0.5, temperature=2.0)
    distill(long_rows, str(teacher), tmp_path / "engine", config, engine)
    study: list[float] = []
    train, none = make_splits(long_rows, config)["train"], long_rows.subset([])
    distill_baseline(
        train, none, train, teacher, tmp_path / "study", StudyConfig(**STUDY, epochs=6, temperature=2.0),
        on_step=lambda step, total, loss, acc: study.append(loss),
    )  # fmt: skip

    assert len(study) == 60
    assert _losses(engine) == pytest.approx(study, rel=1e-6)  # bit-identical on this machine
