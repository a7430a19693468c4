"""Each user may store DISTILLERY_USER_QUOTA_MB of datasets and models together: an upload or import that would
pass it is a 400 saying what they use and the limit, with nothing stored; a training job's model counts but is
never refused, and a user past the quota launches no more. Other users' files do not count; 0 turns it off."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from jobs import quota
from jobs.models import Dataset, Job, ModelRecord
from jobs.registry import services as registry
from tests.conftest import FAST_PARAMS, csv_bytes

pytestmark = pytest.mark.django_db

MB = 2**20


def _usage(owner, size: int) -> ModelRecord:
    """What a user already stores: a record of `size` bytes (its files do not matter to the quota)."""
    return ModelRecord.objects.create(
        owner=owner, name="stored", kind=ModelRecord.Kind.IMPORTED, params={}, metrics={}, label_names=["a", "b"],
        num_parameters=1, size_bytes=size, artifact_files=[],
    )  # fmt: skip


def _csv() -> SimpleUploadedFile:
    from mlcore.testing import sentiment_rows

    return SimpleUploadedFile("reviews.csv", csv_bytes(sentiment_rows(160)), content_type="text/csv")


def _model_zip(tiny_model_dir: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in tiny_model_dir.iterdir():
            if path.is_file():
                zf.write(path, path.name)
    return out.getvalue()


def _stored(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_a_dataset_upload_past_the_quota_gets_a_400_with_usage_and_limit_and_stores_nothing(api, user, settings):
    settings.DISTILLERY_USER_QUOTA_MB = 1
    _usage(user, MB - 1000)
    upload = _csv()
    assert upload.size > 1000

    response = api.post("/api/datasets/", {"file": upload}, format="multipart")

    assert response.status_code == 400
    (message,) = response.json()["file"]
    assert message.startswith(f"this needs {upload.size / 2**10:,.1f} KB and you use 1,023.0 KB of your 1.0 MB")
    assert "(DISTILLERY_USER_QUOTA_MB): delete datasets or models to make room" in message
    assert Dataset.objects.count() == 0 and _stored(settings) == []


def test_a_dataset_upload_under_the_quota_passes_and_then_counts(api, user, settings):
    settings.DISTILLERY_USER_QUOTA_MB = 1
    _usage(user, MB - 2 * len(_csv()))

    first = api.post("/api/datasets/", {"file": _csv()}, format="multipart")
    assert first.status_code == 201, first.content
    assert quota.used_bytes(user) == MB - len(_csv())

    second = api.post("/api/datasets/", {"file": _csv()}, format="multipart")
    assert second.status_code == 201  # exactly at the quota is allowed
    assert quota.used_bytes(user) == MB
    third = api.post("/api/datasets/", {"file": _csv()}, format="multipart")
    assert third.status_code == 400 and "you use 1.0 MB of your 1.0 MB storage quota" in third.json()["file"][0]
    assert Dataset.objects.count() == 2


def test_the_dashboard_shows_the_quota_refusal(logged_in, user, settings):
    settings.DISTILLERY_USER_QUOTA_MB = 1
    _usage(user, MB)
    response = logged_in.post("/datasets/upload/", {"file": _csv(), "name": "r"})
    assert response.status_code == 400
    assert "of your 1.0 MB storage quota" in response.content.decode()
    assert Dataset.objects.count() == 0


def test_a_folder_import_past_the_quota_is_refused_on_its_path(api, user, settings, tmp_path):
    root = tmp_path / "datasets"
    for folder, text in {"train/pos": "A joy.", "train/neg": "Dull."}.items():
        (root / "imdb" / folder).mkdir(parents=True)
        (root / "imdb" / folder / "0_7.txt").write_text(text)
    settings.DISTILLERY_DATASET_ROOTS = [root.resolve()]
    settings.DISTILLERY_USER_QUOTA_MB = 1
    _usage(user, MB)

    response = api.post("/api/datasets/", {"server_path": "imdb", "split": "train"}, format="json")

    assert response.status_code == 400
    assert "of your 1.0 MB storage quota" in response.json()["server_path"][0]
    assert Dataset.objects.count() == 0 and _stored(settings) == []


def test_a_model_import_past_the_quota_gets_a_400_with_usage_and_limit_and_stores_nothing(
    api, user, settings, tiny_model_dir
):
    settings.DISTILLERY_USER_QUOTA_MB = 1
    _usage(user, 900 * 2**10)

    response = api.post(
        "/api/models/", {"file": SimpleUploadedFile("m.zip", _model_zip(tiny_model_dir))}, format="multipart"
    )

    assert response.status_code == 400
    (message,) = response.json()["file"]
    assert "and you use 900.0 KB of your 1.0 MB storage quota" in message
    assert ModelRecord.objects.count() == 1 and _stored(settings) == []


def test_a_model_import_under_the_quota_passes_and_counts_its_unpacked_size(api, user, settings, tiny_model_dir):
    settings.DISTILLERY_USER_QUOTA_MB = 1
    response = api.post(
        "/api/models/", {"file": SimpleUploadedFile("m.zip", _model_zip(tiny_model_dir))}, format="multipart"
    )
    assert response.status_code == 201, response.content
    folder = sum(p.stat().st_size for p in tiny_model_dir.iterdir() if p.is_file())
    assert quota.used_bytes(user) == folder


def test_the_import_command_reports_the_quota(user, settings, tiny_model_dir):
    settings.DISTILLERY_USER_QUOTA_MB = 1
    _usage(user, MB)
    with pytest.raises(CommandError, match="of your 1.0 MB storage quota"):
        call_command("import_model", str(tiny_model_dir), owner=user.username)
    assert ModelRecord.objects.count() == 1


def test_another_users_files_do_not_count(api, other_user, settings, tiny_model_dir):
    settings.DISTILLERY_USER_QUOTA_MB = 1
    _usage(other_user, 10 * MB)

    dataset = api.post("/api/datasets/", {"file": _csv()}, format="multipart")
    model = api.post(
        "/api/models/", {"file": SimpleUploadedFile("m.zip", _model_zip(tiny_model_dir))}, format="multipart"
    )

    assert (dataset.status_code, model.status_code) == (201, 201)


def test_a_quota_of_0_means_none(api, user, settings, tiny_model_dir):
    settings.DISTILLERY_USER_QUOTA_MB = 0
    _usage(user, 2**50)

    dataset = api.post("/api/datasets/", {"file": _csv()}, format="multipart")
    model = api.post(
        "/api/models/", {"file": SimpleUploadedFile("m.zip", _model_zip(tiny_model_dir))}, format="multipart"
    )

    assert (dataset.status_code, model.status_code) == (201, 201)
    assert quota.quota_bytes() is None


def test_a_trained_model_is_registered_past_the_quota_and_then_no_job_is_launched(
    api, user, settings, trained_model, tiny_model_dir
):
    from mlcore.train import TrainResult

    settings.DISTILLERY_USER_QUOTA_MB = 1
    job = Job.objects.create(
        owner=user, kind=Job.Kind.FINETUNE, dataset=trained_model.dataset, base_model=trained_model.base_model,
        params=FAST_PARAMS, status=Job.Status.RUNNING,
    )  # fmt: skip
    result = TrainResult(
        output_dir=tiny_model_dir, label_names=["negative", "positive"], metrics={"test/accuracy": 1.0},
        num_parameters=1, size_bytes=2 * MB, steps=1, train_rows=1,
    )  # fmt: skip

    record = registry.register_model(job, result)  # as the worker does once the job has run

    assert record.pk is not None and quota.used_bytes(user) > 2 * MB
    launch = {"kind": "finetune", "dataset": trained_model.dataset_id}
    response = api.post("/api/jobs/", launch, format="json")
    assert response.status_code == 400
    (message,) = response.json()["detail"]
    assert message.startswith("you use 2.0 MB of your 1.0 MB storage quota (DISTILLERY_USER_QUOTA_MB) and a new model")
    sweep = api.post("/api/sweeps/", {**launch, "grid": {"seed": [1, 2]}}, format="json")
    assert sweep.status_code == 400 and sweep.json()["detail"] == [message]
    assert Job.objects.filter(status=Job.Status.QUEUED).count() == 0
    settings.DISTILLERY_USER_QUOTA_MB = 0
    assert api.post("/api/jobs/", launch, format="json").status_code == 201
