"""Queues by capability: a worker declares its device and GPU memory (jobs.training.workers.declared, from
nvidia-smi or DISTILLERY_WORKER_*), consumes the queues of the jobs that fit it (config/queues.py), and a job that
needs more GPU memory than a worker has is never taken by it: the broker does not hand it over."""

from __future__ import annotations

import os

import pytest

from config import queues
from config.celery import app
from jobs.models import Job
from jobs.training import workers
from mlcore import hardware
from mlcore.config import TrainConfig, config_fields
from tests.conftest import _worker_database_url, worker_process
from tests.polling import until


def test_a_job_waits_in_the_queue_of_its_device_and_memory_tier():
    assert queues.training_queue(cuda=False, memory_gb=0) == queues.GPU
    assert queues.training_queue(cuda=True, memory_gb=0) == queues.CUDA
    assert queues.training_queue(cuda=False, memory_gb=20) == "cuda-24g"  # memory implies CUDA
    assert queues.training_queue(cuda=True, memory_gb=24) == "cuda-24g"
    assert queues.training_queue(cuda=True, memory_gb=1) == "cuda-8g"
    with pytest.raises(ValueError, match="largest GPU tier"):
        queues.memory_tier(193)


def test_a_worker_consumes_the_tiers_its_gpu_holds_whole():
    assert queues.cuda_queues(25.8) == ["cuda", "cuda-8g", "cuda-12g", "cuda-16g", "cuda-24g"]  # an "24 GB" L4
    assert queues.cuda_queues(85.5)[-1] == "cuda-80g"  # an H100: 81559 MiB
    assert queues.cuda_queues(0) == ["cuda"]  # memory unknown: only jobs that ask for none



def test_a_run_on_several_devices_waits_where_only_workers_with_that_many_look(settings):
    assert queues.training_queue(cuda=False, memory_gb=0, devices=2) == "gpu-x2"  # 2 GPUs, or 2 CPU processes
    assert queues.training_queue(cuda=True, memory_gb=0, devices=4) == "cuda-x4"
    assert queues.training_queue(cuda=True, memory_gb=40, devices=2) == "cuda-40g-x2"
    two_big = queues.cuda_queues(48, gpus=2)
    assert {"cuda-x2", "cuda-48g-x2", "gpu-x2", "cuda-48g"} <= set(two_big)
    assert not {"cuda-x3", "gpu-x3", "cuda-80g", "cuda-80g-x2"} & set(two_big)
    assert queues.cuda_queues(48, gpus=1) == queues.cuda_queues(48)  # one GPU: no multi-device queue
    settings.DISTILLERY_MAX_CPU_DEVICES = 3
    assert workers.Capacity(0, 80).training_queues() == ["gpu-x2", "gpu-x3"]  # no GPU: CPU processes
    assert workers.Capacity(2, 16.1).training_queues() == queues.cuda_queues(16.1, gpus=2)
    assert len(set(queues.every())) == len(queues.every()) and set(two_big) <= set(queues.every())


def test_a_jobs_route_counts_the_gpus_from_its_device_index():
    def route(**params) -> str:
        return Job(kind="finetune", params=params).route()

    assert route(devices=2) == "gpu-x2"
    assert route(device="cuda:1") == "cuda-x2"  # GPUs 0 and 1 present: two on one worker
    assert route(device="cuda", devices=3) == "cuda-x3"
    assert route(gpu_memory_gb=40, devices=2) == "cuda-40g-x2"
    assert route(device="cpu", devices=4) == queues.GPU  # processes on any worker's CPU


def test_the_configs_memory_bound_is_the_largest_tier():
    (memory,) = [f for f in config_fields(TrainConfig) if f["name"] == "gpu_memory_gb"]
    assert memory["range"]["high"] == queues.GPU_MEMORY_TIERS_GB[-1]
    assert memory["default"] == 0


@pytest.mark.parametrize(
    "visible, expected",
    [(None, 16.1), ("0,1", 85.5), ("0", 85.5), ("3", 25.8), ("0,3", 25.8), ("GPU-bbbb", 85.5), ("-1", 0.0)],
)
def test_gpu_memory_is_the_smallest_visible_gpus_as_nvidia_smi_reports_it(four_gpus, monkeypatch, visible, expected):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert hardware.gpu_memory_gb() == expected


def test_without_nvidia_smi_the_memory_is_unknown(four_gpus, monkeypatch):
    four_gpus.unlink()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert hardware.gpu_memory_gb() == 0.0


def test_a_worker_declares_what_the_machine_has_unless_told_otherwise(four_gpus, monkeypatch, settings):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    settings.DISTILLERY_WORKER_DEVICE, settings.DISTILLERY_WORKER_GPU_MEMORY_GB = "", None
    assert workers.declared() == workers.Capacity(2, 85.5)
    settings.DISTILLERY_WORKER_GPU_MEMORY_GB = 40.0  # a GPU it shares with something else
    assert workers.declared() == workers.Capacity(2, 40.0)
    settings.DISTILLERY_WORKER_DEVICE = "cpu"  # its GPUs hidden: it takes only jobs any worker may run
    assert workers.declared() == workers.Capacity(0, 0.0)


@pytest.fixture
def dataset(api, sentiment_csv):
    return api.post("/api/datasets/", {"file": sentiment_csv}, format="multipart").json()["id"]


@pytest.fixture
def small_gpu_worker():
    workers.announce("small@test", cuda_devices=1, gpu_memory_gb=16.1)
    yield "small@test"
    workers.forget("small@test")


@pytest.mark.django_db
def test_a_job_asking_for_more_gpu_memory_than_any_online_worker_has_is_refused_at_launch(
    api, dataset, small_gpu_worker
):
    def launch(**params):
        return api.post("/api/jobs/", {"kind": "finetune", "dataset": dataset, "params": params}, format="json")

    refused = launch(gpu_memory_gb=20)
    assert refused.status_code == 400
    assert "no online worker has a GPU with 24 GB or more" in refused.json()["params"][0]
    assert "the largest online has 16.1 GB" in refused.json()["params"][0]
    taken = launch(gpu_memory_gb=16)
    assert taken.status_code == 201
    assert Job.objects.get(pk=taken.json()["id"]).queue == "cuda-16g"
    assert Job.objects.get(pk=launch().json()["id"]).queue == queues.GPU
    on_cpu = launch(gpu_memory_gb=8, device="cpu")
    assert on_cpu.status_code == 400 and "gpu_memory_gb asks for a GPU" in on_cpu.json()["params"][0]
    workers.announce("pair@test", cuda_devices=2, gpu_memory_gb=25.8)
    try:
        assert launch(gpu_memory_gb=24, devices=2).status_code == 201
        two = launch(gpu_memory_gb=40, devices=2)
        assert "no online worker has 2 GPUs with 40 GB or more" in two.json()["params"][0]
    finally:
        workers.forget("pair@test")
    workers.forget(small_gpu_worker)
    assert "no worker with a CUDA GPU is online" in launch(gpu_memory_gb=8).json()["params"][0]



@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_jobs_needing_a_big_gpu_all_run_on_the_big_worker_while_the_small_one_idles(
    api, dataset, tiny_bert, fast_params, tmp_path, settings
):
    """Two real training workers on the gpu queue, one declared with a 16 GB GPU and one with 48 GB (device auto:
    they train on this machine's CPU). Two jobs that need 40 GB run one after the other on the big one, never on
    the idle small one. (No job on the plain `gpu` queue here: the session's worker consumes it too, with a media
    folder of its own.)"""
    pid = os.getpid()
    small, big = f"small-{pid}@distillery", f"big-{pid}@distillery"
    db = _worker_database_url()
    declared = {"DISTILLERY_WORKER_DEVICE": "cuda", "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    with (
        worker_process(small, db, tmp_path / "small.log", consume=(queues.GPU,), **declared,
                       DISTILLERY_WORKER_GPU_MEMORY_GB="16"),
        worker_process(big, db, tmp_path / "big.log", consume=(queues.GPU,), **declared,
                       DISTILLERY_WORKER_GPU_MEMORY_GB="48"),
    ):  # fmt: skip
        consumed = {
            name: sorted(q["name"] for q in found)
            for name, found in app.control.inspect(destination=[small, big], timeout=5).active_queues().items()
        }
        assert consumed[small] == sorted(["gpu", "cuda", "cuda-8g", "cuda-12g", "cuda-16g"])
        assert consumed[big] == sorted(["gpu", "cuda", *(f"cuda-{n}g" for n in (8, 12, 16, 24, 32, 40, 48))])
        announced = {w["hostname"]: w for w in workers.online()}
        assert (announced[small]["gpu_memory_gb"], announced[big]["gpu_memory_gb"]) == (16.0, 48.0)

        def launch(**params) -> int:
            payload = {"kind": "finetune", "dataset": dataset, "base_model": str(tiny_bert), "params": params}
            response = api.post("/api/jobs/", {**payload, "params": dict(fast_params, **params)}, format="json")
            assert response.status_code == 201, response.content
            return response.json()["id"]

        big_jobs = [launch(gpu_memory_gb=40), launch(gpu_memory_gb=33)]
        ended = lambda: Job.objects.filter(pk__in=big_jobs, status__in=Job.FINISHED).count() == 2  # noqa: E731
        until(ended, "the two jobs ended")
        done = {job.pk: job for job in Job.objects.filter(pk__in=big_jobs)}
        assert [(done[pk].status, done[pk].worker, done[pk].queue) for pk in big_jobs] == [
            ("succeeded", big, "cuda-40g"), ("succeeded", big, "cuda-40g")
        ], [done[pk].error for pk in big_jobs]  # fmt: skip
        first, second = sorted((done[pk] for pk in big_jobs), key=lambda job: job.started_at)
        assert second.started_at >= first.finished_at  # one after the other: the idle small worker took neither
