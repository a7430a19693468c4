"""student_layers picks how many teacher layers a derived student keeps: every other by default, else evenly
spaced with the first and the last."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from mlcore.config import ConfigError, DistillConfig
from mlcore.distill import distill
from mlcore.students import layers_to_keep

from .conftest import TINY_TRAINING


@pytest.mark.parametrize(
    ("layers", "count", "kept"),
    [
        (6, None, [0, 2, 4]),  # DistilBERT-style default
        (6, 3, [0, 2, 4]),  # asking for every-other's count gives every other
        (12, 6, [0, 2, 4, 6, 8, 10]),
        (12, 4, [0, 4, 7, 11]),  # round(i * 11 / 3), halves up
        (6, 2, [0, 5]),
        (6, 4, [0, 2, 3, 5]),
        (6, 1, [0]),
        (4, 4, [0, 1, 2, 3]),
    ],
)
def test_the_layers_kept(layers, count, kept):
    assert layers_to_keep(layers, count) == kept


def test_more_layers_than_the_teacher_has_are_refused():
    with pytest.raises(ValueError, match="1 to 6 of the teacher's layers, not 7"):
        layers_to_keep(6, 7)


def test_a_three_layer_student_of_a_four_layer_teacher_holds_its_layers_0_2_and_3(finetuned, sentiment, tmp_path):
    config = DistillConfig(**{**TINY_TRAINING, "epochs": 1, "learning_rate": 1e-9}, student_layers=3)
    result = distill(sentiment, finetuned.result.output_dir, tmp_path / "out", config)
    manifest = json.loads((result.output_dir / "distillery.json").read_text())
    assert manifest["student_layers_kept"] == [0, 2, 3]
    assert manifest["student"] == "derived: teacher layers [0, 2, 3]"
    student = AutoModelForSequenceClassification.from_pretrained(result.output_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(finetuned.result.output_dir)
    assert student.config.num_hidden_layers == 3
    # A learning rate of 1e-9 leaves the copied weights within float noise of the teacher's.
    for s, t in [(0, 0), (1, 2), (2, 3)]:
        assert torch.allclose(
            student.bert.encoder.layer[s].output.dense.weight,
            teacher.bert.encoder.layer[t].output.dense.weight,
            atol=1e-6,
        )


def test_a_student_larger_than_its_teacher_is_a_config_error(finetuned, sentiment, tmp_path):
    with pytest.raises(ConfigError, match="student_layers: a derived student can keep 1 to 4"):
        distill(
            sentiment, finetuned.result.output_dir, tmp_path / "out", DistillConfig(**TINY_TRAINING, student_layers=5)
        )
