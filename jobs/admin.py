"""Django admin for every model.

Runs in: the web process.
"""

from django.contrib import admin
from django.db import models

from .models import Dataset, Job, MetricPoint, ModelRecord, Sweep

# Webhook URLs typed without a scheme are https (Django 6's default; 5.2 warns until it is chosen).
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "format", "num_rows", "created_at")
    list_filter = ("format",)
    search_fields = ("name", "owner__username")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = ("id", "kind", "owner", "dataset", "status", "progress", "created_at", "finished_at")
    list_filter = ("kind", "status")
    raw_id_fields = ("dataset", "teacher", "result_model", "sweep")


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = ("id", "name", "kind", "owner", "dataset", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "owner__username")
    raw_id_fields = ("dataset", "teacher")


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ("job", "seq", "step", "kind", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("job",)


@admin.register(ModelRecord)
class ModelRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "kind", "owner", "num_parameters", "size_bytes", "is_promoted", "created_at")
    list_filter = ("kind", "is_promoted")
    raw_id_fields = ("teacher", "dataset")
