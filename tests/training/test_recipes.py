"""A job or sweep can ask for a recipe: it fills in the parameters the request leaves out; the dashboard's
recipe picker fills the form's fields from the same presets."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.datasets import services as dataset_services
from jobs.models import Job, Sweep
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(api):
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good movie", "pos"), ("bad movie", "neg")]))
    return api.post("/api/datasets/", {"file": upload}, format="multipart").json()


def test_a_recipe_fills_in_the_params_a_job_leaves_out(api, dataset):
    payload = {"kind": "finetune", "dataset": dataset["id"], "recipe": "best", "params": {"learning_rate": 1e-4}}
    response = api.post("/api/jobs/", payload, format="json")
    assert response.status_code == 201, response.content
    params = response.json()["params"]
    assert (params["truncation"], params["scheduler"], params["warmup_ratio"], params["epochs"]) == (
        "head_tail", "linear", 0.06, 2
    )  # fmt: skip
    assert (params["learning_rate"], params["batch_size"]) == (1e-4, 32)  # the request's own value wins
    assert "recipe" not in response.json()


def test_a_distillation_gets_the_recipes_temperature_and_epochs(api, trained_model):
    payload = {"kind": "distill", "dataset": trained_model.dataset_id, "teacher": trained_model.pk, "recipe": "best"}
    params = api.post("/api/jobs/", payload, format="json").json()["params"]
    assert (params["temperature"], params["alpha"], params["epochs"]) == (2.0, 0.5, 3)
    assert params["truncation"] == "head_tail"


def test_an_unknown_recipe_gets_a_400_and_no_job(api, dataset):
    response = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"], "recipe": "fast"}, format="json")
    assert response.status_code == 400 and "recipe" in response.json()
    assert Job.objects.count() == 0


def test_a_sweep_stores_the_recipe_expanded_and_its_grid_overrides_the_recipe(api, dataset):
    payload = {"kind": "finetune", "dataset": dataset["id"], "recipe": "best", "grid": {"learning_rate": [1e-5, 3e-5]}}
    response = api.post("/api/sweeps/", payload, format="json")
    assert response.status_code == 201, response.content
    sweep = Sweep.objects.get()
    assert "learning_rate" not in sweep.params and sweep.params["truncation"] == "head_tail"
    jobs = sweep.jobs.order_by("pk")
    assert [(j.params["learning_rate"], j.params["epochs"], j.params["scheduler"]) for j in jobs] == [
        (1e-5, 2, "linear"), (3e-5, 2, "linear")
    ]  # fmt: skip


def test_the_catalogue_lists_the_recipes(api):
    recipes = api.get("/api/catalogue/").json()["recipes"]
    assert sorted(recipes) == ["best", "study"]
    assert recipes["best"]["finetune"]["truncation"] == "head_tail" and recipes["study"]["distill"] == {}
    assert "0.9085" in recipes["best"]["summary"]


def test_the_dashboard_fills_its_fields_from_the_recipes(logged_in):
    html = logged_in.get("/").content.decode()
    assert '<select id="recipe-select">' in html and re.search(r'<option value="best"[^>]*>best</option>', html)
    embedded = re.search(r'<script id="job-recipes" type="application/json">(.*?)</script>', html, re.S)
    values = json.loads(embedded.group(1))
    assert values["best"]["finetune"]["truncation"] == "head_tail" and values["best"]["distill"]["epochs"] == 3
    assert values["study"]["finetune"]["learning_rate"] == 2e-5  # back to the defaults
    names = set(re.findall(r'name="([a-z_]+)"', html))
    assert set(values["best"]["distill"]) <= names  # every value has a field to go into


def test_the_form_sends_the_engine_fields_and_sweeps_them(logged_in, user, sentiment_csv):

    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    form = {
        "kind": "finetune", "dataset": dataset.pk, "base_model": "all-MiniLM-L6-v2", "batch_size": "32",
        "learning_rate": "5e-5", "epochs": "2", "max_length": "128", "seed": "42", "truncation": "head_tail",
        "scheduler": "linear", "warmup_ratio": "0, 0.06", "weight_decay": "0.01",
    }  # fmt: skip
    response = logged_in.post("/jobs/new/", form)
    sweep = Sweep.objects.get()
    assert response["Location"] == f"/sweeps/{sweep.pk}/"
    assert sweep.grid == {"warmup_ratio": [0.0, 0.06]}
    assert {(j.params["truncation"], j.params["scheduler"], j.params["weight_decay"]) for j in sweep.jobs.all()} == {
        ("head_tail", "linear", 0.01)
    }
