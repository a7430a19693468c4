"""A model's calibration (ECE, the temperature it serves at, the reliability diagram) and a student's agreement with
its teacher, as the worker stored them, on the model page, on Compare (page and CSV) and in the REST API; only to
the model's owner."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from rest_framework.test import APIClient

from jobs.models import ModelRecord
from mlcore.calibration import calibration_metrics
from tests.htmltree import parse

pytestmark = pytest.mark.django_db

# Twelve test rows of two classes: over-confident logits, the first eight right.
LOGITS = torch.tensor([[4.0, -1.0], [3.0, 0.0], [0.0, 2.5], [-1.0, 1.5], [2.0, 1.0], [0.5, 0.0], [0.2, 0.6],
                       [1.0, -2.0], [3.0, -3.0], [2.0, 0.0], [0.0, 1.0], [0.3, 0.0]], dtype=torch.float64)  # fmt: skip
LABELS = torch.tensor([0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1])
T = 1.8


def _record(owner, *, name="calibrated", temperature=T, teacher=None, **extra) -> ModelRecord:
    metrics = {"test/accuracy": 8 / 12, **calibration_metrics(LOGITS, LABELS, temperature), **extra}
    return ModelRecord.objects.create(
        owner=owner, name=name, kind="distill" if teacher else "finetune", base_model="tiny", teacher=teacher,
        params={"calibrate": True}, metrics=metrics, label_names=["negative", "positive"], num_parameters=10,
        size_bytes=100, temperature=temperature,
    )  # fmt: skip


@pytest.fixture
def student(user):
    teacher = ModelRecord.objects.create(
        owner=user, name="teacher", kind="finetune", base_model="tiny", params={}, metrics={"test/accuracy": 0.9},
        label_names=["negative", "positive"], num_parameters=20, size_bytes=200,
    )  # fmt: skip
    return _record(user, name="student", teacher=teacher, **{"val/agreement": 0.875, "test/agreement": 11 / 12})


def test_the_model_page_shows_the_ece_before_and_after_the_temperature_and_the_diagrams_bins(logged_in, student):
    page = parse(logged_in.get(f"/models/{student.pk}/").content)
    stored = student.metrics
    assert page.select_one("#ece").text() == f"{stored['ece']:.4f}"
    assert page.select_one("#ece-uncalibrated").text() == f"{stored['ece_uncalibrated']:.4f}"
    assert page.select_one("#temperature").text().startswith("1.800")
    assert page.select_one("#chart-reliability") is not None
    # The diagram's data: the stored bins for the chart, and the non-empty ones in a table.
    diagram = json.loads(page.select_one("#model-reliability").text())
    assert diagram == stored["reliability"] and len(diagram) == 15
    rows = page.select("#reliability-bins tr")
    filled = [b for b in stored["reliability"] if b["count"]]
    assert [int(r.children()[1].text()) for r in rows] == [b["count"] for b in filled]
    assert sum(b["count"] for b in filled) == 12
    assert [r.children()[3].text() for r in rows] == [f"{b['accuracy']:.4f}" for b in filled]
    assert page.select_one("#val-agreement").text() == "0.8750"
    assert page.select_one("#test-agreement").text() == f"{11 / 12:.4f}"


def test_a_model_without_calibration_or_a_teacher_says_so(logged_in, user):
    record = ModelRecord.objects.create(
        owner=user, name="old", kind="finetune", base_model="tiny", params={}, metrics={"test/accuracy": 0.9},
        label_names=["negative", "positive"], num_parameters=20, size_bytes=200,
    )  # fmt: skip
    page = parse(logged_in.get(f"/models/{record.pk}/").content)
    assert page.select_one("#no-calibration") is not None
    assert page.select_one("#chart-reliability") is None and page.select_one("#agreement") is None


def test_an_uncalibrated_models_temperature_reads_as_none(logged_in, user):
    record = _record(user, temperature=1.0)
    record.metrics = {k: v for k, v in record.metrics.items() if k != "ece_uncalibrated"}
    record.save()
    page = parse(logged_in.get(f"/models/{record.pk}/").content)
    assert page.select_one("#temperature").text() == "1 not calibrated"
    assert page.select_one("#ece-uncalibrated") is None


def test_the_api_gives_the_calibration_and_agreement_read_only(api, student):
    body = api.get(f"/api/models/{student.pk}/").json()
    assert body["temperature"] == T
    calibration = body["calibration"]
    assert calibration["ece"] == student.metrics["ece"]
    assert calibration["ece_uncalibrated"] == student.metrics["ece_uncalibrated"]
    assert calibration["calibrated"] is True and calibration["reliability"] == student.metrics["reliability"]
    assert body["agreement"] == {"val": 0.875, "test": 11 / 12}
    patched = api.patch(f"/api/models/{student.pk}/", {"temperature": 5.0, "calibration": None}, format="json")
    assert patched.status_code == 200
    student.refresh_from_db()
    assert student.temperature == T


def test_compare_shows_each_models_ece_temperature_and_agreement(api, logged_in, student):
    ids = f"{student.teacher_id},{student.pk}"
    page = parse(logged_in.get(f"/compare/?models={ids}").content)
    row = page.select_one(f'#trust-table tr[data-model-id="{student.pk}"]')
    cells = {td["data-key"]: td.text() for td in row.select("td[data-key]")}
    assert cells == {
        "ece": f"{student.metrics['ece']:.4f}", "ece_uncalibrated": f"{student.metrics['ece_uncalibrated']:.4f}",
        "temperature": "1.800", "val_agreement": "0.8750", "test_agreement": f"{11 / 12:.4f}",
    }  # fmt: skip
    teacher_row = page.select_one(f'#trust-table tr[data-model-id="{student.teacher_id}"]')
    assert [td.text() for td in teacher_row.select("td[data-key]")] == ["—", "—", "1 (none)", "—", "—"]
    response = api.get("/api/models/compare/", {"ids": ids, "format": "csv"})
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert float(lines[1]["ece"]) == student.metrics["ece"] and float(lines[1]["temperature"]) == T
    assert float(lines[1]["test_agreement"]) == 11 / 12 and lines[0]["test_agreement"] == ""


def test_another_user_and_anonymous_get_nothing(client, other_api, other_user, student):
    assert other_api.get(f"/api/models/{student.pk}/").status_code == 404
    assert APIClient().get(f"/api/models/{student.pk}/").status_code == 401
    response = client.get(f"/models/{student.pk}/")
    assert response.status_code == 302 and "/login" in response["Location"]
    client.force_login(other_user)
    assert client.get(f"/models/{student.pk}/").status_code == 404
    assert client.get(f"/compare/?models={student.pk}").status_code == 404
