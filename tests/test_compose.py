"""docker-compose.yml and the images it builds, checked without a Docker engine.

No engine (and no compose plugin) runs here, so these tests hold the file to the parts of the Compose
Specification that a mistake would break, and to the cluster's own contract: healthy backends before the web,
one environment for web and workers, a GPU for the worker, shared media.
"""

import json
import re
import runpy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
QUEUES = runpy.run_path(str(ROOT / "config" / "queues.py"))

# The service-level keys of the Compose Specification (compose-spec/schema/compose-spec.json), so that a typo
# such as `depend_on` fails here instead of being ignored by an older compose or rejected on deploy day.
SERVICE_KEYS = set(
    """
    annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command configs container_name
    cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpus cpuset
    credential_spec depends_on deploy develop device_cgroup_rules devices dns dns_opt dns_search domainname
    entrypoint env_file environment expose extends external_links extra_hosts gpus group_add healthcheck
    hostname image init ipc isolation label_file labels links logging mac_address mem_limit mem_reservation
    mem_swappiness memswap_limit models network_mode networks oom_kill_disable oom_score_adj pid pids_limit
    platform ports post_start pre_stop privileged profiles provider pull_policy pull_refresh_after read_only
    restart runtime scale secrets security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt
    sysctls tmpfs tty ulimits use_api_socket user userns_mode uts volumes volumes_from working_dir
    """.split()
)
TOP_LEVEL_KEYS = {"version", "name", "include", "services", "models", "networks", "volumes", "secrets", "configs"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# [[HOST_IP:]HOST_PORT[-RANGE]:]CONTAINER_PORT[-RANGE][/PROTOCOL]
PORT_RE = re.compile(r"^(?:(?:\d{1,3}(?:\.\d{1,3}){3}:)?\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:/(?:tcp|udp|sctp))?$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def depends_on(service: dict) -> dict[str, str]:
    """depends_on as {service: condition}; the short list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition") for name, spec in deps.items()}


def dockerfile(service: dict) -> Path:
    build = service["build"]
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    return context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_the_file_uses_only_top_level_keys_the_compose_spec_defines(compose):
    unknown = {key for key in compose if key not in TOP_LEVEL_KEYS and not key.startswith("x-")}
    assert not unknown
    assert {"postgres", "redis", "web", "worker", "worker-cpu"} <= set(compose["services"])


def test_services_use_only_keys_the_compose_spec_defines(services):
    for name, service in services.items():
        unknown = {key for key in service if key not in SERVICE_KEYS and not key.startswith("x-")}
        assert not unknown, f"{name}: {unknown}"


def test_every_service_has_an_image_or_a_build_whose_dockerfile_exists(services):
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            assert dockerfile(service).is_file(), f"{name}: {dockerfile(service)} is missing"


def test_the_web_and_worker_images_are_built_from_the_platform_dockerfiles(services):
    assert dockerfile(services["web"]) == ROOT / "platform" / "Dockerfile.web"
    assert dockerfile(services["worker"]) == ROOT / "platform" / "Dockerfile.worker"


def test_depends_on_names_existing_services_with_valid_conditions(services):
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert dependency != name
            assert condition in CONDITIONS, f"{name} -> {dependency}: {condition!r}"


def test_a_healthy_condition_only_waits_on_services_that_have_a_healthcheck(services):
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            if condition == "service_healthy":
                assert "test" in services[dependency].get("healthcheck", {}), f"{name} waits on {dependency}"


def test_a_completed_condition_only_waits_on_a_one_shot_service(services):
    for service in services.values():
        for dependency, condition in depends_on(service).items():
            if condition == "service_completed_successfully":
                # A restarting service never "completes", so whatever waits on it would never start.
                assert services[dependency].get("restart", "no") in ("no", "on-failure")


def test_postgres_and_redis_have_healthchecks_that_probe_them(services):
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")


def test_the_web_waits_for_healthy_backends_and_a_finished_migration(services):
    deps = depends_on(services["web"])
    assert deps["postgres"] == deps["redis"] == "service_healthy"
    migrations = [name for name, condition in deps.items() if condition == "service_completed_successfully"]
    assert migrations, "the web must start after the migrations ran"
    assert any("migrate" in " ".join(services[name]["command"]) for name in migrations)


@pytest.mark.parametrize("name", ["worker", "worker-cpu"])
def test_the_workers_wait_for_healthy_backends(services, name):
    deps = depends_on(services[name])
    assert deps["postgres"] == deps["redis"] == "service_healthy"


def test_the_worker_reserves_an_nvidia_gpu(services):
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    gpus = [d for d in devices if d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", [])]
    assert gpus and (gpus[0].get("count") in (1, "all") or gpus[0].get("device_ids"))
    assert "deploy" not in services["web"], "the web serves on CPU; it must not hold a GPU"


def test_web_and_worker_share_one_environment_through_the_anchor(compose, services):
    anchor = compose["x-django-env"]
    for name in ("web", "worker", "migrate"):
        env = services[name]["environment"]
        for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "MEDIA_ROOT"):
            assert env[key] == anchor[key], f"{name}.{key}"
    text = COMPOSE_FILE.read_text()
    assert "x-django-env: &django-env" in text
    assert text.count("*django-env") >= 3


def test_the_environment_points_at_the_compose_backends_in_production_mode(compose, services):
    env = compose["x-django-env"]
    assert all(isinstance(value, str) for value in env.values()), "YAML would turn true/8000 into non-strings"
    db = urlsplit(env["DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert (db.scheme, db.hostname, db.port) == ("postgres", "postgres", 5432)
    assert (db.username, db.path.lstrip("/")) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"])
    redis = urlsplit(env["REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    assert env["DISTILLERY_REQUIRE_SECRET_KEY"] == "true"
    assert env["DEBUG"] == "false"
    assert env["SECRET_KEY"].startswith("${SECRET_KEY"), "the key must come from the operator, not the file"
    assert env["ALLOWED_HOSTS"]


def test_every_named_volume_a_service_mounts_is_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name} mounts undeclared volume {source}"


WORKERS = ("worker", "worker-cpu", "worker-cpu-training")


@pytest.mark.parametrize("name", WORKERS)
def test_workers_share_no_volume_their_files_come_from_the_bucket(compose, services, name):
    assert "volumes" not in services[name], "a worker on another machine has no shared mount: nor does this one"
    env = compose["x-django-env"]
    assert env["DISTILLERY_S3_ENDPOINT_URL"] == "${DISTILLERY_S3_ENDPOINT_URL:-http://minio:9000}"
    assert env["DISTILLERY_S3_BUCKET"].startswith("${DISTILLERY_S3_BUCKET:-") and env["AWS_SECRET_ACCESS_KEY"]
    assert depends_on(services[name])["minio"] == "service_healthy"


def test_minio_is_healthy_before_anything_stores_and_the_migrate_step_creates_the_bucket(services):
    minio = services["minio"]
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert any(v.startswith("minio-data:") for v in minio["volumes"])
    assert "ensure_bucket" in " ".join(services["migrate"]["command"])
    for name in ("migrate", "web", *WORKERS):
        assert depends_on(services[name])["minio"] == "service_healthy", name
    assert any(str(port).split(":")[-2:] == ["9000", "9000"] for port in minio["ports"])  # presigned downloads
    assert services["web"]["environment"]["DISTILLERY_S3_PUBLIC_ENDPOINT_URL"].endswith("http://localhost:9000}")


@pytest.mark.parametrize("name", WORKERS)
def test_workers_scale_out_alike_and_are_healthy_while_they_answer_a_ping_by_their_own_name(services, name):
    service = services[name]
    assert "container_name" not in service and "ports" not in service, "--scale would clash on a fixed one"
    command = service.get("command") or dict(instructions(ROOT / "platform" / "Dockerfile.worker"))["CMD"]
    prefix = celery_worker_args(command)["-n"].split("@")[0]
    assert service["healthcheck"]["test"] == [
        "CMD-SHELL", f"celery -A config inspect ping --timeout 10 -d {prefix}@$$HOSTNAME | grep -q pong"
    ]  # fmt: skip
    assert {"interval", "timeout", "retries"} <= set(service["healthcheck"])


def test_a_cpu_only_profile_trains_on_cpus_for_jobs_that_ask_for_no_gpu(compose, services):
    trainer = services["worker-cpu-training"]
    assert trainer["profiles"] == ["cpu-only"]
    assert celery_worker_args(trainer["command"])["-Q"] == QUEUES["GPU"]
    assert trainer["environment"]["DISTILLERY_WORKER_DEVICE"] == "cpu"  # so it never consumes the cuda queues
    assert {k: v for k, v in trainer["environment"].items() if k != "DISTILLERY_WORKER_DEVICE"} == compose[
        "x-django-env"
    ]
    assert "deploy" not in trainer and trainer["image"] == services["web"]["image"]
    assert "profiles" not in services["worker"], "the GPU worker starts by default"


def test_published_ports_have_the_host_container_shape(services):
    # YAML 1.1 reads an unquoted 80:80 as the base-60 integer 4880: mappings must be quoted strings.
    assert not re.search(r"^\s*-\s*\d+:\d+\s*$", COMPOSE_FILE.read_text(), re.M)
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, int):
                assert 0 < port < 65536, name
            else:
                assert isinstance(port, str) and PORT_RE.match(port), f"{name}: {port!r}"


def test_the_web_publishes_the_port_its_server_listens_on(services):
    cmd = dict(instructions(ROOT / "platform" / "Dockerfile.web"))["CMD"]
    server_port = re.search(r'"--port",\s*"(\d+)"', cmd).group(1)
    assert any(str(port).split(":")[-1] == server_port for port in services["web"]["ports"])


def test_every_variable_the_file_interpolates_is_documented_in_env_example():
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", (ROOT / "platform" / "env.example").read_text(), re.M))
    assert used and used <= documented, used - documented


def test_the_web_image_installs_cpu_torch_before_the_requirements():
    runs = [args for keyword, args in instructions(ROOT / "platform" / "Dockerfile.web") if keyword == "RUN"]
    torch = next(i for i, args in enumerate(runs) if "torch==" in args)
    requirements = next(i for i, args in enumerate(runs) if "-r requirements.txt" in args)
    assert "download.pytorch.org/whl/cpu" in runs[torch]
    assert torch < requirements
    assert any("collectstatic" in args for args in runs)


def test_the_worker_image_installs_a_cuda_torch_before_the_requirements():
    steps = instructions(ROOT / "platform" / "Dockerfile.worker")
    assert any(k == "FROM" and ("nvidia/cuda" in a or "CUDA_IMAGE" in a) for k, a in steps)
    assert any(k == "ARG" and re.search(r"nvidia/cuda:[\d.]+-", a) for k, a in steps)
    assert any(k == "ARG" and re.search(r"download\.pytorch\.org/whl/cu\d+", a) for k, a in steps)
    runs = [args for keyword, args in steps if keyword == "RUN"]
    torch = next(i for i, args in enumerate(runs) if "torch==" in args)
    assert torch < next(i for i, args in enumerate(runs) if "-r requirements.txt" in args)


def celery_worker_args(command: list[str] | str) -> dict[str, str]:
    """A `celery -A config worker` command's options as {option: value} (-Q, -n, --concurrency)."""
    args = json.loads(command) if isinstance(command, str) else command  # a Dockerfile CMD: exec form
    assert args[:4] == ["celery", "-A", "config", "worker"], args
    return {args[i]: args[i + 1] for i in range(4, len(args) - 1) if args[i].startswith("-")}


def test_the_worker_image_serves_the_gpu_queue_one_job_at_a_time():
    args = celery_worker_args(dict(instructions(ROOT / "platform" / "Dockerfile.worker"))["CMD"])
    assert args["-Q"] == QUEUES["GPU"]
    assert args["--concurrency"] == "1"


def test_a_cpu_worker_of_its_own_classifies_files_beside_the_training_worker(services):
    training = celery_worker_args(dict(instructions(ROOT / "platform" / "Dockerfile.worker"))["CMD"])
    assert "command" not in services["worker"], "the GPU worker runs its image's command"
    classify = celery_worker_args(services["worker-cpu"]["command"])
    assert classify["-Q"] == QUEUES["CPU"] and classify["--concurrency"] == "1"
    assert classify["-n"] != training["-n"], "two workers with one name would answer each other's pings"
    # Built from the web image: the CPU build of torch that classification runs on, no CUDA, no GPU.
    assert dockerfile(services["worker-cpu"]) == ROOT / "platform" / "Dockerfile.web"
    assert services["worker-cpu"]["image"] == services["web"]["image"]
    assert "deploy" not in services["worker-cpu"]


def test_the_cpu_worker_runs_like_the_training_worker(compose, services):
    cpu, gpu = services["worker-cpu"], services["worker"]
    assert cpu["environment"] == compose["x-django-env"]
    assert depends_on(cpu) == depends_on(gpu)
    assert cpu["restart"] == gpu["restart"] == "unless-stopped"
    assert cpu["stop_grace_period"] == gpu["stop_grace_period"]


def test_the_operator_divides_the_cores_between_web_and_training(services):
    # Each service is a container in a cgroup of its own: a niceness inside one would not count against
    # another, so the weight (cpu_shares) and the pinning (cpuset) are the compose equivalents.
    assert services["web"]["cpuset"] == "${DISTILLERY_WEB_CPUS:-}"
    assert services["worker"]["cpuset"] == "${DISTILLERY_TRAINING_CPUS:-}"
    shares = re.fullmatch(r"\$\{DISTILLERY_TRAINING_CPU_SHARES:-(\d+)\}", services["worker"]["cpu_shares"])
    assert shares and 2 <= int(shares[1]) < 1024, "training must weigh less than the web's default 1024"
    assert "cpu_shares" not in services["web"]


@pytest.mark.parametrize("name", ["Dockerfile.web", "Dockerfile.worker"])
def test_both_images_run_as_a_non_root_user(name):
    users = [args for keyword, args in instructions(ROOT / "platform" / name) if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_flower_watches_the_queues_behind_basic_auth(compose, services):
    flower = services["flower"]
    args = flower["command"]
    assert args[:4] == ["celery", "-A", "config", "flower"]  # the project's app: its broker URL and queues
    port = next(a.split("=", 1)[1] for a in args if a.startswith("--port="))
    # The web image, as the CPU worker and beat: celery, flower and the project, no CUDA.
    assert dockerfile(flower) == ROOT / "platform" / "Dockerfile.web" and flower["image"] == services["web"]["image"]
    env = flower["environment"]
    assert {key: env[key] for key in compose["x-django-env"]} == compose["x-django-env"]
    # Required, as SECRET_KEY is: compose refuses to start an open Flower.
    assert env["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    # /metrics and /healthcheck answer without the password: published on loopback only.
    assert flower["ports"] == [f"127.0.0.1:{port}:{port}"]
    probe = " ".join(flower["healthcheck"]["test"])
    assert flower["healthcheck"]["test"][0] == "CMD" and f"127.0.0.1:{port}/healthcheck" in probe
    assert depends_on(flower)["redis"] == "service_healthy"


def test_workers_send_the_task_events_flower_counts(settings):
    assert settings.CELERY_WORKER_SEND_TASK_EVENTS is True


def test_the_metrics_token_reaches_web_and_workers_through_the_anchor(compose, services):
    assert compose["x-django-env"]["DISTILLERY_METRICS_TOKEN"] == "${DISTILLERY_METRICS_TOKEN:-}"  # unset: off
    assert services["web"]["environment"]["DISTILLERY_METRICS_TOKEN"] == "${DISTILLERY_METRICS_TOKEN:-}"
