"""In a real browser: a student that falls short of its teacher shows the rule it fails on its page, Promote is
refused until the override box is ticked, the history page lists the change, and Rollback brings the teacher
back."""

from __future__ import annotations

import re

import pytest

from jobs.models import ModelRecord
from jobs.promotions import Promotion
from jobs.registry import history
from jobs.registry import services as registry
from tests.browser.conftest import shoot
from tests.registry.guard_models import report

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


@pytest.fixture
def teacher_and_student(browser_user, tiny_model_dir):
    """Two real tiny models (they load and serve), their test figures set: the student's 0.85 is under 97% of the
    teacher's 0.90 (0.873), the only rule it fails. The teacher serves."""
    test_report = report({"negative": 30, "positive": 70})
    teacher = registry.import_model(browser_user, tiny_model_dir, name="teacher")
    student = registry.import_model(browser_user, tiny_model_dir, name="student")
    ModelRecord.objects.filter(pk=teacher.pk).update(metrics={"test/accuracy": 0.90, "test/report": test_report})
    ModelRecord.objects.filter(pk=student.pk).update(
        kind=ModelRecord.Kind.DISTILL, teacher=teacher, metrics={"test/accuracy": 0.85, "test/report": test_report}
    )
    teacher.refresh_from_db()
    student.refresh_from_db()
    history.promote(teacher)
    return teacher, student


def _serving(record) -> bool:
    record.refresh_from_db()
    return record.is_promoted


def test_a_failing_student_is_promoted_only_with_the_override_and_rolled_back_to_its_teacher(
    signed_in, site, teacher_and_student
):
    teacher, student = teacher_and_student
    page = signed_in
    page.goto(f"{site.url}/models/{student.pk}/")

    # Each rule with its verdict, the failed one first: 0.8500 against 0.97 x 0.9000.
    failed = page.locator('#guard-rules tr[data-rule="teacher_share"]')
    assert failed.get_attribute("data-status") == "failed"
    assert failed.locator(".badge").inner_text() == "failed"
    assert ">= 0.8730" in failed.inner_text() and "0.8500" in failed.inner_text()
    statuses = page.locator("#guard-rules tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses == ["failed", "passed", "not_applicable", "not_measured"]
    assert "It fails 1 rule" in page.locator("#guard-failed").inner_text()
    shoot(page, "promote-guard")

    # Promote without the override: refused, the teacher still serves.
    page.locator("#promote-button").click()
    page.wait_for_url(f"{site.url}/models/{student.pk}/")
    refusal = page.locator(".messages li.error")
    assert "student was not promoted: it fails Accuracy against its teacher" in refusal.inner_text()
    assert not _serving(student) and _serving(teacher)

    # Ticked, with a reason: it serves, and the override is recorded.
    page.get_by_label("Promote anyway, overriding the failed rules").check()
    page.get_by_label("Why (kept in the history)").fill("half the latency")
    page.locator("#promote-button").click()
    page.locator(".messages li.success").wait_for()
    assert "student now serves your classify requests (rules overridden)." in page.locator("#flash").inner_text()
    assert _serving(student) and not _serving(teacher)

    # The history lists it, newest first, with what it replaced and the rule overridden.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Promotions").click()
    page.wait_for_url(f"{site.url}/promotions/")
    rows = page.locator("#promotions-table tbody tr")
    assert rows.count() == 2
    newest = rows.nth(0)
    assert newest.locator('[data-col="model"]').inner_text() == "student"
    assert newest.locator('[data-col="replaced"]').inner_text() == "teacher"
    assert newest.get_attribute("data-overridden") == "true"
    assert "Accuracy against its teacher" in newest.locator('[data-col="rules"]').inner_text()
    assert "half the latency" in newest.inner_text()
    shoot(page, "promotions")

    # One click brings the teacher back, recorded as a change of its own.
    newest.get_by_role("button", name="Roll back to teacher").click()
    page.locator(".messages li.success").wait_for()
    assert "Rolled back: teacher serves your classify requests again." in page.locator("#flash").inner_text()
    assert _serving(teacher) and not _serving(student)
    assert page.locator("#promotions-table tbody tr").count() == 3
    top = page.locator("#promotions-table tbody tr").nth(0)
    assert re.search(r"teacher\s+rollback of #\d+", top.locator('[data-col="model"]').inner_text())
    assert page.locator("#promotions-table tbody tr").nth(1).locator('[data-col="rolled-back"]').inner_text() != "—"
    assert page.get_by_role("button", name=re.compile("Roll back")).count() == 1  # the rollback itself, only
    assert list(Promotion.objects.order_by("pk").values_list("model__name", "overridden")) == [
        ("teacher", False), ("student", True), ("teacher", False)
    ]  # fmt: skip
