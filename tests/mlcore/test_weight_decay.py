"""weight_decay shrinks weight matrices and embeddings but never biases or LayerNorm weights; 0 decays nothing."""

from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification

from mlcore.config import TrainConfig
from mlcore.optim import make_optimizer


def one_step_with_zero_gradients(model, config: TrainConfig) -> dict[str, float]:
    """Each parameter's size after / before one AdamW step whose gradients are all 0: with zero gradients
    Adam's update is 0, so any shrinking is the decoupled weight decay alone."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    return {n: float(p.detach().norm() / before[n].norm()) for n, p in model.named_parameters() if before[n].norm() > 0}


def test_weights_shrink_by_lr_times_decay_and_biases_and_layernorms_not_at_all(tiny_bert):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    ratios = one_step_with_zero_gradients(model, TrainConfig(learning_rate=0.1, weight_decay=0.5))
    shrunk = 1 - 0.1 * 0.5
    decayed = {n for n, r in ratios.items() if abs(r - shrunk) < 1e-6}
    untouched = {n for n, r in ratios.items() if r == 1.0}
    assert decayed | untouched == set(ratios)
    assert "bert.encoder.layer.0.attention.self.query.weight" in decayed
    assert "bert.embeddings.word_embeddings.weight" in decayed and "classifier.weight" in decayed
    assert untouched == {n for n in ratios if n.endswith(".bias") or "LayerNorm" in n}
    assert "bert.embeddings.LayerNorm.weight" in untouched


def test_no_parameter_is_decayed_by_default(tiny_bert):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    assert set(one_step_with_zero_gradients(model, TrainConfig(learning_rate=0.1)).values()) == {1.0}
