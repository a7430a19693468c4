"""A host cut off from the database while its job is given to another host: the server drops the cut-off run's
connections (config.settings.dead_peer_options); when the link comes back, the run's next write fails, and the run
asks again on a fresh connection whether it still owns the job, learns that it does not, and stops quietly,
changing nothing. Before, it asked on the broken connection and its task died of "the connection is closed".

PostgreSQL only (the server ends the connections, pg_terminate_backend, as it does a silent peer's).
tests/cluster/test_cross_host_failover.py does it with a real link."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from jobs.datasets import services as dataset_services
from jobs.models import Job, MetricPoint
from jobs.training import checkpoint_mirror, lifecycle, runner

pytestmark = pytest.mark.django_db(transaction=True)


def _drop_every_other_connection() -> None:
    """End every session of the test database but the one asking, as the server ends those of a silent peer."""
    asking = connections.create_connection("default")
    try:
        with asking.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    finally:
        asking.close()


def test_a_run_whose_connections_were_dropped_while_its_job_was_taken_over_stops_quietly(
    user, sentiment_csv, tiny_bert, fast_params, settings, tmp_path, monkeypatch, caplog
):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (DATABASE_URL)")
    caplog.set_level(logging.WARNING)
    settings.DISTILLERY_CHECKPOINT_DIR = tmp_path / "checkpoints"
    dataset = dataset_services.create_dataset(user, "reviews", sentiment_csv)
    params = dict(fast_params, epochs=1, batch_size=8, checkpoint_every=4)
    job = Job.objects.create(owner=user, kind="finetune", dataset=dataset, base_model=str(tiny_bert), params=params)
    first = lifecycle.claim_job(job.pk, "worker@host-a")
    upload, points_at_takeover = checkpoint_mirror.upload, []

    def cut_off_after_the_checkpoint(job_id, attempt, step, path):
        stored = upload(job_id, attempt, step, path)
        if step == 4:  # host A falls silent; host B takes the job over; the server drops host A's connections
            Job.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
            assert lifecycle.claim_job(job_id, "worker@host-b") is not None
            points_at_takeover.append(list(MetricPoint.objects.filter(job_id=job_id).values_list("seq", flat=True)))
            _drop_every_other_connection()
        return stored

    monkeypatch.setattr(checkpoint_mirror, "upload", cut_off_after_the_checkpoint)
    runner.execute(first)  # returns: no "the connection is closed" out of the task

    assert any("another run owns it now" in record.getMessage() for record in caplog.records)
    after = Job.objects.get(pk=job.pk)
    assert (after.status, after.attempts, after.worker) == ("running", 2, "worker@host-b")
    assert list(MetricPoint.objects.filter(job_id=job.pk).values_list("seq", flat=True)) == points_at_takeover[0]
