"""The API's account routes: an API token for a username and password, and the webhook secret.

Runs in: the web process.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import parsers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import accounts
from . import apidocs as docs
from . import serializers as s
from .parsers import JSONParser


class TokenView(ObtainAuthToken):
    """Your API token for a username and password (DRF's view, with the project's depth-limited JSON parser);
    a username or address locked out by django-axes for failed logins gets a 429."""

    parser_classes = [JSONParser, parsers.FormParser, parsers.MultiPartParser]
    # Who sends the password is who asks: a stale token or session in the same request must not answer 401.
    authentication_classes = []
    needs_redis = ("post",)  # django-axes counts failed logins there

    @docs.token
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if getattr(request, "axes_locked_out", False):  # set by django-axes on the request it was handed
                raise Throttled(detail="too many failed logins for this username or address; try later") from None
            raise


class WebhookSecretView(APIView):
    """Your webhook secret, which signs your jobs' webhooks (X-Distillery-Signature); POST makes a new one, and
    deliveries from then on are signed with it."""

    @extend_schema(responses=s.WebhookSecretSerializer)
    def get(self, request):
        return Response(s.WebhookSecretSerializer(accounts.webhook_secret(request.user)).data)

    @extend_schema(request=None, responses=s.WebhookSecretSerializer)
    def post(self, request):
        return Response(s.WebhookSecretSerializer(accounts.new_webhook_secret(request.user)).data)
