"""An upload over its route's limit is refused (413) before the server reads it: announced by Content-Length, at
once; sent chunked without a length, as soon as the limit is passed. Before, Django spooled the whole body to
disk under ASGI and only then checked the file's size."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import ApplicationCommunicator

from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
MB = 2**20


def _scope(path: str, headers: list) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip


async def _post(path: str, headers: list, chunks: list[bytes]) -> tuple[int, bytes, int]:
    """(status, body, how many chunks the server asked for) for a body sent chunk by chunk on demand."""
    communicator = ApplicationCommunicator(application, _scope(path, headers))
    for i, chunk in enumerate(chunks):
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1})
    start = await communicator.receive_output(timeout=30)
    body = await communicator.receive_output(timeout=30)
    await communicator.wait(timeout=30)
    return start["status"], body["body"], len(chunks) - communicator.input_queue.qsize()


def test_an_announced_body_over_the_limit_is_refused_before_a_byte_is_read(api, settings):
    settings.DISTILLERY_MAX_UPLOAD_MB = 1
    headers = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", str(300 * MB).encode()),
               (b"authorization", f"Token {api.token}".encode())]  # fmt: skip
    status, body, read = asyncio.run(_post("/api/datasets/", headers, [b"x" * 1024] * 4))
    assert status == 413 and b"over 2 MB" in body and read == 0


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(api, settings):
    settings.DISTILLERY_MAX_UPLOAD_MB = 1
    headers = [(b"content-type", b"multipart/form-data; boundary=x"), (b"authorization", f"Token {api.token}".encode())]
    chunks = [b"x" * (MB // 2)] * 12  # 6 MB without a Content-Length
    status, body, read = asyncio.run(_post("/api/datasets/", headers, chunks))
    assert status == 413 and b"the limit here" in body
    assert read <= 5  # 2 MB and one chunk past it, not the 6 MB


def test_a_model_zip_route_takes_the_model_limit(api, settings):
    settings.DISTILLERY_MAX_UPLOAD_MB, settings.DISTILLERY_MAX_MODEL_UPLOAD_MB = 1, 4
    headers = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", str(3 * MB).encode()),
               (b"authorization", f"Token {api.token}".encode())]  # fmt: skip
    assert asyncio.run(_post("/api/datasets/", headers, [b""]))[0] == 413
    status, _, _ = asyncio.run(_post("/api/models/", headers, [b"--x--\r\n"]))
    assert status == 400  # read and refused for what it holds, not for its size
