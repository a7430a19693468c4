"""Websocket consumers: one job's live metrics, and the live job list.

Runs in: the web process.
"""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from config.redis_pool import UNREACHABLE

from . import outages
from .models import Job, JobLogLine, MetricPoint
from .training import queue_order
from .training.events import job_group, user_jobs_group

HISTORY_LIMIT = 20_000  # metric points sent on connect; a job has one per batch
# RFC 6455's "Try Again Later": Redis (the Channels layer) cannot be reached. The pages reconnect with backoff,
# the job page from the last seq it holds (static/js/live.js, job.js).
TRY_AGAIN_LATER = 1013


class LayerConsumer(AsyncJsonWebsocketConsumer):
    """A consumer whose socket closes with TRY_AGAIN_LATER when the channel layer's Redis cannot be reached, at
    connect (its group_add) or later (the layer's receive, which Channels awaits beside the socket's): not the
    server's 500 for a handshake, nor an abnormal close. A stale pooled connection after a Redis restart is no
    outage: the layer's pool retries it once (config/redis_pool.py)."""

    async def __call__(self, scope, receive, send):
        self._accepted = False
        try:
            await super().__call__(scope, receive, send)
        except UNREACHABLE as exc:
            outages.log_outage(f"websocket {scope['path']}", exc)
            # Accepted first when it was not yet, so that a browser sees the code (a handshake refused before its
            # accept reaches the page as 1006, whatever the code).
            with contextlib.suppress(Exception):  # the client may be gone already
                if not self._accepted:
                    await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self._accepted = True


class JobConsumer(LayerConsumer):
    """Streams `/ws/jobs/{id}/?after=SEQ&logs_after=LOG_SEQ`: metric points after SEQ, the job's log lines after
    LOG_SEQ, the current status, then live events.

    The group is joined before history is read, and live metrics (and log lines) at or below the last seq
    already sent are dropped, so a client that reconnects with the last seqs it saw gets each exactly once.
    """

    async def connect(self):
        self.job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not await self._may_see(user):
            await self.close(code=4403)
            return
        self.group = job_group(self.job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.last_seq, self.last_log_seq = _after(self.scope, "after"), _after(self.scope, "logs_after")
        status, points, lines = await self._state(self.last_seq, self.last_log_seq)
        for point in points:
            await self.send_json(point)
            self.last_seq = point["seq"]
        for line in lines:
            await self.send_json(line)
            self.last_log_seq = line["seq"]
        # Status after history, as it happens live: a finished job's points all come before its end.
        await self.send_json(status)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def job_event(self, message):
        event = message["event"]
        if event["type"] in ("metric", "log"):
            last = "last_seq" if event["type"] == "metric" else "last_log_seq"
            if event["seq"] <= getattr(self, last):
                return
            setattr(self, last, event["seq"])
        await self.send_json(event)

    @database_sync_to_async
    def _may_see(self, user) -> bool:
        return Job.objects.visible_to(user).filter(pk=self.job_id).exists()

    @database_sync_to_async
    def _state(self, after: int, logs_after: int) -> tuple[dict, list[dict], list[dict]]:
        job = Job.objects.get(pk=self.job_id)
        points = MetricPoint.objects.filter(job_id=self.job_id, seq__gt=after).order_by("seq")[:HISTORY_LIMIT]
        lines = JobLogLine.objects.filter(job_id=self.job_id, seq__gt=logs_after).order_by("seq")
        return job.to_event(), [p.to_event() for p in points], [line.to_event() for line in lines]


class JobListConsumer(LayerConsumer):
    """Streams `/ws/jobs/`: a status event whenever one of the user's jobs changes, and a queue event whenever the
    places of their queued jobs change; with `?queue=1`, their queues' current places first (a queue event per
    queue), so that a page opened before a move catches up."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4403)
            return
        self.group = user_jobs_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        if parse_qs(self.scope.get("query_string", b"").decode()).get("queue"):
            for queue in await database_sync_to_async(queue_order.user_queues)(user):
                await self.send_json({"type": "queue", **queue})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_event(self, message):
        await self.send_json(message["event"])


def _after(scope, name: str) -> int:
    query = parse_qs(scope.get("query_string", b"").decode())
    try:
        return max(0, int(query.get(name, ["0"])[0]))
    except ValueError:
        return 0
