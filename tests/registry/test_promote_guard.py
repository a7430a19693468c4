"""The promote guard's rules on real figures: each bound computed from the operator's setting and what the model
stored, each verdict (passed, failed, not applicable, not measured), and a setting changed turns a verdict."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import env_limit
from jobs.datasets import services as dataset_services
from jobs.registry import guard
from tests.conftest import csv_bytes
from tests.registry.guard_models import make_model, report, teacher_and_student

pytestmark = pytest.mark.django_db


def _rule(record, name: str) -> guard.Rule:
    return next(rule for rule in guard.evaluate(record).rules if rule.name == name)


def test_the_defaults_are_the_issues():
    from django.conf import settings

    assert (
        settings.DISTILLERY_PROMOTE_MIN_TEACHER_SHARE,
        settings.DISTILLERY_PROMOTE_BASELINE_MARGIN,
        settings.DISTILLERY_PROMOTE_MAX_LATENCY_MS,
        settings.DISTILLERY_PROMOTE_MAX_ECE,
    ) == (0.97, 0.02, None, 0.1)


def test_a_student_below_97_percent_of_its_teachers_accuracy_fails(user):
    _, student = teacher_and_student(user, teacher_accuracy=0.90, student_accuracy=0.85)
    rule = _rule(student, "teacher_share")
    assert (rule.status, rule.setting, rule.value) == ("failed", 0.97, 0.85)
    assert rule.threshold == pytest.approx(0.873)
    assert rule.detail == "0.8500 against 0.97 x 0.9000 (teacher) = 0.8730."
    verdict = guard.evaluate(student)
    assert (verdict.passed, [r.name for r in verdict.failed]) == (False, ["teacher_share"])


def test_a_student_at_exactly_the_share_passes(user):
    _, student = teacher_and_student(user, teacher_accuracy=1.0, student_accuracy=0.97)
    assert _rule(student, "teacher_share").status == "passed"  # 0.97 x 1.0 is 0.97, float rounding aside


def test_a_lower_share_set_by_the_operator_lets_the_same_student_through(user, settings):
    _, student = teacher_and_student(user, teacher_accuracy=0.90, student_accuracy=0.87)
    assert _rule(student, "teacher_share").status == "failed"  # 0.87 < 0.873
    settings.DISTILLERY_PROMOTE_MIN_TEACHER_SHARE = 0.96
    rule = _rule(student, "teacher_share")
    assert (rule.status, rule.threshold) == ("passed", pytest.approx(0.864))
    assert guard.evaluate(student).passed
    settings.DISTILLERY_PROMOTE_MIN_TEACHER_SHARE = None
    assert _rule(student, "teacher_share").status == "not_applicable"


def test_the_teacher_rule_does_not_concern_a_model_without_a_teacher(user):
    teacher, student = teacher_and_student(user)
    assert _rule(teacher, "teacher_share").detail == "It has no teacher."
    teacher.delete()
    student.refresh_from_db()
    rule = _rule(student, "teacher_share")
    assert (rule.status, rule.detail) == ("not_applicable", "Its teacher was deleted.")


def test_a_teacher_without_a_test_accuracy_leaves_the_rule_unmeasured(user):
    teacher = make_model(user, "teacher", metrics={})
    student = make_model(user, "student", teacher=teacher, metrics={"test/accuracy": 0.5})
    rule = _rule(student, "teacher_share")
    assert (rule.status, rule.detail) == ("not_measured", "No test accuracy stored for its teacher.")
    assert guard.evaluate(student).passed  # not measured does not block


@pytest.mark.parametrize(("accuracy", "status"), [(0.71, "failed"), (0.72, "passed"), (0.73, "passed")])
def test_the_baseline_is_the_test_rows_commonest_label_plus_the_margin(user, accuracy, status):
    model = make_model(user, "m", metrics={"test/accuracy": accuracy, "test/report": report({"neg": 30, "pos": 70})})
    rule = _rule(model, "baseline_margin")
    assert (rule.status, rule.setting, rule.value) == (status, 0.02, accuracy)
    assert rule.threshold == pytest.approx(0.72)  # 70 of 100 rows are "pos", + 0.02
    assert "always “pos”, on the test rows" in rule.detail


def test_without_a_test_report_the_baseline_is_the_datasets(user):
    rows = [("good", "pos")] * 1 + [("bad", "neg")] * 3
    dataset = dataset_services.create_dataset(user, "d", _upload(rows))
    model = make_model(user, "m", dataset=dataset, metrics={"test/accuracy": 0.76})
    rule = _rule(model, "baseline_margin")
    assert (rule.status, rule.threshold) == ("failed", pytest.approx(0.77))  # 3 of 4 rows are "neg", + 0.02
    assert "on the dataset's rows" in rule.detail


def test_a_margin_set_by_the_operator_changes_the_baseline_verdict(user, settings):
    model = make_model(user, "m", metrics={"test/accuracy": 0.71, "test/report": report({"neg": 30, "pos": 70})})
    settings.DISTILLERY_PROMOTE_BASELINE_MARGIN = 0.0
    assert _rule(model, "baseline_margin").status == "passed"
    settings.DISTILLERY_PROMOTE_BASELINE_MARGIN = 0.05
    rule = _rule(model, "baseline_margin")
    assert (rule.status, rule.threshold) == ("failed", pytest.approx(0.75))


def test_latency_is_off_until_the_operator_sets_a_budget(user, settings):
    model = make_model(user, "m", metrics={"cpu/latency_ms_b1": 62.5})
    rule = _rule(model, "latency")
    assert (rule.status, rule.threshold, rule.value) == ("not_applicable", None, 62.5)
    settings.DISTILLERY_PROMOTE_MAX_LATENCY_MS = 50
    rule = _rule(model, "latency")
    assert (rule.status, rule.threshold, rule.value) == ("failed", 50, 62.5)
    assert rule.detail == "62.5 ms (measured by the worker after training) against 50 ms."
    settings.DISTILLERY_PROMOTE_MAX_LATENCY_MS = 70
    assert _rule(model, "latency").status == "passed"


def test_latency_re_measured_where_the_model_serves_wins_over_the_workers(user, settings):
    settings.DISTILLERY_PROMOTE_MAX_LATENCY_MS = 50
    model = make_model(
        user, "m", metrics={"cpu/latency_ms_b1": 62.5}, serving_precision="int8",
        serving_speed={"fp32": {"latency_ms_b1": 30.0}, "int8": {"latency_ms_b1": 12.0}},
    )  # fmt: skip
    rule = _rule(model, "latency")
    assert (rule.status, rule.value) == ("passed", 12.0)  # the int8 figure: the precision it serves at
    assert rule.detail == "12.0 ms (int8, re-measured where it serves) against 50 ms."
    assert _rule(make_model(user, "n", metrics={}), "latency").status == "not_measured"


@pytest.mark.parametrize(("ece", "status"), [(0.15, "failed"), (0.1, "passed"), (0.05, "passed")])
def test_calibration_error_above_its_bound_fails(user, ece, status):
    rule = _rule(make_model(user, "m", metrics={"ece": ece}), "calibration")
    assert (rule.status, rule.threshold, rule.value) == (status, 0.1, ece)


def test_a_model_without_an_ece_shows_calibration_not_measured_and_is_not_blocked(user, settings):
    model = make_model(user, "m", metrics={"test/accuracy": 0.9, "test/report": report({"neg": 50, "pos": 50})})
    rule = _rule(model, "calibration")
    assert (rule.status, rule.value) == ("not_measured", None)
    assert rule.detail == "Not measured for this model; it does not block."
    assert guard.evaluate(model).passed
    settings.DISTILLERY_PROMOTE_MAX_ECE = 0.2
    assert _rule(make_model(user, "c", metrics={"ece": 0.15}), "calibration").status == "passed"


def test_the_verdict_lists_every_rule_in_order_as_the_api_gives_it(user):
    _, student = teacher_and_student(user)
    verdict = guard.evaluate(student).to_dict()
    assert [r["name"] for r in verdict["rules"]] == ["teacher_share", "baseline_margin", "latency", "calibration"]
    assert [r["status"] for r in verdict["rules"]] == ["failed", "passed", "not_applicable", "not_measured"]
    assert (verdict["passed"], verdict["failed"]) == (False, ["teacher_share"])


def test_a_bound_in_the_environment_is_read_loudly(monkeypatch):
    monkeypatch.setenv("X_BOUND", "0.5")
    assert env_limit("X_BOUND", 0.1, 0, 1) == 0.5
    monkeypatch.setenv("X_BOUND", "off")
    assert env_limit("X_BOUND", 0.1, 0, 1) is None
    for bad in ("lots", "1.5", "-1"):
        monkeypatch.setenv("X_BOUND", bad)
        with pytest.raises(ImproperlyConfigured):
            env_limit("X_BOUND", 0.1, 0, 1)
    monkeypatch.delenv("X_BOUND")
    assert env_limit("X_BOUND", 0.1, 0, 1) == 0.1


def _upload(rows):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("d.csv", csv_bytes(rows))
