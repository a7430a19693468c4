"""Run as a fresh process by test_import_race.py: the web application as uvicorn loads it, a promote through the
API, then at once a burst of concurrent classify requests; prints each answer's status and error as JSON.

argv: the promoting user's API token, the model record's id, the burst size."""

import asyncio
import json
import sys

from channels.testing import HttpCommunicator

from config.asgi import application  # sets Django up, as uvicorn's import of it does


async def request(method: str, path: str, token: str, body: bytes = b"") -> tuple[int, str]:
    headers = [(b"host", b"testserver"), (b"authorization", f"Token {token}".encode())]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    communicator = HttpCommunicator(application, method, path, body=body, headers=headers)
    response = await communicator.get_response(timeout=120)
    await communicator.wait(timeout=120)
    return response["status"], response["body"].decode(errors="replace")[:500]


async def main(token: str, record_id: int, burst: int) -> list:
    promoted = await request("POST", f"/api/models/{record_id}/promote/", token)
    texts = [json.dumps({"text": f"a good film, number {i}"}).encode() for i in range(burst)]
    answers = await asyncio.gather(*(request("POST", "/api/classify/", token, body) for body in texts))
    return [promoted, *answers]


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))
