"""Distillation reports how often the student's top class is the teacher's: per batch while it trains
(train/agreement), on the validation rows after each epoch (val/agreement) and on the test rows (test/agreement),
each equal to the share recomputed independently."""

from __future__ import annotations

import pytest
import torch

import mlcore.distill as distill_module
from mlcore.config import DistillConfig
from mlcore.inference import Classifier
from mlcore.loading import load_trained
from mlcore.testing import RecordingCallback
from mlcore.train import make_splits

from .conftest import TINY_TRAINING


def test_every_batch_reports_an_agreement_between_0_and_1_in_whole_rows(distilled):
    for _, _, metrics in distilled.callback.batches:
        share = metrics["train/agreement"]
        assert 0.0 <= share <= 1.0
        assert (share * 16) == pytest.approx(round(share * 16), abs=1e-5)  # 16 rows a batch: k/16
    # The student starts as half the teacher and learns to follow it: it agrees more at the end.
    first = [m["train/agreement"] for _, _, m in distilled.callback.batches[:8]]
    last = [m["train/agreement"] for _, _, m in distilled.callback.batches[-8:]]
    assert sum(last) / 8 >= 0.9 and sum(last) >= sum(first)


def test_a_batchs_agreement_is_the_share_of_its_rows_where_student_and_teacher_pick_the_same_class(
    finetuned, sentiment, tmp_path, monkeypatch
):
    # Record the student's inputs and logits on every forward pass it makes in training, then recompute the
    # first step's agreement with the teacher run afresh on those inputs.
    seen = []
    derive = distill_module.derive_student

    def recording(teacher, kept):
        student = derive(teacher, kept)
        student.register_forward_hook(
            lambda module, args, kwargs, out: seen.append((dict(kwargs), out.logits.detach().clone()))
            if module.training else None,
            with_kwargs=True,
        )
        return student

    monkeypatch.setattr(distill_module, "derive_student", recording)
    callback = RecordingCallback()
    config = DistillConfig(**{**TINY_TRAINING, "epochs": 1}, alpha=0.5, temperature=2.0)
    distill_module.distill(sentiment, finetuned.result.output_dir, tmp_path / "out", config, callback)

    teacher, _, _, _ = load_trained(finetuned.result.output_dir)
    teacher.eval()
    assert len(seen) == len(callback.batches) == 8
    for (inputs, student_logits), (_, _, metrics) in zip(seen, callback.batches, strict=True):
        with torch.no_grad():
            teacher_logits = teacher(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")).logits
        same = (student_logits.argmax(dim=-1) == teacher_logits.argmax(dim=-1)).float().mean().item()
        assert metrics["train/agreement"] == pytest.approx(same, abs=1e-6)


def _predicted(folder, texts):
    return [p.label for p in Classifier.load(folder).predict(texts)]


def test_each_validation_and_the_test_report_agreement_with_the_teacher_on_their_rows(distilled, finetuned, sentiment):
    vals = [m for split, _, m in distilled.callback.evaluations if split == "val"]
    assert len(vals) == 8 and all(0.0 <= m["val/agreement"] <= 1.0 for m in vals)
    test = [m for split, _, m in distilled.callback.evaluations if split == "test"]
    assert test[0]["test/agreement"] == distilled.result.metrics["test/agreement"]

    splits = make_splits(sentiment, distilled.config)
    for split, key in (("valid", "val/agreement"), ("test", "test/agreement")):
        texts = splits[split].texts
        student = _predicted(distilled.result.output_dir, texts)
        teacher = _predicted(finetuned.result.output_dir, texts)
        same = sum(s == t for s, t in zip(student, teacher, strict=True)) / len(texts)
        assert distilled.result.metrics[key] == pytest.approx(same), split
    assert distilled.result.metrics["val/agreement"] == vals[-1]["val/agreement"]
