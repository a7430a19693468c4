"""The dashboard's URLs (the API's are routed in config/urls.py).

Runs in: the web process.
"""

from django.urls import path

from .views import account, classify, dashboard, datasets, jobs, metrics, promotions, queue, registry, rows, runs

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("datasets/upload/", datasets.dataset_upload, name="dataset-upload"),
    path("datasets/import/", datasets.dataset_import, name="dataset-import"),
    path("datasets/hub/", datasets.dataset_hub_import, name="dataset-hub-import"),
    path("datasets/<int:pk>/", datasets.dataset_detail, name="dataset-detail"),
    path("datasets/<int:pk>/preview/", datasets.dataset_preview_part, name="dataset-preview"),
    path("jobs/new/", dashboard.job_create, name="job-create"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job-detail"),
    path("runs/", runs.runs_page, name="runs"),
    path("runs/csv/", runs.runs_csv, name="runs-csv"),
    path("jobs/<int:pk>/cancel/", jobs.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/delete/", jobs.job_delete, name="job-delete"),
    path("jobs/<int:pk>/move/", queue.job_move, name="job-move"),
    path("sweeps/<int:pk>/", jobs.sweep_detail, name="sweep-detail"),
    path("sweeps/<int:pk>/cancel/", jobs.sweep_cancel, name="sweep-cancel"),
    path("sweeps/<int:pk>/delete/", jobs.sweep_delete, name="sweep-delete"),
    path("models/import/", registry.model_import, name="model-import"),
    path("models/<int:pk>/", registry.model_detail, name="model-detail"),
    path("models/<int:pk>/promote/", promotions.model_promote, name="model-promote"),
    path("models/<int:pk>/delete/", registry.model_delete, name="model-delete"),
    path("models/<int:pk>/download/", registry.model_download, name="model-download"),
    path("models/<int:pk>/errors/", rows.model_errors, name="model-errors"),
    path("models/<int:pk>/errors.csv", rows.model_errors_csv, name="model-errors-csv"),
    path("models/<int:pk>/evaluate/", rows.model_evaluate, name="model-evaluate"),
    path("models/<int:pk>/disagreements/", rows.disagreement_pick, name="model-disagreement-pick"),
    path("models/<int:pk>/disagreements/<int:other>/", rows.model_disagreements, name="model-disagreements"),
    path("compare/", registry.compare_models, name="compare"),
    path("promotions/", promotions.promotions, name="promotions"),
    path("promotions/<int:pk>/rollback/", promotions.promotion_rollback, name="promotion-rollback"),
    path("classify/", classify.classify, name="classify"),
    path("classify/file/", classify.classify_file, name="classify-file"),
    path("account/token/", account.api_token, name="api-token-page"),
    path("account/webhook-secret/", account.webhook_secret_rotate, name="webhook-secret-rotate"),
    path("healthz", account.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
]
