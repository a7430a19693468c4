"""Distillation runs its teacher over the training rows once, up front, and every epoch reads those logits."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.models.bert.modeling_bert import BertForSequenceClassification

from mlcore.batching import split_loaders
from mlcore.callbacks import Cancelled
from mlcore.config import DistillConfig
from mlcore.distill import distill
from mlcore.evaluate import logits_by_row
from mlcore.testing import RecordingCallback

from .conftest import TINY_TRAINING

NO_EVAL = {**TINY_TRAINING, "valid_fraction": 0.0, "test_fraction": 0.0}


def test_each_rows_logits_land_at_its_index_and_match_the_row_run_alone(finetuned, sentiment):
    model_dir = finetuned.result.output_dir
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    train = split_loaders(
        {"train": sentiment}, {"inputs": tokenizer}, max_length=32, batch_size=16, seed=0
    )["train"]  # fmt: skip

    table = logits_by_row(model, train.by_length(7), len(sentiment), torch.device("cpu"))

    assert table.shape == (len(sentiment), 2)
    for i in (0, 1, 57, len(sentiment) - 1):  # rows of different lengths, in different by-length batches
        alone = tokenizer(sentiment.texts[i], truncation=True, max_length=32, return_tensors="pt")
        with torch.no_grad():
            expected = model(**alone).logits[0]
        torch.testing.assert_close(table[i], expected, atol=1e-5, rtol=1e-4)
    assert len({tuple(row.tolist()) for row in table}) > len(sentiment) // 2  # rows differ: nothing left at 0


@pytest.fixture
def forward_calls(monkeypatch):
    """(layers, rows, training) of every BERT classifier forward pass."""
    calls: list[tuple[int, int, bool]] = []
    original = BertForSequenceClassification.forward

    def counting(self, *args, **kwargs):
        calls.append((self.config.num_hidden_layers, kwargs["input_ids"].shape[0], self.training))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", counting)
    return calls


def test_over_two_epochs_the_teacher_sees_each_training_row_once(finetuned, sentiment, tmp_path, forward_calls):
    config = DistillConfig(**{**NO_EVAL, "epochs": 2})
    callback = RecordingCallback()
    result = distill(sentiment, finetuned.result.output_dir, tmp_path / "out", config, callback)

    teacher_rows = [rows for layers, rows, _ in forward_calls if layers == 4]
    student_rows = [rows for layers, rows, training in forward_calls if layers == 2 and training]
    assert sum(teacher_rows) == result.train_rows == len(sentiment)
    assert sum(student_rows) == 2 * len(sentiment)
    assert len(callback.batches) == 2 * -(-len(sentiment) // 16)


def test_the_hidden_state_loss_still_runs_the_teacher_in_every_step(finetuned, sentiment, tmp_path, forward_calls):
    config = DistillConfig(**{**NO_EVAL, "epochs": 2}, hidden_loss_weight=1.0)
    distill(sentiment, finetuned.result.output_dir, tmp_path / "out", config, RecordingCallback())

    teacher_rows = [rows for layers, rows, _ in forward_calls if layers == 4]
    assert sum(teacher_rows) == 2 * len(sentiment)


class StopDuringTheTeacherPass(RecordingCallback):
    def should_stop(self) -> bool:
        return True


def test_a_cancel_during_the_teacher_pass_stops_before_any_step(finetuned, sentiment, tmp_path, forward_calls):
    callback = StopDuringTheTeacherPass()
    with pytest.raises(Cancelled, match="cancelled after 0 of its batches in an inference pass"):
        distill(sentiment, finetuned.result.output_dir, tmp_path / "out", DistillConfig(**NO_EVAL), callback)
    assert forward_calls == [] and callback.batches == []
    assert not (tmp_path / "out").exists()
