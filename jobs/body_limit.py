"""The request body's size, checked before any of it is read: Django under ASGI reads a whole body into a
spooled temporary file before a view sees it, so a 300 MB upload was written to disk before the 200 MB check.

Runs in: the web process (config/asgi.py puts it in front of everything HTTP).
"""

from __future__ import annotations

import json

from django.conf import settings

MODEL_UPLOAD_PATHS = ("/api/models/", "/models/import/")  # the routes that take a model zip
SLACK = 1 << 20  # a multipart body's boundaries and other fields around the file


def body_limit(path: str) -> int:
    """The most bytes a request body to `path` may have: a model zip's limit on the routes that take one, a
    dataset's (DISTILLERY_MAX_UPLOAD_MB) elsewhere."""
    model = path in MODEL_UPLOAD_PATHS
    megabytes = settings.DISTILLERY_MAX_MODEL_UPLOAD_MB if model else settings.DISTILLERY_MAX_UPLOAD_MB
    return megabytes * 2**20 + SLACK


class BodyLimit:
    """ASGI middleware: a body announced (Content-Length) or found (chunked) to be larger than body_limit() gets
    a 413 at once; the application never reads past the limit."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope["path"])
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await _too_large(send, limit)
        state = {"read": 0, "answered": False}

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > limit and not state["answered"]:  # a chunked body without a length
                    state["answered"] = True
                    await _too_large(send, limit)
                    return {"type": "http.disconnect"}  # the application stops reading, and answers nothing
            return message

        async def guarded_send(message):
            if not state["answered"]:
                await send(message)

        return await self.app(scope, counted_receive, guarded_send)


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": f"the request body is over {limit // 2**20} MB, the limit here"}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
    ]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
