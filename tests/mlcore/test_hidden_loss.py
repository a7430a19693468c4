"""The hidden-state loss is the masked mean squared error between paired student and teacher layers."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from mlcore.config import DistillConfig
from mlcore.distill import distill
from mlcore.losses import hidden_state_loss
from mlcore.students import derive_student, layers_to_keep
from mlcore.testing import RecordingCallback

from .conftest import TINY_TRAINING


def test_the_loss_matches_a_hand_computed_value_and_ignores_padding():
    # One sequence of 3 tokens, the last one padding; hidden size 2; two layer pairs.
    mask = torch.tensor([[1, 1, 0]])
    student = [torch.tensor([[[1.0, 2.0], [0.0, 0.0], [100.0, 100.0]]]), torch.zeros(1, 3, 2)]
    teacher = [torch.tensor([[[0.0, 0.0], [0.0, 3.0], [0.0, 0.0]]]), torch.ones(1, 3, 2)]
    # Pair 1: squared errors 1 + 4 + 0 + 9 = 14 over 2 tokens * 2 units = 3.5. Pair 2: 4 * 1 / 4 = 1.
    assert hidden_state_loss(student, teacher, mask).item() == pytest.approx((3.5 + 1.0) / 2)


def test_no_mask_counts_every_token_as_an_all_ones_mask_does():
    student = [torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))]
    teacher = [torch.zeros(2, 3, 4)]
    expected = (student[0] ** 2).mean()
    assert hidden_state_loss(student, teacher, None).item() == pytest.approx(expected.item())
    assert hidden_state_loss(student, teacher, torch.ones(2, 3)).item() == pytest.approx(expected.item())


def test_gradients_reach_the_student_only_through_real_tokens():
    mask = torch.tensor([[1, 0]])
    student = torch.zeros(1, 2, 2, requires_grad=True)
    hidden_state_loss([student], [torch.ones(1, 2, 2)], mask).backward()
    assert student.grad[0, 0].abs().sum() > 0 and student.grad[0, 1].abs().sum() == 0


def layer_outputs(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True).hidden_states


def test_a_student_that_keeps_every_layer_starts_with_no_hidden_loss_and_a_thinner_one_with_some(tiny_bert):
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    ids = torch.tensor([[2, 10, 11, 12, 13, 3]])
    mask = torch.ones_like(ids)
    teacher_states = layer_outputs(teacher, ids)
    for count, zero in [(4, True), (2, False)]:
        kept = layers_to_keep(4, count)
        student = derive_student(teacher, kept).eval()
        states = layer_outputs(student, ids)
        loss = hidden_state_loss([states[j + 1] for j in range(len(kept))], [teacher_states[i + 1] for i in kept], mask)
        assert (loss.item() == 0.0) is zero


def test_distillation_adds_the_weighted_hidden_loss_and_reports_it(finetuned, sentiment, tmp_path):
    callback = RecordingCallback()
    config = DistillConfig(**{**TINY_TRAINING, "epochs": 1}, hidden_loss_weight=2.0)
    distill(sentiment, finetuned.result.output_dir, tmp_path / "out", config, callback)
    for _, _, m in callback.batches:
        assert m["train/hidden_loss"] > 0
        expected = 0.5 * m["train/soft_loss"] + 0.5 * m["train/hard_loss"] + 2.0 * m["train/hidden_loss"]
        assert m["train/loss"] == pytest.approx(expected, rel=1e-5)


def test_without_a_weight_no_hidden_loss_is_computed_or_reported(distilled):
    assert all("train/hidden_loss" not in m for _, _, m in distilled.callback.batches)
