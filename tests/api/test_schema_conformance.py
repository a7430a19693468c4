"""The API does what its schema (GET /api/schema/) says, checked by Schemathesis on every operation: no 5xx, only
documented status codes and content types, bodies that match their schemas, a 401 without credentials, a 405
for an undocumented method, and requests the schema calls valid accepted where the schema can say what valid is.

The requests go through the real ASGI application (config.asgi: the body limit and the classify fast path
included) with a real user's API token, against the test database: the user has a dataset, a promoted model
and the finished job that trained it, its metric points, and a sweep, and ids in paths, filters and bodies are
steered to them, so that detail routes, classify and explain answer for real, not only 404.

Bounded for the 2-core test machine: MAX_EXAMPLES generated requests per operation in the fuzzing phase, plus
Schemathesis' deterministic coverage and method probes (about 2,100 requests in all, some 40 s of a full run);
derandomized with a fixed seed, so every run sends the same requests.
"""

from __future__ import annotations

import sys

import pytest
import schemathesis
from axes.utils import reset as reset_login_failures
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import checks

from config.asgi import application
from jobs.datasets import quality
from jobs.datasets import services as dataset_services
from jobs.models import MetricPoint, Sweep
from jobs.registry import services as registry
from jobs.training import dispatch

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 20  # generated requests per operation in the fuzzing phase, as the issue measured
SEED = 16  # issue 16

schema = schemathesis.openapi.from_asgi("/api/schema/", application)
schema.config.seed = SEED
# Every string field of the API refuses NUL (DRF's CharField): a rule of the whole API that its description
# states, not each field's pattern.
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, allow_x00=False)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.allow_header_conformance,
    checks.ignored_auth,
    checks.positive_data_acceptance,
]
# Not negative_data_rejection: DRF ignores fields it does not know and reads "1" as 1 in a form, so a request
# the schema calls invalid is often, rightly, accepted.

# Where a schema-valid request can still be refused (400) for a reason the schema cannot state: what a file
# holds, what this server holds, or the state a job or model is in. Every other check still runs on these.
NOT_JUDGED_ON_VALID_DATA = {
    "POST /api/auth/token/": "whether that username and password exist",
    "POST /api/datasets/": "the file's rows, the server's folders, the hub (offline here)",
    "GET /api/datasets/{id}/preview/": "the catalogue's hub models cannot be loaded offline",
    "POST /api/classify/file/": "the file's rows",
    "POST /api/models/": "what the zip holds",
    "POST /api/jobs/": "which base models this server has, and each job kind's parameter names and ranges",
    "POST /api/sweeps/": "which base models this server has, and each job kind's parameter names and ranges",
    "POST /api/jobs/{id}/cancel/": "a finished job cannot be cancelled",
    "DELETE /api/models/{id}/": "a promoted model, or one that jobs use, cannot be deleted",
    "GET /api/models/{id}/student/": "how many layers the teacher has",
    "GET /api/datasets/{id}/schedule/": "a range's open end, and warm-up only with the linear schedule",
}

KNOWN: dict[str, int] = {}  # the fixture's ids: datasets, jobs, models, sweeps
ID_FIELDS = {"dataset": "datasets", "test_dataset": "datasets", "sweep": "sweeps", "teacher": "models",
             "model": "models"}  # fmt: skip


def steer(values) -> None:
    """Point every id-valued field of a query or body at the fixture's object of that kind ("ids": its model):
    a filter or body naming an id that is not the user's is refused (400), which the schema cannot say."""
    if isinstance(values, dict):
        values.update({name: KNOWN[ID_FIELDS[name]] for name in values if name in ID_FIELDS})
        if "ids" in values:
            values["ids"] = str(KNOWN["models"])
        if "label" in values:  # the label to explain: one of the fixture model's, which the schema cannot name
            values["label"] = "positive"


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """An id in the path is the fixture's object about half the time (the rest: whatever was generated, a 404)."""
    resource = context.operation.path.split("/")[2]
    if path_parameters and "id" in path_parameters and resource in KNOWN:
        return st.sampled_from([{**path_parameters, "id": KNOWN[resource]}, path_parameters])
    return st.just(path_parameters)


@pytest.fixture
def world(user, api, trained_model, sentiment_csv, monkeypatch):
    """`user`'s objects for the generated requests to find; the API client with the user's token."""
    # Offline, as this machine is: a hub dataset or model is refused at once (a 400) instead of after retries.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("huggingface_hub.constants", "datasets.config"):  # each read the variable when imported
        if name in sys.modules:
            monkeypatch.setattr(sys.modules[name], "HF_HUB_OFFLINE", True)
    # Nothing reaches Celery: a worker started by another test of the session would run what is launched here.
    for name in ("run", "revoke", "notify_webhook", "dataset_quality"):
        monkeypatch.setattr(dispatch, name, lambda *args: None)

    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    quality.compute_report(dataset.pk)  # what the worker would have done: the report's CSVs answer
    registry.promote(trained_model)
    job = trained_model.produced_by
    MetricPoint.objects.create(job=job, seq=1, step=1, kind="train", values={"train/loss": 0.5})
    sweep = Sweep.objects.create(owner=user, name="grid", kind="finetune", dataset=dataset, params={}, grid={})
    KNOWN.update(datasets=dataset.pk, jobs=job.pk, models=trained_model.pk, sweeps=sweep.pk)
    yield api
    KNOWN.clear()
    reset_login_failures(ip="testclient")  # the address Schemathesis' ASGI client comes from


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one world per operation, on purpose
def test_the_api_does_what_its_schema_says(case, world):
    steer(case.query)
    steer(case.body)
    chosen = CHECKS
    if case.operation.label in NOT_JUDGED_ON_VALID_DATA:
        chosen = [check for check in CHECKS if check is not checks.positive_data_acceptance]
    case.call_and_validate(headers={"Authorization": f"Token {world.token}"}, checks=chosen)

