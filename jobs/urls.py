"""The dashboard's URLs (the API's are routed in config/urls.py).

Runs in: the web process.
"""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("datasets/upload/", views.dataset_upload, name="dataset-upload"),
    path("datasets/import/", views.dataset_import, name="dataset-import"),
    path("datasets/hub/", views.dataset_hub_import, name="dataset-hub-import"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<int:pk>/preview/", views.dataset_preview_part, name="dataset-preview"),
    path("jobs/new/", views.job_create, name="job-create"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/delete/", views.job_delete, name="job-delete"),
    path("sweeps/<int:pk>/", views.sweep_detail, name="sweep-detail"),
    path("sweeps/<int:pk>/cancel/", views.sweep_cancel, name="sweep-cancel"),
    path("sweeps/<int:pk>/delete/", views.sweep_delete, name="sweep-delete"),
    path("models/import/", views.model_import, name="model-import"),
    path("models/<int:pk>/", views.model_detail, name="model-detail"),
    path("models/<int:pk>/promote/", views.model_promote, name="model-promote"),
    path("models/<int:pk>/delete/", views.model_delete, name="model-delete"),
    path("models/<int:pk>/download/", views.model_download, name="model-download"),
    path("compare/", views.compare_models, name="compare"),
    path("classify/", views.classify, name="classify"),
    path("classify/file/", views.classify_file, name="classify-file"),
    path("account/token/", views.api_token, name="api-token-page"),
    path("account/webhook-secret/", views.webhook_secret_rotate, name="webhook-secret-rotate"),
    path("healthz", views.healthz, name="healthz"),
]
