"""The soak benchmark's figures and verdicts, from what bench/soak.py observed: pure functions, no I/O.

Times are time.time() seconds; a metric point's `created_at` (when the worker saved it) places it in a window.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bench.loadgen import LoadResult, percentile
from bench.wsclients import StreamLog

THROTTLED = 429  # the rate's refusal: counted, not an error
RSS_MAX_GROWTH = 0.10  # the web server's RSS may end at most this much above where the flood found it
BUSY_CORES = 0.2  # cores used by processes outside the stack and the bench, above which the figures are skewed


def created_at(point: dict[str, Any]) -> float:
    return datetime.fromisoformat(point["created_at"]).timestamp()


def steps_in(metrics: Sequence[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Training steps (train points, one per batch) saved in [start, end), and their rate."""
    steps = sum(1 for p in metrics if p["kind"] == "train" and start <= created_at(p) < end)
    seconds = end - start
    return {
        "start": start,
        "end": end,
        "seconds": seconds,
        "steps": steps,
        "steps_per_s": steps / seconds if seconds > 0 else None,
    }


def classify(load: LoadResult) -> dict[str, Any]:
    """A load run's answers: by status code (and connection failures by kind), errors (anything but a 2xx or
    a 429), the 429s, and the 2xx answers' rate and latency percentiles."""
    summary = load.summary()
    by_code: dict[str, int] = {str(code): n for code, n in sorted(load.statuses.items())}
    by_code.update({kind: n for kind, n in sorted(load.errors.items()) if not kind.startswith("status ")})
    return {
        "requests": load.requests,
        "ok": load.ok,
        "throttled": load.statuses.get(THROTTLED, 0),
        "errors": sum(n for kind, n in load.errors.items() if kind != f"status {THROTTLED}"),
        "by_status": by_code,
        "rps": summary["rps"],
        "p50_ms": summary["p50_ms"],
        "p95_ms": summary["p95_ms"],
        "p99_ms": summary["p99_ms"],
        "mean_ms": summary["mean_ms"],
        "seconds": summary["seconds"],
        "client_cpu_us_per_request": summary["client_cpu_us_per_request"],
    }


def websockets(logs: Sequence[StreamLog], metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each client's stream against the stored points (which must be 1..N themselves), and how long points
    took from being saved to reaching the clients."""
    expected = [p["seq"] for p in metrics]
    saved = {p["seq"]: created_at(p) for p in metrics}
    lags = [(arrived - saved[seq]) * 1000 for log in logs for seq, arrived in log.arrivals.items() if seq in saved]
    clients = [log.check(expected) for log in logs]
    return {
        "points": len(expected),
        "stored_seqs_contiguous": expected == list(range(1, len(expected) + 1)),
        "clients": clients,
        "exact_clients": sum(c["exact"] for c in clients),
        "delivery_lag_ms": {
            "p50": percentile(lags, 50),
            "p99": percentile(lags, 99),
            "max": max(lags) if lags else None,
        },
    }


def rss(samples: Sequence[tuple[float, int | None]]) -> dict[str, Any]:
    """The web server's RSS over the flood: first and last sample, the largest, end over start."""
    values = [v for _, v in samples if v is not None]
    start, end = (values[0], values[-1]) if values else (None, None)
    return {
        "start_bytes": start,
        "end_bytes": end,
        "max_bytes": max(values) if values else None,
        "ratio": end / start if start and end else None,
        "samples": [[round(t, 3), v] for t, v in samples],
    }


def properties(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each property the soak must hold, with its value and goal."""
    ws = result["websockets"]
    every_seq = ws["stored_seqs_contiguous"] and ws["points"] > 0 and ws["exact_clients"] == len(ws["clients"])
    errors = result["classify"]["errors"] + result["warmup"]["errors"]
    ratio = result["web_rss"]["ratio"]
    ran = result["training"]["status_at_flood_end"] == "running" and result["training"]["flood"]["steps"] > 0
    return {
        "zero_errors": {"value": errors, "goal": "== 0 (warm-up and flood)", "met": errors == 0},
        "every_seq_once": {
            "value": f"{ws['exact_clients']}/{len(ws['clients'])} clients, {ws['points']} points",
            "goal": "every client: the stored points 1..N, each once, in order, then the job's end",
            "met": every_seq,
        },
        "web_rss_flat": {
            "value": ratio,
            "goal": f"<= {1 + RSS_MAX_GROWTH:g} (end over start)",
            "met": ratio is not None and ratio <= 1 + RSS_MAX_GROWTH,
        },
        "training_ran": {
            "value": result["training"]["status_at_flood_end"],
            "goal": "running at the flood's end, with steps during it",
            "met": ran,
        },
        "no_restarts": {
            "value": result["restarted"],
            "goal": "the launcher restarted none of its children",
            "met": not result["restarted"],
        },
    }


def build(
    args: Any,
    observed: dict[str, Any],
    warmup: LoadResult,
    served: dict[str, Any],
    processes: dict[str, Any],
    *,
    launcher: dict[str, str],
    machine: dict[str, Any],
    stack_start_s: float,
    text_source: str,
) -> dict[str, Any]:
    """The JSON the soak writes, its properties judged."""
    metrics, windows = observed["metrics"], observed["windows"]
    baseline, flood = steps_in(metrics, *windows["baseline"]), steps_in(metrics, *windows["flood"])
    ratio = (
        flood["steps_per_s"] / baseline["steps_per_s"]
        if flood["steps_per_s"] is not None and baseline["steps_per_s"]
        else None
    )
    job = observed["job"]
    result: dict[str, Any] = {
        "settings": {
            "seconds": args.seconds,
            "clients": args.clients,
            "ws_clients": args.ws_clients,
            "baseline_seconds": args.baseline_seconds,
            "warmup_seconds": args.warmup_seconds,
            "model": args.model,
            "quick": args.quick,
            "texts": text_source,
        },
        "launcher_settings": launcher,
        "stack_env": observed.get("stack_env", {}),
        "machine": machine,
        "processes": processes,
        "stack_start_s": stack_start_s,
        "served_model": served,
        "warmup": classify(warmup),
        "classify": classify(observed["load"]),
        "training": {
            "job": job["id"],
            "params": job.get("params"),
            "baseline": baseline,
            "flood": flood,
            "flood_over_baseline": ratio,
            "slowdown": 1 / ratio if ratio else None,
            "status_at_flood_end": observed["status_at_flood_end"],
            "final_status": job["status"],
        },
        "websockets": websockets(observed["logs"], metrics),
        "web_rss": rss(observed["rss"]),
        "restarted": observed["restarted"],
        "cpu_cores": observed["cpu"],
    }
    result["properties"] = properties(result)
    result["passed"] = all(p["met"] for p in result["properties"].values())
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    c, t, ws, mem = result["classify"], result["training"], result["websockets"], result["web_rss"]
    lines = [
        f"classify: {c['requests']} requests {c['by_status']}, {c['rps']:.1f} ok/s, p50 {_ms(c['p50_ms'])} "
        f"p99 {_ms(c['p99_ms'])}, errors {c['errors']}",
        f"training: {_f(t['baseline']['steps_per_s'])} steps/s alone, {_f(t['flood']['steps_per_s'])} during the "
        f"flood (x{_f(t['flood_over_baseline'])}); {t['status_at_flood_end']} at the flood's end, then "
        f"{t['final_status']}",
        f"websockets: {ws['exact_clients']}/{len(ws['clients'])} clients got all {ws['points']} points once; "
        f"delivery lag p50 {_ms(ws['delivery_lag_ms']['p50'])} p99 {_ms(ws['delivery_lag_ms']['p99'])}",
        f"web RSS: {_mib(mem['start_bytes'])} -> {_mib(mem['end_bytes'])} (max {_mib(mem['max_bytes'])}, "
        f"x{_f(mem['ratio'])})",
        "cpu cores: "
        + "; ".join(
            f"{window} " + ", ".join(f"{k} {v:.2f}" for k, v in cores.items())
            for window, cores in result["cpu_cores"].items()
        ),
    ]
    for window, cores in result["cpu_cores"].items():
        if cores["other"] > BUSY_CORES:
            lines.append(
                f"WARNING: other processes used {cores['other']:.2f} cores in the {window} window: its "
                "figures are skewed"
            )
    for name, p in result["properties"].items():
        lines.append(f"property {name}: {p['value']} ({p['goal']}): {'met' if p['met'] else 'NOT met'}")
    return lines


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2) + "\n"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f} MiB"
