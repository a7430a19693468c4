"""The promote guard and the history on the pages: the model page shows each rule before its Promote button, a
failing model is refused until the override box is ticked, /promotions/ lists the changes and rolls the newest
back; another user's history and rollback are out of reach."""

from __future__ import annotations

import re

import pytest

from jobs.promotions import Promotion
from tests.registry.guard_models import teacher_and_student

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(user):
    return teacher_and_student(user, teacher_accuracy=0.90, student_accuracy=0.85)


def _rule_rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr data-rule="(\w+)" data-status="(\w+)">', html)


def test_the_model_page_shows_each_rule_and_the_override_of_a_failing_model(logged_in, models):
    _, student = models
    html = logged_in.get(f"/models/{student.pk}/").content.decode()
    assert _rule_rows(html) == [("teacher_share", "failed"), ("baseline_margin", "passed"),
                                ("latency", "not_applicable"), ("calibration", "not_measured")]  # fmt: skip
    assert '<section class="card" id="promote-guard" data-passed="false">' in html
    assert "&gt;= 0.8730" in html and "0.8500" in html  # the bound and the value of the failed rule
    assert 'name="override"' in html and 'id="promote-button"' in html
    assert html.index('id="guard-rules"') < html.index('id="promote-button"')


def test_a_passing_model_has_no_override_and_a_promoted_one_no_form(logged_in, models):
    teacher, _ = models
    html = logged_in.get(f"/models/{teacher.pk}/").content.decode()
    assert 'data-passed="true"' in html and 'name="override"' not in html and 'id="promote-button"' in html
    logged_in.post(f"/models/{teacher.pk}/promote/")
    html = logged_in.get(f"/models/{teacher.pk}/").content.decode()
    assert 'id="promote-form"' not in html and "It serves your classify requests." in html


def test_the_page_refuses_a_failing_model_until_the_override_is_ticked(logged_in, models):
    teacher, student = models
    back = f"/models/{student.pk}/"
    refused = logged_in.post(f"/models/{student.pk}/promote/", {"next": back, "reason": "x"}, follow=True)
    page = refused.content.decode()
    assert refused.redirect_chain == [(back, 302)]
    assert "student was not promoted: it fails Accuracy against its teacher: at least 97% of it" in page
    student.refresh_from_db()
    assert not student.is_promoted and Promotion.objects.count() == 0

    done = logged_in.post(f"/models/{student.pk}/promote/", {"next": back, "override": "on", "reason": "smaller"})
    assert done.status_code == 302
    student.refresh_from_db()
    assert student.is_promoted
    entry = Promotion.objects.get()
    assert (entry.model, entry.replaced, entry.overridden, entry.reason) == (student, None, True, "smaller")
    assert [rule["name"] for rule in entry.failed_rules] == ["teacher_share"]


def test_the_history_page_lists_the_changes_and_rolls_the_newest_back(logged_in, models):
    teacher, student = models
    logged_in.post(f"/models/{teacher.pk}/promote/")
    logged_in.post(f"/models/{student.pk}/promote/", {"override": "on", "reason": "smaller"})
    first, second = Promotion.objects.order_by("pk")

    html = logged_in.get("/promotions/").content.decode()
    assert re.findall(r'data-promotion-id="(\d+)"', html) == [str(second.pk), str(first.pk)]  # newest first
    assert f'action="/promotions/{second.pk}/rollback/"' in html
    assert f'action="/promotions/{first.pk}/rollback/"' not in html  # only the newest
    assert 'data-overridden="true"' in html and "smaller" in html

    response = logged_in.post(f"/promotions/{second.pk}/rollback/", follow=True)
    assert "Rolled back: teacher serves your classify requests again." in response.content.decode()
    teacher.refresh_from_db()
    student.refresh_from_db()
    assert (teacher.is_promoted, student.is_promoted) == (True, False)
    third = Promotion.objects.order_by("pk").last()
    assert (third.model, third.replaced, third.rollback_of) == (teacher, student, second)
    html = logged_in.get("/promotions/").content.decode()
    assert f"rollback of #{second.pk}" in html

    again = logged_in.post(f"/promotions/{second.pk}/rollback/", follow=True)
    assert "Not rolled back: only your newest promotion can be rolled back." in again.content.decode()


def test_another_users_history_and_rollback_are_out_of_reach(client, other_user, user, models):
    teacher, student = models
    client.force_login(user)
    client.post(f"/models/{teacher.pk}/promote/")
    client.post(f"/models/{student.pk}/promote/", {"override": "on"})
    entry = Promotion.objects.get(model=student)
    client.force_login(other_user)
    assert "No promotions yet." in client.get("/promotions/").content.decode()
    assert client.post(f"/promotions/{entry.pk}/rollback/").status_code == 404
    assert client.post(f"/models/{teacher.pk}/promote/", {"override": "on"}).status_code == 404
    client.logout()
    for url in ("/promotions/", f"/promotions/{entry.pk}/rollback/"):
        response = client.post(url) if "rollback" in url else client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    student.refresh_from_db()
    assert student.is_promoted
