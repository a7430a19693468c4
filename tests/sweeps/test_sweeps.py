"""Sweeps: one request queues a job per combination of a grid of hyperparameters (and base models or
teachers), all or none; the sweep ranks its jobs by validation accuracy, cancels and deletes them together."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, ModelRecord, Sweep
from jobs.registry import services as registry
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(api):
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good movie", "pos"), ("bad movie", "neg")]))
    return api.post("/api/datasets/", {"file": upload}, format="multipart").json()


def _sweep(api, **payload):
    return api.post("/api/sweeps/", payload, format="json")


def test_a_grid_queues_one_job_per_combination_sharing_the_fixed_params(api, dataset):
    grid = {"learning_rate": [1e-5, 3e-5], "epochs": [1, 2]}
    response = _sweep(api, kind="finetune", dataset=dataset["id"], params={"batch_size": 8}, grid=grid)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Fine-tune sweep over learning_rate, epochs"
    jobs = list(Job.objects.filter(sweep_id=body["id"]).order_by("pk"))
    assert [(j.params["learning_rate"], j.params["epochs"]) for j in jobs] == [
        (1e-5, 1), (1e-5, 2), (3e-5, 1), (3e-5, 2)
    ]  # fmt: skip
    assert {(j.params["batch_size"], j.base_model, j.status) for j in jobs} == {(8, "all-MiniLM-L6-v2", "queued")}
    runs = body["runs"]
    assert [r["job"] for r in runs["runs"]] == [j.pk for j in jobs]
    assert runs["runs"][1]["values"] == {"learning_rate": 1e-5, "epochs": 2}
    assert (runs["best"], runs["finished"], runs["counts"]["queued"]) == (None, False, 4)
    assert api.get(f"/api/jobs/{jobs[0].pk}/").json()["sweep"] == body["id"]


def test_several_base_models_are_compared_in_one_sweep(api, dataset, tiny_bert):
    grid = {"base_model": ["all-MiniLM-L6-v2", str(tiny_bert)]}
    response = _sweep(api, kind="finetune", dataset=dataset["id"], grid=grid)
    assert response.status_code == 201, response.content
    assert [r["values"]["base_model"] for r in response.json()["runs"]["runs"]] == ["all-MiniLM-L6-v2", str(tiny_bert)]


def test_several_teachers_are_distilled_in_one_sweep(api, user, trained_model, tiny_model_dir):
    second = registry.import_model(user, tiny_model_dir, name="second")
    grid = {"teacher": [trained_model.pk, second.pk]}
    payload = {"kind": "distill", "dataset": trained_model.dataset_id, "grid": grid, "params": {"temperature": 2.0}}
    response = api.post("/api/sweeps/", payload, format="json")
    assert response.status_code == 201, response.content
    jobs = Job.objects.filter(sweep_id=response.json()["id"]).order_by("pk")
    assert [(j.teacher_id, j.params["temperature"]) for j in jobs] == [(trained_model.pk, 2.0), (second.pk, 2.0)]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"grid": {}}, "give {parameter: [values, ...]} with at least one parameter"),
        ({"grid": {"colour": [1, 2]}}, "'colour' cannot be swept; choose from max_length, batch_size"),
        ({"grid": {"epochs": [1, 1]}}, "epochs: a value is repeated"),
        ({"grid": {"epochs": [1, 2]}, "params": {"epochs": 3}}, "'epochs' is both fixed in params and swept"),
        ({"grid": {"batch_size": [8, 0]}}, "batch_size=0: batch_size must be"),
        ({"grid": {"base_model": ["all-MiniLM-L6-v2", "/nowhere/model"]}}, "base_model=/nowhere/model: "),
        ({"grid": {"seed": [1, 2, 3], "epochs": [1, 2]}}, "6 combinations; at most 5 jobs per sweep"),
        ({"grid": {"base_model": ["all-MiniLM-L6-v2"]}, "base_model": "x"}, "base_model is both fixed and swept"),
    ],
)
def test_a_bad_grid_gets_a_400_naming_it_and_queues_nothing(api, dataset, settings, payload, message):
    settings.DISTILLERY_SWEEP_MAX_JOBS = 5
    response = _sweep(api, kind="finetune", dataset=dataset["id"], **payload)
    assert response.status_code == 400
    assert message in response.json()["grid"][0]
    assert (Sweep.objects.count(), Job.objects.count()) == (0, 0)


def test_teachers_must_be_the_users_own_model_ids(api, other_api, trained_model):
    payload = {"kind": "distill", "dataset": trained_model.dataset_id, "grid": {"teacher": [trained_model.pk]}}
    mine = api.post("/api/sweeps/", payload, format="json")
    assert mine.status_code == 201, mine.content
    theirs = other_api.post("/api/sweeps/", payload, format="json")
    assert theirs.status_code == 400  # neither the dataset nor the teacher is bob's
    names = api.post("/api/sweeps/", payload | {"grid": {"teacher": ["x"]}}, format="json")
    assert names.json() == {"grid": ["teacher: give model ids"]}
    other = api.post("/api/sweeps/", payload | {"grid": {"teacher": [trained_model.pk, 999999]}}, format="json")
    assert other.json() == {"grid": ["teacher: no model 999999 of yours"]}


def _result(job: Job, valid: float, test: float) -> None:
    record = ModelRecord.objects.create(
        owner=job.owner, name=f"m{job.pk}", kind="finetune", params={}, label_names=["neg", "pos"],
        metrics={"val/accuracy": valid, "test/accuracy": test, "train/avg_loss": 0.5},
        num_parameters=1, size_bytes=1,
    )  # fmt: skip
    Job.objects.filter(pk=job.pk).update(status="succeeded", result_model=record, progress=1.0)


def test_the_best_job_is_chosen_by_validation_accuracy_not_test(api, dataset):
    body = _sweep(api, kind="finetune", dataset=dataset["id"], grid={"learning_rate": [1e-5, 2e-5, 3e-5]}).json()
    first, second, third = Job.objects.filter(sweep_id=body["id"]).order_by("pk")
    _result(first, valid=0.70, test=0.90)
    _result(second, valid=0.80, test=0.60)
    Job.objects.filter(pk=third.pk).update(status="running", progress=0.5)

    runs = api.get(f"/api/sweeps/{body['id']}/").json()["runs"]

    assert runs["best"] == second.pk
    assert [(r["valid_accuracy"], r["test_accuracy"]) for r in runs["runs"]] == [(0.7, 0.9), (0.8, 0.6), (None, None)]
    assert (runs["counts"]["succeeded"], runs["counts"]["running"], runs["finished"]) == (2, 1, False)


def test_cancelling_a_sweep_cancels_its_unfinished_jobs_and_deleting_it_keeps_the_models(api, dataset):
    body = _sweep(api, kind="finetune", dataset=dataset["id"], grid={"seed": [1, 2, 3]}).json()
    done, running, queued = Job.objects.filter(sweep_id=body["id"]).order_by("pk")
    _result(done, valid=0.7, test=0.7)
    Job.objects.filter(pk=running.pk).update(status="running")
    assert api.delete(f"/api/sweeps/{body['id']}/").status_code == 400  # jobs still going

    runs = api.post(f"/api/sweeps/{body['id']}/cancel/").json()["runs"]["runs"]

    assert [r["status"] for r in runs] == ["succeeded", "running", "cancelled"]
    assert Job.objects.get(pk=running.pk).cancel_requested  # stops at its next batch
    Job.objects.filter(pk=running.pk).update(status="cancelled")
    assert api.delete(f"/api/sweeps/{body['id']}/").status_code == 204
    assert (Sweep.objects.count(), Job.objects.count(), ModelRecord.objects.count()) == (0, 0, 1)


def test_another_user_cannot_see_cancel_or_delete_a_sweep(api, other_api, dataset):
    body = _sweep(api, kind="finetune", dataset=dataset["id"], grid={"seed": [1, 2]}).json()
    assert other_api.get("/api/sweeps/").json()["results"] == []
    for call in (other_api.get, other_api.delete):
        assert call(f"/api/sweeps/{body['id']}/").status_code == 404
    assert other_api.post(f"/api/sweeps/{body['id']}/cancel/").status_code == 404
    assert set(Job.objects.values_list("status", flat=True)) == {"queued"}


def test_the_sweep_list_takes_a_fixed_number_of_queries(api, dataset, django_assert_max_num_queries):
    for seeds in ([1, 2], [3, 4, 5], [6]):
        _sweep(api, kind="finetune", dataset=dataset["id"], grid={"seed": seeds})
    with django_assert_max_num_queries(5):
        sweeps = api.get("/api/sweeps/").json()["results"]
    assert [len(s["runs"]["runs"]) for s in sweeps] == [1, 3, 2]


def test_a_user_cannot_queue_past_the_active_jobs_limit(api, other_api, dataset, settings):
    settings.DISTILLERY_MAX_ACTIVE_JOBS = 3
    assert _sweep(api, kind="finetune", dataset=dataset["id"], grid={"seed": [1, 2]}).status_code == 201
    refused = _sweep(api, kind="finetune", dataset=dataset["id"], grid={"seed": [3, 4]})
    assert refused.status_code == 400
    assert refused.json() == {"detail": [
        "you have 2 jobs queued or running and this sweep's 2 jobs would pass the limit of 3: wait for some to "
        "finish, or cancel some"
    ]}  # fmt: skip
    one = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json")
    assert one.status_code == 201  # the third fits
    assert api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json").status_code == 400
    Job.objects.filter(status="queued").update(status="cancelled")  # finished jobs do not count
    assert api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json").status_code == 201


def test_a_random_search_queues_its_trials_as_drawn(api, dataset):
    space = {"learning_rate": {"log_uniform": [1e-5, 1e-4]}, "epochs": {"int": [1, 3]}}
    payload = {"kind": "finetune", "dataset": dataset["id"], "search": {"space": space, "trials": 5, "seed": 1}}
    response = api.post("/api/sweeps/", payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    from mlcore.search import sample

    drawn = sample(space, 5, seed=1)
    jobs = Job.objects.filter(sweep_id=body["id"]).order_by("pk")
    assert [{k: j.params[k] for k in space} for j in jobs] == drawn
    assert body["name"] == "Fine-tune search over learning_rate, epochs" and body["search"]["trials"] == 5
    assert body["grid"] == {name: [d[name] for d in drawn] for name in ("learning_rate", "epochs")}
    assert [r["values"] for r in body["runs"]["runs"]] == drawn


@pytest.mark.parametrize(
    ("payload", "key", "message"),
    [
        ({"search": {"space": {"learning_rate": {"normal": [0, 1]}}}}, "search", "unknown distribution 'normal'"),
        ({"search": {"space": {"colour": {"uniform": [0, 1]}}}}, "search", "'colour' cannot be swept"),
        ({"search": {"space": {"seed": {"int": [0, 9]}}, "trials": 40}}, "search", "40 trials; at most 16"),
        ({"search": {"space": {"seed": {"int": [0, 9]}}, "runs": 4}}, "search", "unknown key 'runs'"),
        ({"search": {"space": {"seed": {"int": [0, 9]}}}, "grid": {"epochs": [1, 2]}}, "grid", "give either a grid"),
        ({}, "grid", "give either a grid"),
    ],
)
def test_a_bad_search_gets_a_400_naming_it(api, dataset, payload, key, message):
    response = api.post("/api/sweeps/", {"kind": "finetune", "dataset": dataset["id"], **payload}, format="json")
    assert response.status_code == 400 and message in response.json()[key][0]
    assert Job.objects.count() == 0
