"""A closed-loop HTTP/1.1 load generator on asyncio streams, cheap enough to share 2 cores with the server.

N clients each hold one keep-alive connection and send their next request as soon as the previous answer
arrives. Requests are prebuilt bytes (one per text), so the loop only writes them, reads a status line and
headers, and then a Content-Length or chunked body. Any answer other than 2xx, a timeout or a broken connection
is an error: it is counted by kind, the client reconnects, and the run goes on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank p-th percentile (0 < p <= 100): the smallest value with at least p% of values at or
    below it. None for no values."""
    if not 0 < p <= 100:
        raise ValueError(f"p must be in (0, 100], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


def build_request(host: str, port: int, path: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 POST of `body` as JSON, ready to write as is on a keep-alive connection."""
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


@dataclass
class LoadResult:
    """What one closed-loop run saw. `latencies` are seconds, successful answers only, in completion order."""

    concurrency: int
    elapsed: float = 0.0  # seconds from the first request sent to the last answer received
    client_cpu: float = 0.0  # CPU seconds this process spent meanwhile (the load generator's own cost)
    latencies: list[float] = field(default_factory=list)
    ok_indices: list[int] = field(default_factory=list)  # the request index of each successful answer
    errors: Counter = field(default_factory=Counter)  # kind ("status 503", "timeout", ...) -> count
    statuses: Counter = field(default_factory=Counter)  # HTTP status -> answers with it, 2xx and errors alike
    answers: dict[int, Any] = field(default_factory=dict)  # request index -> parse(body) of its first 2xx answer

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def requests(self) -> int:
        return self.ok + self.error_count

    def summary(self) -> dict[str, Any]:
        """rps (successful answers per second), latency percentiles in ms, errors and requests."""
        ms = [s * 1000 for s in self.latencies]
        return {
            "rps": self.ok / self.elapsed if self.elapsed > 0 else 0.0,
            "p50_ms": percentile(ms, 50),
            "p95_ms": percentile(ms, 95),
            "p99_ms": percentile(ms, 99),
            "mean_ms": sum(ms) / len(ms) if ms else None,
            "errors": self.error_count,
            "requests": self.requests,
            "error_kinds": dict(self.errors),
            "seconds": self.elapsed,
            "client_cpu_us_per_request": self.client_cpu / self.requests * 1e6 if self.requests else None,
            "concurrency": self.concurrency,
        }


class HTTPError(Exception):
    """A malformed or unexpected answer; its message is the error kind."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep_alive) of one HTTP/1.1 response: Content-Length, chunked, or read-to-close bodies."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HTTPError("bad status line")
    status = int(parts[1])
    headers: dict[bytes, bytes] = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get(b"connection", b"").lower() != b"close" and parts[0] != b"HTTP/1.0"
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        body, keep_alive = await reader.read(), False
    return status, body, keep_alive


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    *,
    seconds: float | None = None,
    order: Sequence[int] | None = None,
    parse: Callable[[bytes], Any] | None = None,
    timeout: float = 30.0,
) -> LoadResult:
    """Closed loop: `concurrency` clients send `requests` until `seconds` have passed (cycling through them in
    order, shared by all clients), or, without `seconds`, each index of `order` (default: all) once.

    Requests in flight at the deadline are answered and counted; elapsed runs to the last answer. `parse`
    turns the body of each index's first 2xx answer into `answers[index]`.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if seconds is None:
        todo: Iterator[int] = iter(range(len(requests)) if order is None else order)
    else:
        todo = itertools.cycle(range(len(requests)) if order is None else order)
    result = LoadResult(concurrency)
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = None if seconds is None else started + seconds
    last_answer = started

    async def client() -> None:
        nonlocal last_answer
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while deadline is None or time.perf_counter() < deadline:
                index = next(todo, None)
                if index is None:
                    return
                sent = time.perf_counter()
                try:
                    if writer is None:
                        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                    assert reader is not None
                    writer.write(requests[index])
                    status, body, keep_alive = await asyncio.wait_for(read_response(reader), timeout)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        HTTPError, ValueError) as e:  # fmt: skip
                    result.errors[_kind(e)] += 1
                    last_answer = time.perf_counter()
                    _close(writer)
                    writer = None
                    continue
                now = time.perf_counter()
                last_answer = now
                result.statuses[status] += 1
                if 200 <= status < 300:
                    result.latencies.append(now - sent)
                    result.ok_indices.append(index)
                    if parse is not None and index not in result.answers:
                        result.answers[index] = parse(body)
                else:
                    result.errors[f"status {status}"] += 1
                if not keep_alive:
                    _close(writer)
                    writer = None
        finally:
            _close(writer)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.elapsed = last_answer - started
    result.client_cpu = time.process_time() - cpu_started
    return result


def _kind(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, HTTPError):
        return str(error)
    if isinstance(error, asyncio.IncompleteReadError):
        return "connection closed"
    if isinstance(error, OSError):
        return "connection error"
    return "bad response"


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()
