"""distillation_loss is alpha * T^2 * KL(teacher || student at T) + (1 - alpha) * cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch

from mlcore.distill import distillation_loss

STUDENT = [[1.0, 2.0], [0.5, -0.5]]
TEACHER = [[2.0, 0.0], [0.0, 1.0]]
LABELS = [1, 0]


def softmax(xs: list[float]) -> list[float]:
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def kl_at(temperature: float) -> float:
    """Mean over the batch of sum_j p_teacher log(p_teacher / p_student), both at `temperature`."""
    total = 0.0
    for s, t in zip(STUDENT, TEACHER, strict=True):
        p_s = softmax([x / temperature for x in s])
        p_t = softmax([x / temperature for x in t])
        total += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s, strict=True))
    return total / len(STUDENT)


def cross_entropy() -> float:
    return sum(-math.log(softmax(s)[y]) for s, y in zip(STUDENT, LABELS, strict=True)) / len(STUDENT)


def loss(alpha: float, temperature: float):
    return distillation_loss(
        torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(LABELS), alpha=alpha, temperature=temperature
    )


def test_the_loss_matches_a_hand_computed_value():
    total, soft, hard = loss(alpha=0.3, temperature=2.0)
    expected_soft = 4.0 * kl_at(2.0)
    expected_hard = cross_entropy()
    assert soft.item() == pytest.approx(expected_soft, rel=1e-5)
    assert hard.item() == pytest.approx(expected_hard, rel=1e-5)
    assert total.item() == pytest.approx(0.3 * expected_soft + 0.7 * expected_hard, rel=1e-5)
    # The numbers themselves, so a change in the hand computation cannot hide a change in the loss.
    assert (soft.item(), hard.item(), total.item()) == pytest.approx((0.7597, 0.3133, 0.4472), abs=1e-4)


def test_the_soft_loss_is_scaled_by_the_temperature_squared():
    _, soft_at_1, _ = loss(alpha=0.5, temperature=1.0)
    _, soft_at_3, _ = loss(alpha=0.5, temperature=3.0)
    assert soft_at_1.item() == pytest.approx(kl_at(1.0), rel=1e-5)
    assert soft_at_3.item() == pytest.approx(9.0 * kl_at(3.0), rel=1e-5)


def test_alpha_one_is_pure_soft_loss_and_alpha_zero_pure_cross_entropy():
    total, soft, _ = loss(alpha=1.0, temperature=2.0)
    assert total.item() == pytest.approx(soft.item())
    total, _, hard = loss(alpha=0.0, temperature=2.0)
    assert total.item() == pytest.approx(hard.item())


def test_a_student_that_matches_its_teacher_has_no_soft_loss():
    logits = torch.tensor(TEACHER)
    _, soft, _ = distillation_loss(logits, logits, torch.tensor(LABELS), alpha=0.5, temperature=2.0)
    assert soft.item() == pytest.approx(0.0, abs=1e-7)


def test_gradients_flow_to_the_student_only():
    student = torch.tensor(STUDENT, requires_grad=True)
    teacher = torch.tensor(TEACHER)
    total, _, _ = distillation_loss(student, teacher, torch.tensor(LABELS), alpha=0.5, temperature=2.0)
    total.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
