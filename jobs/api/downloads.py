"""Downloads sent as they are read (a model's zip, a classify job's CSV), for the API and the pages alike.

Runs in: the web process.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponseRedirect, StreamingHttpResponse

from ..files import presigned_url, signs_urls
from ..models import ModelRecord
from ..registry.archive import model_archive, stored_archive


def model_download(request, record: ModelRecord) -> StreamingHttpResponse | HttpResponseRedirect:
    """The zip of a model's folder, for the API and the model page alike: a redirect to a presigned URL of the
    stored zip where the backend signs URLs (the bucket sends the bytes, not this process), else streamed."""
    if signs_urls():
        stored, filename = stored_archive(record)
        return HttpResponseRedirect(presigned_url(stored, filename))
    name, chunks = model_archive(record)
    return stream(request, chunks, content_type="application/zip", filename=name)


def stream(request, chunks, *, content_type: str, filename: str, length: int | None = None) -> StreamingHttpResponse:
    """A download sent as it is read. Under ASGI the chunks go out through an async iterator: given a sync one
    (FileResponse's too), Django's ASGI handler reads it whole into memory first, and only then sends it."""
    asgi = isinstance(getattr(request, "_request", request), ASGIRequest)
    response = StreamingHttpResponse(_async_chunks(chunks) if asgi else chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if length is not None:
        response["Content-Length"] = str(length)
    return response


def file_chunks(name: str, size: int = 1 << 20):
    """A stored file's bytes, a block at a time."""
    with default_storage.open(name, "rb") as fh:
        while block := fh.read(size):
            yield block


async def _async_chunks(chunks):
    """A sync iterator's items, each read in a worker thread, so that the event loop never blocks on storage."""
    done = object()
    while (chunk := await sync_to_async(next, thread_sensitive=False)(chunks, done)) is not done:
        yield chunk
