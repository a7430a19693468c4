"""ASGI entry point: HTTP through Django (classify's hot path just before it), websockets through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from jobs.api.fastpath import ClassifyFastPath  # noqa: E402
from jobs.body_limit import BodyLimit  # noqa: E402
from jobs.routing import websocket_urlpatterns  # noqa: E402
from jobs.serving.engines import import_runtime  # noqa: E402
from jobs.ws_auth import TokenAuthMiddleware  # noqa: E402

# torch, transformers and the mlcore modules requests use, imported before any thread exists (engines.import_runtime)
import_runtime()
# What start-up built (Django, torch, transformers: about half a million objects) lives as long as the process:
# frozen out of the collector's sight now, before any request. Loading a model freezes the heap again
# (jobs/serving/engines._freeze_heap), and its full collection, which stalls every request in flight (a promote
# under load), then walks only what came after: 14 ms instead of 229 ms (bench-serve's student, its first load).
gc.collect()
gc.freeze()

application = ProtocolTypeRouter(
    {
        # Token-authenticated POST /api/classify/ is answered before Django (jobs/api/fastpath.py); the rest is
        # Django's.
        # A body over its route's size limit gets a 413 before anything reads it (jobs/body_limit.py).
        "http": BodyLimit(ClassifyFastPath(django_asgi_app)),
        # Who it is (session or API token) and whether its page may open it: jobs/ws_auth.py.
        "websocket": AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
