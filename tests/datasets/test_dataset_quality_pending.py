"""A dataset's report while no worker has computed it: 202 and "pending" on the API, a note on the page; a dataset
made before reports existed gets one queued when asked; one pending too long is sent to the workers again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.datasets import quality
from jobs.datasets import services as dataset_services
from jobs.models import DatasetQuality
from jobs.training import dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list:
    calls = []
    monkeypatch.setattr(dispatch, "dataset_quality", lambda *args: calls.append(args))
    return calls


def test_a_new_dataset_is_queued_once_it_commits_and_answers_202_until_computed(
    user, api, logged_in, sentiment_csv, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    report = DatasetQuality.objects.get(dataset=dataset)
    assert sent == [(dataset.pk, report.task_id)] and report.status == "pending"
    response = api.get(f"/api/datasets/{dataset.pk}/quality/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert api.get(f"/api/datasets/{dataset.pk}/quality/csv/?finding=markup").status_code == 404
    assert 'id="quality-pending"' in logged_in.get(f"/datasets/{dataset.pk}/").content.decode()

    assert quality.compute_report(dataset.pk) == "ready"
    body = api.get(f"/api/datasets/{dataset.pk}/quality/").json()
    assert body["status"] == "ready" and body["report"]["rows"] == 160 and len(sent) == 1


def test_a_dataset_without_a_report_gets_one_queued_and_a_stale_one_is_sent_again(
    user, api, sentiment_csv, sent, django_capture_on_commit_callbacks
):
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    DatasetQuality.objects.filter(dataset=dataset).delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert api.get(f"/api/datasets/{dataset.pk}/quality/").status_code == 202
    task_id = DatasetQuality.objects.get(dataset=dataset).task_id
    assert sent == [(dataset.pk, task_id)]

    with django_capture_on_commit_callbacks(execute=True):
        api.get(f"/api/datasets/{dataset.pk}/quality/")  # pending, but not for long: not sent again
    assert len(sent) == 1
    DatasetQuality.objects.filter(dataset=dataset).update(queued_at=timezone.now() - quality.RESEND_AFTER * 2)
    with django_capture_on_commit_callbacks(execute=True):
        api.get(f"/api/datasets/{dataset.pk}/quality/")
    assert sent == [(dataset.pk, task_id)] * 2
    assert timezone.now() - DatasetQuality.objects.get(dataset=dataset).queued_at < timedelta(minutes=1)


def test_a_report_of_a_deleted_dataset_is_gone_and_a_file_that_no_longer_reads_fails_with_its_reason(
    user, sentiment_csv
):
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    with dataset.file.storage.open(dataset.file.name, "wb") as fh:
        fh.write(b"text,label\n")
    assert quality.compute_report(dataset.pk) == "failed"
    assert DatasetQuality.objects.get(dataset=dataset).error == "DataError: the file has no data rows"
    pk = dataset.pk
    dataset.delete()
    assert quality.compute_report(pk) == "gone"


def test_a_missing_file_fails_the_report_without_naming_a_server_path(user, sentiment_csv):
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    dataset.file.storage.delete(dataset.file.name)
    assert quality.compute_report(dataset.pk) == "failed"
    error = DatasetQuality.objects.get(dataset=dataset).error
    assert error == "FileNotFoundError: its file could not be read" and dataset.file.name not in error


def test_only_a_pending_report_is_written_so_a_second_run_cannot_undo_the_first(user, sentiment_csv):
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    assert quality.compute_report(dataset.pk) == "ready"
    with dataset.file.storage.open(dataset.file.name, "wb") as fh:
        fh.write(b"text,label\n")
    assert quality.compute_report(dataset.pk) == "failed"  # this run failed, and wrote nothing
    assert DatasetQuality.objects.get(dataset=dataset).status == "ready"
