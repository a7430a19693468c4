from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from jobs.api import accounts as account_api
from jobs.api import classify as classify_api
from jobs.api import promotions as promotions_api
from jobs.api import quality as quality_api
from jobs.api import queue as queue_api
from jobs.api import rows as rows_api
from jobs.api import views as api

router = DefaultRouter()
router.register("datasets", api.DatasetViewSet, basename="dataset")
router.register("jobs", api.JobViewSet, basename="job")
router.register("models", api.ModelViewSet, basename="model")
router.register("sweeps", api.SweepViewSet, basename="sweep")
router.register("promotions", promotions_api.PromotionViewSet, basename="promotion")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/jobs/<int:pk>/move/", queue_api.MoveView.as_view(), name="api-job-move"),
    path("api/jobs/<int:pk>/priority/", queue_api.PriorityView.as_view(), name="api-job-priority"),
    path("api/queue/", queue_api.QueueView.as_view(), name="api-queue"),
    path("api/", include(router.urls)),
    path("api/datasets/<int:pk>/quality/", quality_api.DatasetQualityView.as_view(), name="api-dataset-quality"),
    path(
        "api/datasets/<int:pk>/quality/csv/", quality_api.DatasetQualityCSVView.as_view(),
        name="api-dataset-quality-csv",
    ),  # fmt: skip
    path("api/models/<int:pk>/label-issues/", quality_api.LabelIssuesView.as_view(), name="api-label-issues"),
    path(
        "api/models/<int:pk>/label-issues/csv/", quality_api.LabelIssuesCSVView.as_view(),
        name="api-label-issues-csv",
    ),  # fmt: skip
    path("api/classify/", classify_api.ClassifyView.as_view(), name="api-classify"),
    path("api/classify/file/", classify_api.ClassifyFileView.as_view(), name="api-classify-file"),
    path("api/explain/", classify_api.ExplainView.as_view(), name="api-explain"),
    path("api/models/<int:pk>/errors/", rows_api.ModelErrorsView.as_view(), name="api-model-errors"),
    path("api/models/<int:pk>/errors/csv/", rows_api.ModelErrorsCSVView.as_view(), name="api-model-errors-csv"),
    path("api/models/<int:pk>/evaluate/", rows_api.ModelEvaluateView.as_view(), name="api-model-evaluate"),
    path("api/models/<int:pk>/explain/", rows_api.ModelExplainView.as_view(), name="api-model-explain"),
    path(
        "api/models/<int:pk>/disagreements/<int:other>/", rows_api.DisagreementsView.as_view(),
        name="api-model-disagreements",
    ),
    path("api/catalogue/", classify_api.CatalogueView.as_view(), name="api-catalogue"),
    path("api/auth/token/", account_api.TokenView.as_view(), name="api-token"),
    path("api/account/webhook-secret/", account_api.WebhookSecretView.as_view(), name="api-webhook-secret"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("jobs.urls")),
]

handler404 = api.not_found
