"""Every boolean and choice field of the launch form shows the value it holds and sends it back unchanged: the
form as rendered (with the defaults, launched again from a job, after a recipe) is submitted as a browser would
submit it, and the job it launches has the same value. "Keep the best epoch" was rendered ticked with the value
"False" (its initial was the string "False") and so could never be turned on."""

from __future__ import annotations

import dataclasses
import re
from html import unescape as _unescape

import pytest
from django import forms

from jobs.forms import JobForm
from jobs.models import Job
from mlcore.config import DistillConfig, TrainConfig, config_defaults

from .html_form import controls, submitted

pytestmark = pytest.mark.django_db

FIELDS = sorted(n for n, f in JobForm.base_fields.items() if isinstance(f, forms.BooleanField | forms.ChoiceField))
PARAMS = [n for n in FIELDS if n in config_defaults(DistillConfig)]  # stored in the job's params
# Each parameter's values, every one the form offers (device: and one it does not offer but the config takes).
VALUES = {
    "truncation": ["head", "head_tail"], "scheduler": ["exponential", "linear"], "keep_best_epoch": [True, False],
    "calibrate": [True, False],
    "precision": ["auto", "fp32", "bf16"], "group_by_length": ["auto", True, False], "cuda_graphs": [True, False],
    "device": ["auto", "cpu"],
}  # fmt: skip


ON_OFF = ("group_by_length", "cuda_graphs")  # selects of "true", "false" (and "auto")


def test_every_boolean_and_choice_field_is_covered_here():
    assert FIELDS == sorted([*VALUES, "kind", "dataset", "test_dataset", "teacher"])


def _page(client, query: str = "") -> str:
    response = client.get("/" + query)
    assert response.status_code == 200
    return response.content.decode()


def _launch(client, data: dict) -> Job:
    response = client.post("/jobs/new/", data)
    assert response.status_code == 302, re.findall(r'class="errorlist[^>]*>(.*?)</ul>', response.content.decode())
    return Job.objects.latest("pk")


def _shown(control) -> object:
    """The value a control shows, in the params' terms."""
    if control.attrs.get("type") == "checkbox":
        return "checked" in control.attrs
    value = control.submitted()[0]
    return {"true": True, "false": False}.get(value, value) if control.name in ON_OFF else value


def _chosen(model) -> dict:
    """What a user picks on an untouched form: a dataset, and a base model the test machine has."""
    return {"base_model": model.base_model, "dataset": model.dataset_id}


@pytest.fixture
def page(logged_in, trained_model):
    """The dashboard of a user with a dataset and a trained model (a teacher)."""
    return logged_in


def _job(trained_model, kind: str = Job.Kind.FINETUNE, **params) -> Job:
    """A job as a launch would have saved it: every parameter of its kind's config, `params` over the defaults."""
    config = (DistillConfig if kind == Job.Kind.DISTILL else TrainConfig)(**params)
    return Job.objects.create(
        owner=trained_model.owner, kind=kind, dataset=trained_model.dataset, params=dataclasses.asdict(config),
        base_model=trained_model.base_model if kind == Job.Kind.FINETUNE else trained_model.name,
        teacher=trained_model if kind == Job.Kind.DISTILL else None, status=Job.Status.SUCCEEDED,
    )  # fmt: skip


@pytest.mark.parametrize("name", PARAMS)
def test_untouched_the_form_launches_each_default(page, trained_model, name):
    html = _page(page)
    default = JobForm.defaults()[name]
    assert _shown(controls(html, "job-form")[name]) == default
    data = submitted(html, "job-form") | _chosen(trained_model)
    assert _launch(page, data).params[name] == default


@pytest.mark.parametrize(("name", "value"), [(n, v) for n in VALUES for v in VALUES[n]])
@pytest.mark.parametrize("kind", [Job.Kind.FINETUNE, Job.Kind.DISTILL])
def test_launched_again_each_value_is_shown_and_sent_back(page, trained_model, name, value, kind):
    job = _job(trained_model, kind, **{name: value})
    html = _page(page, f"?again={job.pk}")
    assert _shown(controls(html, "job-form")[name]) == value
    again = _launch(page, submitted(html, "job-form"))
    assert (again.pk != job.pk, again.kind, again.params[name]) == (True, kind, value)
    assert again.params == job.params | {"checkpoint_every": again.params["checkpoint_every"]}


def test_the_keep_best_epoch_box_is_rendered_unticked_by_default_and_sends_true_when_ticked(page, trained_model):
    box = controls(_page(page), "job-form")["keep_best_epoch"]
    assert box.attrs.get("type") == "checkbox" and "checked" not in box.attrs
    assert box.attrs.get("value", "on") not in ("False", "false")  # a ticked box sends a value read as true
    data = submitted(_page(page), "job-form") | _chosen(trained_model)
    assert _launch(page, data | {"keep_best_epoch": box.attrs.get("value", "on")}).params["keep_best_epoch"] is True


def test_a_device_the_form_does_not_offer_comes_back_as_it_was(page, trained_model):
    job = _job(trained_model, device="cuda:1")
    html = _page(page, f"?again={job.pk}")
    assert _shown(controls(html, "job-form")["device"]) == "cuda:1"
    response = page.post("/jobs/new/", submitted(html, "job-form"))  # no GPU worker here: refused, at the field
    assert response.status_code == 400 and "device 'cuda:1'" in _unescape(response.content.decode())
    assert _shown(controls(response.content.decode(), "job-form")["device"]) == "cuda:1"


@pytest.mark.parametrize("kind", ["finetune", "distill"])
def test_a_job_launched_with_a_recipe_comes_back_with_the_recipes_values(page, api, trained_model, kind):
    payload = {"kind": kind, "dataset": trained_model.dataset_id, "recipe": "best"}
    payload |= {"teacher": trained_model.pk} if kind == "distill" else {"base_model": trained_model.base_model}
    created = api.post("/api/jobs/", payload, format="json")
    assert created.status_code == 201, created.content
    job = Job.objects.get(pk=created.json()["id"])
    assert (job.params["truncation"], job.params["scheduler"]) == ("head_tail", "linear")
    html = _page(page, f"?again={job.pk}")
    again = _launch(page, submitted(html, "job-form"))
    assert again.params == job.params


@pytest.mark.parametrize(
    ("name", "choose"),
    [
        ("kind", lambda model: "distill"),
        ("dataset", lambda model: model.dataset_id),
        ("test_dataset", lambda model: model.dataset_id),
        ("teacher", lambda model: model.pk),
    ],
)
def test_the_kind_dataset_and_teacher_selects_show_what_the_job_had(page, trained_model, name, choose):
    job = _job(trained_model, Job.Kind.DISTILL)
    job.test_dataset = trained_model.dataset
    job.save()
    html = _page(page, f"?again={job.pk}")
    assert controls(html, "job-form")[name].submitted() == [str(choose(trained_model))]
    again = _launch(page, submitted(html, "job-form"))
    value = getattr(again, name if name == "kind" else f"{name}_id")
    assert str(value) == str(choose(trained_model))
