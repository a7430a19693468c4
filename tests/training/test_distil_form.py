"""The distil form starts from the teacher: its max_length, truncation and batch size are the form's values (from
the model page's Distil link, ?teacher=<id>&kind=distill), and the form says what the student will be (layers,
hidden size, parameters, size at fp32 and int8) before launch; GET /api/models/{id}/student/ answers the same for
the page's script when the teacher or the layer count changes."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.core.files.storage import default_storage
from django.template.defaultfilters import filesizeformat, floatformat

from jobs.models import Job
from mlcore.students import estimate_student

from .html_form import controls, submitted

pytestmark = pytest.mark.django_db


@pytest.fixture
def teacher(trained_model):
    """The session's tiny model, as if trained at 48 tokens with head_tail truncation in batches of 24."""
    trained_model.params = {**trained_model.params, "max_length": 48, "truncation": "head_tail", "batch_size": 24}
    trained_model.save()
    return trained_model


def _config(record) -> dict:
    with default_storage.open(f"{record.artifact_prefix}/config.json", "rb") as fh:
        return json.load(fh)


def _plan_text(html: str) -> str:
    start = html.index('id="student-plan"')
    start = html.index(">", start) + 1
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html[start : html.index("</div>", start)])).split())


def test_the_distil_link_fills_in_the_teachers_max_length_truncation_and_batch_size(logged_in, teacher):
    html = logged_in.get(f"/?teacher={teacher.pk}&kind=distill").content.decode()
    form = controls(html, "job-form")
    assert [form[n].submitted() for n in ("kind", "teacher", "max_length", "truncation", "batch_size")] == [
        ["distill"],
        [str(teacher.pk)],
        ["48"],
        ["head_tail"],
        ["24"],
    ]
    # and a launch as the page stands distils with them
    response = logged_in.post("/jobs/new/", submitted(html, "job-form") | {"dataset": teacher.dataset_id})
    assert response.status_code == 302
    job = Job.objects.latest("pk")
    assert (job.kind, job.params["max_length"], job.params["truncation"], job.params["batch_size"]) == (
        "distill",
        48,
        "head_tail",
        24,
    )


def test_without_a_teacher_the_defaults_stay(logged_in, teacher):
    form = controls(logged_in.get("/?kind=distill").content.decode(), "job-form")
    assert [form[n].submitted() for n in ("max_length", "truncation", "batch_size")] == [["128"], ["head"], ["64"]]


def test_launched_again_a_distillation_keeps_its_own_values_not_the_teachers(logged_in, teacher):
    job = Job.objects.create(
        owner=teacher.owner, kind=Job.Kind.DISTILL, dataset=teacher.dataset, teacher=teacher,
        params={"max_length": 64, "batch_size": 8}, status=Job.Status.SUCCEEDED,
    )  # fmt: skip
    form = controls(logged_in.get(f"/?again={job.pk}").content.decode(), "job-form")
    assert [form[n].submitted() for n in ("max_length", "batch_size")] == [["64"], ["8"]]


def test_the_page_says_what_the_student_will_be(logged_in, teacher):
    estimate = estimate_student(_config(teacher))  # every other of the tiny teacher's 4 layers
    text = _plan_text(logged_in.get(f"/?teacher={teacher.pk}&kind=distill").content.decode())
    assert "The student: 2 of the teacher's 4 layers (its layers 0, 2), hidden size 32, " in text
    assert f"{floatformat(estimate.parameters, '0g')} parameters" in text
    assert f"{floatformat(estimate.teacher_parameters, '0g')})" in text
    sizes = f"about {filesizeformat(estimate.fp32_bytes)} at fp32, {filesizeformat(estimate.int8_bytes)} at int8"
    assert " ".join(sizes.split()) in text


def test_the_student_follows_the_layer_count_of_a_form_sent_back(logged_in, teacher):
    data = {"kind": "distill", "dataset": teacher.dataset_id, "teacher": teacher.pk, "student_layers": "3",
            "batch_size": "0"}  # fmt: skip
    html = logged_in.post("/jobs/new/", data).content.decode()  # refused for its batch size, shown again
    assert "The student: 3 of the teacher's 4 layers (its layers 0, 2, 3)" in _plan_text(html)


def test_the_api_answers_the_student_and_what_the_form_inherits(api, teacher):
    estimate = estimate_student(_config(teacher), 1)
    body = api.get(f"/api/models/{teacher.pk}/student/?student_layers=1").json()
    assert body == {
        "teacher": {"id": teacher.pk, "name": teacher.name, "layers": 4, "hidden_size": 32,
                    "parameters": estimate.teacher_parameters},
        "student": {"layers": 1, "kept": [0], "hidden_size": 32, "parameters": estimate.parameters,
                    "size_fp32": estimate.fp32_bytes, "size_int8": estimate.int8_bytes},
        "inherit": {"max_length": 48, "truncation": "head_tail", "batch_size": 24},
    }  # fmt: skip
    assert api.get(f"/api/models/{teacher.pk}/student/").json()["student"]["kept"] == [0, 2]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?student_layers=5", "a derived student can keep 1 to 4 of the teacher's layers, not 5"),
        ("?student_layers=0", "student_layers must be in [1, 1000], got 0"),
        ("?student_layers=two", "A valid integer is required."),
    ],
)
def test_the_api_refuses_a_layer_count_the_teacher_cannot_give(api, teacher, query, message):
    response = api.get(f"/api/models/{teacher.pk}/student/{query}")
    assert (response.status_code, response.json()) == (400, {"student_layers": [message]})


def test_another_users_model_is_not_found(other_api, teacher):
    assert other_api.get(f"/api/models/{teacher.pk}/student/").status_code == 404


def test_a_launch_asking_for_more_layers_than_the_teacher_has_is_refused_at_once(api, logged_in, teacher):
    # It used to be queued, and to fail when the worker cut the teacher.
    payload = {"kind": "distill", "dataset": teacher.dataset_id, "teacher": teacher.pk, "params": {"student_layers": 5}}
    response = api.post("/api/jobs/", payload, format="json")
    refusal = "a derived student can keep 1 to 4 of the teacher's layers, not 5"
    assert (response.status_code, response.json()) == (400, {"student_layers": [refusal]})
    page = logged_in.get(f"/?teacher={teacher.pk}&kind=distill").content.decode()
    data = submitted(page, "job-form") | {"dataset": teacher.dataset_id, "student_layers": "5"}
    html = logged_in.post("/jobs/new/", data).content.decode()
    start = html.index('id="id_student_layers"')
    assert refusal in unescape(html[start : html.index("</div>", start)])
    assert not Job.objects.filter(kind="distill").exists()
    payload["params"]["student_layers"] = 4
    assert api.post("/api/jobs/", payload, format="json").status_code == 201
