"""Websocket clients that follow one job's stream (`/ws/jobs/{id}/`) as a script would, and what they saw.

Each client authenticates with `Authorization: Token` on the handshake (jobs/ws_auth.py), keeps every metric
point's seq, step and arrival time, and stops at the job's first finished status (succeeded, failed, cancelled),
which the server sends after the job's last point. A connection that fails or closes before then is recorded
as the client's error; the client does not reconnect, so a lost point stays lost.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class StreamLog:
    """One client's view of a job's stream; times are time.time() seconds."""

    client: int
    seqs: list[int] = field(default_factory=list)
    steps: list[tuple[float, int, str]] = field(default_factory=list)  # (arrived, step, kind) per metric point
    arrivals: dict[int, float] = field(default_factory=dict)  # seq -> arrival time of its first copy
    connected_at: float | None = None
    final_status: str | None = None
    error: str | None = None
    messages: int = 0

    def train_points(self) -> int:
        return sum(1 for _, _, kind in self.steps if kind == "train")

    def check(self, expected: list[int]) -> dict[str, Any]:
        """Whether this client got exactly `expected` (every seq once, in order): counts of what is missing,
        duplicated or out of order, and its own error."""
        seen = set(self.seqs)
        duplicates = len(self.seqs) - len(seen)
        missing = [s for s in expected if s not in seen]
        unexpected = sorted(seen - set(expected))
        return {
            "client": self.client,
            "received": len(self.seqs),
            "missing": len(missing),
            "first_missing": missing[:10],
            "duplicates": duplicates,
            "unexpected": unexpected[:10],
            "in_order": self.seqs == sorted(self.seqs),
            "final_status": self.final_status,
            "error": self.error,
            "exact": self.seqs == expected and self.error is None and self.final_status in FINISHED,
        }


async def follow(
    port: int,
    job_id: int,
    token: str,
    log: StreamLog,
    connected: asyncio.Event | None = None,
    open_timeout: float = 30.0,
) -> StreamLog:
    """Follow the job's stream until it says the job has finished, filling `log`; never raises."""
    url = f"ws://127.0.0.1:{port}/ws/jobs/{job_id}/"
    try:
        async with connect(
            url,
            additional_headers={"Authorization": f"Token {token}"},
            open_timeout=open_timeout,
            max_size=None,
            ping_interval=None,
        ) as ws:
            log.connected_at = time.time()
            if connected is not None:
                connected.set()
            async for raw in ws:
                arrived = time.time()
                log.messages += 1
                event = json.loads(raw)
                if event.get("type") == "metric":
                    log.seqs.append(event["seq"])
                    log.steps.append((arrived, event["step"], event["kind"]))
                    log.arrivals.setdefault(event["seq"], arrived)
                elif event.get("type") == "status" and event.get("status") in FINISHED:
                    log.final_status = event["status"]
                    return log
            log.error = "closed before the job finished"
    except (OSError, TimeoutError, WebSocketException, ValueError) as e:
        log.error = f"{type(e).__name__}: {e}"
    finally:
        if connected is not None:
            connected.set()  # a client that failed to connect must not leave the caller waiting
    return log
