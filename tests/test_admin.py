"""The admin lists and opens every model of the jobs app for staff."""

from __future__ import annotations

import pytest
from django.contrib import admin

from jobs.sweeps import services as sweeps
from jobs.training.launch import LaunchSpec

pytestmark = pytest.mark.django_db


def test_every_jobs_model_has_an_admin_list_and_change_page(admin_client, user, trained_model):
    sweep = sweeps.create_sweep(user, LaunchSpec(kind="finetune", dataset=trained_model.dataset), grid={"seed": [1, 2]})
    registered = sorted(m._meta.model_name for m in admin.site._registry if m._meta.app_label == "jobs")
    assert registered == ["dataset", "job", "metricpoint", "modelrecord", "sweep"]
    objects = {"dataset": trained_model.dataset, "job": sweep.jobs.first(), "modelrecord": trained_model,
               "sweep": sweep}  # fmt: skip
    for name in registered:
        listing = admin_client.get(f"/admin/jobs/{name}/")
        assert listing.status_code == 200, name
        if name in objects:
            page = admin_client.get(f"/admin/jobs/{name}/{objects[name].pk}/change/")
            assert page.status_code == 200 and str(objects[name].pk) in page.content.decode(), name
