"""Token auth for websocket clients that have no session cookie (scripts): `?token=<api token>`.

Runs in: the web process.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

from .accounts import user_for_token

_user_for_token = database_sync_to_async(user_for_token)


class TokenAuthMiddleware(BaseMiddleware):
    """Runs inside AuthMiddlewareStack: a session user wins; otherwise a valid token sets the user."""

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            key = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
            if key:
                token_user = await _user_for_token(key)
                if token_user is not None:
                    scope = dict(scope, user=token_user)
        return await super().__call__(scope, receive, send)
