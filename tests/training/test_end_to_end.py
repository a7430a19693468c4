"""The whole platform end to end: API upload -> Celery worker trains -> websocket metrics -> promote ->
classify; then the same for a distillation of that model."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest

from jobs.models import Job, JobLogLine, ModelRecord
from jobs.registry import storage
from jobs.serving import engines
from jobs.training import lifecycle
from mlcore import onnxrt
from tests.conftest import job_socket, launch_finetune, watch_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

def _run_andwatch_job(api, payload: dict) -> tuple[dict, list[dict]]:
    response = api.post("/api/jobs/", payload, format="json")
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["status"] == "queued"
    messages = asyncio.run(watch_job(job["id"], api.token))
    return api.get(f"/api/jobs/{job['id']}/").json(), messages


def _check_metric_stream(api, job: dict, messages: list[dict]) -> list[dict]:
    metrics = [m for m in messages if m["type"] == "metric"]
    seqs = [m["seq"] for m in metrics]
    # Every point exactly once, in order, and the same points the REST endpoint returns.
    assert seqs == list(range(1, len(seqs) + 1))
    stored = api.get(f"/api/jobs/{job['id']}/metrics/").json()
    assert [p["seq"] for p in stored] == seqs
    train = [m for m in metrics if m["kind"] == "train"]
    assert {"train/loss", "train/accuracy", "lr", "epoch", "time", "train/samples_per_s", "system/rss_mb"} <= set(
        train[0]["values"]
    )
    assert all(m["values"]["train/samples_per_s"] > 0 and m["values"]["time"] > 1.7e9 for m in train)
    assert [m["kind"] for m in metrics][-1] == "test"
    # While it runs, the job's pages get its progress: rising, one message per whole percent at most, and short of
    # 100% until it has ended (training fills 90%; testing, measuring and storing the rest).
    running = [m["progress"] for m in messages if m["type"] == "status" and m["status"] == "running"]
    assert running == sorted(running) and len(running) <= 101
    assert running[-1] == pytest.approx(lifecycle.AFTER_TRAINING[lifecycle.STORING]) and messages[-1]["progress"] == 1
    # The worker's log for the job came too, each line once, in order, and is kept.
    lines = [m for m in messages if m["type"] == "log"]
    assert [m["seq"] for m in lines] == list(range(1, len(lines) + 1))
    assert any(m["message"] == f"job {job['id']}: training" for m in lines)
    assert any(m["message"].startswith(f"job {job['id']}: 128 training rows, 16 validation, 16 test") for m in lines)
    assert [line.message for line in JobLogLine.objects.filter(job_id=job["id"])] == [m["message"] for m in lines]
    # The last status event carries the times the job page shows, the same as the API's.
    final = messages[-1]
    started, finished = (datetime.fromisoformat(final[key]) for key in ("started_at", "finished_at"))
    assert started <= finished == datetime.fromisoformat(job["finished_at"])
    assert started == datetime.fromisoformat(job["started_at"])
    return metrics


def test_finetune_then_distill_through_the_worker_websocket_and_classify(
    api, sentiment_csv, tiny_bert, fast_params, celery_worker
):
    # 1. upload a dataset through the API
    response = api.post("/api/datasets/", {"name": "reviews", "file": sentiment_csv}, format="multipart")
    assert response.status_code == 201, response.content
    dataset = response.json()
    assert dataset["labels"] == ["negative", "positive"]

    # 2. fine-tune on the tiny BERT in the real worker, watching over the websocket
    job, messages = _run_andwatch_job(
        api, {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert), "params": fast_params}
    )
    assert job["status"] == "succeeded", job["error"]
    metrics = _check_metric_stream(api, job, messages)
    # 160 rows, 10% valid + 10% test held out -> 128 train rows -> 8 batches of 16, 5 epochs
    assert len([m for m in metrics if m["kind"] == "train"]) == 40
    assert len([m for m in metrics if m["kind"] == "val"]) == 5
    assert job["progress"] == 1.0
    # The launch form's schedule preview, asked before launch with the same values, is the run's: every step's rate.
    schedule = {k: v for k, v in fast_params.items() if k in ("batch_size", "learning_rate", "epochs", "lr_step_every")}
    plan = api.get(f"/api/datasets/{dataset['id']}/schedule/", schedule).json()
    trained = [[m["step"], m["values"]["lr"]] for m in metrics if m["kind"] == "train"]
    assert [step for step, _ in plan["points"]] == [step for step, _ in trained] == list(range(1, 41))
    assert [lr for _, lr in plan["points"]] == pytest.approx([lr for _, lr in trained], rel=1e-6)
    teacher = ModelRecord.objects.get(pk=job["result_model"])
    assert teacher.kind == "finetune" and teacher.label_names == ["negative", "positive"]
    assert teacher.metrics["test/accuracy"] > 0.8
    # int8 was measured against fp32 on the 16 validation rows; the record serves int8 only if that paid off
    int8 = teacher.metrics["int8"]
    assert int8["rows"] == 16 and 0 <= int8["int8_accuracy"] <= 1 and int8["speedup"] > 0
    assert int8["accuracy_drop_points"] == pytest.approx(100 * (int8["fp32_accuracy"] - int8["int8_accuracy"]))
    chose_int8 = int8["accuracy_drop_points"] <= 0.5 and int8["speedup"] > 1
    assert teacher.serving_precision == ("int8" if chose_int8 else "fp32")
    # the worker stored the ONNX export it will be served at with the model, tied to its weights
    served_file = "model-int8.onnx" if chose_int8 else "model.onnx"
    assert {served_file, "onnx.json"} <= set(teacher.artifact_files)
    assert set(onnxrt.shipped(storage.model_dir(teacher))) == {teacher.serving_precision}

    # 3. a client that reconnects after seq 5 gets exactly the points after it
    late = asyncio.run(watch_job(job["id"], api.token, after=5))
    assert [m["seq"] for m in late if m["type"] == "metric"] == [m["seq"] for m in metrics][5:]

    # 4. promote and classify one text and a batch
    # (with the override: a tiny run's calibration error may fail the promote guard's bound)
    assert api.post(f"/api/models/{teacher.pk}/promote/", {"override": True}, format="json").status_code == 200
    one = api.post("/api/classify/", {"text": "a great film, loved it"}, format="json").json()
    assert one["label"] in dataset["labels"]
    assert sum(one["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    many = api.post("/api/classify/", {"texts": ["awful boring movie", "wonderful and great"]}, format="json")
    assert [p["label"] for p in many.json()] == ["negative", "positive"]
    assert not (storage.onnx_exports_dir(teacher) / served_file).exists()  # served from the shipped file

    # 5. distil the fine-tuned model into a derived student, calibrated, in the worker
    job, messages = _run_andwatch_job(
        api, {"kind": "distill", "dataset": dataset["id"], "teacher": teacher.pk,
              "params": fast_params | {"calibrate": True}},
    )  # fmt: skip
    assert job["status"] == "succeeded", job["error"]
    metrics = _check_metric_stream(api, job, messages)
    assert {"train/soft_loss", "train/hard_loss", "train/agreement"} <= set(metrics[0]["values"])
    # Agreement with the teacher streamed per batch and with each validation, as shares of rows.
    assert all(0 <= m["values"]["train/agreement"] <= 1 for m in metrics if m["kind"] == "train")
    vals = [m["values"]["val/agreement"] for m in metrics if m["kind"] == "val"]
    assert len(vals) == 5 and all(v * 16 == pytest.approx(round(v * 16)) for v in vals)  # of 16 validation rows
    # The job's pages heard what it was doing between batches, in order, and nothing once it ended.
    phases = [m["phase"] for m in messages if m["type"] == "status" and m["phase"]]
    expected = ["loading the model", "tokenising", "computing the teacher's logits", "training", "validating",
                "fitting the temperature", "testing", "saving the model", "measuring CPU speed",
                "comparing int8 with fp32", "finding suspected label errors", "storing the model"]  # fmt: skip
    assert list(dict.fromkeys(phases)) == expected and messages[-1]["phase"] == ""
    student = ModelRecord.objects.get(pk=job["result_model"])
    assert student.kind == "distill" and student.teacher_id == teacher.pk
    assert student.num_parameters < teacher.num_parameters
    # Calibration measured by the worker on the test rows and stored with each model; the student's temperature
    # is the one its folder records, and the one it is served at.
    assert 0 <= teacher.metrics["ece"] <= 1 and "ece_uncalibrated" not in teacher.metrics and teacher.temperature == 1
    assert {"ece", "ece_uncalibrated", "reliability", "val/agreement", "test/agreement"} <= set(student.metrics)
    manifest = json.loads((storage.model_dir(student) / "distillery.json").read_text())
    assert student.temperature == manifest["temperature"] and 0.05 <= student.temperature <= 20
    assert student.metrics["val/agreement"] == vals[-1]
    # The promote guard's verdict rests on a tiny run's accuracies: the override lets the student through either way.
    promoted = api.post(f"/api/models/{student.pk}/promote/", {"override": True}, format="json").json()
    assert promoted["is_promoted"] is True and promoted["promotion"]["replaced"] == teacher.pk
    teacher.refresh_from_db()
    assert teacher.is_promoted is False
    answer = api.post("/api/classify/", {"text": "terrible and awful"}, format="json").json()
    assert answer["model"] == student.pk
    assert answer["label"] in dataset["labels"]
    assert engines.engine_for(student).classifier.temperature == student.temperature


def test_a_running_job_can_be_cancelled(api, sentiment_csv, tiny_bert, fast_params, celery_worker):
    params = dict(fast_params, epochs=50, batch_size=4)  # long enough to still be running when cancelled
    job = launch_finetune(api, sentiment_csv, tiny_bert, params)

    async def cancel_once_running():
        communicator = job_socket(job["id"], api.token)
        assert (await communicator.connect(timeout=10))[0]
        cancelled = False
        async with asyncio.timeout(300):
            while True:
                message = await communicator.receive_json_from(timeout=60)
                if message["type"] == "metric" and not cancelled:
                    from asgiref.sync import sync_to_async

                    response = await sync_to_async(api.post)(f"/api/jobs/{job['id']}/cancel/")
                    assert response.status_code == 200
                    cancelled = True
                if message["type"] == "status" and message["status"] in Job.FINISHED:
                    await communicator.disconnect()
                    return message

    final = asyncio.run(cancel_once_running())
    assert final["status"] == "cancelled"
    stored = Job.objects.get(pk=job["id"])
    assert stored.status == "cancelled" and stored.result_model is None
    assert stored.progress < 0.5
