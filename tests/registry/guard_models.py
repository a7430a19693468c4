"""Models for the promote guard's tests: records with metrics set explicitly (the guard reads only what is stored),
and a teacher whose student falls short of it."""

from __future__ import annotations

from jobs.models import ModelRecord


def report(supports: dict[str, int]) -> dict:
    """A test report (mlcore.evaluate's shape) with these rows per label: what the majority baseline is taken from."""
    return {"per_class": {label: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": n}
                          for label, n in supports.items()}}  # fmt: skip


def make_model(owner, name: str, *, metrics: dict, teacher=None, dataset=None, **fields) -> ModelRecord:
    kind = ModelRecord.Kind.DISTILL if teacher else ModelRecord.Kind.FINETUNE
    return ModelRecord.objects.create(
        owner=owner, name=name, kind=kind, base_model="tiny", teacher=teacher, dataset=dataset, params={},
        metrics=metrics, label_names=["negative", "positive"], num_parameters=1, size_bytes=1, **fields,
    )  # fmt: skip


def teacher_and_student(owner, *, teacher_accuracy=0.90, student_accuracy=0.85, supports=None):
    """A fine-tuned teacher and its distilled student, each with a test accuracy and a test report of 100 rows
    (30 negative, 70 positive: a 0.70 baseline). With the defaults the student fails the teacher rule alone
    (0.85 < 0.97 x 0.90 = 0.873) and clears the baseline (0.85 >= 0.72)."""
    test_report = report(supports or {"negative": 30, "positive": 70})
    teacher = make_model(owner, "teacher", metrics={"test/accuracy": teacher_accuracy, "test/report": test_report})
    student = make_model(
        owner, "student", teacher=teacher, metrics={"test/accuracy": student_accuracy, "test/report": test_report}
    )
    return teacher, student
