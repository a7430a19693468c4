"""The OpenAPI schema's answers besides success: every operation lists the 4xx and 5xx it can give, each with its
body, so that a client (and tests/api/test_schema_conformance.py) can hold the API to its schema.

What an operation can answer follows from what it is, the same for all of them: a body or a checked query
parameter can be refused (400), and so can a deletion (in use, or still running); credentials can be missing
(401); a browser session's unsafe request can lack its CSRF token (403); an id in the path can name nothing of
yours (404); a body can be too large (413) or of a media type the operation does not read (415); a throttled
route can be over its rate (429); an operation that needs Redis answers 503 while Redis cannot be reached (a
throttled one counts its rate there; a view names its other such actions in `needs_redis`: queuing a job,
counting a login; jobs/outages.py). A view states what only it answers (a 400 of an action without a body, a 404
without an id in the path, another 503) with @extend_schema(responses=...); those win over the defaults here.

Runs in: the web process (GET /api/schema/) and `manage.py spectacular`.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication


class ErrorSerializer(serializers.Serializer):
    """Every refusal but a 400's: one message."""

    detail = serializers.CharField()


class ValidationErrorSerializer(serializers.Serializer):
    """A 400's body (documentation only: its schema is ValidationErrorExtension's)."""


class ValidationErrorExtension(OpenApiSerializerExtension):
    """DRF's shapes of a refused request: {field: [messages]} (nested for a field that holds a dict or list),
    {"detail": message} for a body that does not parse, or [messages] for a refusal of the whole request."""

    target_class = ValidationErrorSerializer

    def map_serializer(self, auto_schema, direction):
        return {
            "description": "What is wrong: {field: [messages]} (non_field_errors: the request as a whole), "
            '{"detail": message} for a body that does not parse, or [messages].',
            "oneOf": [{"type": "object", "additionalProperties": {}}, {"type": "array", "items": {"type": "string"}}],
        }


UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
REDIS_DOWN = "Redis cannot be reached (the rates, the job queues and login counts live there); retry after Retry-After."
PAGINATION = ("limit", "offset")


def error(description: str) -> OpenApiResponse:
    """A refusal with a {"detail": message} body, for @extend_schema(responses={code: error("why")})."""
    return OpenApiResponse(ErrorSerializer, description)


def invalid(description: str) -> OpenApiResponse:
    """A 400 in any of DRF's shapes (ValidationErrorSerializer), for @extend_schema(responses={400: invalid("why")})."""
    return OpenApiResponse(ValidationErrorSerializer, description)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, adding the refusals each operation can give (see the module docstring)."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self.error_responses().items():
            if code not in responses:  # a view's own description of the code wins
                responses[code] = self._get_response_for_code(response, code, ["application/json"], direction)
        return dict(sorted(responses.items()))

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        # One of several bodies is still a body: drf-spectacular leaves a polymorphic request body optional.
        return schema, required or isinstance(force_instance(serializer), PolymorphicProxySerializer)

    def error_responses(self) -> dict[str, OpenApiResponse]:
        """The refusals this operation can give, by status code."""
        view, found = self.view, {}
        takes_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        if takes_body or self._checked_query_parameters():
            found["400"] = invalid("The request is not valid; the body says why.")
        if self.method == "DELETE":
            found["400"] = invalid("It cannot be deleted now (in use, or still queued or running); the body says why.")
        if view.authentication_classes:
            found["401"] = error("No credentials, or a token or session that is not valid.")
        if self.method in UNSAFE and any(issubclass(a, SessionAuthentication) for a in view.authentication_classes):
            found["403"] = error("A signed-in browser session's request without its CSRF token.")
        if "{" in self.path:
            found["404"] = error("Nothing of yours has this id.")
        if takes_body:
            found["413"] = error(
                "The body is over its limit (DISTILLERY_MAX_UPLOAD_MB; a model zip: DISTILLERY_MAX_MODEL_UPLOAD_MB)."
            )
            found["415"] = error("The body's media type is not one this operation reads.")
        if view.throttle_classes:
            found["429"] = error("Over the classify rate (DISTILLERY_CLASSIFY_RATE); Retry-After says when to retry.")
        action = getattr(view, "action", None) or self.method.lower()
        if view.throttle_classes or action in getattr(view, "needs_redis", ()):
            found["503"] = error(REDIS_DOWN)
        return found

    def _checked_query_parameters(self) -> bool:
        """Whether a query parameter of this operation can be refused (a filter's or the view's own; limit and
        offset are not: a bad one is ignored)."""
        names = [p["name"] for p in self._get_parameters() if p.get("in") == "query"]
        return any(name not in PAGINATION for name in names)
