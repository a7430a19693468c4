"""A model's calibration travels with it: the worker's TrainResult sets the record's temperature, and an imported
folder's distillery.json does (checked: a temperature out of range or a malformed reliability diagram is a 400
naming the field). A download of a model whose metrics hold the diagram imports again as it is."""

from __future__ import annotations

import pytest

from jobs.models import Job, ModelRecord
from jobs.registry import services as registry
from mlcore.calibration import TEMPERATURE_RANGE
from mlcore.train import TrainResult
from tests.registry.test_model_manifest import PREFIX, _download, _post, _set, _tampered

pytestmark = pytest.mark.django_db


def test_a_trained_models_record_takes_the_temperature_training_fitted(user, tiny_model_dir):
    job = Job.objects.create(owner=user, kind=Job.Kind.FINETUNE, params={}, status=Job.Status.RUNNING)
    result = TrainResult(
        output_dir=tiny_model_dir, label_names=["negative", "positive"], metrics={"ece": 0.05}, num_parameters=1,
        size_bytes=1, steps=1, train_rows=1, temperature=1.9,
    )  # fmt: skip
    assert registry.register_model(job, result).temperature == 1.9
    # What an earlier run wrote before the field existed reads as 1.
    old = TrainResult.from_json(result.to_json().replace('"temperature": 1.9', '"graphed_steps": 0'))
    assert old.temperature == 1.0


def test_a_download_with_its_reliability_diagram_imports_again_with_its_temperature(api, other_api, trained_model):
    archive = _tampered(_download(api, trained_model), _set("temperature", value=2.25))
    response = _post(other_api, archive)
    assert response.status_code == 201, response.content
    record = ModelRecord.objects.get(pk=response.json()["id"])
    assert record.temperature == 2.25
    assert len(record.metrics["reliability"]) == 15 and record.metrics["ece"] >= 0
    assert response.json()["calibration"]["temperature"] == 2.25


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("temperature", value=0.0), "temperature must be in [{:g}, {:g}], got 0.0".format(*TEMPERATURE_RANGE)),
        (_set("temperature", value=50), "temperature must be in [0.05, 20], got 50"),
        (_set("temperature", value="hot"), "temperature must be a finite number, got 'hot'"),
        (_set("metrics", "reliability", value={"bins": 15}),
         "metrics['reliability'] must be a list of at most 100 bins"),
        (_set("metrics", "reliability", value=[{"low": 0, "high": 1, "count": 3}]),
         "metrics['reliability'][0] must hold exactly accuracy, confidence, count, high, low"),
        (_set("metrics", "reliability", value=[{"low": 0, "high": 1, "count": None, "confidence": None,
                                                "accuracy": None}]),
         "metrics['reliability'][0]['count'] must be a finite number, got None"),
    ],
)  # fmt: skip
def test_a_bad_temperature_or_diagram_gets_a_400_naming_it(api, other_api, trained_model, change, message):
    response = _post(other_api, _tampered(_download(api, trained_model), change))
    assert response.status_code == 400, response.content
    (refusal,) = response.json()["file"]
    assert refusal.startswith(f"could not load the archive's model: {PREFIX}{message}")
    assert list(ModelRecord.objects.values_list("pk", flat=True)) == [trained_model.pk]
