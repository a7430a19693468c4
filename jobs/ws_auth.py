"""Who a websocket is, and whether its page may open it.

Runs in: the web process. Scripts authenticate with their API token (`Authorization: Token <key>` on the
handshake, or `?token=<key>` where a client cannot set headers); browsers with their session cookie. A browser
always sends Origin: it must be this site's own (the host and port of the handshake's Host; the scheme is left
to the proxy that terminates TLS, which may hand on a plain ws) or one of
CSRF_TRUSTED_ORIGINS, so a page elsewhere (another site, or another port of localhost) cannot open a job's
stream with the user's cookie. A handshake without Origin is a script's, and a script must bring a token.
"""

from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from .accounts import user_for_token

_user_for_token = database_sync_to_async(user_for_token)
DEFAULT_PORTS = {"http": "80", "https": "443"}


class TokenAuthMiddleware(BaseMiddleware):
    """Runs inside AuthMiddlewareStack: a valid API token (header or query) sets the user; otherwise the session's
    user stands. Then the origin policy above: a connection that fails it is denied at the handshake."""

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        key = _token(headers, scope)
        token_user = await _user_for_token(key) if key else None
        if token_user is not None:
            scope = dict(scope, user=token_user)
        if not _origin_allowed(headers.get(b"origin"), headers.get(b"host"), by_token=token_user is not None):
            return await WebsocketDenier()(scope, receive, send)
        return await super().__call__(scope, receive, send)


def _token(headers: dict, scope) -> str:
    parts = headers.get(b"authorization", b"").decode("latin-1").split()
    if len(parts) == 2 and parts[0].lower() == "token":
        return parts[1]
    return parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]


def _origin_allowed(origin: bytes | None, host: bytes | None, *, by_token: bool) -> bool:
    if origin is None:
        return by_token  # not a browser: only a script with its token
    origin_text = origin.decode("latin-1")
    if origin_text in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parts = urlsplit(origin_text)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return False
    origin_host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6 as Host writes it
    origin_port = str(parts.port or DEFAULT_PORTS[parts.scheme])
    if not validate_host(origin_host, settings.ALLOWED_HOSTS):
        return False
    if host is None:  # no Host header (an in-process test client): an allowed host is all there is to check
        return True
    domain, port = split_domain_port(host.decode("latin-1"))
    return domain == origin_host and (port or DEFAULT_PORTS[parts.scheme]) == origin_port
