"""A calibrated model (ModelRecord.temperature T) is served as softmax(logits / T) on every serving path: the
classify API on PyTorch and on ONNX Runtime, the ASGI fast path, file classification, explanations and the
classify page; T = 1 serves the plain softmax. The expected values come from the saved weights through
transformers, not through mlcore."""

from __future__ import annotations

import csv

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from jobs.serving import engines
from mlcore.batchfile import classify_table
from mlcore.data import TextTable
from tests.api.test_classify_fastpath import _post

pytestmark = pytest.mark.django_db(transaction=True)

T = 2.5
TEXTS = ["great good film", "awful bad movie", "the film was long"]


def _softmax_over(folder, texts: list[str], temperature: float) -> list[dict[str, float]]:
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    out = []
    for text in texts:
        with torch.no_grad():
            logits = model(**tokenizer(text, return_tensors="pt")).logits[0].double()
        out.append(dict(zip(labels, (logits / temperature).softmax(dim=-1).tolist(), strict=True)))
    return out


@pytest.fixture
def calibrated(api, trained_model):
    trained_model.temperature = T
    trained_model.save(update_fields=["temperature"])
    api.post(f"/api/models/{trained_model.pk}/promote/")
    return trained_model


def _assert_served(answers: list[dict], folder) -> None:
    expected = _softmax_over(folder, TEXTS, T)
    plain = _softmax_over(folder, TEXTS, 1.0)
    for answer, want, raw in zip(answers, expected, plain, strict=True):
        assert answer["probabilities"] == pytest.approx(want, abs=1e-5)
        assert answer["probability"] == pytest.approx(max(want.values()), abs=1e-5)
        assert max(raw.values()) - max(want.values()) > 1e-3  # T moved them: the plain softmax is surer


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_the_classify_api_serves_softmax_of_the_logits_over_t(api, calibrated, tiny_model_dir, settings, runtime):
    settings.DISTILLERY_SERVING_RUNTIME = runtime
    answers = api.post("/api/classify/", {"texts": TEXTS}, format="json").json()
    assert engines.engine_for(calibrated).classifier.runtime == runtime
    _assert_served(answers, tiny_model_dir)


def test_the_fast_path_serves_softmax_of_the_logits_over_t(api, calibrated, tiny_model_dir):
    status, answers, _ = _post(api.token, {"texts": TEXTS})
    assert status == 200 and [a["model"] for a in answers] == [calibrated.pk] * 3
    _assert_served(answers, tiny_model_dir)


def test_file_classification_writes_the_calibrated_probabilities(calibrated, tiny_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    table = TextTable(texts=TEXTS, ids=None, format="csv", text_column="text")
    classify_table(engines.load_classifier(calibrated), table, out)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    answers = [
        {"probabilities": {name: float(row[f"p_{name}"]) for name in calibrated.label_names},
         "probability": float(row["probability"])}
        for row in rows
    ]  # fmt: skip
    _assert_served(answers, tiny_model_dir)


def test_an_explanation_gives_the_calibrated_probabilities(api, calibrated, tiny_model_dir):
    answers = [api.post("/api/explain/", {"text": text}, format="json").json() for text in TEXTS]
    _assert_served(answers, tiny_model_dir)


def test_an_uncalibrated_model_serves_the_plain_softmax(api, trained_model, tiny_model_dir):
    assert trained_model.temperature == 1.0
    api.post(f"/api/models/{trained_model.pk}/promote/")
    answers = api.post("/api/classify/", {"texts": TEXTS}, format="json").json()
    for answer, want in zip(answers, _softmax_over(tiny_model_dir, TEXTS, 1.0), strict=True):
        assert answer["probabilities"] == pytest.approx(want, abs=1e-5)
