"""Two hosts train two jobs at once; one host's link to the core is cut mid-job. Its job is presumed gone once its
heartbeats stop, sent again by Celery beat's reaper, and finished by the other host from the last checkpoint in
the bucket; a websocket client on the web process sees every training step once, the dead run's extra steps
dropped by the rewind it is told of. When the link comes back, the cut-off worker's run, still going, changes
nothing. Root only: real network namespaces and veth links (tests/cluster/netns.py)."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from websockets.sync.client import connect

from mlcore.testing import sentiment_rows
from tests.cluster import netns
from tests.cluster.conftest import LIVENESS
from tests.conftest import FAST_PARAMS, csv_bytes
from tests.polling import until

pytestmark = pytest.mark.cluster

FINISHED = ("succeeded", "failed", "cancelled")



class Watcher(threading.Thread):
    """A websocket client of /ws/jobs/{id}/ on the web process, opened from the core namespace, keeping every
    message until the job's status says it ended."""

    def __init__(self, site, job_id: int, timeout: float = 240):
        super().__init__(daemon=True)
        self.site, self.job_id, self.timeout = site, job_id, timeout
        self.messages: list[dict] = []
        self.error: BaseException | None = None

    def run(self):
        url = f"ws://127.0.0.1:{netns.PORTS['web']}/ws/jobs/{self.job_id}/?token={self.site.token}"
        deadline = time.monotonic() + self.timeout
        try:
            with netns.inside(self.site.cluster.core), connect(url, open_timeout=10) as ws:
                while time.monotonic() < deadline:
                    message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                    self.messages.append(message)
                    if message["type"] == "status" and message["status"] in FINISHED:
                        return
        except BaseException as exc:  # reported by the test, which runs in another thread
            self.error = exc

    def train_steps(self) -> list[int]:
        return [m["step"] for m in list(self.messages) if m["type"] == "metric" and m["kind"] == "train"]


def _applied(messages: list[dict], rewinds: list[list[int]]) -> list[dict]:
    """The metric points a page keeps once it applies the rewinds (static/js/job_charts.js applyRewinds): a point a
    replaced run reported past the step the next run resumed after is dropped."""

    def dropped(point: dict) -> bool:
        past = [
            seq for step, seq in rewinds if point["step"] > step or (point["step"] == step and point["kind"] != "train")
        ]
        return any(point["seq"] <= seq for seq in past)

    return [m for m in messages if m["type"] == "metric" and not dropped(m)]


def test_a_job_whose_host_loses_its_link_finishes_on_the_other_host_from_its_checkpoint(cluster_site, tiny_bert):
    site = cluster_site
    dataset = site.upload("reviews.csv", csv_bytes(sentiment_rows(160)))
    launch = {"kind": "finetune", "dataset": dataset["id"], "base_model": str(tiny_bert)}
    # 128 training rows: 32 steps an epoch. The long job is launched first, so the first worker up takes it and
    # the short one waits for the other worker: the two run at once on different hosts.
    long_params = dict(FAST_PARAMS, epochs=4, batch_size=4, checkpoint_every=10)  # 128 steps
    short_params = dict(FAST_PARAMS, epochs=1, batch_size=4, checkpoint_every=10)  # 32 steps
    long_job = site.post_json("/api/jobs/", dict(launch, params=long_params))["id"]
    short_job = site.post_json("/api/jobs/", dict(launch, params=short_params))["id"]
    watcher = Watcher(site, long_job)
    watcher.start()

    def both_running():
        jobs = [site.job(long_job), site.job(short_job)]
        return all(j["status"] == "running" for j in jobs) and len({j["worker"] for j in jobs}) == 2 and jobs

    running = until(both_running, "each worker to run one of the two jobs")
    hosts = {name: host for host, name in site.workers.items()}
    victim, survivor = hosts[running[0]["worker"]], hosts[running[1]["worker"]]
    prefix = f"checkpoints/job-{long_job}/"
    until(
        lambda: (stored := site.stored(prefix)) and max(watcher.train_steps() or [0]) > _step(stored[-1]),
        "the long job's first checkpoint in the bucket, and a step past it",
    )

    site.cluster.cut(victim)
    cut_at = time.monotonic()
    short_running_at_cut = site.job(short_job)["status"] == "running"
    taken_over = until(
        lambda: (job := site.job(long_job))["worker"] == site.workers[survivor] and job["status"] == "running",
        "the surviving host to take the long job over",
    )
    takeover_s = time.monotonic() - cut_at
    # The cut-off run's last checkpoint in the bucket (it writes under attempt 1 only, and can write nothing since
    # the cut; the copies go only once the job has ended).
    (last_checkpoint,) = site.stored(f"{prefix}attempt-1/")
    watcher.join(timeout=240)
    finished_s = time.monotonic() - cut_at
    assert watcher.error is None, repr(watcher.error)
    assert taken_over

    # The long job finished on the survivor, while the cut-off host's worker was still alive: a link was lost,
    # not a process.
    final = site.job(long_job)
    assert final["status"] == "succeeded", final["error"]
    assert final["worker"] == site.workers[survivor]
    assert site.cluster.procs[f"worker-{victim}"].poll() is None
    short = until(lambda: (job := site.job(short_job))["status"] in FINISHED and job, "the short job to end")
    assert short["status"] == "succeeded", short["error"]
    assert short["worker"] == site.workers[survivor]

    # Resumed from the last checkpoint in the bucket, not from step 0, by the second run of the job.
    status = watcher.messages[-1]
    assert status["type"] == "status" and status["attempts"] == 2
    ((resumed, last_dead_seq),) = status["rewinds"]
    assert resumed == _step(last_checkpoint) and resumed > 0 and resumed % 10 == 0
    log = [m["message"] for m in watcher.messages if m["type"] == "log"]
    assert any("resuming from the checkpoint in storage" in line for line in log), log
    assert any(re.search(rf"resuming after step {resumed}\b", line) for line in log), log

    # The stream is continuous: seqs only grow; once the rewind is applied, every training step from 1 to the
    # last is there exactly once; and the rewind did drop steps the cut-off run had streamed past its checkpoint.
    metrics = [m for m in watcher.messages if m["type"] == "metric"]
    seqs = [m["seq"] for m in metrics]
    assert seqs == sorted(set(seqs))
    kept = _applied(metrics, status["rewinds"])
    assert [m["step"] for m in kept if m["kind"] == "train"] == list(range(1, 129))
    assert any(m["step"] > resumed and m["seq"] <= last_dead_seq for m in metrics if m["kind"] == "train")
    assert sorted(m["step"] for m in kept if m["kind"] == "val") == [32, 64, 96, 128]
    assert site.stored(prefix) == []  # every attempt's checkpoints gone once the job ended
    history = site.request("GET", f"/api/jobs/{long_job}/metrics/")[1]
    assert [p["step"] for p in history if p["kind"] == "train"] == list(range(1, 129))  # the stored history too

    # The cut-off host comes back. Its run is still going, but PostgreSQL dropped its connection meanwhile: it
    # stops at its next write, and changes nothing (no point, checkpoint, end state or model).
    site.cluster.restore(victim)
    restored_at = time.monotonic()
    victim_name = site.workers[victim]
    until(lambda: site.active(victim_name) == {victim_name: []}, "the cut-off worker's run to stop", timeout=150)
    stopped_s = time.monotonic() - restored_at
    woken = site.cluster.tail(f"worker-{victim}", 200_000)
    assert f"job {long_job}: stopped" in woken and "another run owns it now" in woken  # not a task that crashed
    assert site.job(long_job) == final
    assert site.request("GET", f"/api/jobs/{long_job}/metrics/")[1] == history
    assert site.stored("checkpoints/") == []
    models = site.request("GET", "/api/models/")[1]["results"]
    assert sorted(m["job"] for m in models) == sorted([long_job, short_job])

    print(
        "cross-host failover: "
        + json.dumps(
            {
                "link_cut_to_running_on_survivor_s": round(takeover_s, 1),
                "link_cut_to_succeeded_s": round(finished_s, 1),
                "resumed_after_step": resumed,
                "other_job_running_at_cut": short_running_at_cut,
                "link_restored_to_cut_off_run_stopped_s": round(stopped_s, 1),
                **{k: float(v) for k, v in sorted(LIVENESS.items())},
            }
        )
    )


def _step(key: str) -> int:
    return int(key.rsplit("step-", 1)[1].removesuffix(".pt"))
