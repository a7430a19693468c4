"""The dashboard's launch form: one value per field launches a job, several comma-separated values launch a
sweep; the sweep page ranks its runs, links their models to Compare, and cancels or deletes the sweep."""

from __future__ import annotations

import json
import re

import pytest

from jobs.datasets import services as dataset_services
from jobs.models import Job, ModelRecord, Sweep
from jobs.sweeps import services as sweeps
from jobs.training import launch
from jobs.training.launch import LaunchSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user, sentiment_csv):
    return dataset_services.create_dataset(user, "reviews", sentiment_csv)


def _form(dataset, **fields) -> dict:
    base = {
        "kind": "finetune", "dataset": dataset.pk, "base_model": "all-MiniLM-L6-v2", "batch_size": "16",
        "learning_rate": "2e-5", "epochs": "1", "max_length": "64", "seed": "42", "truncation": "head",
        "scheduler": "exponential", "warmup_ratio": "0", "weight_decay": "0",
    }  # fmt: skip
    return base | fields


def test_one_value_per_field_launches_one_job(logged_in, dataset):
    response = logged_in.post("/jobs/new/", _form(dataset, learning_rate="5e-5"))
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.sweep, job.params["learning_rate"], job.params["batch_size"], job.params["max_length"]) == (
        None, 5e-5, 16, 64
    )  # fmt: skip


def test_several_values_launch_a_sweep_of_every_combination(logged_in, dataset, tiny_bert):
    fields = _form(dataset, learning_rate="1e-5, 3e-5", seed="1,2", base_model=f"all-MiniLM-L6-v2, {tiny_bert}")
    response = logged_in.post("/jobs/new/", fields)

    sweep = Sweep.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/sweeps/{sweep.pk}/"
    assert sweep.grid == {
        "learning_rate": [1e-5, 3e-5], "seed": [1, 2], "base_model": ["all-MiniLM-L6-v2", str(tiny_bert)]
    }  # fmt: skip
    assert sweep.params == {
        "batch_size": 16, "epochs": 1, "max_length": 64, "truncation": "head", "scheduler": "exponential",
        "warmup_ratio": 0.0, "weight_decay": 0.0, "keep_best_epoch": False, "calibrate": False,
    }  # fmt: skip
    jobs = sweep.jobs.order_by("pk")
    assert len(jobs) == 8 and {j.params["batch_size"] for j in jobs} == {16}
    assert [(j.params["learning_rate"], j.params["seed"], j.base_model) for j in jobs[:2]] == [
        (1e-5, 1, "all-MiniLM-L6-v2"), (1e-5, 1, str(tiny_bert))
    ]  # fmt: skip
    page = logged_in.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert page.count('<tr data-job-id="') == 8 and "data-only-listed" in page
    assert f'action="/sweeps/{sweep.pk}/cancel/"' in page and "js/jobs_live.js" in page
    dashboard = logged_in.get("/").content.decode()
    assert f'href="/sweeps/{sweep.pk}/"' in dashboard and "learning_rate, seed, base_model" in dashboard


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"learning_rate": "1e-5, fast"}, "&#x27;fast&#x27; is not a number"),
        ({"epochs": "1, 1"}, "1 is given twice"),
        ({"batch_size": "16, 0"}, "batch_size must be in [1, 1024], got 0"),
        ({"base_model": "all-MiniLM-L6-v2, /nowhere/model"}, "base_model=/nowhere/model: "),
    ],
)
def test_bad_values_come_back_with_the_reason_and_launch_nothing(logged_in, dataset, fields, message):
    response = logged_in.post("/jobs/new/", _form(dataset, **fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert (Job.objects.count(), Sweep.objects.count()) == (0, 0)


def _succeed(job: Job, valid: float) -> ModelRecord:
    record = ModelRecord.objects.create(
        owner=job.owner, name=f"m{job.pk}", kind="finetune", params={}, label_names=["negative", "positive"],
        metrics={"val/accuracy": valid, "test/accuracy": 0.5}, num_parameters=1, size_bytes=1,
    )  # fmt: skip
    Job.objects.filter(pk=job.pk).update(status="succeeded", result_model=record, progress=1.0)
    return record


def test_the_sweep_page_marks_the_best_run_and_compares_the_models_best_first(logged_in, user, dataset):
    spec = LaunchSpec(kind="finetune", dataset=dataset)
    sweep = sweeps.create_sweep(user, spec, grid={"learning_rate": [1e-5, 2e-5, 3e-5]})
    first, second, third = sweep.jobs.order_by("pk")
    models = [_succeed(first, 0.6), _succeed(second, 0.9), _succeed(third, 0.7)]

    page = logged_in.get(f"/sweeps/{sweep.pk}/").content.decode()

    best = re.search(r'<tr data-job-id="(\d+)" data-status="succeeded" class="best">', page)
    assert best and int(best.group(1)) == second.pk
    assert f"?models={models[1].pk},{models[2].pk},{models[0].pk}" in page
    assert f'action="/sweeps/{sweep.pk}/delete/"' in page  # finished: it can go
    assert f'<form method="post" action="/models/{models[1].pk}/promote/" id="promote-best-form">' in page
    assert f'href="/?kind=distill&amp;teacher={models[1].pk}&amp;dataset={dataset.pk}#new-job"' in page
    embedded = re.search(r'<script id="sweep-runs" type="application/json">(.*?)</script>', page, re.S)
    assert json.loads(embedded.group(1)) == logged_in.get(f"/api/sweeps/{sweep.pk}/").json()["runs"]  # sweep.js
    promoted = logged_in.post(f"/models/{models[1].pk}/promote/", {"next": f"/sweeps/{sweep.pk}/"}, follow=True)
    assert "Best model promoted" in promoted.content.decode()
    for url in (f"/jobs/{second.pk}/", f"/models/{models[1].pk}/"):  # both lead back to the sweep
        assert f'href="/sweeps/{sweep.pk}/" id="sweep-link"' in logged_in.get(url).content.decode()
    assert "0.9000" in logged_in.get("/").content.decode()  # the dashboard's best valid acc


def test_the_sweep_page_cancels_then_deletes_the_sweep(logged_in, user, dataset):
    sweep = sweeps.create_sweep(user, LaunchSpec(kind="finetune", dataset=dataset), grid={"seed": [1, 2]})
    refused = logged_in.post(f"/sweeps/{sweep.pk}/delete/", follow=True)
    assert "cancel the sweep first" in refused.content.decode() and Sweep.objects.exists()

    response = logged_in.post(f"/sweeps/{sweep.pk}/cancel/", follow=True)
    assert "Cancel requested for 2 jobs." in response.content.decode()
    assert set(sweep.jobs.values_list("status", flat=True)) == {"cancelled"}
    response = logged_in.post(f"/sweeps/{sweep.pk}/delete/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert (Sweep.objects.count(), Job.objects.count()) == (0, 0)


def test_another_users_sweep_page_is_not_found(client, other_user, user, dataset):
    sweep = sweeps.create_sweep(user, LaunchSpec(kind="finetune", dataset=dataset), grid={"seed": [1, 2]})
    client.force_login(other_user)
    assert client.get(f"/sweeps/{sweep.pk}/").status_code == 404
    assert client.post(f"/sweeps/{sweep.pk}/cancel/").status_code == 404
    assert set(sweep.jobs.values_list("status", flat=True)) == {"queued"}


def test_launch_again_fills_the_form_as_the_job_was_launched(logged_in, user, dataset, other_user):
    spec = LaunchSpec(kind="finetune", dataset=dataset, test_dataset=dataset, recipe="best", params={"seed": 7})
    job = launch.create_job(user, spec)
    assert f'href="/?again={job.pk}#new-job"' in logged_in.get(f"/jobs/{job.pk}/").content.decode()

    html = logged_in.get(f"/?again={job.pk}").content.decode()

    for name, value in (("learning_rate", "5e-05"), ("batch_size", "32"), ("epochs", "2"), ("seed", "7"),
                        ("warmup_ratio", "0.06"), ("base_model", "all-MiniLM-L6-v2")):  # fmt: skip
        assert re.search(rf'name="{name}" value="{re.escape(value)}"', html), name
    assert '<option value="head_tail" selected>' in html and '<option value="linear" selected>' in html
    assert html.count(f'<option value="{dataset.pk}" selected>') == 2  # trained and tested on it
    assert logged_in.get("/?again=999999").status_code == 404
    logged_in.force_login(other_user)
    assert logged_in.get(f"/?again={job.pk}").status_code == 404


def test_the_dataset_and_model_pages_open_the_form_with_their_choices_made(logged_in, user, trained_model):
    dataset = trained_model.dataset
    dataset_page = logged_in.get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'href="/?kind=finetune&amp;dataset={dataset.pk}#new-job"' in dataset_page
    model_page = logged_in.get(f"/models/{trained_model.pk}/").content.decode()
    link = f"/?kind=distill&teacher={trained_model.pk}&dataset={dataset.pk}"
    assert f'href="{link.replace("&", "&amp;")}#new-job"' in model_page

    form = logged_in.get(link).content.decode()

    assert '<option value="distill" selected>' in form
    assert f'<option value="{trained_model.pk}" selected>' in form and f'<option value="{dataset.pk}" selected>' in form


def test_the_form_sends_keep_best_epoch_and_early_stopping(logged_in, dataset):
    logged_in.post("/jobs/new/", _form(dataset, keep_best_epoch="on", early_stopping_patience="2", epochs="5"))
    logged_in.post("/jobs/new/", _form(dataset))
    on, off = Job.objects.order_by("pk")
    assert (on.params["keep_best_epoch"], on.params["early_stopping_patience"], on.params["epochs"]) == (True, 2, 5)
    assert (off.params["keep_best_epoch"], off.params["early_stopping_patience"]) == (False, None)
    html = logged_in.get(f"/?again={on.pk}").content.decode()
    assert re.search(r'<input type="checkbox" name="keep_best_epoch"[^>]*checked', html)
