"""The embedded stack under `platform/embedded.py serve`, killed piece by piece with SIGKILL.

One real stack for the module (Redis, two Celery workers, uvicorn; SQLite in a temporary folder): each test
kills one child and checks that the supervisor brings it back (a new pid, answering again: HTTP, PING on the same
port, a Celery control ping) while the others keep their pids; that a Celery message held by the embedded Redis
survives its SIGKILL (append-only file); that the training worker runs nicer than the web and on the CPUs it was
given; and, last, that SIGTERM stops every process of the stack.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
QUEUES = __import__("runpy").run_path(str(ROOT / "config" / "queues.py"))
CHILDREN = ("redis", "gpu-worker", "cpu-worker", "web")
TRAINING_NICE = 7  # not the default (10): the launcher must read it
# Variables of the test run that would point the stack at the tests' own backends or folders.
NOT_INHERITED = (
    "REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DISTILLERY_EMBEDDED_REDIS_PORT",
    "MEDIA_ROOT", "DISTILLERY_MODEL_CACHE", "DISTILLERY_CHECKPOINT_DIR", "DISTILLERY_TRAINING_NICE",
    "DISTILLERY_TRAINING_CPUS", "DISTILLERY_WEB_CPUS",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(condition, timeout: float, what: str, interval: float = 0.2):
    """Call condition() until it returns something true; that value, or a failure saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what} within {timeout:g}s")


def proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields from the state on (field 3 is [0]), or None when the process is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields


def alive(pid: int) -> bool:
    return proc_stat(pid) is not None


def processes_where(field: int, value: int) -> set[int]:
    """Live processes whose /proc/PID/stat field (1-based, as proc(5) numbers them) equals value."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := proc_stat(int(entry.name))) and int(fields[field - 3]) == value:
            found.add(int(entry.name))
    return found


def niceness(pid: int) -> int:
    return int(proc_stat(pid)[19 - 3])  # field 19: nice


class Stack:
    """A running `embedded.py serve`: its launcher process, its log, and probes of each child."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path, var_dir: Path, cpus: dict[str, set[int]]):
        self.proc, self.port, self.log, self.var_dir, self.cpus = proc, port, log, var_dir, cpus
        self.celery = Celery("probe", set_as_current=False)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        """Each child's pid from the launcher's last "started NAME (pid N)" line for it."""
        return {name: int(pid) for name, pid in re.findall(r"\[distillery\] started (\S+) \(pid (\d+)\)", self.text())}

    @property
    def redis_url(self) -> str:
        return re.search(r"embedded Redis at (redis://\S+?),", self.text()).group(1)

    def healthz(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}
        except OSError:
            return 0, {}

    def workers(self) -> set[str]:
        """The names (before the @) of the Celery workers that answer a control ping over the stack's Redis."""
        self.celery.conf.broker_url = self.redis_url
        try:
            replies = self.celery.control.ping(timeout=1.0) or []
        except Exception:  # Redis restarting
            return set()
        return {name.split("@")[0] for reply in replies for name in reply}

    def restarted(self, name: str, old_pid: int) -> int | None:
        """The new pid of a child once the launcher has started it again, else None."""
        pid = self.pids()[name]
        return pid if pid != old_pid and alive(pid) else None


def spread_cpus() -> dict[str, set[int]]:
    """The web on the first CPU this process may use and training on the last (the same one on a 1-CPU box)."""
    available = sorted(os.sched_getaffinity(0))
    return {"web": {available[0]}, "gpu-worker": {available[-1]}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("stack")
    port = free_port()
    cpus = spread_cpus()
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(
        DISTILLERY_VAR_DIR=str(var_dir), DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}", DEBUG="true",
        PYTHONUNBUFFERED="1", DISTILLERY_TRAINING_NICE=str(TRAINING_NICE),
        DISTILLERY_TRAINING_CPUS=",".join(map(str, cpus["gpu-worker"])),
        DISTILLERY_WEB_CPUS=",".join(map(str, cpus["web"])),
    )  # fmt: skip
    log = var_dir / "launcher.log"
    with open(log, "wb") as out:
        # A session of its own: every process of the stack is in it, to find them all and to kill them all.
        proc = subprocess.Popen(
            [sys.executable, "platform/embedded.py", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    stack = Stack(proc, port, log, var_dir, cpus)
    try:
        poll(lambda: stack.healthz()[0] == 200 or proc.poll() is not None, 180, "the site did not answer")
        assert proc.poll() is None, stack.text()[-3000:]
        poll(lambda: stack.workers() == {"gpu", "cpu"}, 120, "both workers did not answer a ping")
        yield stack
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for pid in processes_where(6, proc.pid):  # field 6: the session; whatever is left of the stack
            os.kill(pid, signal.SIGKILL)
        if os.environ.get("CI"):
            sys.stderr.write(stack.text()[-6000:])


def assert_only_restarted(stack: Stack, before: dict[str, int], name: str) -> int:
    """Wait for `name` to be started again; the new pid. Every other child kept its pid."""
    new = poll(lambda: stack.restarted(name, before[name]), 60, f"{name} was not restarted")
    after = stack.pids()
    assert {n: after[n] for n in CHILDREN if n != name} == {n: before[n] for n in CHILDREN if n != name}
    assert all(alive(after[n]) for n in CHILDREN)
    assert re.search(
        rf"{name} \(pid {before[name]}\) killed by SIGKILL after [\d.]+s; restarting it in 1s", stack.text()
    )
    return new


@pytest.mark.parametrize(("name", "queue"), [("gpu-worker", "gpu"), ("cpu-worker", "cpu")])
def test_a_killed_worker_is_restarted_while_the_site_keeps_answering(stack, name, queue):
    before = stack.pids()
    pool = processes_where(4, before[name])  # field 4: the parent; Celery's pool (and beat) processes
    assert pool
    os.kill(before[name], signal.SIGKILL)

    answers = []  # the site, asked again and again until the worker is back
    while not (stack.restarted(name, before[name]) and queue in stack.workers()):
        answers.append(stack.healthz()[0])
        assert len(answers) < 120, f"{name} did not come back:\n{stack.text()[-3000:]}"
    assert len(answers) >= 2 and set(answers) == {200}  # the web was not touched while the worker restarted

    assert_only_restarted(stack, before, name)
    assert not any(alive(pid) for pid in pool)  # its orphaned pool went with it
    assert stack.workers() == {"gpu", "cpu"}
    inspect = stack.celery.control.inspect(timeout=2.0, destination=[f"{queue}@{socket.gethostname()}"])
    consumed = [q["name"] for q in next(iter(inspect.active_queues().values()))]
    # A training worker without a GPU also takes runs of several CPU processes (gpu-x2..., config/queues.py).
    assert consumed[0] == QUEUES[queue.upper()] and all(name.startswith(f"{consumed[0]}-x") for name in consumed[1:])
    assert len(consumed) == (1 if queue == "cpu" else 4)  # DISTILLERY_MAX_CPU_DEVICES 4: gpu-x2, -x3, -x4


def test_a_killed_web_server_is_restarted_on_its_port(stack):
    before = stack.pids()
    os.kill(before["web"], signal.SIGKILL)
    assert_only_restarted(stack, before, "web")
    status, body = poll(lambda: (r := stack.healthz())[0] == 200 and r, 60, "the site did not answer again")
    assert body["checks"] == {"database": "ok", "redis": "ok", "workers": "2 online"}


def test_a_killed_redis_comes_back_on_its_port_with_the_messages_it_held(stack):
    before = stack.pids()
    url = stack.redis_url
    stack.celery.conf.broker_url = url
    # A task on a queue no worker consumes: a message waiting in Redis, as a job waits for a busy worker.
    result = stack.celery.send_task("jobs.tasks.nothing", args=[1], queue="held")
    aof = stack.var_dir / "redis" / "appendonly.aof"
    poll(lambda: result.id.encode() in aof.read_bytes(), 10, "the message did not reach the append-only file")
    os.kill(before["redis"], signal.SIGKILL)

    assert_only_restarted(stack, before, "redis")
    assert stack.redis_url == url  # the same port: the children's REDIS_URL still holds
    client = redis.Redis.from_url(url)
    poll(lambda: client.ping(), 10, "Redis did not answer PING")
    held = [json.loads(message) for message in client.lrange("held", 0, -1)]
    assert [message["headers"]["id"] for message in held] == [result.id]
    poll(lambda: stack.workers() == {"gpu", "cpu"}, 60, "the workers did not reconnect")
    poll(lambda: stack.healthz()[0] == 200, 30, "the site did not reach Redis again")
    client.delete("held")
    client.close()


def test_the_training_worker_runs_nicer_than_the_web_and_on_its_own_cpus(stack):
    pids = stack.pids()
    launcher_nice = niceness(stack.proc.pid)
    training = {pids["gpu-worker"], *processes_where(4, pids["gpu-worker"])}  # with its pool and beat
    assert len(training) >= 2
    assert {niceness(pid) for pid in training} == {launcher_nice + TRAINING_NICE}
    assert niceness(pids["web"]) == niceness(pids["cpu-worker"]) == launcher_nice
    assert all(os.sched_getaffinity(pid) == stack.cpus["gpu-worker"] for pid in training)
    assert os.sched_getaffinity(pids["web"]) == stack.cpus["web"]
    assert os.sched_getaffinity(pids["cpu-worker"]) == os.sched_getaffinity(0)
    # One session, one autogroup: with a session each, Linux would share the CPU between them whatever the nice.
    assert {os.getsid(pid) for pid in pids.values()} == {stack.proc.pid}
    autogroup = Path(f"/proc/{stack.proc.pid}/autogroup")
    if autogroup.exists():
        launcher_group = autogroup.read_text().split()[0]
        assert {Path(f"/proc/{pid}/autogroup").read_text().split()[0] for pid in training} == {launcher_group}


def test_sigterm_stops_every_process_of_the_stack(stack):
    everything = processes_where(6, stack.proc.pid)  # the launcher's session
    assert set(stack.pids().values()) < everything
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(timeout=60) == 0
    poll(lambda: not processes_where(6, stack.proc.pid), 10, "processes of the stack were left running")
    assert "SIGTERM received; stopping" in stack.text()
