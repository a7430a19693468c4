"""A job's log: what the worker logs while it runs the job is kept as the job's log lines (its own threads only,
INFO and up, the newest kept) and reaches its page over the job's websocket, each line once."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile

from config.asgi import application
from jobs.datasets import services as dataset_services
from jobs.models import Job, JobLogLine
from jobs.training import events, joblog, lifecycle
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)  # lines come from threads with connections of their own
log = logging.getLogger("jobs.training.runner")  # a logger the worker's code uses


@pytest.fixture
def job(user, caplog):
    caplog.set_level(logging.INFO)  # as the worker runs (celery --loglevel INFO)
    upload = SimpleUploadedFile("a.csv", csv_bytes([("good", "pos"), ("bad", "neg")]))
    dataset = dataset_services.create_dataset(user, "d", upload)
    return Job.objects.create(owner=user, kind="finetune", dataset=dataset, params={}, status="running", attempts=1)


def lines(job) -> list[tuple[int, str, str]]:
    return list(JobLogLine.objects.filter(job=job).order_by("seq").values_list("seq", "level", "message"))


def in_thread(name: str, message: str) -> None:
    thread = threading.Thread(target=lambda: log.warning(message), name=name)
    thread.start()
    thread.join()


def test_the_jobs_own_threads_lines_are_kept_in_order_and_no_others(job):
    with joblog.captured(job, lifecycle.fence):
        log.info("tokenising 160 rows")
        log.debug("not kept: below INFO")
        in_thread(f"distillery-metrics-{job.pk}", "from the job's writer thread")
        in_thread(f"distillery-metrics-{job.pk + 1}", "another job's writer thread")
        in_thread("celery-something", "not the job's thread")
        try:
            raise ValueError("bad row 7")
        except ValueError:
            log.exception("could not read the file")
    log.info("after the job: not kept")
    assert lines(job) == [
        (1, "INFO", "tokenising 160 rows"),
        (2, "WARNING", "from the job's writer thread"),
        (3, "ERROR", "could not read the file (ValueError: bad row 7)"),  # no traceback: it holds server paths
    ]


def test_a_run_that_no_longer_owns_the_job_keeps_no_line(job):
    with joblog.captured(job, lifecycle.fence):
        log.info("while it runs")
        Job.objects.filter(pk=job.pk).update(attempts=2)  # another worker took the job over
        log.info("from the replaced run")
    assert [message for _, _, message in lines(job)] == ["while it runs"]


def test_a_resumed_run_continues_the_seq_and_only_the_newest_lines_stay(job, monkeypatch):
    monkeypatch.setattr(JobLogLine, "LOG_LINES_KEPT", 10)
    monkeypatch.setattr(joblog, "PRUNE_EVERY", 5)
    with joblog.captured(job, lifecycle.fence):
        for i in range(1, 13):
            log.info("line %s", i)
    with joblog.captured(job, lifecycle.fence):
        for i in range(13, 24):
            log.info("line %s", i)
    kept = lines(job)
    assert kept[-1] == (23, "INFO", "line 23")
    assert [seq for seq, _, _ in kept] == list(range(kept[0][0], 24))  # no gap, none twice
    assert 10 <= len(kept) < 10 + 5  # pruned every 5 lines down to the newest 10


def test_a_long_message_is_cut(job):
    with joblog.captured(job, lifecycle.fence):
        log.info("x" * 5000)
    assert len(lines(job)[0][2]) == JobLogLine.MESSAGE_CHARS


def test_the_page_gets_the_lines_after_the_last_it_saw_then_live_lines_once(job, api):
    with joblog.captured(job, lifecycle.fence):
        for i in range(1, 5):
            log.info("line %s", i)
    lifecycle.record_metric(job, seq=1, step=1, kind="train", values={"train/loss": 1.0})

    async def scenario():
        path = f"/ws/jobs/{job.pk}/?after=1&logs_after=2&token={api.token}"
        communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://testserver")])
        assert (await communicator.connect())[0]
        received = [await communicator.receive_json_from() for _ in range(3)]  # log 3, 4 + status
        # A repeat of line 4 is dropped; line 5 arrives live.
        line4 = await sync_to_async(lambda: JobLogLine.objects.get(job=job, seq=4).to_event())()
        await sync_to_async(events.group_send)(events.job_group(job.pk), line4)

        def log_live():
            with joblog.captured(job, lifecycle.fence):
                log.info("line 5")

        await sync_to_async(log_live, thread_sensitive=False)()
        received.append(await communicator.receive_json_from())
        assert await communicator.receive_nothing()
        await communicator.disconnect()
        return received

    received = asyncio.run(scenario())
    assert [(m["type"], m.get("seq"), m.get("message")) for m in received] == [
        ("log", 3, "line 3"), ("log", 4, "line 4"), ("status", None, None), ("log", 5, "line 5"),
    ]  # fmt: skip
    assert received[0]["level"] == "INFO" and received[0]["logger"] == "jobs.training.runner"
