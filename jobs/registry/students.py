"""What a distillation from a stored model starts from: the teacher's own max_length, truncation and batch size,
and what the student derived from it will be (layers, hidden size, parameters, size at fp32 and int8), worked out
from the teacher's config.json (mlcore.students.estimate_student) without loading its weights.

Runs in: the web process.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from mlcore.config import DistillConfig, field_range
from mlcore.students import estimate_student

from ..models import ModelRecord

INHERITED = ("max_length", "truncation", "batch_size")  # how the teacher read its texts, and its batch size


def inherited_params(teacher: ModelRecord) -> dict:
    """The parameters a distillation takes from its teacher: those of INHERITED the teacher's training set (an
    imported model's distillery.json may set none)."""
    params = teacher.params if isinstance(teacher.params, dict) else {}
    return {name: params[name] for name in INHERITED if params.get(name) is not None}


def teacher_config(teacher: ModelRecord) -> dict:
    """The teacher's config.json, read from storage."""
    try:
        with default_storage.open(f"{teacher.artifact_prefix}/config.json", "rb") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValidationError({"teacher": f"its config.json cannot be read: {exc}"}) from None


def student_plan(teacher: ModelRecord, student_layers: int | None = None) -> dict:
    """{teacher: {id, name, layers, hidden_size, parameters}, student: {layers, kept, hidden_size, parameters,
    size_fp32, size_int8}, inherit: inherited_params}; a ValidationError on student_layers when the teacher has
    fewer layers, or its architecture has no layers a student can be cut from."""
    if student_layers is not None:
        try:
            field_range(DistillConfig, "student_layers").check("student_layers", student_layers)
        except ValueError as exc:
            raise ValidationError({"student_layers": str(exc)}) from None
    try:
        estimate = estimate_student(teacher_config(teacher), student_layers)
    except (ValueError, KeyError) as exc:  # too many layers; an unknown model type; no layer stack found
        raise ValidationError({"student_layers" if student_layers else "teacher": str(exc)}) from None
    return {
        "teacher": {
            "id": teacher.pk, "name": teacher.name, "layers": estimate.teacher_layers,
            "hidden_size": estimate.hidden_size, "parameters": estimate.teacher_parameters,
        },
        "student": {
            "layers": estimate.layers, "kept": estimate.kept, "hidden_size": estimate.hidden_size,
            "parameters": estimate.parameters, "size_fp32": estimate.fp32_bytes, "size_int8": estimate.int8_bytes,
        },
        "inherit": inherited_params(teacher),
    }  # fmt: skip
