"""A job that asks for a CUDA GPU is refused at launch unless an online worker has one: workers announce
themselves and their GPUs in Redis (jobs.training.workers), counted without torch or CUDA (mlcore.hardware)."""

from __future__ import annotations

import os

import pytest

from jobs.training import workers
from mlcore import hardware

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(api, sentiment_csv):
    return api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()["id"]


@pytest.fixture
def gpu_worker():
    workers.announce("gpu-host@test", cuda_devices=2)
    yield "gpu-host@test"
    workers.forget("gpu-host@test")


def _launch(api, dataset, device: str):
    return api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset, "params": {"device": device}}, format="json")


def test_cuda_is_refused_at_once_when_no_online_worker_has_a_gpu(api, dataset):
    workers.announce("cpu-host@test", cuda_devices=0)
    try:
        for device in ("cuda", "cuda:1"):
            response = _launch(api, dataset, device)
            assert response.status_code == 400
            assert "no worker with a CUDA GPU is online" in response.json()["params"][0]
        assert _launch(api, dataset, "auto").status_code == 201
        assert _launch(api, dataset, "cpu").status_code == 201
    finally:
        workers.forget("cpu-host@test")


def test_cuda_is_taken_while_a_worker_with_a_gpu_is_online(api, dataset, gpu_worker):
    assert any(w["hostname"] == gpu_worker and w["cuda_devices"] == 2 for w in workers.online())
    assert _launch(api, dataset, "cuda").status_code == 201
    workers.forget(gpu_worker)
    assert _launch(api, dataset, "cuda").status_code == 400


@pytest.mark.parametrize(
    "visible, expected", [(None, 4), ("0,1", 2), ("2", 1), ("", 0), ("-1", 0), ("0,-1,1", 1), ("0,1,2,3,4,5", 4)]
)
def test_gpus_are_counted_from_the_driver_as_cuda_visible_devices_narrows_them(
    four_gpus, monkeypatch, visible, expected
):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert hardware.cuda_devices() == expected


def test_a_machine_without_the_nvidia_driver_has_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "NVIDIA_GPUS", tmp_path / "absent")
    assert hardware.cuda_devices() == 0


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_announces_itself_when_it_is_ready(celery_worker):
    hostname = f"test-{os.getpid()}@distillery"  # the name tests/conftest.py starts it with
    announced = {w["hostname"]: w for w in workers.online()}
    assert hostname in announced and announced[hostname]["cuda_devices"] == hardware.cuda_devices()


def _launch_on(api, dataset, device: str, devices: int):
    params = {"device": device, "devices": devices}
    return api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset, "params": params}, format="json")


def test_several_gpus_are_refused_unless_one_online_worker_has_that_many(api, dataset, gpu_worker):
    assert _launch_on(api, dataset, "cuda", 2).status_code == 201  # gpu_worker has 2
    refused = _launch_on(api, dataset, "cuda", 3)
    assert refused.status_code == 400
    assert refused.json()["params"] == [
        "devices=3 on device 'cuda' needs a worker with 3 CUDA GPUs, and the most an online worker has is 2: ask "
        "for fewer devices, or device 'cpu' for 3 processes on CPU"
    ]
    # Counted from the device's index: cuda:1 and cuda:2 of a two-GPU worker do not exist.
    assert "needs a worker with 3 CUDA GPUs" in _launch_on(api, dataset, "cuda:1", 2).json()["params"][0]
    # auto is a GPU wherever the worker has one, so while one is online it is held to the same bound.
    assert _launch_on(api, dataset, "auto", 3).status_code == 400
    assert _launch_on(api, dataset, "auto", 2).status_code == 201


def test_several_processes_on_cpu_are_taken_up_to_the_cap(api, dataset, settings):
    settings.DISTILLERY_MAX_CPU_DEVICES = 2
    workers.announce("cpu-host@test", cuda_devices=0)
    try:
        assert _launch_on(api, dataset, "cpu", 2).status_code == 201
        assert _launch_on(api, dataset, "auto", 2).status_code == 201  # no GPU online: auto is the CPU
        refused = _launch_on(api, dataset, "cpu", 3)
        assert refused.status_code == 400
        assert refused.json()["params"] == [
            "devices=3 on CPU: a CPU job runs at most 2 processes here (DISTILLERY_MAX_CPU_DEVICES)"
        ]
        assert _launch_on(api, dataset, "cpu", 9).json()["params"] == ["devices must be in [1, 8], got 9"]
    finally:
        workers.forget("cpu-host@test")
