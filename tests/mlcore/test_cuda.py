"""On a CUDA machine: bf16 autocast, pinned batches and the whole fine-tune/distil path run on the GPU.

Skipped where there is no GPU; the CPU suite covers the same logic with fp32.
"""

from __future__ import annotations

import math

import pytest
import torch

from mlcore.batching import split_loaders
from mlcore.config import DistillConfig, TrainConfig
from mlcore.devices import autocast_dtype
from mlcore.distill import distill
from mlcore.testing import RecordingCallback
from mlcore.train import finetune

from .conftest import TINY_TRAINING

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# All of TINY_TRAINING's epochs: with 2 the tiny BERT stays at chance on CPU and GPU alike (0.5), so the accuracy
# check below would test nothing.
ON_GPU = {**TINY_TRAINING, "device": "cuda"}


def test_auto_precision_is_bf16_on_a_modern_gpu():
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    assert autocast_dtype(torch.device("cuda"), "auto") is expected


def test_training_batches_are_pinned_for_asynchronous_copies(tiny_bert, sentiment):
    from transformers import AutoTokenizer

    loaders = split_loaders(
        {"train": sentiment, "valid": sentiment}, {"inputs": AutoTokenizer.from_pretrained(tiny_bert)},
        max_length=32, batch_size=16, seed=0, pin_memory=True,
    )  # fmt: skip
    batch = next(loaders["train"].epoch(0))
    assert batch["labels"].is_pinned() and batch["inputs"]["input_ids"].is_pinned()
    assert next(iter(loaders["valid"]))["labels"].is_pinned()


def test_fine_tuning_and_distillation_run_on_the_gpu(tiny_bert, sentiment, tmp_path):
    callback = RecordingCallback()
    teacher = finetune(sentiment, str(tiny_bert), tmp_path / "teacher", TrainConfig(**ON_GPU), callback)
    assert callback.info["device"].startswith("cuda")
    assert all(math.isfinite(m["train/loss"]) for _, _, m in callback.batches)
    assert teacher.metrics["test/accuracy"] > 0.6

    config = DistillConfig(**ON_GPU, hidden_loss_weight=1.0)
    student = distill(sentiment, teacher.output_dir, tmp_path / "student", config, RecordingCallback())
    assert math.isfinite(student.metrics["test/loss"])


def test_a_gpu_run_resumes_from_its_checkpoint_at_the_right_step(tiny_bert, sentiment, tmp_path):
    from mlcore.callbacks import Cancelled

    config = TrainConfig(**{**ON_GPU, "epochs": 2, "checkpoint_every": 4})
    with pytest.raises(Cancelled):
        finetune(sentiment, str(tiny_bert), tmp_path / "out", config, RecordingCallback(stop_after=5))
    callback = RecordingCallback()
    result = finetune(sentiment, str(tiny_bert), tmp_path / "out", config, callback)
    assert callback.info["resumed_from_step"] == 4
    assert callback.batches[0][0] == 5 and result.steps == 16


def test_batches_without_padding_train_from_cuda_graphs(tiny_bert, long_reviews, tmp_path):
    config = {**ON_GPU, "max_length": 16}  # long_reviews: every batch (16, 16), without padding
    teacher = finetune(long_reviews, str(tiny_bert), tmp_path / "teacher", TrainConfig(**config), RecordingCallback())
    assert (teacher.steps, teacher.graphed_steps) == (64, 62)  # recorded at the shape's third call
    assert teacher.metrics["test/accuracy"] > 0.6  # the optimiser updated the weights the graphs read

    student = distill(long_reviews, teacher.output_dir, tmp_path / "student", DistillConfig(**config))
    assert student.graphed_steps == 62
    assert student.metrics["test/accuracy"] > 0.6
