"""derive_student keeps every other encoder layer of a teacher, with the teacher's weights."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from mlcore.students import derive_student
from mlcore.testing import make_tiny_bert


@pytest.fixture
def teacher(tiny_bert):
    return AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)


def test_a_four_layer_teacher_gives_a_student_with_its_layers_0_and_2(teacher):
    student = derive_student(teacher)
    assert student.config.num_hidden_layers == 2
    assert len(student.bert.encoder.layer) == 2
    for student_index, teacher_index in [(0, 0), (1, 2)]:
        kept = student.bert.encoder.layer[student_index].state_dict()
        original = teacher.bert.encoder.layer[teacher_index].state_dict()
        assert kept.keys() == original.keys()
        assert all(torch.equal(kept[k], original[k]) for k in kept)
    # Layer 1 of the student is not the teacher's layer 1.
    assert not torch.equal(
        student.bert.encoder.layer[1].output.dense.weight, teacher.bert.encoder.layer[1].output.dense.weight
    )


def test_embeddings_and_head_are_copied_and_the_teacher_is_untouched(teacher):
    student = derive_student(teacher)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert teacher.config.num_hidden_layers == 4 and len(teacher.bert.encoder.layer) == 4
    with torch.no_grad():
        student.classifier.weight.add_(1.0)
    assert not torch.equal(student.classifier.weight, teacher.classifier.weight)


def test_the_student_runs_and_is_trainable(teacher):
    student = derive_student(teacher.requires_grad_(False))
    logits = student(input_ids=torch.tensor([[2, 5, 6, 3]])).logits
    assert logits.shape == (1, 2)
    assert all(p.requires_grad for p in student.parameters())


def test_explicit_layers_can_be_kept(teacher):
    student = derive_student(teacher, keep_layers=[1, 3])
    assert torch.equal(
        student.bert.encoder.layer[0].output.dense.weight, teacher.bert.encoder.layer[1].output.dense.weight
    )


@pytest.mark.parametrize("keep", [[], [2, 1], [0, 4], [1, 1]])
def test_invalid_layer_lists_are_refused(teacher, keep):
    with pytest.raises(ValueError, match="keep_layers must be increasing"):
        derive_student(teacher, keep_layers=keep)


def test_a_one_layer_teacher_is_refused(tmp_path):
    teacher = AutoModelForSequenceClassification.from_pretrained(make_tiny_bert(tmp_path, num_layers=1))
    with pytest.raises(ValueError, match="at least 2"):
        derive_student(teacher)
