"""Distillation losses: the soft-target loss mixed with cross-entropy, and the hidden-state loss; and how often
the student's top class is the teacher's, which distillation reports beside them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def distillation_loss(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, *, alpha: float, temperature: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(total, soft, hard): total = alpha * soft + (1 - alpha) * hard.

    soft is KL(teacher || student) between the softmaxes at `temperature`, scaled by T^2 so that its gradients
    keep the same size whatever T is (Hinton et al. 2015); hard is cross-entropy against the labels.
    """
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=-1), F.softmax(teacher_logits / t, dim=-1), reduction="batchmean"
    )
    soft = soft * t * t
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard, soft, hard


def hidden_state_loss(
    student_states: Sequence[Tensor], teacher_states: Sequence[Tensor], attention_mask: Tensor | None
) -> Tensor:
    """Mean over layer pairs of the mean squared error per hidden unit over the real (unpadded) tokens.

    student_states[j] and teacher_states[j] are (batch, tokens, hidden) outputs of paired layers; a derived
    student's layer j is paired with the teacher layer it was copied from, which it starts out equal to. Padding
    is left out: its hidden states are whatever attention makes of pad tokens, and no prediction reads them.
    attention_mask None (a batch without padding) counts every token.
    Computed in fp32 whatever the autocast dtype, since squared differences of bf16 values lose most digits.
    """
    if len(student_states) != len(teacher_states) or not student_states:
        raise ValueError(f"need paired layers, got {len(student_states)} student and {len(teacher_states)} teacher")
    if attention_mask is None:
        attention_mask = student_states[0].new_ones(student_states[0].shape[:2])
    mask = attention_mask.unsqueeze(-1).float()
    denominator = mask.sum() * student_states[0].shape[-1]
    per_layer = [
        (((s.float() - t.float()) ** 2) * mask).sum() / denominator
        for s, t in zip(student_states, teacher_states, strict=True)
    ]
    return torch.stack(per_layer).mean()


def batch_agreement(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """The share of the batch's rows whose top class is the teacher's, as a 0-d float tensor left on the device
    (the training loop fetches it with the loss). Not a loss: argmax has no gradient."""
    return (student_logits.detach().argmax(dim=-1) == teacher_logits.argmax(dim=-1)).float().mean()
