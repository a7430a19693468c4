"""Deleting: a finished job goes with its metric points and files while its model stays; a model goes with its
files unless it is promoted or jobs still use it; nobody deletes what is not theirs."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.files import checkpoint_dir
from jobs.models import Job, MetricPoint, ModelRecord
from jobs.serving import batch
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(api):
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good movie", "pos"), ("bad movie", "neg")]))
    return api.post("/api/datasets/", {"file": upload}, format="multipart").json()


def _finetune(api, dataset) -> dict:
    response = api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset["id"]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_finished_job_goes_with_its_metric_points_and_its_model_stays(api, trained_model):
    job = trained_model.produced_by
    MetricPoint.objects.bulk_create([MetricPoint(job=job, seq=i, step=i, kind="train", values={}) for i in (1, 2, 3)])
    other = Job.objects.create(owner=job.owner, kind="finetune", dataset=job.dataset, params={}, status="failed")
    MetricPoint.objects.create(job=other, seq=1, step=1, kind="train", values={"train/loss": 0.5})

    response = api.delete(f"/api/jobs/{job.pk}/")

    assert response.status_code == 204, response.content
    assert not Job.objects.filter(pk=job.pk).exists()
    assert list(MetricPoint.objects.values_list("job_id", "seq")) == [(other.pk, 1)]  # only the other job's
    assert api.get(f"/api/models/{trained_model.pk}/").json()["job"] is None  # the model stays, unlinked
    assert api.get(f"/api/jobs/{job.pk}/").status_code == 404


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_queued_or_running_job_is_not_deleted(api, dataset, status):
    job = _finetune(api, dataset)
    Job.objects.filter(pk=job["id"]).update(status=status)
    response = api.delete(f"/api/jobs/{job['id']}/")
    assert response.status_code == 400
    assert response.json() == {"status": [f"the job is {status}: cancel it first, then delete it"]}
    assert Job.objects.get(pk=job["id"]).status == status


def test_a_file_classifications_files_and_a_left_checkpoint_go_with_it(
    api, trained_model, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.DISTILLERY_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    upload = SimpleUploadedFile("texts.csv", csv_bytes([("good",), ("bad",)], header=("text",)))
    job = batch.create_classify_job(trained_model.owner, upload, model=trained_model)
    job.output_file.save("out.csv", ContentFile(b"row,label\n1,pos\n"), save=False)
    Job.objects.filter(pk=job.pk).update(status="succeeded", output_file=job.output_file.name)
    checkpoint = checkpoint_dir(job.pk)
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.pt").write_bytes(b"x")
    names = [job.input_file.name, job.output_file.name]
    assert all(default_storage.exists(name) for name in names)

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/jobs/{job.pk}/").status_code == 204

    assert [name for name in names if default_storage.exists(name)] == []
    assert not checkpoint.exists()
    assert ModelRecord.objects.filter(pk=trained_model.pk).exists()  # the model that classified stays


def test_deleting_its_jobs_frees_a_dataset_for_deletion(api, dataset):
    job = _finetune(api, dataset)
    api.post(f"/api/jobs/{job['id']}/cancel/")  # queued: cancelled at once
    refused = api.delete(f"/api/datasets/{dataset['id']}/")
    assert refused.status_code == 400 and "delete them first" in refused.json()["detail"]
    assert api.delete(f"/api/jobs/{job['id']}/").status_code == 204
    assert api.delete(f"/api/datasets/{dataset['id']}/").status_code == 204


def test_a_model_is_deleted_with_its_files(api, trained_model, django_capture_on_commit_callbacks):
    stored = [f"{trained_model.artifact_prefix}/{name}" for name in trained_model.artifact_files]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/models/{trained_model.pk}/").status_code == 204
    assert not ModelRecord.objects.filter(pk=trained_model.pk).exists()
    assert [name for name in stored if default_storage.exists(name)] == []


def test_a_promoted_model_or_one_that_jobs_use_is_not_deleted(api, trained_model):
    api.post(f"/api/models/{trained_model.pk}/promote/")
    refused = api.delete(f"/api/models/{trained_model.pk}/")
    assert refused.status_code == 400
    assert refused.json() == {
        "detail": "the model is promoted: it answers your classify requests; promote another first"
    }

    ModelRecord.objects.filter(pk=trained_model.pk).update(is_promoted=False)
    job = trained_model.produced_by
    distill = api.post(
        "/api/jobs/", {"kind": "distill", "dataset": job.dataset_id, "teacher": trained_model.pk}, format="json"
    ).json()
    refused = api.delete(f"/api/models/{trained_model.pk}/")
    assert refused.status_code == 400
    assert refused.json() == {"detail": f"jobs use this model (#{distill['id']}); delete them first"}
    assert ModelRecord.objects.filter(pk=trained_model.pk).exists()
    assert all(default_storage.exists(f"{trained_model.artifact_prefix}/{n}") for n in trained_model.artifact_files)


def test_nobody_deletes_another_users_job_or_model(other_api, trained_model):
    job = trained_model.produced_by
    assert other_api.delete(f"/api/jobs/{job.pk}/").status_code == 404
    assert other_api.delete(f"/api/models/{trained_model.pk}/").status_code == 404
    assert Job.objects.filter(pk=job.pk).exists() and ModelRecord.objects.filter(pk=trained_model.pk).exists()


def test_the_pages_delete_a_finished_job_and_a_model_and_refuse_a_running_job(
    client, user, api, dataset, trained_model
):
    client.force_login(user)
    running = _finetune(api, dataset)
    Job.objects.filter(pk=running["id"]).update(status="running")
    form = re.search(rb'<form[^>]*id="delete-form"[^>]*>', client.get(f"/jobs/{running['id']}/").content)
    assert form and b" hidden" in form.group()  # shown by job.js once the job finishes
    response = client.post(f"/jobs/{running['id']}/delete/", follow=True)
    assert response.redirect_chain == [(f"/jobs/{running['id']}/", 302)]
    assert b"cancel it first" in response.content and Job.objects.filter(pk=running["id"]).exists()

    finished = trained_model.produced_by
    response = client.post(f"/jobs/{finished.pk}/delete/", follow=True)
    assert response.redirect_chain == [("/", 302)] and f"Deleted job #{finished.pk}".encode() in response.content
    model_page = client.get(f"/models/{trained_model.pk}/")
    assert f'action="/models/{trained_model.pk}/delete/"'.encode() in model_page.content
    response = client.post(f"/models/{trained_model.pk}/delete/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert not ModelRecord.objects.filter(pk=trained_model.pk).exists()
