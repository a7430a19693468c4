"""The promote guard and the promotion history through the REST API: a failing model is a 409 naming its failed
rules unless overridden, each change is a history row (who, what it replaced, overridden and which rules), the
newest rolls back once to the model it replaced, through the same promote (this process's engine is loaded once
the change commits), and nobody else sees or touches any of it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from jobs.promotions import Promotion
from jobs.registry import history
from jobs.serving import engines
from tests.registry.guard_models import teacher_and_student

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(user):
    return teacher_and_student(user, teacher_accuracy=0.90, student_accuracy=0.85)


@pytest.fixture
def preloads(monkeypatch):
    """The records whose engine this process was asked to load, in order."""
    loaded = []
    monkeypatch.setattr(engines, "preload", loaded.append)
    return loaded


def _rows():
    return list(
        Promotion.objects.order_by("pk").values_list(
            "owner__username", "model__name", "model_name", "replaced__name", "replaced_name", "overridden", "reason",
            "rollback_of", "rolled_back_at",
        )
    )  # fmt: skip


def test_the_guard_route_gives_each_rule_with_its_bound_and_the_models_value(api, models):
    _, student = models
    body = api.get(f"/api/models/{student.pk}/guard/").json()
    assert (body["passed"], body["failed"]) == (False, ["teacher_share"])
    first = body["rules"][0]
    assert {k: first[k] for k in ("name", "setting", "comparison", "value", "unit", "status")} == {
        "name": "teacher_share", "setting": 0.97, "comparison": ">=", "value": 0.85, "unit": "accuracy",
        "status": "failed",
    }  # fmt: skip
    assert first["threshold"] == pytest.approx(0.873)
    assert [(r["name"], r["status"]) for r in body["rules"][1:]] == [
        ("baseline_margin", "passed"), ("latency", "not_applicable"), ("calibration", "not_measured")
    ]  # fmt: skip


def test_a_failing_model_is_a_409_with_its_failed_rules_and_nothing_changes(api, models, preloads):
    teacher, student = models
    assert api.post(f"/api/models/{teacher.pk}/promote/").status_code == 200

    response = api.post(f"/api/models/{student.pk}/promote/", {"reason": "ship it"}, format="json")

    assert response.status_code == 409
    body = response.json()
    assert [rule["name"] for rule in body["failed"]] == ["teacher_share"]
    assert body["failed"][0]["value"] == 0.85 and body["failed"][0]["status"] == "failed"
    assert body["detail"].startswith("student fails the promote guard (Accuracy against its teacher")
    student.refresh_from_db()
    teacher.refresh_from_db()
    assert (student.is_promoted, teacher.is_promoted) == (False, True)
    assert _rows() == [("alice", "teacher", "teacher", None, "", False, "", None, None)]


def test_an_override_promotes_it_and_the_history_records_it_exactly(
    api, models, preloads, django_capture_on_commit_callbacks
):
    teacher, student = models
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(f"/api/models/{teacher.pk}/promote/")
    assert first.status_code == 200 and first.json()["promotion"]["replaced"] is None
    assert preloads == [teacher]  # loaded here once the change committed, as a promote always did

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/models/{student.pk}/promote/", {"override": True, "reason": "faster"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["is_promoted"] is True and body["guard"]["failed"] == ["teacher_share"]
    promotion = body["promotion"]
    assert (promotion["model"], promotion["replaced"], promotion["overridden"], promotion["reason"]) == (
        student.pk,
        teacher.pk,
        True,
        "faster",
    )
    assert [rule["name"] for rule in promotion["failed_rules"]] == ["teacher_share"]
    assert promotion["can_roll_back"] is True
    assert [p.pk for p in preloads] == [teacher.pk, student.pk]
    teacher.refresh_from_db()
    assert teacher.is_promoted is False
    assert _rows() == [
        ("alice", "teacher", "teacher", None, "", False, "", None, None),
        ("alice", "student", "student", "teacher", "teacher", True, "faster", None, None),
    ]

    listed = api.get("/api/promotions/").json()
    assert listed["count"] == 2
    newest, oldest = listed["results"]
    assert (newest["model_name"], newest["replaced_name"], newest["owner"], newest["can_roll_back"]) == (
        "student",
        "teacher",
        "alice",
        True,
    )
    assert (oldest["model_name"], oldest["replaced"], oldest["overridden"], oldest["can_roll_back"]) == (
        "teacher",
        None,
        False,
        False,
    )


def test_promoting_the_model_that_serves_changes_nothing_and_records_nothing(api, models):
    teacher, _ = models
    api.post(f"/api/models/{teacher.pk}/promote/")
    again = api.post(f"/api/models/{teacher.pk}/promote/")
    assert again.status_code == 200 and again.json()["promotion"] is None
    assert Promotion.objects.count() == 1


def test_rollback_makes_the_replaced_model_serve_again_through_the_same_promote(
    api, models, preloads, django_capture_on_commit_callbacks
):
    teacher, student = models
    api.post(f"/api/models/{teacher.pk}/promote/")
    api.post(f"/api/models/{student.pk}/promote/", {"override": True}, format="json")
    entry = Promotion.objects.get(model=student)
    preloads.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/promotions/{entry.pk}/rollback/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["model"], body["replaced"], body["rollback_of"], body["reason"]) == (
        teacher.pk,
        student.pk,
        entry.pk,
        f"rollback of #{entry.pk}",
    )
    teacher.refresh_from_db()
    student.refresh_from_db()
    assert (teacher.is_promoted, student.is_promoted) == (True, False)
    assert preloads == [teacher]
    entry.refresh_from_db()
    assert entry.rolled_back_at == Promotion.objects.get(pk=body["id"]).created_at
    assert [row[:8] for row in _rows()] == [
        ("alice", "teacher", "teacher", None, "", False, "", None),
        ("alice", "student", "student", "teacher", "teacher", True, "", None),
        ("alice", "teacher", "teacher", "student", "student", False, f"rollback of #{entry.pk}", entry.pk),
    ]
    # Once only: the rolled-back change is no longer the newest, nor undoable.
    again = api.post(f"/api/promotions/{entry.pk}/rollback/")
    assert (again.status_code, again.json()) == (400, {"detail": "only your newest promotion can be rolled back"})
    # The rollback itself is the newest: rolling it back makes the student serve again.
    newest = Promotion.objects.get(pk=body["id"])
    assert api.post(f"/api/promotions/{newest.pk}/rollback/").json()["model"] == student.pk
    student.refresh_from_db()
    assert student.is_promoted


def test_a_first_promotion_has_nothing_to_roll_back_to(api, models):
    teacher, _ = models
    api.post(f"/api/models/{teacher.pk}/promote/")
    entry = Promotion.objects.get()
    response = api.post(f"/api/promotions/{entry.pk}/rollback/")
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "nothing to roll back to: no model served before it"},
    )
    teacher.refresh_from_db()
    assert teacher.is_promoted


def test_a_deleted_replaced_model_cannot_be_rolled_back_to(api, models):
    teacher, student = models
    api.post(f"/api/models/{teacher.pk}/promote/")
    api.post(f"/api/models/{student.pk}/promote/", {"override": True}, format="json")
    assert api.delete(f"/api/models/{teacher.pk}/").status_code == 204
    entry = Promotion.objects.get(model=student)
    response = api.post(f"/api/promotions/{entry.pk}/rollback/")
    assert response.json() == {"detail": "nothing to roll back to: teacher was deleted"}
    assert api.get("/api/promotions/").json()["results"][0]["replaced_name"] == "teacher"  # the name stays


def test_another_user_gets_404_for_everything_and_sees_no_history(api, other_api, models):
    teacher, student = models
    api.post(f"/api/models/{teacher.pk}/promote/")
    api.post(f"/api/models/{student.pk}/promote/", {"override": True}, format="json")
    entry = Promotion.objects.get(model=student)
    assert other_api.get(f"/api/models/{student.pk}/guard/").status_code == 404
    assert other_api.post(f"/api/models/{teacher.pk}/promote/", {"override": True}, format="json").status_code == 404
    assert other_api.get(f"/api/promotions/{entry.pk}/").status_code == 404
    assert other_api.post(f"/api/promotions/{entry.pk}/rollback/").status_code == 404
    assert other_api.get("/api/promotions/").json()["count"] == 0
    student.refresh_from_db()
    assert student.is_promoted and Promotion.objects.count() == 2


def test_anonymous_requests_are_401(models):
    teacher, _ = models
    client = APIClient()
    entry = "/api/promotions/1/"
    for method, url in (("get", f"/api/models/{teacher.pk}/guard/"), ("post", f"/api/models/{teacher.pk}/promote/"),
                        ("get", "/api/promotions/"), ("get", entry), ("post", entry + "rollback/")):  # fmt: skip
        assert getattr(client, method)(url).status_code == 401, url


def test_a_setting_changed_by_the_operator_turns_the_409_into_a_promote(api, models, settings):
    _, student = models
    assert api.post(f"/api/models/{student.pk}/promote/").status_code == 409
    settings.DISTILLERY_PROMOTE_MIN_TEACHER_SHARE = 0.9  # 0.85 >= 0.9 x 0.90 = 0.81
    response = api.post(f"/api/models/{student.pk}/promote/")
    assert response.status_code == 200 and response.json()["promotion"]["overridden"] is False


def test_the_history_service_refuses_without_override(user, models):
    _, student = models
    with pytest.raises(history.Refused):
        history.promote(student)
    assert history.promote(student, override=True).overridden is True
