"""The soak benchmark: its verdicts on made-up observations, and `--quick` end to end on the real stack
(platform/embedded.py serve: Redis, SQLite, a Celery worker, uvicorn), judged on the JSON's own figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import soak_report
from bench.loadgen import LoadResult
from bench.wsclients import StreamLog

REPO = Path(__file__).resolve().parent.parent


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _points(times: list[float], kinds: list[str] | None = None) -> list[dict]:
    kinds = kinds or ["train"] * len(times)
    return [
        {"seq": i + 1, "step": i + 1, "kind": kind, "values": {}, "created_at": _iso(t)}
        for i, (t, kind) in enumerate(zip(times, kinds, strict=True))
    ]


def test_a_429_is_counted_but_only_other_refusals_and_broken_connections_are_errors() -> None:
    load = LoadResult(concurrency=2, elapsed=2.0, latencies=[0.010, 0.020, 0.030, 0.040])
    load.statuses = Counter({200: 4, 429: 3, 500: 1})
    load.errors = Counter({"status 429": 3, "status 500": 1, "timeout": 2})
    figures = soak_report.classify(load)
    assert figures["throttled"] == 3
    assert figures["errors"] == 3  # the 500 and the two timeouts
    assert figures["by_status"] == {"200": 4, "429": 3, "500": 1, "timeout": 2}
    assert figures["requests"] == 10 and figures["ok"] == 4
    assert figures["p50_ms"] == pytest.approx(20.0) and figures["p99_ms"] == pytest.approx(40.0)
    assert figures["rps"] == pytest.approx(2.0)


def test_a_stream_with_a_gap_a_duplicate_or_no_end_is_not_exact() -> None:
    expected = [1, 2, 3, 4]
    whole = StreamLog(0, seqs=[1, 2, 3, 4], final_status="cancelled")
    gap = StreamLog(1, seqs=[1, 2, 4], final_status="cancelled")
    duplicate = StreamLog(2, seqs=[1, 2, 2, 3, 4], final_status="cancelled")
    unfinished = StreamLog(3, seqs=[1, 2, 3, 4], error="closed before the job finished")
    assert whole.check(expected)["exact"] is True
    assert gap.check(expected)["exact"] is False
    assert gap.check(expected)["missing"] == 1 and gap.check(expected)["first_missing"] == [3]
    assert duplicate.check(expected)["duplicates"] == 1 and duplicate.check(expected)["exact"] is False
    assert unfinished.check(expected)["exact"] is False


def test_steps_are_counted_in_the_window_in_which_the_worker_saved_them() -> None:
    t0 = 1_800_000_000.0
    # Four train points in [t0, t0 + 2), one validation point (not a step), then two in [t0 + 2, t0 + 6).
    metrics = _points(
        [t0, t0 + 0.5, t0 + 1.0, t0 + 1.9, t0 + 1.95, t0 + 2.0, t0 + 5.0],
        ["train", "train", "train", "train", "val", "train", "train"],
    )
    alone, flooded = soak_report.steps_in(metrics, t0, t0 + 2), soak_report.steps_in(metrics, t0 + 2, t0 + 6)
    assert (alone["steps"], alone["steps_per_s"]) == (4, 2.0)
    assert (flooded["steps"], flooded["steps_per_s"]) == (2, 0.5)


def test_every_client_must_hold_the_stored_points_and_rss_may_grow_ten_percent() -> None:
    t0 = 1_800_000_000.0
    metrics = _points([t0, t0 + 1, t0 + 2])
    logs = [StreamLog(0, seqs=[1, 2, 3], final_status="cancelled"), StreamLog(1, seqs=[1, 3], final_status="cancelled")]
    logs[0].arrivals = {1: t0 + 0.010, 2: t0 + 1.020, 3: t0 + 2.030}
    ws = soak_report.websockets(logs, metrics)
    assert ws["stored_seqs_contiguous"] is True and ws["points"] == 3 and ws["exact_clients"] == 1
    assert ws["delivery_lag_ms"]["max"] == pytest.approx(30.0, abs=0.01)
    grown = soak_report.rss([(t0, 100 * 2**20), (t0 + 1, 130 * 2**20), (t0 + 2, 111 * 2**20)])
    assert grown["ratio"] == pytest.approx(1.11) and grown["max_bytes"] == 130 * 2**20

    result = {
        "websockets": ws,
        "classify": {"errors": 0},
        "warmup": {"errors": 0},
        "web_rss": grown,
        "training": {"status_at_flood_end": "running", "flood": {"steps": 5}},
        "restarted": ["web"],
    }
    verdicts = {name: p["met"] for name, p in soak_report.properties(result).items()}
    assert verdicts == {
        "zero_errors": True,
        "every_seq_once": False,
        "web_rss_flat": False,
        "training_ran": True,
        "no_restarts": False,
    }


@pytest.mark.e2e
def test_quick_soak_on_the_real_stack_holds_every_property(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISTILLERY_WEB_CPUS", "DISTILLERY_TRAINING_CPUS")}
    env["DISTILLERY_TRAINING_NICE"] = "5"  # passed through to the launcher and recorded
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path and path.name.startswith("soak-") and path.suffix == ".json"
    result = json.loads(path.read_text())

    assert result["passed"] is True and all(p["met"] for p in result["properties"].values())
    assert result["settings"] | {"seconds": 10.0, "clients": 8, "ws_clients": 2, "model": "tiny"} == result["settings"]
    assert result["launcher_settings"] == {"DISTILLERY_TRAINING_NICE": "5"}

    classify = result["classify"]
    assert classify["errors"] == 0 and classify["ok"] > 100
    assert classify["by_status"]["200"] == classify["ok"]
    assert sum(classify["by_status"].values()) == classify["requests"]
    assert 0 < classify["p50_ms"] <= classify["p99_ms"] < 30_000

    ws = result["websockets"]
    assert ws["points"] > 0 and ws["stored_seqs_contiguous"] is True
    assert len(ws["clients"]) == 2
    for client in ws["clients"]:
        assert client["received"] == ws["points"] and client["missing"] == 0 and client["duplicates"] == 0
        assert client["final_status"] == "cancelled" and client["error"] is None

    training = result["training"]
    assert training["status_at_flood_end"] == "running" and training["final_status"] == "cancelled"
    assert training["baseline"]["steps"] > 0 and training["flood"]["steps"] > 0
    assert training["flood_over_baseline"] == pytest.approx(
        training["flood"]["steps_per_s"] / training["baseline"]["steps_per_s"]
    )
    assert training["params"]["valid_fraction"] == 0.0 and training["params"]["checkpoint_every"] == 0

    rss = result["web_rss"]
    assert rss["start_bytes"] > 50 * 2**20  # a web process with a model loaded
    assert rss["ratio"] == pytest.approx(rss["end_bytes"] / rss["start_bytes"]) and rss["ratio"] <= 1.10
    assert result["restarted"] == []
    processes = result["processes"]
    assert set(processes) == {"web", "training", "cpu-worker", "redis"}
    assert "uvicorn" in processes["web"][0]["cmdline"] and "-Q gpu" in processes["training"][0]["cmdline"]
    # The launcher applied the niceness the bench passed through: to the training worker and its pool alone.
    assert len(processes["training"]) >= 2 and {p["nice"] for p in processes["training"]} == {5}
    assert processes["web"][0]["nice"] == 0
