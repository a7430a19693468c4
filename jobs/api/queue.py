"""The REST API's queue routes (DRF): your queued jobs in the order they will start, moving one of them (to the
top, up, down, or to a place), and a queued job's priority.

Runs in: the web process.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Job
from ..training import queue_order
from . import serializers as s
from .schema import error
from .views import Conflict

NOT_QUEUED = error("The job is no longer queued (it started or ended): there is nothing to reorder.")
STAFF_ONLY = error("A priority above 0 is for staff.")


class QueuedJobSerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="The job's id.")
    kind = serializers.CharField(help_text="The job's kind, as on the job (finetune, distill, classify).")
    priority = serializers.IntegerField(help_text="Higher starts first.")
    position = serializers.IntegerField(help_text="Its place among everyone's queued jobs of its queue; 1 is next.")


class QueueSerializer(serializers.Serializer):
    queue = serializers.CharField(help_text="The Celery queue: gpu (training) or cpu (file classification).")
    jobs = QueuedJobSerializer(many=True, help_text="Your queued jobs on it, in the order they will start.")


class MoveSerializer(serializers.Serializer):
    to = serializers.ChoiceField(
        choices=queue_order.MOVES, help_text="Before all your queued jobs of its queue, or one place up or down."
    )


class PrioritySerializer(serializers.Serializer):
    priority = serializers.IntegerField(
        min_value=Job.PRIORITIES[0], max_value=Job.PRIORITIES[-1], help_text="Higher starts first; above 0: staff."
    )


def _queued_job(request, pk: int) -> Job:
    """One of the user's jobs (anyone else's is a 404, staff's too: a queue is its owner's to order)."""
    return get_object_or_404(Job, pk=pk, owner=request.user)


def _answer(request, job: Job) -> Response:
    queues = {q["queue"]: q for q in queue_order.user_queues(request.user)}
    return Response(QueueSerializer(queues[job.lane]).data)


class QueueView(APIView):
    """Your queued jobs, per queue, in the order they will start."""

    @extend_schema(responses={200: QueueSerializer(many=True)})
    def get(self, request):
        return Response(QueueSerializer(queue_order.user_queues(request.user), many=True).data)


class MoveView(APIView):
    """Move a queued job of yours among your queued jobs of its queue; everyone else's keep their places."""

    @extend_schema(request=MoveSerializer, responses={200: QueueSerializer, 409: NOT_QUEUED})
    def post(self, request, pk: int):
        job = _queued_job(request, pk)
        body = MoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            queue_order.move(job, to=body.validated_data["to"])
        except queue_order.NotQueued as exc:
            raise Conflict(str(exc)) from None
        return _answer(request, job)


class PriorityView(APIView):
    """Set the priority of a queued job of yours: higher starts first on its queue."""

    @extend_schema(request=PrioritySerializer, responses={200: QueueSerializer, 403: STAFF_ONLY, 409: NOT_QUEUED})
    def post(self, request, pk: int):
        job = _queued_job(request, pk)
        body = PrioritySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            queue_order.set_priority(job, body.validated_data["priority"], request.user)
        except queue_order.NotQueued as exc:
            raise Conflict(str(exc)) from None
        except DjangoValidationError as exc:
            s.raise_drf(exc)
        return _answer(request, job)
