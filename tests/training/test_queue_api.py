"""Queue control through the API and the dashboard: moving a queued job of yours, its priority at launch and
while queued, your queue's places; someone else's job is a 404, a job that left the queue a 409."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from jobs.models import Job
from jobs.training import lifecycle
from tests.conftest import _client_for, csv_bytes

pytestmark = pytest.mark.django_db

ROWS = [("good movie", "pos"), ("bad movie", "neg")]


@pytest.fixture
def dataset(api):
    return api.post("/api/datasets/", {"file": SimpleUploadedFile("a.csv", csv_bytes(ROWS))}, format="multipart").json()


@pytest.fixture
def three(api, dataset):
    """Three fine-tunes of the user's, queued in launch order."""
    return [
        api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json").json()["id"]
        for _ in range(3)
    ]


def _places(jobs) -> list[tuple[int, int]]:
    return [(j["job"], j["position"]) for j in jobs]


def test_moving_the_third_job_to_the_top_answers_the_new_places(api, three):
    first, second, third = three
    response = api.post(f"/api/jobs/{third}/move/", {"to": "top"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["queue"] == "gpu"
    assert _places(response.json()["jobs"]) == [(third, 1), (first, 2), (second, 3)]
    moved = api.post(f"/api/jobs/{third}/move/", {"to": "down"}, format="json").json()
    assert _places(moved["jobs"]) == [(first, 1), (third, 2), (second, 3)]
    moved = api.post(f"/api/jobs/{first}/move/", {"to": "down"}, format="json").json()
    moved = api.post(f"/api/jobs/{first}/move/", {"to": "down"}, format="json").json()
    assert _places(moved["jobs"]) == [(third, 1), (second, 2), (first, 3)]
    assert api.get(f"/api/jobs/{first}/").json()["jobs_ahead"] == 2
    listed = api.get("/api/queue/").json()
    assert [q["queue"] for q in listed] == ["gpu", "cpu"]
    assert _places(listed[0]["jobs"]) == [(third, 1), (second, 2), (first, 3)] and listed[1]["jobs"] == []


@pytest.mark.parametrize("body", [{}, {"to": "sideways"}, {"position": 1}])
def test_a_move_says_where_to(api, three, body):
    assert api.post(f"/api/jobs/{three[0]}/move/", body, format="json").status_code == 400


def test_someone_elses_job_is_not_found_and_stays_where_it_was(api, other_api, three, other_user):
    for path, body in (
        (f"/api/jobs/{three[2]}/move/", {"to": "top"}),
        (f"/api/jobs/{three[2]}/priority/", {"priority": -5}),
    ):
        assert other_api.post(path, body, format="json").status_code == 404
    assert list(Job.objects.order_by(*Job.QUEUE_ORDER).values_list("pk", "priority")) == [(pk, 0) for pk in three]
    other_user.is_staff = True  # a queue is its owner's to order, staff's included
    other_user.save()
    assert _client_for(other_user).post(f"/api/jobs/{three[2]}/move/", {"to": "top"}, format="json").status_code == 404
    anonymous = APIClient()
    assert anonymous.post(f"/api/jobs/{three[2]}/move/", {"to": "top"}, format="json").status_code == 401
    assert anonymous.get("/api/queue/").status_code == 401


def test_a_job_no_longer_queued_cannot_be_moved(api, three):
    lifecycle.claim_job(three[0], "w")
    response = api.post(f"/api/jobs/{three[0]}/move/", {"to": "down"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": f"job {three[0]} is running, not queued"}
    assert api.post(f"/api/jobs/{three[0]}/priority/", {"priority": -1}, format="json").status_code == 409


def test_a_priority_set_at_launch_or_while_queued_orders_the_queue(api, dataset, three):
    low = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"], "priority": -3}, format="json")
    assert low.status_code == 201 and low.json()["priority"] == -3
    high = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"], "priority": 4}, format="json")
    assert high.status_code == 403 and "only staff" in high.json()["detail"]
    response = api.post(f"/api/jobs/{three[0]}/priority/", {"priority": -5}, format="json")
    assert response.status_code == 200
    assert _places(response.json()["jobs"]) == [(three[1], 1), (three[2], 2), (low.json()["id"], 3), (three[0], 4)]
    assert api.post(f"/api/jobs/{three[0]}/priority/", {"priority": 1}, format="json").status_code == 403
    assert api.post(f"/api/jobs/{three[0]}/priority/", {"priority": -11}, format="json").status_code == 400
    assert Job.objects.get(pk=three[0]).priority == -5


def test_the_queue_routes_are_in_the_schema(api):
    paths = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert set(paths["/api/jobs/{id}/move/"]["post"]["responses"]) >= {"200", "400", "401", "404", "409"}
    assert set(paths["/api/jobs/{id}/priority/"]["post"]["responses"]) >= {"200", "403", "404", "409"}
    assert "get" in paths["/api/queue/"]


def test_the_dashboard_lists_the_queue_in_order_with_move_buttons(logged_in, api, three, other_api):
    first, second, third = three
    api.post(f"/api/jobs/{third}/move/", {"to": "top"}, format="json")
    html = logged_in.get("/").content.decode()
    rows = re.findall(r'<tr data-job-id="(\d+)">\s*<td class="queue-position">(\d+)</td>', html)
    assert [(int(job), int(place)) for job, place in rows] == [(third, 1), (first, 2), (second, 3)]
    assert f'aria-label="Move job #{second} to top">Move to top</button>' in html

    response = logged_in.post(f"/jobs/{second}/move/", {"to": "top"})
    assert (response.status_code, response.url) == (302, "/#queue")
    assert list(Job.objects.order_by(*Job.QUEUE_ORDER).values_list("pk", flat=True)) == [second, third, first]


def test_the_dashboards_move_is_its_owners_alone(client, other_user, three):
    assert client.post(f"/jobs/{three[2]}/move/", {"to": "top"}).status_code == 302  # to the login page
    client.force_login(other_user)
    assert client.post(f"/jobs/{three[2]}/move/", {"to": "top"}).status_code == 404
    assert list(Job.objects.order_by(*Job.QUEUE_ORDER).values_list("pk", flat=True)) == three
