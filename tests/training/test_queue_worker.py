"""Queue control with real workers: queued jobs a user reordered start in the new order on a single training
slot (started_at), and a file classification runs on the cpu queue's worker while training holds the other."""

from __future__ import annotations

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config import queues
from jobs.models import Job
from tests.conftest import _worker_database_url, csv_bytes, worker_process
from tests.polling import until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def _status(pk: int) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=pk)


@pytest.fixture
def launch(api, sentiment_csv, tiny_bert, fast_params):
    """launch(**params): a fine-tune of the tiny BERT on one uploaded dataset; its id."""
    dataset = api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()

    def start(**params) -> int:
        payload = {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert)}
        response = api.post("/api/jobs/", {**payload, "params": dict(fast_params, **params)}, format="json")
        assert response.status_code == 201, response.content
        return response.json()["id"]

    return start


def test_three_queued_jobs_moved_by_their_owner_start_in_the_new_order(api, launch, celery_worker):
    blocker = launch(epochs=100, batch_size=2)  # holds the one training slot until cancelled
    until(lambda: _status(blocker) == "running", "the first job runs")
    first, second, third = (launch(epochs=1) for _ in range(3))
    assert api.post(f"/api/jobs/{third}/move/", {"to": "top"}, format="json").status_code == 200
    moved = api.post(f"/api/jobs/{first}/move/", {"to": "down"}, format="json").json()
    assert [j["job"] for j in moved["jobs"]] == [third, second, first]

    assert api.post(f"/api/jobs/{blocker}/cancel/").status_code == 200
    until(lambda: all(_status(pk) in Job.FINISHED for pk in (first, second, third)), "the three jobs ended")
    ended = Job.objects.filter(pk__in=(first, second, third)).order_by("started_at")
    assert [(j.pk, j.status, j.attempts) for j in ended] == [(pk, "succeeded", 1) for pk in (third, second, first)]
    assert _status(blocker) == "cancelled"


def test_a_file_classification_runs_while_training_holds_the_training_worker(
    api, launch, trained_model, celery_worker, tmp_path
):
    blocker = launch(epochs=100, batch_size=2)
    until(lambda: _status(blocker) == "running", "the training job runs")
    name = f"cpu-{os.getpid()}@distillery"
    with worker_process(name, _worker_database_url(), tmp_path / "cpu.log", consume=(queues.CPU,)):
        texts = SimpleUploadedFile("t.csv", csv_bytes([("a wonderful film",), ("a dull film",)], header=("text",)))
        response = api.post("/api/classify/file/", {"file": texts, "model": trained_model.pk}, format="multipart")
        assert response.status_code in (201, 202), response.content
        classify = response.json()["id"]
        until(lambda: _status(classify) in Job.FINISHED, "the file classification ended", timeout=180)
        # Done while the training job still held the training worker, on the cpu queue's own worker.
        assert _status(blocker) == "running"
        done = Job.objects.get(pk=classify)
        assert (done.status, done.worker, bool(done.output_file)) == ("succeeded", name, True)
    api.post(f"/api/jobs/{blocker}/cancel/")
    until(lambda: _status(blocker) in Job.FINISHED, "the training job stopped")
