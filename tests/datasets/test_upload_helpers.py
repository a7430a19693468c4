"""Uploads are read in helper processes (jobs.offload), and a helper that dies does not take the server's
uploads with it: one killed (SIGKILL) while it reads is replaced and the file read again; killed every time,
the upload is a clear 400 with nothing stored. With DISTILLERY_WEB_HELPERS=0 the request reads it itself."""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import offload
from jobs.datasets import services as dataset_services
from jobs.models import Dataset
from tests.conftest import csv_bytes

pytestmark = pytest.mark.django_db

ROWS = 60_000  # about 50 MB: seconds of parsing, time enough to kill its helper halfway
BUSY_CPU_S = 0.5  # CPU time a helper spends past what it had when first seen: it is reading the file


@pytest.fixture(scope="module")
def big_csv() -> bytes:
    rng, words = random.Random(0), [f"w{i}" for i in range(5000)]
    rows = [(" ".join(rng.choices(words, k=rng.randint(30, 250))), ("neg", "pos")[i % 2]) for i in range(ROWS)]
    return csv_bytes(rows)


@pytest.fixture
def fresh_helpers():
    offload.shutdown()  # helpers that start with this test, so their CPU time says what they did in it
    yield
    offload.shutdown()


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class HelperKiller(threading.Thread):
    """Kills, with SIGKILL, each helper seen working (BUSY_CPU_S of CPU time since first seen), up to `times`
    helpers; the pids it killed in `killed`."""

    def __init__(self, times: int):
        super().__init__(daemon=True)
        self.times, self.killed, self.done = times, [], threading.Event()

    def run(self) -> None:
        first_seen: dict[int, float] = {}
        while not self.done.wait(0.02) and len(self.killed) < self.times:  # looks 50 times a second
            for pid in offload.helper_pids():
                try:
                    cpu = _cpu_seconds(pid)
                except (FileNotFoundError, ProcessLookupError):
                    continue
                if cpu - first_seen.setdefault(pid, cpu) >= BUSY_CPU_S and pid not in self.killed:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)


def _upload(user, content: bytes):
    return dataset_services.create_dataset(user, "big", SimpleUploadedFile("big.csv", content))


def test_a_helper_killed_while_it_reads_an_upload_is_replaced_and_the_file_read_again(user, big_csv, fresh_helpers):
    killer = HelperKiller(times=1)
    killer.start()
    try:
        dataset = _upload(user, big_csv)
    finally:
        killer.done.set()
        killer.join()
    assert len(killer.killed) == 1  # it was killed halfway, and the upload still ended well
    assert dataset.num_rows == ROWS and dataset.label_counts == {"neg": ROWS // 2, "pos": ROWS // 2}
    assert killer.killed[0] not in offload.helper_pids()
    assert _upload(user, csv_bytes([("good", "pos"), ("bad", "neg")])).num_rows == 2  # the new helpers serve on


def test_an_upload_whose_helper_is_killed_every_time_is_refused_and_nothing_stored(
    user, settings, big_csv, fresh_helpers
):
    killer = HelperKiller(times=2)  # the first read and the one more it gets
    killer.start()
    try:
        with pytest.raises(ValidationError) as refused:
            _upload(user, big_csv)
    finally:
        killer.done.set()
        killer.join()
    assert len(killer.killed) == 2
    assert refused.value.message_dict == {
        "file": ["the file could not be read to the end: the helper process stopped before it answered (out of "
                 "memory?); try again"]
    }  # fmt: skip
    assert not Dataset.objects.exists() and list(Path(settings.MEDIA_ROOT).rglob("*.csv")) == []


def test_with_no_helpers_the_request_reads_the_upload_itself(user, settings, fresh_helpers):
    settings.DISTILLERY_WEB_HELPERS = 0
    dataset = _upload(user, csv_bytes([("good film", "pos"), ("bad film", "neg"), ("fine", "pos")]))
    assert dataset.num_rows == 3 and dataset.labels == ["neg", "pos"]
    assert offload.helper_pids() == []  # no helper was started
