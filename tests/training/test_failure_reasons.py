"""A failed job tells its owner why in a sentence without server paths; its traceback, which names them, is shown
to staff only: on the job page and in the API."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from jobs.datasets import services as dataset_services
from jobs.models import Job
from jobs.training.failures import failure_detail, failure_reason
from mlcore.config import ConfigError
from tests.markup import element

pytestmark = pytest.mark.django_db

TRACEBACK = 'Traceback (most recent call last):\n  File "/srv/distillery/jobs/training/runner.py", line 9\nOSError: x'


@pytest.fixture
def failed(user, sentiment_csv):
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    return Job.objects.create(
        owner=user, kind=Job.Kind.FINETUNE, dataset=dataset, base_model="acme/missing", params={},
        status=Job.Status.FAILED, error="Base model 'acme/missing' could not be loaded: not found",
        error_detail=TRACEBACK,
    )  # fmt: skip


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("root", password="root-pass-123", is_staff=True)


def _raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    """exc as raised (from cause): with its traceback and chain, as lifecycle.running catches it."""
    try:
        try:
            if cause is not None:
                raise cause
        except BaseException as inner:
            raise exc from inner
        raise exc
    except BaseException as caught:
        return caught


def _load_error(message: str) -> type[Exception]:
    from mlcore.loading import ModelLoadError  # torch: only the tests that need it load it

    return ModelLoadError(message)


def test_a_base_model_not_found_on_the_hub_is_named_with_the_reason(failed):
    class RepositoryNotFoundError(OSError):  # huggingface_hub's, told by its name
        pass

    exc = _raised(_load_error("could not load model 'acme/missing': 404"), RepositoryNotFoundError("404 Client Error"))
    assert (
        failure_reason(failed, exc)
        == "Base model 'acme/missing' could not be loaded: not found on the Hugging Face Hub"
    )


def test_an_unknown_model_name_reads_not_found_and_an_unreachable_hub_says_so(failed):
    transformers_says = OSError(
        "acme/missing is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'"
    )
    exc = _raised(_load_error("could not load model 'acme/missing': ..."), transformers_says)
    assert failure_reason(failed, exc) == "Base model 'acme/missing' could not be loaded: not found"

    class ConnectError(Exception):  # httpx's
        pass

    exc = _raised(_load_error("could not load model 'acme/missing': ..."), ConnectError("[Errno -2] Name unknown"))
    assert failure_reason(failed, exc).endswith("could not be loaded: the Hugging Face Hub could not be reached from "
                                                "this server")  # fmt: skip


def test_a_distillation_names_its_teacher_and_a_stored_base_model_its_name(failed, trained_model):
    failed.kind, failed.teacher = Job.Kind.DISTILL, trained_model
    exc = _raised(_load_error(f"could not load model '/srv/media/{trained_model.pk}': boom"), ValueError("boom"))
    assert failure_reason(failed, exc) == f"The teacher {trained_model.name!r} could not be loaded: boom"
    failed.kind, failed.teacher, failed.base_record = Job.Kind.FINETUNE, None, trained_model
    assert failure_reason(failed, exc).startswith(f"Base model {trained_model.name!r} could not be loaded")


def test_server_paths_are_cut_to_their_last_part_and_urls_are_left_alone(failed):
    exc = _raised(RuntimeError("could not open /srv/distillery/var/media/models/ab12/model.safetensors (see "
                               "https://huggingface.co/docs/x/y)"))  # fmt: skip
    assert failure_reason(failed, exc) == (
        "The job stopped on an unexpected error (RuntimeError: could not open model.safetensors (see "
        "https://huggingface.co/docs/x/y))."
    )


def test_messages_meant_for_users_are_kept_and_the_detail_is_the_traceback(failed):
    exc = _raised(ConfigError("max_length must be in [8, 512], got 4"))
    assert failure_reason(failed, exc) == "max_length must be in [8, 512], got 4"
    assert failure_detail(exc).startswith("Traceback (most recent call last)")
    assert failure_detail(exc).rstrip().endswith("mlcore.config.ConfigError: max_length must be in [8, 512], got 4")
    assert failure_reason(failed, _raised(MemoryError())).startswith("The worker ran out of memory")


def test_the_owner_sees_the_reason_and_no_traceback_on_the_page_and_in_the_api(logged_in, api, failed):
    html = logged_in.get(f"/jobs/{failed.pk}/").content.decode()
    assert element(html, "job-error").text == failed.error
    assert element(html, "job-error-detail") is None and "runner.py" not in html
    body = api.get(f"/api/jobs/{failed.pk}/").json()
    assert (body["error"], body["error_detail"]) == (failed.error, None)


def test_staff_see_the_traceback_too(client, staff, failed):
    from rest_framework.test import APIClient

    client.force_login(staff)
    html = client.get(f"/jobs/{failed.pk}/").content.decode()
    assert element(html, "job-error").text == failed.error
    detail = element(html, "job-error-detail")
    assert detail.tag == "details" and 'File "/srv/distillery/jobs/training/runner.py", line 9' in detail.text
    staff_api = APIClient()
    staff_api.force_authenticate(staff)
    body = staff_api.get(f"/api/jobs/{failed.pk}/").json()
    assert (body["error"], body["error_detail"]) == (failed.error, TRACEBACK)


def test_the_migration_splits_the_errors_recorded_before_it(failed):
    old = "ModelLoadError: could not load model '/srv/models/bert': gone\n\n" + TRACEBACK
    Job.objects.filter(pk=failed.pk).update(error=old, error_detail="")
    migration = importlib.import_module("jobs.migrations.0016_job_error_detail_for_staff")
    migration.split_errors(apps, None)
    failed.refresh_from_db()
    assert failed.error == "ModelLoadError: could not load model 'bert': gone"
    assert failed.error_detail == TRACEBACK
