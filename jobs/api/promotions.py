"""The REST API of the promote guard and the promotion history (DRF): a model's verdict
(GET /api/models/{id}/guard/), promote through it (POST /api/models/{id}/promote/, 409 with the failed rules
unless `override`), the history (GET /api/promotions/) and its one-click rollback
(POST /api/promotions/{id}/rollback/).

Runs in: the web process.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from ..registry import guard, history
from . import promotion_serializers as s
from .parsers import JSONParser
from .schema import error, invalid

REFUSED = OpenApiResponse(s.RefusedSerializer, "It fails rules of the guard and no `override`: nothing changed.")


class PromoteActions:
    """ModelViewSet's promote and guard actions (mixed into it, so that they live at /api/models/{id}/...)."""

    @extend_schema(
        request=s.PromoteSerializer,
        responses={200: s.PromotedModelSerializer, 400: error("Only its owner can promote a model."), 409: REFUSED},
    )
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Make this model serve your classify requests, if it passes the promote guard's rules (GET guard/), or
        with `override` (recorded in the history with the rules it failed). Recorded in GET /api/promotions/
        with what it replaced; `promotion` is null when it already served."""
        record = self.get_object()
        if record.owner_id != request.user.pk:
            raise ValidationError({"detail": "only the owner can promote a model"})
        body = s.PromoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            entry = history.promote(record, **body.validated_data)
        except history.Refused as refused:
            failed = guard.rule_dicts(refused.verdict.failed)
            return Response({"detail": str(refused), "failed": failed}, status=status.HTTP_409_CONFLICT)
        record.refresh_from_db()
        record.guard, record.promotion = guard.evaluate(record).to_dict(), entry
        context = self.get_serializer_context() | {"newest": history.newest_ids(request.user)}
        return Response(s.PromotedModelSerializer(record, context=context).data)

    @extend_schema(responses={200: s.GuardSerializer})
    @action(detail=True, methods=["get"], pagination_class=None)
    def guard(self, request, pk=None):
        """Each rule of the promote guard on this model: its bound (the operator's DISTILLERY_PROMOTE_* setting),
        the model's value and passed, failed, not_applicable or not_measured; only failed blocks a promote."""
        return Response(guard.evaluate(self.get_object()).to_dict())


class PromotionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your promotion history, newest first (staff: everyone's): who promoted which model when, what it replaced,
    whether rules failed and were overridden, and whether it was rolled back."""

    serializer_class = s.PromotionSerializer
    parser_classes = [JSONParser]

    def get_queryset(self):
        return history.history(self.request.user)

    def get_serializer_context(self):
        return super().get_serializer_context() | {"newest": history.newest_ids(self.request.user)}

    @extend_schema(
        request=None,
        responses={200: s.PromotionSerializer, 400: invalid("Not your newest promotion, already rolled back, its "
                                                            "model no longer serves, or nothing served before it.")},
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Make the model this promotion replaced serve again (through the same promote, so every web process
        serves it), recorded as a promotion of its own (`rollback_of`). Only your newest promotion, once."""
        entry = self.get_object()
        if entry.owner_id != request.user.pk:
            raise ValidationError({"detail": "only its owner can roll a promotion back"})
        try:
            done = history.rollback(entry)
        except DjangoValidationError as exc:
            raise ValidationError({"detail": exc.messages[0]}) from None
        return Response(self.get_serializer(history.history(request.user).get(pk=done.pk)).data)
